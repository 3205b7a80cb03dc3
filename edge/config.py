"""Runtime configuration: one validated, immutable value built from defaults, a TOML file and flags."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
# Bundled models, selected by name (`--model ferplus`): edge/assets/<name>/<name>_int8.tflite with its sidecar,
# report and model card, installed there by `make convert RUN=... NAME=<name>` when the accuracy gate passes.
BUNDLED_MODELS = {"fer2013": "trained on FER2013's labels", "ferplus": "trained on FER+ annotator votes"}
DEFAULT_MODEL = "fer2013"  # what runs when no --model is given
SAMPLE_CLIP = ASSETS / "sample.mp4"
SAMPLE_TRUTH = ASSETS / "sample_truth.json"


def bundled_model(name: str) -> Path:
    """Where the bundled model `name` lives (whether or not it is installed)."""
    if name not in BUNDLED_MODELS:
        raise ValueError(f"unknown bundled model {name!r}; bundled models: {', '.join(BUNDLED_MODELS)}")
    return ASSETS / name / f"{name}_int8.tflite"


def resolve_model(model: str | Path | None) -> Path:
    """The .tflite file a --model value means: empty for the default bundled model, a bundled model's
    name (fer2013, ferplus), or a path. A bare word that is neither is an error listing the names."""
    value = str(model or DEFAULT_MODEL)
    if value in BUNDLED_MODELS:
        path = bundled_model(value)
        if not path.is_file():
            raise ValueError(
                f"bundled model {value!r} is not installed ({path} is missing); "
                f"convert one with `make convert RUN=runs/{value} NAME={value}`"
            )
        return path
    if "/" not in value and "." not in value:
        raise ValueError(f"--model {value!r}: not a bundled model ({', '.join(BUNDLED_MODELS)}) nor a .tflite path")
    return Path(value)


BUNDLED_MODEL = bundled_model(DEFAULT_MODEL)


@dataclass(frozen=True)
class RunConfig:
    source: str = "sample"  # picamera2 | usb:N | video | image | folder | sample (the bundled clip)
    model: str = ""  # empty: the default bundled model; fer2013 | ferplus: a bundled one; else a .tflite path
    num_threads: int = 1
    frame_width: int = 640
    frame_height: int = 480
    fps: float = 30.0
    lores_width: int = 320  # picamera2's low-resolution analysis stream
    lores_height: int = 240
    detect_width: int = 320  # full detections run on the frame scaled to this width; 0 = full size
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_face: int = 30  # smallest face side, in pixels of the analysed grey image (picamera2: lores)
    cascade: str = ""  # Haar cascade XML; empty = found in cv2.data, /usr/share/opencv4 or the package
    detect_every: int = 5  # full-frame detection every N frames; in between, only around tracked faces
    smoothing: int = 5  # frames each track's scores are averaged over
    iou_threshold: float = 0.3
    max_missed: int = 10  # frames a track may go unseen before it ends
    log: str = "-"  # JSON Lines events: a file path, or - for stdout
    log_max_bytes: int = 10_000_000
    log_backups: int = 5
    stats_interval: float = 10.0
    display: bool = False
    save_video: str = ""  # annotated video path; empty = none
    save_images: str = ""  # folder for annotated images (image/folder sources); empty = none
    emoji: bool = False
    flip_tta: bool = True  # average each face with its mirror, as the reported accuracy does
    max_frames: int = 0  # 0 = no limit
    duration: float = 0.0  # seconds; 0 = no limit

    def __post_init__(self):
        rules = {
            "source": bool(self.source.strip()),
            "num_threads": 1 <= self.num_threads <= 64,
            "frame_width": 16 <= self.frame_width <= 8192,
            "frame_height": 16 <= self.frame_height <= 8192,
            "fps": 1 <= self.fps <= 240,
            "lores_width": 16 <= self.lores_width <= self.frame_width,
            "lores_height": 16 <= self.lores_height <= self.frame_height,
            "detect_width": self.detect_width == 0 or self.detect_width >= 48,
            "scale_factor": 1.0 < self.scale_factor <= 2.0,
            "min_neighbors": 0 <= self.min_neighbors <= 50,
            "min_face": 8 <= self.min_face <= 2000,
            "detect_every": 1 <= self.detect_every <= 300,
            "smoothing": 1 <= self.smoothing <= 300,
            "iou_threshold": 0.0 < self.iou_threshold < 1.0,
            "max_missed": 0 <= self.max_missed <= 10_000,
            "log_max_bytes": self.log_max_bytes >= 0,
            "log_backups": self.log_backups >= 0,
            "stats_interval": self.stats_interval > 0,
            "max_frames": self.max_frames >= 0,
            "duration": self.duration >= 0,
        }
        bad = [name for name, ok in rules.items() if not ok]
        if bad:
            raise ValueError("invalid setting(s): " + ", ".join(f"{name} = {getattr(self, name)!r}" for name in bad))

    def model_path(self) -> Path:
        return resolve_model(self.model)

    def source_spec(self) -> str:
        return str(SAMPLE_CLIP) if self.source == "sample" else self.source


FIELD_TYPES = {f.name: f.type for f in fields(RunConfig)}


def load_config(path: str | Path, overrides: dict | None = None) -> RunConfig:
    """Read the [run] table of a TOML file; unknown keys and wrong types are errors naming the key."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read the config file ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from None
    unknown_tables = set(document) - {"run"}
    if unknown_tables:
        raise ValueError(f"{path}: unknown table(s) {', '.join(sorted(unknown_tables))}; settings go under [run]")
    settings = document.get("run", {})
    if not isinstance(settings, dict):
        raise ValueError(f"{path}: run must be a table ([run]), got {settings!r}")
    for key, value in settings.items():
        if key not in FIELD_TYPES:
            raise ValueError(f"{path}: unknown key run.{key}; known keys: {', '.join(FIELD_TYPES)}")
        expected = {"str": str, "int": int, "float": (int, float), "bool": bool}[FIELD_TYPES[key]]
        if isinstance(value, bool) and FIELD_TYPES[key] != "bool" or not isinstance(value, expected):
            raise ValueError(f"{path}: run.{key} must be {FIELD_TYPES[key]}, got {value!r}")
    try:
        config = RunConfig(**settings)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return replace(config, **(overrides or {}))
