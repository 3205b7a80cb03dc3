"""Build the bundled sample clip edge/assets/sample.mp4 and its ground truth sample_truth.json.

Two public-domain portraits (NASA's astronaut Eileen Collins from scikit-image's data, the US Navy
portrait of Grace Hopper from matplotlib's sample data) are cut out head-and-shoulders and moved
smoothly across a mildly textured background; Hopper leaves the frame for a while and comes back,
so a tracker sees a track end and a new one start. The face box is found once per photo with
OpenCV's Haar cascade, and every truth box is that box sent through the same affine transform that
places the photo in the frame. Deterministic: a fixed seed, keyframed motion.

    PYTHONPATH=. .venv/bin/python scripts/make_sample_clip.py            # build + check
    PYTHONPATH=. .venv/bin/python scripts/make_sample_clip.py --preview /tmp/clip

scikit-image is a dev-only dependency of this script (the `dev` extra); nothing at runtime needs it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
import typer

WIDTH, HEIGHT, FPS, NUM_FRAMES = 640, 480, 30, 150
CASCADE = "haarcascade_frontalface_default.xml"
# Cut-out around the face, in face widths: 2 wide (centred), from 0.55 above the face to 2.5 down.
CROP_WIDE, CROP_ABOVE, CROP_TALL = 2.0, 0.55, 2.5
MAX_FACE = 140  # face width (px) a cut-out is shrunk to before animation
# Keyframes (frame, face centre x, face centre y, face width in px); Catmull-Rom in between.
# Hopper is fully out of the frame from about frame 65 to 91 (partly out from frame 52 to 103).
KEYFRAMES = {
    "astronaut": [
        (0, 140, 230, 104),
        (40, 210, 200, 116),
        (80, 255, 245, 124),
        (110, 200, 220, 112),
        (149, 150, 240, 106),
    ],
    "grace_hopper": [
        (0, 480, 200, 120),
        (35, 500, 240, 130),
        (50, 560, 230, 128),
        (68, 800, 220, 125),
        (88, 800, 220, 125),
        (105, 560, 210, 120),
        (130, 470, 190, 115),
        (149, 440, 200, 112),
    ],
}

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


@dataclass(frozen=True)
class Portrait:
    """A head-and-shoulders cut-out: BGR pixels, soft alpha mask and the face box inside it."""

    name: str
    image: np.ndarray  # BGR uint8, the cut-out
    alpha: np.ndarray  # float32 in [0, 1], same height and width
    face: tuple[float, float, float, float]  # x, y, w, h in cut-out pixels
    provenance: dict


def load_photos() -> dict[str, tuple[np.ndarray, dict]]:
    """The two source photos as BGR arrays, with where they come from."""
    import matplotlib
    import matplotlib.cbook
    import skimage
    import skimage.data

    astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    hopper_path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    hopper = cv2.imread(str(hopper_path), cv2.IMREAD_COLOR)
    if hopper is None:
        raise ValueError(f"cannot read {hopper_path}")
    return {
        "astronaut": (
            astronaut,
            {
                "subject": "Eileen Collins, NASA astronaut",
                "origin": f"skimage.data.astronaut() (scikit-image {skimage.__version__})",
                "credit": "NASA",
                "license": "public domain (NASA photograph)",
            },
        ),
        "grace_hopper": (
            hopper,
            {
                "subject": "Commodore Grace M. Hopper, US Navy",
                "origin": f"matplotlib.cbook.get_sample_data('grace_hopper.jpg') (matplotlib {matplotlib.__version__})",
                "credit": "US Navy",
                "license": "public domain (work of the US federal government)",
            },
        ),
    }


def detect_face(bgr: np.ndarray) -> tuple[int, int, int, int]:
    """The single largest Haar face in a still photo, at full resolution."""
    cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / CASCADE))
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
    if len(faces) == 0:
        raise ValueError("no face found in the source photo")
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return int(x), int(y), int(w), int(h)


def oval_cutout(
    photo: np.ndarray, face: tuple[int, int, int, int], wide: float = CROP_WIDE, above: float = CROP_ABOVE,
    tall: float = CROP_TALL, max_face: int = MAX_FACE,
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float], tuple[int, int, int, int], float]:
    """Head and shoulders around `face` (x, y, w, h), in face widths: (crop, feathered oval mask, face box
    in the crop, crop box in the photo, shrink). Used by this clip and the hard one."""
    fx, fy, fw, fh = face
    ph, pw = photo.shape[:2]
    x0 = max(0, round(fx + fw / 2 - wide * fw / 2))
    y0 = max(0, round(fy - above * fw))
    x1 = min(pw, round(fx + fw / 2 + wide * fw / 2))
    y1 = min(ph, round(fy - above * fw + tall * fw))
    crop = photo[y0:y1, x0:x1]
    # Shrink big faces once with area averaging, so the per-frame warp scales by about 1 (no aliasing).
    shrink = min(1.0, max_face / fw)
    if shrink < 1.0:
        crop = cv2.resize(crop, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    h, w = crop.shape[:2]
    mask = np.zeros((h, w), np.float32)
    feather = max(3, round(0.06 * w))
    cv2.ellipse(mask, (w // 2, h // 2), (w // 2 - feather, h // 2 - feather), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), feather / 2)
    face_in_crop = ((fx - x0) * shrink, (fy - y0) * shrink, fw * shrink, fh * shrink)
    return crop, mask, face_in_crop, (x0, y0, x1 - x0, y1 - y0), shrink


def make_portrait(name: str, photo: np.ndarray, provenance: dict) -> Portrait:
    """Cut the head and shoulders out of a photo around its detected face, with a feathered oval mask."""
    fx, fy, fw, fh = detect_face(photo)
    ph, pw = photo.shape[:2]
    crop, mask, face, crop_box, shrink = oval_cutout(photo, (fx, fy, fw, fh))
    pixels = hashlib.sha256(np.ascontiguousarray(photo).tobytes()).hexdigest()
    info = {
        **provenance,
        "photo_size": [pw, ph],
        "photo_pixels_sha256": pixels,
        "face_box_in_photo": [fx, fy, fw, fh],
        "crop_in_photo": list(crop_box),
    }
    return Portrait(name, crop, mask, face, {**info, "prescale": shrink})


def catmull_rom(keys: list[tuple], frame: int) -> np.ndarray:
    """Values at `frame` of a Catmull-Rom spline through (frame, v1, v2, ...) keyframes."""
    times = [k[0] for k in keys]
    values = [np.asarray(k[1:], np.float64) for k in keys]
    i = int(np.clip(np.searchsorted(times, frame, side="right") - 1, 0, len(keys) - 2))
    t = (frame - times[i]) / (times[i + 1] - times[i])
    p0, p1, p2, p3 = values[max(i - 1, 0)], values[i], values[i + 1], values[min(i + 2, len(keys) - 1)]
    return 0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (3 * p1 - p0 - 3 * p2 + p3) * t**3)


def placement(portrait: Portrait, frame: int) -> np.ndarray:
    """The 2x3 affine (scale + translation) taking cut-out pixels to frame pixels at `frame`."""
    cx, cy, face_width = catmull_rom(KEYFRAMES[portrait.name], frame)
    fx, fy, fw, fh = portrait.face
    s = face_width / fw
    return np.array([[s, 0.0, cx - s * (fx + fw / 2)], [0.0, s, cy - s * (fy + fh / 2)]])


def apply_box(m: np.ndarray, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Send an (x, y, w, h) box through a scale + translation affine."""
    x, y, w, h = box
    return m[0, 0] * x + m[0, 2], m[1, 1] * y + m[1, 2], m[0, 0] * w, m[1, 1] * h


