"""Regenerate docs/images/demo.png, the README's picture: one frame of what `make demo` writes to
out/demo.mp4 (the shipped model on the bundled clip, boxes, captions and score bars).

    .venv/bin/python scripts/make_readme_image.py                  # frame 40 -> docs/images/demo.png
    .venv/bin/python scripts/make_readme_image.py --frame 100 --out /tmp/demo.png
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import cv2
import typer

ROOT = Path(__file__).resolve().parents[1]


def main(
    frame: Annotated[int, typer.Option(help="which frame of the clip (0-based); 40 shows both faces")] = 40,
    out: Annotated[Path, typer.Option(help="where the PNG goes")] = ROOT / "docs" / "images" / "demo.png",
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "demo.mp4"
        # the demo's own command (Makefile: demo), so the picture shows what a user sees
        subprocess.run(
            [sys.executable, "-m", "edge", "run", "--source", "sample", "--save-video", str(video), "--emoji",
             "--max-frames", str(frame + 1), "--log", str(Path(folder) / "demo.jsonl")],
            cwd=ROOT, check=True,
        )
        capture = cv2.VideoCapture(str(video))
        capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
        ok, image = capture.read()
        capture.release()
    if not ok:
        raise typer.BadParameter(f"the clip has no frame {frame}", param_hint="--frame")
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    typer.echo(f"wrote {out} ({image.shape[1]}x{image.shape[0]}, frame {frame})")


if __name__ == "__main__":
    typer.run(main)
