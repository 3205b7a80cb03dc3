"""`--csv FILE`: one row per face for a spreadsheet, for still images and video alike."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from edge.paths import refuse_pipe
from edge.vision.geometry import Box


class CsvExport:
    """Columns: image (path, for stills), frame (index), t (media seconds, video), face (number within the
    image or frame), track (video), x, y, w, h, label, score, then one column per class. An image without
    a face still gets a row (face and the rest empty), so a spreadsheet shows it."""

    def __init__(self, path: str | Path, labels: Sequence[str]):
        self.path, self.labels = Path(path), tuple(labels)
        refuse_pipe(self.path, "--csv")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", newline="", encoding="utf-8")
        except OSError as error:
            raise ValueError(f"--csv {self.path}: cannot write there ({error.strerror or error})") from None
        self._writer = csv.writer(self._file)
        self._writer.writerow(["image", "frame", "t", "face", "track", "x", "y", "w", "h", "label", "score", *self.labels])

    def write(self, image: str, frame: int, t: float | None, faces: Sequence[tuple[Box, Sequence[float], int | None]], keep_empty: bool) -> None:
        """faces: (box, scores, track id or None) each. `keep_empty`: a row even when there is no face."""
        time_text = "" if t is None else f"{t:.3f}"
        if not faces and keep_empty:
            self._writer.writerow([image, frame, time_text] + [""] * (8 + len(self.labels)))
        for number, (box, scores, track) in enumerate(faces, start=1):
            best = max(range(len(scores)), key=lambda i: scores[i])
            self._writer.writerow(
                [image, frame, time_text, number, "" if track is None else track, *box, self.labels[best], f"{scores[best]:.4f}"]
                + [f"{s:.4f}" for s in scores]
            )
        self._file.flush()

    def close(self) -> None:
        self._file.close()
