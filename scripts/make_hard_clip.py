"""Build the harder benchmark clip edge/assets/hard.mp4 and its ground truth hard_truth.json.

What real rooms have and the bundled sample clip lacks: four faces from about 30 to 200 px wide, turned
up to +-30 degrees in the image plane, a profile (scikit-image's `camera`), a stretch of dim light with
sensor noise, motion blur (a fast entrance and a camera pan), a cup raised across a face, faces entering
and leaving, all over a wall with shelves and a framed picture. Made from the same public-domain photos
as the sample clip (plus `camera`); deterministic: fixed seed, keyframed motion.

Truth: every face whose whole box lies in the frame and is at most half covered is listed in `boxes`;
faces partly outside the frame or mostly covered are listed in `partial` (clipped to the frame), and a
detection there is neither a hit nor a false detection. A face's box is the Haar box of its still
photo (for the profile, which Haar cannot find, a box set by eye) moved with the photo: a square of the
placed face's size about the placed face centre, also when the face is tilted.

    PYTHONPATH=. .venv/bin/python scripts/make_hard_clip.py                 # build
    PYTHONPATH=. .venv/bin/python scripts/make_hard_clip.py --preview /tmp/hard
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
import typer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_sample_clip import catmull_rom, load_photos, oval_cutout, to_json, write_video  # noqa: E402

WIDTH, HEIGHT, FPS, NUM_FRAMES = 640, 480, 30, 300
SEED = 20261122
CROP_WIDE, CROP_ABOVE, CROP_TALL = 2.0, 0.6, 2.4  # cut-out around the face, in face widths
MAX_FACE = 200
# Face boxes (x, y, w, h) in the photos. The frontal ones are OpenCV Haar's (as the sample clip finds them,
# checked by eye), fixed here so that the truth does not change with the OpenCV version; the profile in
# skimage.data.camera(), where Haar finds nothing, was boxed by eye like Haar frames a face (brow to below
# the mouth, ear to nose tip).
FACES = {"astronaut": (177, 66, 95, 95), "grace_hopper": (155, 105, 222, 222)}
CAMERA_FACE = (186, 112, 86, 86)
# Keyframes per face: (frame, centre x, centre y, face width px, tilt degrees); Catmull-Rom in between.
KEYFRAMES = {
    "astronaut": [(0, 150, 250, 110, 0), (60, 170, 240, 118, 20), (110, 150, 250, 112, 30), (160, 140, 245, 110, 0),
                  (230, 160, 250, 105, -25), (290, 150, 245, 110, -10), (329, 140, 250, 108, 0)],
    "grace_hopper": [(0, 820, 260, 150, 0), (25, 790, 260, 150, 0), (45, 520, 260, 160, 0), (100, 470, 250, 185, 10),
                     (150, 450, 250, 200, -15), (200, 480, 255, 180, 0), (250, 560, 250, 170, 0),
                     (285, 820, 250, 165, 0), (329, 820, 250, 165, 0)],
    "camera": [(0, -160, 230, 80, 0), (70, -160, 230, 80, 0), (110, 330, 230, 82, 0), (200, 320, 225, 86, 5),
               (260, 300, 235, 84, 0), (329, 290, 230, 82, 0)],
    "far": [(0, 400, 95, 34, 0), (80, 360, 100, 30, 10), (160, 310, 95, 36, -15), (240, 250, 100, 40, 0),
            (300, 330, 95, 34, 0), (329, 360, 95, 32, 0)],
}
LAYERS = ("far", "camera", "astronaut", "grace_hopper")  # back to front
CUP = [(0, -120, 330), (85, -120, 330), (100, 150, 292), (130, 158, 288), (145, -120, 330), (299, -120, 330)]
DIM = (170, 200, 240, 265)  # frames: light falls, stays dim, rises again
DIM_LEVEL, NOISE_SIGMA, DIM_NOISE_SIGMA, NOISE_GRAIN = 0.3, 0.0, 5.0, 1.0  # noise only where dim: it costs mp4 bytes
PAN = (275, 290, 7)  # frames of a camera pan: horizontal motion blur of this many pixels
HIDDEN = 0.5  # a face more than this fraction covered goes to `partial`

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


@dataclass(frozen=True)
class Cutout:
    """A head-and-shoulders cut-out: grey pixels, soft alpha mask and the face box inside it."""

    name: str
    image: np.ndarray  # uint8 grey
    alpha: np.ndarray  # float32 in [0, 1]
    face: tuple[float, float, float, float]


def make_cutout(name: str, photo: np.ndarray, face: tuple[int, int, int, int], mirror: bool = False) -> Cutout:
    crop, mask, face_in_crop, _, _ = oval_cutout(photo, face, CROP_WIDE, CROP_ABOVE, CROP_TALL, MAX_FACE)
    if mirror:
        crop, mask = crop[:, ::-1].copy(), mask[:, ::-1].copy()
        face_in_crop = (crop.shape[1] - face_in_crop[0] - face_in_crop[2], *face_in_crop[1:])
    return Cutout(name, crop, mask, face_in_crop)


def cutouts() -> tuple[list[Cutout], dict]:
    """The four faces (the far one is the astronaut again, mirrored) and where their photos come from."""
    import skimage
    import skimage.data

    photos = load_photos()
    grey = {name: cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) for name, (bgr, _) in photos.items()}
    faces = FACES
    provenance = {name: {**info, "face_box_in_photo": list(faces[name])} for name, (_, info) in photos.items()}
    provenance["camera"] = {
        "subject": "the cameraman (profile)", "origin": f"skimage.data.camera() (scikit-image {skimage.__version__})",
        "license": "CC0 (no copyright restrictions; photographer Lav Varshney, per its docstring)", "face_box_in_photo": list(CAMERA_FACE),
    }
    made = [
        make_cutout("astronaut", grey["astronaut"], faces["astronaut"]),
        make_cutout("grace_hopper", grey["grace_hopper"], faces["grace_hopper"]),
        make_cutout("camera", skimage.data.camera(), CAMERA_FACE),
        make_cutout("far", grey["astronaut"], faces["astronaut"], mirror=True),
    ]
    return made, provenance


def placement(cutout: Cutout, frame: int) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The 2x3 affine (rotation about the face centre, scale, translation) placing a cut-out at `frame`,
    and the placed face's centre and width."""
    cx, cy, width, tilt = catmull_rom(KEYFRAMES[cutout.name], frame)
    fx, fy, fw, fh = cutout.face
    m = cv2.getRotationMatrix2D((fx + fw / 2, fy + fh / 2), float(tilt), width / fw)
    m[:, 2] += (cx - (fx + fw / 2), cy - (fy + fh / 2))
    return m, (cx, cy, width)


