"""FER2013 from any of the forms users have: fer2013.csv, the image-folder release, or its .zip.

Every record is validated; a bad one raises `DatasetError` naming the file and row or path, or is
skipped and counted with `skip_bad=True`. Decoded arrays are cached (train/cache.py), keyed by the source's
content. FER+ votes: train/ferplus.py; the splits a run uses: train/splits.py.
"""

from __future__ import annotations

import csv
import io
import os
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from rich.progress import Progress, track

from edge.contract import INPUT_SIZE, LABELS, label_index
from train.cache import content_key, read_arrays, write_arrays

SPLITS: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
PIXELS_PER_IMAGE = INPUT_SIZE * INPUT_SIZE


class DatasetError(ValueError):
    """A dataset that cannot be read: names the file and the row or path at fault."""


@dataclass(frozen=True)
class Fer2013:
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64, canonical order of edge.contract.LABELS
    splits: np.ndarray  # (N,) int8, index into SPLITS
    source: str
    skipped: tuple[str, ...] = field(default=())
    # Data-row index in fer2013.csv of each image (what FER+ votes are aligned with); None for image folders.
    rows: np.ndarray | None = None
    total_rows: int = 0  # data rows the CSV held, bad ones included

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of one split: Training, PublicTest or PrivateTest."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        mask = self.splits == SPLITS.index(name)
        return self.images[mask], self.labels[mask]

    def class_counts(self) -> dict[str, list[int]]:
        """Per split, the number of images of each class in canonical order."""
        counts = {}
        for index, name in enumerate(SPLITS):
            labels = self.labels[self.splits == index]
            counts[name] = np.bincount(labels, minlength=len(LABELS)).tolist()
        return counts


def load_fer2013(path: str | os.PathLike, skip_bad: bool = False, cache_dir: str | os.PathLike | None = None) -> Fer2013:
    """Load FER2013 from a .csv, a .zip of the image-folder release, or that folder."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder (expected fer2013.csv, fer2013.zip or its folder)")
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"fer2013-{content_key(path, skip_bad)}.npz"
        if cache_file.exists():
            return _read_cache(cache_file, str(path))
    dataset = _decode(path, skip_bad)
    if cache_file is not None:
        _write_cache(cache_file, dataset)
    return dataset


def _decode(path: Path, skip_bad: bool) -> Fer2013:
    if path.is_dir():
        records = _folder_records(path)
        csv_file = path / "fer2013.csv"
        if not records and csv_file.exists():
            return _decode(csv_file, skip_bad)
        return _from_images(records, str(path), skip_bad)
    if path.suffix.lower() == ".zip":
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as error:
            raise DatasetError(f"{path}: not a readable zip file ({error})") from None
        with archive:
            names = [n for n in archive.namelist() if _is_image_name(n)]
            csv_names = [n for n in archive.namelist() if n.lower().endswith("fer2013.csv")]
            if not names and csv_names:
                with archive.open(csv_names[0]) as raw:
                    return _from_csv_stream(raw, f"{path}:{csv_names[0]}", skip_bad)
            records = ((name, lambda name=name: archive.read(name)) for name in sorted(names))
            return _from_images(list(records), str(path), skip_bad)
    if path.name.lower().endswith((".tar.gz", ".tgz", ".tar")):
        return _from_tar(path, skip_bad)
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as text:
            try:
                return _from_csv(text, str(path), skip_bad)
            except UnicodeDecodeError as error:
                raise DatasetError(f"{path}: not UTF-8 text near byte {error.start}; is it really fer2013.csv?") from None
    raise DatasetError(f"{path}: unsupported dataset form; give fer2013.csv, the image-folder .zip or its folder")


def _from_tar(path: Path, skip_bad: bool) -> Fer2013:
    """The 2013 challenge's fer2013.tar.gz: fer2013/fer2013.csv read straight from the archive."""
    try:
        archive = tarfile.open(path)
    except (tarfile.TarError, OSError) as error:
        raise DatasetError(f"{path}: not a readable tar archive ({error})") from None
    with archive:
        member = next((m for m in archive if m.isfile() and m.name.lower().endswith("fer2013.csv")), None)
        if member is None:
            raise DatasetError(f"{path}: holds no fer2013.csv")
        raw = archive.extractfile(member)
        return _from_csv_stream(raw, f"{path}:{member.name}", skip_bad)


