"""A PDF read back as people see it: its text (poppler's pdftotext, layout kept) and its page
count (pdfinfo). The callers skip with the install command where poppler-utils is missing."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def read_pdf(path: Path, data: bytes) -> tuple[str, int]:
    """Write `data` to `path`; return (text, pages)."""
    path.write_bytes(data)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True,
                          text=True).stdout
    found = re.search(r"^Pages:\s+(\d+)$", info, re.M)
    assert found, info
    return text, int(found.group(1))