def background(seed: int) -> np.ndarray:
    """A plain warm-grey wall with a soft vertical gradient and a faint blotchy texture."""
    rng = np.random.default_rng(seed)
    ys = np.linspace(0.0, 1.0, HEIGHT, dtype=np.float32)[:, None, None]
    base = np.array([168, 176, 182], np.float32) - 30 * ys  # BGR, lighter at the top
    noise = cv2.GaussianBlur(rng.normal(0, 1, (HEIGHT, WIDTH)).astype(np.float32), (0, 0), 12)
    noise *= 5.0 / noise.std()
    return np.clip(base + noise[:, :, None], 0, 255).astype(np.float32)


def render(portraits: list[Portrait], seed: int) -> tuple[list[np.ndarray], list[dict]]:
    """All frames and the truth (boxes of faces wholly inside the frame) for each."""
    wall = background(seed)
    frames, truth = [], []
    for i in range(NUM_FRAMES):
        canvas = wall.copy()
        boxes, ids, extents = [], [], []
        for p in portraits:
            m = placement(p, i)
            warped = cv2.warpAffine(p.image, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR).astype(np.float32)
            alpha = cv2.warpAffine(p.alpha, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)[:, :, None]
            canvas = canvas * (1 - alpha) + warped * alpha
            extents.append(apply_box(m, (0, 0, p.image.shape[1], p.image.shape[0])))
            x, y, w, h = apply_box(m, p.face)
            if x >= 0 and y >= 0 and x + w <= WIDTH and y + h <= HEIGHT:
                boxes.append([round(x), round(y), round(w), round(h)])
                ids.append(p.name)
        (ax, _, aw, _), (bx, _, _, _) = extents
        if ax + aw >= bx:
            raise ValueError(f"frame {i}: the cut-outs overlap; adjust KEYFRAMES")
        frames.append(np.clip(canvas + 0.5, 0, 255).astype(np.uint8))
        truth.append({"frame": i, "boxes": boxes, "ids": ids})
    return frames, truth


