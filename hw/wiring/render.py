"""Render every harness in hw/wiring/ with WireViz: <name>.svg (primary), .png, .gv, .bom.tsv.

    .venv/bin/python hw/wiring/render.py        (needs `pip install wireviz==0.4.1` and graphviz)

The PNG is re-saved as a 128-colour palette image (Pillow, no dithering): the wire colours and the
text stay exact and the file is about a quarter of graphviz's RGBA output. tests/test_hw_wiring.py
rebuilds the harnesses and fails when a committed .gv/.bom.tsv (or, with the same graphviz
version, .svg) differs from what this script writes.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WIREVIZ = Path(sys.executable).parent / "wireviz"


def shrink_png(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as im:
        pal = im.convert("RGB").quantize(colors=128, method=Image.Quantize.FASTOCTREE,
                                         dither=Image.Dither.NONE)
    pal.save(path, optimize=True)


def main() -> None:
    for yml in sorted(HERE.glob("*.yml")):
        cmd = [str(WIREVIZ), "-f", "gpst", str(yml)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        shrink_png(yml.with_suffix(".png"))
        print(yml.with_suffix(".svg").relative_to(HERE.parent.parent))


if __name__ == "__main__":
    main()
