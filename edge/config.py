"""Runtime configuration: one validated, immutable value built from defaults, a TOML file and flags."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from edge import contract, paths
from edge.settings import check, flag, setting

# Bundled models, selected by name (`--model ferplus`): edge/assets/<name>/<name>_int8.tflite with its sidecar,
# report and model card, installed there by `make ship RUN=... NAME=<name>` when the accuracy gate passes.
BUNDLED_MODELS = {"fer2013": "trained on FER2013's labels", "ferplus": "trained on FER+ annotator votes"}
MODEL_SEPARATOR = ","  # --model ferplus,fer2013: several models, their scores averaged
DEFAULT_MODEL = "ferplus"  # what runs when no --model is given: FER+ votes are the cleaner labels (README)
SAMPLE_CLIP = paths.ASSETS / "sample.mp4"
SAMPLE_TRUTH = paths.ASSETS / "sample_truth.json"


def bundled_model(name: str) -> Path:
    """Where the bundled model `name` lives (whether or not it is installed)."""
    if name not in BUNDLED_MODELS:
        raise ValueError(f"unknown bundled model {name!r}; bundled models: {', '.join(BUNDLED_MODELS)}")
    return paths.ASSETS / name / f"{name}_int8.tflite"  # ASSETS read at call time: tests point it at a scratch folder


def resolve_model(model: str | Path | None) -> Path:
    """The .tflite file a --model value means: empty for the default bundled model, a bundled model's
    name (fer2013, ferplus), or a path. A bare word that is neither is an error listing the names."""
    value = str(model or DEFAULT_MODEL)
    if value in BUNDLED_MODELS:
        path = bundled_model(value)
        if not path.is_file():
            raise ValueError(
                f"bundled model {value!r} is not installed ({path} is missing); "
                f"train and install one with `make train LABELS={value}` and `make ship RUN=runs/{value} NAME={value}`"
            )
        return path
    if MODEL_SEPARATOR in value:
        raise ValueError(f"--model {value!r} names several models; this command takes one")
    if "/" not in value and "." not in value:
        raise ValueError(f"--model {value!r}: not a bundled model ({', '.join(BUNDLED_MODELS)}) nor a .tflite path")
    return Path(value)


def resolve_models(model: str | Path | None) -> list[Path]:
    """The .tflite files a --model value names: one, or several separated by commas (`ferplus,fer2013`), whose
    class probabilities are averaged (edge.vision.ensemble). Each part is what resolve_model takes."""
    value = str(model or DEFAULT_MODEL)
    parts = [part.strip() for part in value.split(MODEL_SEPARATOR)]
    if not all(parts):
        raise ValueError(f"--model {value!r}: an empty name between commas; give models as name,name or path,path")
    paths = [resolve_model(part) for part in parts]
    repeated = sorted({str(path) for path in paths if paths.count(path) > 1})
    if repeated:
        raise ValueError(f"--model {value!r} names {repeated[0]} twice; an ensemble averages different models")
    return paths


BUNDLED_MODEL = bundled_model(DEFAULT_MODEL)


@dataclass(frozen=True)
class RunConfig:
    """Every runtime setting, once: `python -m edge run --FLAG`, the [run] table of edge.toml, and
    docs/configuration.md are all made from these fields."""

    source: str = setting("sample", "where frames come from: picamera2, usb:N, a video file, an image, a folder of images, or sample (the bundled clip)", panel="Source")
    model: str = setting("", 'a bundled model by name (fer2013, ferplus) or a .tflite path with its sidecar JSON; several, comma-separated (ferplus,fer2013), average their scores, each with its own sidecar\'s views and correction; "" = the default bundled model', panel="Model")
    num_threads: int = setting(1, "TFLite interpreter threads", low=1, high=64, panel="Model")
    frame_width: int = setting(640, "camera frame width, pixels", low=16, high=8192, panel="Source")
    frame_height: int = setting(480, "camera frame height, pixels", low=16, high=8192, panel="Source")
    fps: float = setting(30.0, "camera frame rate (files play at their own)", low=1, high=240, panel="Source")
    lores_width: int = setting(320, "picamera2's low-resolution analysis stream width (<= frame width)", low=16, high=8192, panel="Source")
    lores_height: int = setting(240, "picamera2's analysis stream height (<= frame height)", low=16, high=8192, panel="Source")
    detect_width: int = setting(320, "video: full-frame detection runs on the frame shrunk to this width", low=48, high=8192, zero_means="full size", panel="Detection")
    scale_factor: float = setting(1.1, "Haar: step between detection scales (bigger is faster, may miss faces)", above=1.0, high=2.0, panel="Detection")
    min_neighbors: int = setting(5, "Haar: overlapping hits a face needs (bigger means fewer false faces)", low=0, high=50, panel="Detection")
    min_face: int = setting(30, "smallest face side, in pixels of the analysed grey image (picamera2: lores)", low=8, high=2000, panel="Detection")
    cascade: str = setting("", 'Haar cascade XML; "" = found in cv2.data, /usr/share/opencv4 or the package', panel="Detection")
    # Face detector choice (issue 12): Haar stays the default; BlazeFace's models ship in edge/assets.
    detector: str = setting("haar", "face detector: haar (OpenCV's cascade), blazeface (MediaPipe's BlazeFace on the TFLite interpreter) or yunet (OpenCV Zoo's YuNet, run by OpenCV)", choices=("haar", "blazeface", "yunet"), panel="Detection")
    blazeface_score: float = setting(0.6, "BlazeFace: smallest face score kept (bigger means fewer false faces, may miss some)", above=0.0, below=1.0, panel="Detection")
    blazeface_tiles: int = setting(2, "BlazeFace: full detections also search an N x N grid of overlapping tiles, which finds small faces (1 = whole frame only)", low=1, high=4, panel="Detection")
    # YuNet (issue 30): its model ships in edge/assets; whole frames are searched at detect_width.
    yunet_score: float = setting(0.7, "YuNet: smallest face score kept (bigger means fewer false faces, may miss some)", above=0.0, below=1.0, panel="Detection")
    landmarks: bool = setting(False, "YuNet: add each face's five landmarks (eyes, nose tip, mouth corners) to its records", panel="Detection")
    detect_every: int = setting(5, "video: search for new faces at most every N frames while faces are tracked (with the motion gate, only where something moved or a face was lost); in between only around tracked faces", low=1, high=300, panel="Detection")
    confirm_every: int = setting(5, "video: the detector looks for each tracked face at least every N frames; in between the face is followed by template matching, at a fraction of the cost (1 = the detector every frame)", low=1, high=300, panel="Detection")
    motion_threshold: int = setting(12, "video: grey-level change between frames (on a 1/8-size thumbnail) outside the tracked people that makes a search for new faces there due", low=1, high=255, zero_means="no motion gate: the whole frame every detect_every frames", panel="Detection")
    still_detect_every: int = setting(60, "video: with the motion gate, search the whole frame at least every N frames even when nothing moves", low=1, high=10_000, panel="Detection")
    # Per-track classification (issue 30): a tracked face is classified again when its track needs it.
    classify_every: int = setting(5, "video: classify a tracked face again at least every N frames (1 = every face on every frame); in between only when its face changed (classify_change)", low=1, high=300, panel="Tracking (video)")
    classify_change: float = setting(32.0, "video: with classify_every > 1, classify a tracked face again as soon as its 48x48 crop differs from the one last classified by more than this many grey levels on average", above=0.0, high=255, zero_means="only every classify_every frames", panel="Tracking (video)")
    smoothing: int = setting(5, "frames each face's scores are averaged over", low=1, high=300, panel="Tracking (video)")
    iou_threshold: float = setting(0.3, "box overlap that continues a face's track", above=0.0, below=1.0, panel="Tracking (video)")
    max_missed: int = setting(10, "frames a face may go unseen before its track ends", low=0, high=10_000, panel="Tracking (video)")
    log: str = setting("-", "JSON Lines event log: a file path, or - for stdout", panel="Output")
    log_max_bytes: int = setting(10_000_000, "rotate the log when it reaches this many bytes", low=1000, zero_means="never rotate", panel="Output")
    log_backups: int = setting(5, "rotated logs to keep", low=0, high=1000, panel="Output")
    stats_interval: float = setting(10.0, "seconds between stats records", above=0.0, high=86_400, panel="Output")
    display: bool = setting(False, "show an annotated preview window (needs a desktop session)", panel="Output")
    save_video: str = setting("", 'write the annotated video to this file; "" = none', panel="Output")
    # 12 MP: a phone photo (4032x3024) is read whole; an 8000x8000 scan is decoded at 1/2 scale by the JPEG
    # library and resized, so it takes ~100 MB instead of ~2 GB, which would kill a 1-2 GB Pi.
    max_image_pixels: int = setting(12_000_000, "images: one with more pixels is scaled down to this many when read (memory stays bounded; the record keeps its original size)", low=10_000, high=1_000_000_000, zero_means="never scale down", panel="Source")
    save_images: str = setting("", 'images: write each annotated image and its JSON to this folder; "" = none', panel="Output")
    csv: str = setting("", 'write one row per face (images and video) to this CSV file; "" = none', panel="Output")
    emoji: bool = setting(False, "draw each face's expression as an emoji in annotated output", panel="Output")
    flip_tta: bool | None = setting(None, "average each face with its mirror image (default: as the model's sidecar says, which is how its accuracy was measured; with several models, given for each)", panel="Model")
    balance: float | None = setting(
        None, "class-prior correction tau: 0 = the scores as trained (right for scenes with the training mix, mostly "
        "neutral people), 1 = every expression on an equal footing (default: as the model's sidecar says, "
        "which is how its accuracy was measured; another tau drops the per-class offsets fitted at the sidecar's; with several models, given for each)", low=contract.BALANCE_RANGE[0], high=contract.BALANCE_RANGE[1],
        panel="Model",
    )
    shift_tta: int | None = setting(None, "also average each face shifted this many pixels left, right, up and down: 5x the classifier's cost (default: as the model's sidecar says; 0 = off; with several models, given for each)", low=0, high=contract.SHIFT_TTA_MAX, panel="Model")
    max_frames: int = setting(0, "stop after this many frames (or images)", low=1, zero_means="no limit", panel="Source")
    duration: float = setting(0.0, "stop after this many seconds", above=0.0, high=31_536_000, zero_means="no limit", panel="Source")
    # Fleet: event ids and MQTT (edge/fleet/topics.py, edge/fleet/forwarder.py). A broker login never lives here: it comes from
    # FER_MQTT_USERNAME / FER_MQTT_PASSWORD or the file mqtt_credentials_file names.
    device_id: str = setting("", 'this device\'s name in every event\'s id and in MQTT topics; "" = the host name', panel="Fleet")
    mqtt: str = setting("", 'send events to this MQTT broker: mqtt://host[:1883] or mqtts://host[:8883] (TLS); "" = none', panel="Fleet")
    mqtt_prefix: str = setting("fer-edge", "MQTT topics: PREFIX/DEVICE/track, /image, /stats, /run, /state, /availability", panel="Fleet")
    mqtt_ca_file: str = setting("", 'CA certificate for an mqtts:// broker; "" = the system\'s', panel="Fleet")
    mqtt_credentials_file: str = setting("", 'file of FER_MQTT_USERNAME=... and FER_MQTT_PASSWORD=... lines (chmod 600); "" = those environment variables', panel="Fleet")
    mqtt_discovery: bool = setting(True, "publish Home Assistant MQTT discovery configs", panel="Fleet")
    mqtt_discovery_prefix: str = setting("homeassistant", "Home Assistant's discovery prefix", panel="Fleet")
    # Live view (edge/web/server.py): off unless an address is given. Any address but loopback needs an access token,
    # which never lives here: it comes from FER_WEB_TOKEN or the file web_token_file names.
    web: str = setting("", 'serve the live view (annotated stream, faces, expression timeline, health) at HOST:PORT, e.g. 127.0.0.1:8080; an address other than loopback needs a token; "" = none', panel="Live view")
    web_max_fps: float = setting(5.0, "stream frames per second at most (each encoded once, however many watch)", low=0.5, high=30, panel="Live view")
    web_max_width: int = setting(640, "stream frames are shrunk to this width at most", low=64, high=8192, zero_means="the frame's own width", panel="Live view")
    web_token_file: str = setting("", 'file holding the live view\'s access token (FER_WEB_TOKEN=... or the token alone; chmod 600); "" = the FER_WEB_TOKEN environment variable', panel="Live view")
    loop: bool = setting(False, "video files: start again at the end, until --duration, --max-frames or a stop (a demo that keeps going)", panel="Source")
    realtime: bool = setting(False, "video files: deliver frames no faster than the file's own frame rate, as a camera would (to watch the live view)", panel="Source")

    def __post_init__(self):
        check(self, "run")
        # Rules between fields, in one place.
        if not self.source.strip():
            raise ValueError("--source (run.source) must not be empty")
        if self.lores_width > self.frame_width or self.lores_height > self.frame_height:
            raise ValueError(
                f"--lores-width/--lores-height (run.lores_*) {self.lores_width}x{self.lores_height} must fit in "
                f"--frame-width/--frame-height {self.frame_width}x{self.frame_height}"
            )
        self._check_fleet()
        if self.web:
            from edge.addresses import parse_web_address

            parse_web_address(self.web)

    def _check_fleet(self) -> None:
        from edge.addresses import check_topic_prefix, check_topic_word, parse_broker_url

        if self.device_id:
            check_topic_word(self.device_id, "--device-id (run.device_id)")
        check_topic_prefix(self.mqtt_prefix, "--mqtt-prefix (run.mqtt_prefix)")
        check_topic_prefix(self.mqtt_discovery_prefix, "--mqtt-discovery-prefix (run.mqtt_discovery_prefix)")
        if self.mqtt:
            parse_broker_url(self.mqtt)
            if self.log.strip() in ("", "-"):
                raise ValueError("--mqtt needs --log (run.log) to be a file: the log is the queue events wait in")

    def model_path(self) -> Path:
        return resolve_model(self.model)

    def model_paths(self) -> list[Path]:
        return resolve_models(self.model)

    def source_spec(self) -> str:
        return str(SAMPLE_CLIP) if self.source == "sample" else self.source


# The groups of `run --help` and docs/configuration.md, in order; set after the class so it is no dataclass field.
RunConfig.PANELS = ("Source", "Detection", "Tracking (video)", "Model", "Output", "Live view", "Fleet")


def check_setting(name: str, value) -> None:
    """One run setting's bounds, for a component built without a RunConfig (the same rule as the config)."""
    meta = RunConfig.__dataclass_fields__[name].metadata["setting"]
    if not meta.accepts(value):
        raise ValueError(f"{flag(name)} (run.{name}) must be {meta.bounds_text()}, got {value!r}")