def wall(rng: np.random.Generator) -> np.ndarray:
    """A room wall: gradient, blotchy texture, two shelves with boxes on them and a framed picture."""
    ys = np.linspace(0.0, 1.0, HEIGHT, dtype=np.float32)[:, None]
    image = 175 - 40 * ys + np.zeros((HEIGHT, WIDTH), np.float32)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (HEIGHT, WIDTH)).astype(np.float32), (0, 0), 10)
    image += noise * (6.0 / noise.std())
    for y in (70, 150):  # shelves with things on them
        cv2.rectangle(image, (440, y), (630, y + 8), 90, -1)
        for x in range(450, 620, 34):
            cv2.rectangle(image, (x, y - 20 - (x * 7) % 25), (x + 22, y - 1), float(60 + (x * 13) % 120), -1)
    cv2.rectangle(image, (20, 30), (150, 130), 70, -1)  # a picture frame
    picture = cv2.resize(cv2.cvtColor(_coffee(), cv2.COLOR_RGB2GRAY), (118, 88), interpolation=cv2.INTER_AREA)
    image[36:124, 26:144] = picture
    return image


def _coffee() -> np.ndarray:
    import skimage.data

    return skimage.data.coffee()


def cup_layer(frame: int) -> tuple[np.ndarray, np.ndarray]:
    """A mug held up in front of the astronaut's mouth for a while: grey pixels and alpha."""
    x, y = catmull_rom(CUP, frame)
    image = np.zeros((HEIGHT, WIDTH), np.float32)
    alpha = np.zeros((HEIGHT, WIDTH), np.float32)
    body = np.array([[x - 34, y - 40], [x + 34, y - 40], [x + 30, y + 45], [x - 30, y + 45]], np.int32)
    cv2.fillConvexPoly(alpha, body, 1.0)
    cv2.ellipse(alpha, (int(x + 38), int(y)), (14, 20), 0, 0, 360, 1.0, 5)
    image[:] = 225
    cv2.rectangle(image, (int(x - 34), int(y - 5)), (int(x + 34), int(y + 15)), 120, -1)  # a stripe
    return image, cv2.GaussianBlur(alpha, (0, 0), 1.0)


