"""Where the browser tests put their screenshots: the test's own temporary folder (removed with
it), or NSP_SCREENSHOTS when set: `make screenshots` sets it to docs/img, so the pictures in the
README and docs are what the tests saw."""

from __future__ import annotations

import os
from pathlib import Path

SHOTS_ENV = "NSP_SCREENSHOTS"


def shot_path(tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get(SHOTS_ENV, str(tmp_path)))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