def write_video(path: Path, frames: list[np.ndarray]) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise ValueError(f"OpenCV cannot open an mp4v writer for {path}")
    for f in frames:
        writer.write(f)
    writer.release()


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter) if inter else 0.0


def check(video: Path, truth_path: Path, every: int = 10) -> list[tuple[int, str, float]]:
    """Decode the clip, check its size and length, and match Haar detections to the truth boxes.

    Returns (frame, id, best IoU) for each truth box in every `every`-th frame.
    """
    truth = json.loads(truth_path.read_text())["frames"]
    cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / CASCADE))
    cap = cv2.VideoCapture(str(video))
    results, n = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if frame.shape[:2] != (HEIGHT, WIDTH):
            raise ValueError(f"{video}: frame {n} is {frame.shape[1]}x{frame.shape[0]}")
        if n % every == 0:
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
            entry = truth[n]
            for box, ident in zip(entry["boxes"], entry["ids"], strict=True):
                results.append((n, ident, max((iou(box, d) for d in found), default=0.0)))
        n += 1
    cap.release()
    if n != len(truth):
        raise ValueError(f"{video} decodes to {n} frames, the truth has {len(truth)}")
    return results


def save_preview(video: Path, truth_path: Path, out: Path, frames: tuple[int, ...] = (0, 75, 120)) -> None:
    """PNGs of a few decoded frames with the truth boxes drawn, for a look by eye."""
    truth = json.loads(truth_path.read_text())["frames"]
    out.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(video))
    for n in range(max(frames) + 1):
        ok, frame = cap.read()
        if not ok:
            break
        if n in frames:
            for x, y, w, h in truth[n]["boxes"]:
                cv2.rectangle(frame, (x, y), (x + w, y + h), (0, 0, 255), 2)
            cv2.imwrite(str(out / f"frame_{n:03d}.png"), frame)
    cap.release()


def to_json(doc: dict) -> str:
    """Indented JSON with one line per frame, so diffs of the truth stay readable."""
    head = json.dumps({k: v for k, v in doc.items() if k != "frames"}, indent=1)[:-2]
    rows = ",\n  ".join(json.dumps(f) for f in doc["frames"])
    return f'{head},\n "frames": [\n  {rows}\n ]\n}}\n'


@app.command()
def main(
    out_dir: Annotated[Path, typer.Option(help="Where sample.mp4 and sample_truth.json go.")] = Path("edge/assets"),
    seed: Annotated[int, typer.Option(help="Seed of the background texture.")] = 20240601,
    verify: Annotated[
        bool, typer.Option(help="Decode the clip afterwards; compare Haar detections to the truth.")
    ] = True,
    preview: Annotated[Path | None, typer.Option(help="Also save a few frames with truth boxes drawn here.")] = None,
) -> None:
    """Render the clip and its truth, then (by default) check them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    photos = load_photos()
    portraits = [make_portrait(name, *photos[name]) for name in ("astronaut", "grace_hopper")]
    frames, truth = render(portraits, seed)
    video, truth_path = out_dir / "sample.mp4", out_dir / "sample_truth.json"
    write_video(video, frames)
    doc = {
        "source": video.name,
        "provenance": {
            "generator": "scripts/make_sample_clip.py",
            "seed": seed,
            "codec": "mp4v",
            "boxes": "faces whose whole box lies inside the frame; Haar box of the still photo through the "
            "placement affine, rounded to pixels",
            "photos": {p.name: p.provenance for p in portraits},
        },
        "frame_size": [WIDTH, HEIGHT],
        "fps": FPS,
        "frames": truth,
    }
    truth_path.write_text(to_json(doc))
    typer.echo(f"wrote {video} ({video.stat().st_size / 1e6:.2f} MB, {len(frames)} frames) and {truth_path}")
    if verify:
        results = check(video, truth_path)
        good = sum(r[2] >= 0.5 for r in results)
        typer.echo(
            f"Haar vs truth on every 10th frame: {good}/{len(results)} boxes with IoU >= 0.5, "
            f"mean IoU {np.mean([r[2] for r in results]):.2f}"
        )
        for n, ident, value in results:
            if value < 0.5:
                typer.echo(f"  frame {n} {ident}: best IoU {value:.2f}")
    if preview is not None:
        save_preview(video, truth_path, preview)
        typer.echo(f"preview frames in {preview}")


if __name__ == "__main__":
    app()