def light(frame: int) -> float:
    fall, low, rise, back = DIM
    if frame <= fall or frame >= back:
        return 1.0
    if frame < low:
        return 1.0 - (1.0 - DIM_LEVEL) * (frame - fall) / (low - fall)
    if frame <= rise:
        return DIM_LEVEL
    return DIM_LEVEL + (1.0 - DIM_LEVEL) * (frame - rise) / (back - rise)


def motion_blur(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Blur along the motion (dx, dy) pixels per frame, as a 1/30 s exposure would."""
    length = int(round(np.hypot(dx, dy)))
    if length < 3:
        return image
    kernel = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    ux, uy = dx / np.hypot(dx, dy), dy / np.hypot(dx, dy)
    cv2.line(kernel, (round(c - ux * c), round(c - uy * c)), (round(c + ux * c), round(c + uy * c)), 1.0, 1)
    return cv2.filter2D(image, -1, kernel / kernel.sum())


def face_record(cutout: Cutout, frame: int) -> tuple[float, float, float]:
    _, (cx, cy, width) = placement(cutout, frame)
    return cx - width / 2, cy - width / 2, width


def render_frame(made: list[Cutout], backdrop: np.ndarray, frame: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    canvas = backdrop.copy()
    covers: dict[str, np.ndarray] = {}  # each face's alpha, to measure what is in front of it later
    for cutout in sorted(made, key=lambda c: LAYERS.index(c.name)):
        m, _ = placement(cutout, frame)
        warped = cv2.warpAffine(cutout.image, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR).astype(np.float32)
        alpha = cv2.warpAffine(cutout.alpha, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
        (px, py, _), (nx, ny, _) = face_record(cutout, max(frame - 1, 0)), face_record(cutout, frame)
        warped, alpha = motion_blur(warped, nx - px, ny - py), motion_blur(alpha, nx - px, ny - py)
        for other in covers:
            covers[other] = np.maximum(covers[other], alpha)
        covers[cutout.name] = np.zeros_like(alpha)
        canvas = canvas * (1 - alpha) + warped * alpha
    cup, cup_alpha = cup_layer(frame)
    canvas = canvas * (1 - cup_alpha) + cup * cup_alpha
    if PAN[0] <= frame < PAN[1]:
        canvas = motion_blur(canvas, PAN[2], 0)
    level = light(frame)
    sigma = NOISE_SIGMA + (DIM_NOISE_SIGMA - NOISE_SIGMA) * (1 - level) / (1 - DIM_LEVEL)
    canvas = canvas * level
    noise = rng.normal(0, 1, canvas.shape).astype(np.float32)  # drawn every frame, so the stream stays fixed
    if sigma > 0:  # grain a pixel or so wide, as a camera's demosaicing and denoising leave it
        noise = cv2.GaussianBlur(noise, (0, 0), NOISE_GRAIN)
        canvas += noise * (sigma / noise.std())
    grey = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    truth = {"frame": frame, "boxes": [], "ids": [], "partial": [], "partial_ids": []}
    for cutout in made:
        x, y, w = face_record(cutout, frame)
        box = [round(x), round(y), round(w), round(w)]
        x0, y0, x1, y1 = max(box[0], 0), max(box[1], 0), min(box[0] + box[2], WIDTH), min(box[1] + box[3], HEIGHT)
        if x1 <= x0 or y1 <= y0:
            continue
        cover = np.maximum(covers[cutout.name], cup_alpha)[y0:y1, x0:x1].mean() if cutout.name in covers else 0.0
        inside = (x0, y0, x1, y1) == (box[0], box[1], box[0] + box[2], box[1] + box[3])
        if inside and cover <= HIDDEN:
            truth["boxes"].append(box)
            truth["ids"].append(cutout.name)
        else:
            truth["partial"].append([x0, y0, x1 - x0, y1 - y0])
            truth["partial_ids"].append(cutout.name)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), truth


def render(made: list[Cutout], seed: int) -> tuple[list[np.ndarray], list[dict]]:
    rng = np.random.default_rng(seed)
    backdrop = wall(rng)
    frames, truth = [], []
    for i in range(NUM_FRAMES):
        image, entry = render_frame(made, backdrop, i, rng)
        frames.append(image)
        truth.append(entry)
    return frames, truth


def truth_document(truth: list[dict], provenance: dict, seed: int) -> dict:
    return {
        "source": "hard.mp4",
        "provenance": {
            "generator": "scripts/make_hard_clip.py", "seed": seed, "codec": "mp4v",
            "boxes": "faces wholly inside the frame and at most half covered: the still photo's face box "
            "(Haar; the profile's set by eye) as a square of the placed face width about the placed face "
            "centre, rounded to pixels",
            "partial": "faces partly outside the frame or more than half covered, clipped to the frame; "
            "detections there count neither way",
            "photos": provenance,
        },
        "frame_size": [WIDTH, HEIGHT],
        "fps": FPS,
        "frames": truth,
    }


def save_preview(frames: list[np.ndarray], truth: list[dict], out: Path, every: int = 30) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for entry in truth[::every]:
        image = frames[entry["frame"]].copy()
        for x, y, w, h in entry["boxes"]:
            cv2.rectangle(image, (x, y), (x + w, y + h), (0, 0, 255), 1)
        for x, y, w, h in entry["partial"]:
            cv2.rectangle(image, (x, y), (x + w, y + h), (0, 200, 255), 1)
        cv2.imwrite(str(out / f"frame_{entry['frame']:03d}.png"), image)


@app.command()
def main(
    out_dir: Annotated[Path, typer.Option(help="Where hard.mp4 and hard_truth.json go.")] = Path("edge/assets"),
    seed: Annotated[int, typer.Option(help="Seed of the wall texture and the sensor noise.")] = SEED,
    preview: Annotated[Path | None, typer.Option(help="Also save every 30th frame with truth boxes drawn here.")] = None,
) -> None:
    """Render the clip and its truth."""
    out_dir.mkdir(parents=True, exist_ok=True)
    made, provenance = cutouts()
    frames, truth = render(made, seed)
    video, truth_path = out_dir / "hard.mp4", out_dir / "hard_truth.json"
    write_video(video, frames)
    truth_path.write_text(to_json(truth_document(truth, provenance, seed)))
    counts = [len(f["boxes"]) for f in truth]
    typer.echo(f"wrote {video} ({video.stat().st_size / 1e6:.2f} MB, {len(frames)} frames, {sum(counts)} faces, "
               f"{sum(len(f['partial']) for f in truth)} partial) and {truth_path}")
    if preview is not None:
        save_preview(frames, truth, preview)
        typer.echo(f"preview frames in {preview}")


if __name__ == "__main__":
    app()