def _from_csv_stream(raw, source: str, skip_bad: bool) -> Fer2013:
    """A CSV inside an archive: UTF-8 (a byte-order mark allowed); anything else names the member."""
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    try:
        return _from_csv(text, source, skip_bad)
    except UnicodeDecodeError as error:
        raise DatasetError(f"{source}: not UTF-8 text near byte {error.start}; is it really fer2013.csv?") from None


def _is_image_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return name.lower().endswith(IMAGE_SUFFIXES) and "__MACOSX" not in name and not base.startswith("._")


def _folder_records(folder: Path) -> list:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and _is_image_name(p.as_posix()))
    return [(str(p), p.read_bytes) for p in files]


class _Collector:
    """Gathers decoded records, turning each bad one into an error or a counted skip."""

    def __init__(self, source: str, skip_bad: bool):
        self.source, self.skip_bad = source, skip_bad
        self.images: list[np.ndarray] = []
        self.labels: list[int] = []
        self.splits: list[int] = []
        self.rows: list[int] = []
        self.skipped: list[str] = []
        self.total_rows = 0

    def bad(self, where: str, why: str) -> None:
        message = f"{where}: {why}"
        if not self.skip_bad:
            raise DatasetError(message + " (use --skip-bad to skip and count bad records)")
        self.skipped.append(message)

    def add(self, image: np.ndarray, label: int, split: int, row: int = -1) -> None:
        self.images.append(image)
        self.labels.append(label)
        self.splits.append(split)
        self.rows.append(row)

    def result(self) -> Fer2013:
        if not self.images:
            detail = f" ({len(self.skipped)} bad records skipped)" if self.skipped else ""
            raise DatasetError(f"{self.source}: no usable FER2013 images found{detail}")
        return Fer2013(
            images=np.stack(self.images).astype(np.uint8),
            labels=np.asarray(self.labels, dtype=np.int64),
            splits=np.asarray(self.splits, dtype=np.int8),
            source=self.source,
            skipped=tuple(self.skipped),
            rows=np.asarray(self.rows, dtype=np.int64) if self.total_rows else None,
            total_rows=self.total_rows,
        )


def _from_images(records: list, source: str, skip_bad: bool) -> Fer2013:
    """records: (path, read_bytes) pairs laid out as <split dir>/<emotion>/<Usage>_<id>.<ext>."""
    out = _Collector(source, skip_bad)
    for name, read_bytes in track(records, description=f"decoding {Path(source).name}", transient=True):
        parts = name.replace("\\", "/").split("/")
        if len(parts) < 2:
            out.bad(name, "image is not inside an emotion folder")
            continue
        emotion, usage = parts[-2], parts[-1].split("_", 1)[0]
        try:
            label = label_index(emotion)
        except ValueError as error:
            out.bad(name, str(error))
            continue
        if usage not in SPLITS:
            out.bad(name, f"file name must start with one of {', '.join(SPLITS)} followed by '_', got {usage!r}")
            continue
        try:
            content = read_bytes()
        except (OSError, zipfile.BadZipFile) as error:
            out.bad(name, f"cannot read ({error})")
            continue
        image = cv2.imdecode(np.frombuffer(content, dtype=np.uint8), cv2.IMREAD_GRAYSCALE) if content else None
        if image is None:
            out.bad(name, "unreadable image")
            continue
        if image.shape != (INPUT_SIZE, INPUT_SIZE):
            out.bad(name, f"image is {image.shape[1]}x{image.shape[0]}, expected {INPUT_SIZE}x{INPUT_SIZE}")
            continue
        out.add(image, label, SPLITS.index(usage))
    return out.result()