FIELD_NAMES = tuple(f.name for f in fields(RunConfig))


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
    unknown = [key for key in settings if key not in FIELD_NAMES]
    if unknown:
        raise ValueError(f"{path}: unknown key run.{unknown[0]}; known keys: {', '.join(FIELD_NAMES)}")
    try:
        config = RunConfig(**settings)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return replace(config, **(overrides or {}))


def build_config(config_file: str | Path | None, given: dict) -> RunConfig:
    """Defaults, then the config file, then the flags that were given."""
    return load_config(config_file, given) if config_file else RunConfig(**given)


# What deploy/edge.toml (the Pi's config) sets differently from the defaults.
PI_VALUES = {"source": "picamera2", "log": "/home/pi/fer-edge/logs/events.jsonl"}
PI_TOML_HEADER = """fer-edge configuration on the Raspberry Pi, read by `python -m edge run --config edge.toml`.
Generated from edge/config.py by `python -m edge settings --toml > deploy/edge.toml`; a test keeps it so.
install.sh copies this to ~/fer-edge/edge.toml with the home paths rewritten; it never overwrites an
edge.toml you have edited (it writes edge.toml.new next to it instead).
Unknown keys are rejected; command-line options override these values.
An MQTT broker login never goes here: install.sh writes FER_MQTT_USERNAME and FER_MQTT_PASSWORD to
~/fer-edge/mqtt.env (mode 600), which the service reads. Nor does the live view's access token, which goes to
~/fer-edge/web.env (FER_WEB_TOKEN, mode 600)."""


def pi_toml() -> str:
    from edge.settings import toml_document

    return toml_document(RunConfig, "run", PI_TOML_HEADER, PI_VALUES)


def settings_markdown() -> str:
    from edge.settings import markdown_table

    return (
        "# Runtime settings\n\nUse this page to look up any setting of the runtime: its flag, its config-file key, its default "
        "and the values it accepts.\n\nGenerated from `edge/config.py` by `python -m edge settings --markdown > docs/configuration.md`; a test keeps it "
        "current. Each setting is a flag of `python -m edge run` and a key of the `[run]` table of a config file "
        "(`--config`, e.g. [`deploy/edge.toml`](../deploy/edge.toml)); flags override the file. The groups are those "
        "of `python -m edge run --help`; `python -m edge settings` prints the same tables in a terminal.\n\n"
        + markdown_table(RunConfig, "run")
    )