def _from_csv(text: io.TextIOBase, source: str, skip_bad: bool) -> Fer2013:
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        raise DatasetError(f"{source}: empty file")
    columns = [c.strip() for c in header]
    missing = [c for c in ("emotion", "pixels", "Usage") if c not in columns]
    if missing:
        raise DatasetError(f"{source}: header lacks column(s) {', '.join(missing)}; expected emotion,pixels,Usage")
    emotion_at, pixels_at, usage_at = (columns.index(c) for c in ("emotion", "pixels", "Usage"))
    out = _Collector(source, skip_bad)
    for line, row in enumerate(_progress(reader, source), start=2):
        where = f"{source} row {line}"
        if not any(field.strip() for field in row):
            continue  # a blank line (a trailing newline from an editor) is no record
        out.total_rows += 1
        if len(row) != len(columns):
            out.bad(where, f"{len(row)} fields, expected {len(columns)}")
            continue
        emotion, usage = row[emotion_at].strip(), row[usage_at].strip()
        if emotion not in {str(i) for i in range(len(LABELS))}:
            out.bad(where, f"unknown emotion {emotion!r}; expected 0-{len(LABELS) - 1}")
            continue
        if usage not in SPLITS:
            out.bad(where, f"unknown Usage {usage!r}; expected one of {', '.join(SPLITS)}")
            continue
        try:
            pixels = np.array(row[pixels_at].split(), dtype=np.int64)
        except (ValueError, OverflowError):
            out.bad(where, "pixels must be space-separated integers")
            continue
        if pixels.size != PIXELS_PER_IMAGE:
            out.bad(where, f"{pixels.size} pixels, expected {PIXELS_PER_IMAGE} ({INPUT_SIZE}x{INPUT_SIZE})")
            continue
        if pixels.min() < 0 or pixels.max() > 255:
            out.bad(where, "pixel values must lie in 0-255")
            continue
        out.add(pixels.astype(np.uint8).reshape(INPUT_SIZE, INPUT_SIZE), int(emotion), SPLITS.index(usage), out.total_rows - 1)
    return out.result()


def _progress(reader, source: str) -> Iterator:
    """The reader's rows with a progress bar; a row the csv module cannot parse names its line."""
    rows = iter(reader)
    with Progress(transient=True) as progress:
        task = progress.add_task(f"parsing {Path(source).name}", total=None)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as error:
                raise DatasetError(f"{source} row {reader.line_num}: not a valid CSV row ({error})") from None
            progress.advance(task)
            yield row


def _read_cache(cache_file: Path, source: str) -> Fer2013:
    stored = read_arrays(cache_file)
    total_rows = int(stored["total_rows"])
    return Fer2013(
        images=stored["images"],
        labels=stored["labels"],
        splits=stored["splits"],
        source=source,
        skipped=tuple(str(s) for s in stored["skipped"]),
        rows=stored["rows"] if total_rows else None,
        total_rows=total_rows,
    )


def _write_cache(cache_file: Path, dataset: Fer2013) -> None:
    write_arrays(
        cache_file,
        images=dataset.images,
        labels=dataset.labels,
        splits=dataset.splits,
        skipped=np.asarray(dataset.skipped, dtype=str),
        rows=dataset.rows if dataset.rows is not None else np.zeros(0, np.int64),
        total_rows=dataset.total_rows,
    )


def format_summary(dataset: Fer2013) -> str:
    """Class counts per split as a plain-text table."""
    counts = dataset.class_counts()
    width = max(len(label) for label in LABELS)
    header = "split".ljust(12) + "".join(label.rjust(width + 1) for label in LABELS) + "total".rjust(8)
    lines = [header]
    for name, row in counts.items():
        lines.append(name.ljust(12) + "".join(str(c).rjust(width + 1) for c in row) + str(sum(row)).rjust(8))
    if dataset.skipped:
        lines.append(f"skipped {len(dataset.skipped)} bad record(s)")
    return "\n".join(lines)


def plot_summary(dataset: Fer2013, out_png: str | os.PathLike) -> Path:
    """Grouped bar chart of class counts per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = dataset.class_counts()
    positions = np.arange(len(LABELS))
    width = 0.8 / len(counts)
    figure, axes = plt.subplots(figsize=(9, 4))
    for offset, (name, row) in enumerate(counts.items()):
        axes.bar(positions + offset * width, row, width, label=name)
    axes.set_xticks(positions + width * (len(counts) - 1) / 2, LABELS)
    axes.set_ylabel("images")
    axes.set_title("FER2013 class counts per split")
    axes.legend()
    figure.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_png, dpi=100)
    plt.close(figure)
    return out_png
