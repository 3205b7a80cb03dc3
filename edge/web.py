"""The live view (`edge run --web HOST:PORT`): a page with the annotated stream, the faces in view, an
expression timeline and the run's health, served while the runtime runs.

The standard library's ThreadingHTTPServer in daemon threads: nothing more for a Pi to install, and a
handful of viewers is all a camera on a Pi ever has. It costs the frame loop nothing while nobody watches:
the loop hands a frame to the `FrameHub` only while a stream is open and a frame is due (web_max_fps);
one encoder thread draws and encodes it once for every viewer, and each viewer takes the latest JPEG when
it is ready for one, so a slow or stalled viewer skips frames and never holds the loop. Records reach the
page as the log writes them (`TappedLog`). Nothing is written to disk.

Endpoints: / (the page, /app.js, /app.css), /stream.mjpg, /events (Server-Sent Events: the log's records),
/api/state (JSON), /healthz (200 while frames arrive, 503 once the source is lost; no token needed).
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import ipaddress
import json
import os
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from edge.annotate import PALETTE
from edge.eventlog import _json_default
from edge.events import utc_now
from edge.paths import read_secret_file, warn_if_others_can_read

TOKEN_ENV = "FER_WEB_TOKEN"
MIN_TOKEN_LENGTH = 16
COOKIE = "fer_edge_view"
ASSETS = Path(__file__).resolve().parent / "assets" / "web"
PAGES = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/app.css": ("app.css", "text/css; charset=utf-8")}
MAX_CONNECTIONS = 32  # streams and event feeds open at once; more are refused (memory stays bounded)
SOCKET_TIMEOUT_S = 10.0  # a viewer that takes nothing for this long is dropped
STALE_S = 5.0  # /healthz: no frame for this long means the source is not delivering
TIMELINE_MINUTES = 30
RECENT_EVENTS = 50
FEED_RECORDS = 1000  # records kept for the event feeds; a viewer further behind skips ahead
JPEG_QUALITY = 80
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}
COLOURS = {label: "#{2:02x}{1:02x}{0:02x}".format(*bgr) for label, bgr in PALETTE.items()}  # the video's colours


# -- address and token ---------------------------------------------------------------------------------
def parse_web_address(text: str) -> tuple[str, int]:
    """HOST:PORT or [IPv6]:PORT -> (host, port); port 0 picks a free one. ValueError names --web."""
    value = text.strip()
    host, sep, port = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or int(port) > 65535 or any(c in host for c in "/@?#[] "):
        raise ValueError(f"--web (run.web) {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
    if ":" in host or bracketed:
        try:
            if not bracketed:
                raise ValueError
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"--web (run.web) {text!r}: an IPv6 address goes in brackets, e.g. [::1]:8080") from None
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Only loopback addresses (and the name localhost) count: any other name may reach the network."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token_file(path: str | Path) -> str:
    """The token alone, or a FER_WEB_TOKEN=... line (the systemd EnvironmentFile format)."""
    path = Path(path)
    text = read_secret_file(path, "web_token_file")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    named = [line.partition("=")[2].strip().strip("'\"") for line in lines if line.partition("=")[0].strip() == TOKEN_ENV]
    if named:
        token = named[-1]
    elif len(lines) == 1 and "=" not in lines[0]:
        token = lines[0]
    else:
        raise ValueError(f"web_token_file {path}: expected the token alone on one line, or a {TOKEN_ENV}=... line")
    warn_if_others_can_read(path)
    return token


def web_token(config, environ=None) -> str:
    """The live view's token: FER_WEB_TOKEN, else the file web_token_file names; "" when neither. An address
    other than loopback without one is refused: the page shows what the camera sees."""
    environ = os.environ if environ is None else environ
    token = environ.get(TOKEN_ENV, "").strip()
    source = TOKEN_ENV
    if not token and config.web_token_file:
        token, source = read_token_file(config.web_token_file), f"web_token_file {config.web_token_file}"
    if token and len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"--web {config.web}: {source}: the live view's token must be at least {MIN_TOKEN_LENGTH} characters "
            "(make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    host, _ = parse_web_address(config.web)
    if not token and not is_loopback(host):
        raise ValueError(
            f"--web {config.web}: serving the camera on an address other than loopback needs an access token; set "
            f"{TOKEN_ENV} or --web-token-file (run.web_token_file), or bind 127.0.0.1 and reach it with "
            "`ssh -L 8080:127.0.0.1:8080 pi@HOST`"
        )
    return token


# -- what the page shows -------------------------------------------------------------------------------
def model_summary(model) -> dict:
    """Name, label set and the accuracy convert measured, and whether the sidecar's digest verified it."""
    sidecar = model.sidecar
    return {
        "name": model.path.stem, "sha256": sidecar.get("sha256"), "interpreter": model.interpreter_name,
        "trained_on": sidecar.get("trained_on"), "accuracy": sidecar.get("accuracy") or {},
        "accuracy_judged_by": sidecar.get("accuracy_judged_by") or sidecar.get("trained_on"),
        "balanced_accuracy": sidecar.get("balanced_accuracy") or {}, "balance": model.balance,
        "verified": bool(model.sidecar_verified),
    }


class LiveState:
    """What the page shows, rebuilt from the records as they are written: faces in view, tracks started per
    label, faces per label per minute over the last 30 minutes, recent events and the latest stats."""

    def __init__(self, labels: Sequence[str], model: dict, clock: Callable[[], float] = time.time):
        self.labels, self.model, self._clock = tuple(labels), model, clock
        self._lock = threading.Lock()
        self.started = clock()
        self.tracks: dict[int, dict] = {}
        self.started_by_label: Counter = Counter()
        self.minutes: collections.OrderedDict[int, dict[str, set[int]]] = collections.OrderedDict()
        self.recent: collections.deque = collections.deque(maxlen=RECENT_EVENTS)
        self.stats: dict = {}
        self.dropped_total = 0
        self.source = ""
        self.seq = 0
        self.lost: str | None = None

    def apply(self, record: dict) -> None:
        with self._lock:
            self.seq = record.get("seq", self.seq + 1)
            event = record.get("event")
            if event in ("new", "update", "end"):
                self._track(event, record)
            elif event == "stats":
                self.stats = record
                self.dropped_total += int(record.get("dropped") or 0)
            elif event == "start":
                self.source, self.lost = str(record.get("source", "")), None
            elif event == "source_lost":
                self.lost = str(record.get("error", "source lost"))
                self.tracks.clear()
            elif event == "source_gap":
                self.lost = None
            self._count_open_tracks()
            if event != "stats":  # stats are health, not an event to list
                self.recent.append(record)

    def _track(self, event: str, record: dict) -> None:
        track = record.get("track")
        if event == "end":
            self.tracks.pop(track, None)
            return
        self.tracks[track] = {key: record.get(key) for key in ("track", "label", "score", "scores", "box")}
        if event == "new":
            self.started_by_label[str(record.get("label"))] += 1

    def _count_open_tracks(self) -> None:
        """Every face in view counts in this minute under its label; records (stats every stats_interval
        at least) call this, so a face that stays in view without events still counts each minute."""
        minute = int(self._clock() // 60)
        bucket = self.minutes.setdefault(minute, {})
        for face in self.tracks.values():
            bucket.setdefault(str(face["label"]), set()).add(face["track"])
        while self.minutes and next(iter(self.minutes)) <= minute - TIMELINE_MINUTES:
            self.minutes.popitem(last=False)

    def timeline(self) -> list[dict]:
        """One entry per minute of the last 30, oldest first: {minute (ISO UTC), counts {label: faces}}."""
        now = int(self._clock() // 60)
        entries = []
        for minute in range(now - TIMELINE_MINUTES + 1, now + 1):
            counts = {label: len(tracks) for label, tracks in self.minutes.get(minute, {}).items()}
            entries.append({"minute": datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%MZ"), "counts": counts})
        return entries

    def snapshot(self) -> dict:
        with self._lock:
            self._count_open_tracks()
            faces = sorted(self.tracks.values(), key=lambda face: face["track"])
            return {
                "seq": self.seq, "source": self.source, "labels": list(self.labels), "model": self.model,
                "uptime_s": round(self._clock() - self.started, 1),
                "faces": faces,
                "faces_by_label": dict(Counter(str(face["label"]) for face in faces)),
                "tracks_by_label": dict(self.started_by_label),
                "timeline": self.timeline(),
                "events": list(self.recent)[::-1],  # the deque holds the RECENT_EVENTS latest
                "stats": self.stats, "dropped_total": self.dropped_total, "source_lost": self.lost,
            }


class RecordFeed:
    """The records for /events: one bounded buffer shared by every listener, each keeping its own place."""

    def __init__(self, size: int = FEED_RECORDS):
        self._records: collections.deque[tuple[int, dict]] = collections.deque(maxlen=size)
        self._count = 0
        self._changed = threading.Condition()
        self.closed = False

    def append(self, record: dict) -> None:
        with self._changed:
            self._count += 1
            self._records.append((self._count, record))
            self._changed.notify_all()

    @property
    def position(self) -> int:
        return self._count

    def after(self, position: int, timeout: float) -> tuple[int, list[dict]]:
        """Records written after `position` (waits up to timeout for one), and the new position."""
        with self._changed:
            self._changed.wait_for(lambda: self._count > position or self.closed, timeout)
            fresh = [record for number, record in self._records if number > position]
            return self._count, fresh

    def close(self) -> None:
        with self._changed:
            self.closed = True
            self._changed.notify_all()


class TappedLog:
    """The run's log, plus a listener told of each record once the log has written it (same dict, same ids)."""

    def __init__(self, log, listener: Callable[[dict], None]):
        self.log, self.listener = log, listener

    @property
    def path(self):
        return self.log.path

    def write(self, record: dict) -> None:
        self.log.write(record)
        self.listener(record)

    def close(self) -> None:
        self.log.close()


# -- frames --------------------------------------------------------------------------------------------
Annotate = Callable[[np.ndarray, Sequence], tuple[np.ndarray, list]]


class FrameHub:
    """The latest annotated JPEG for every viewer. The loop asks `wants_frame` (a comparison, no work) and
    `offer`s a frame only while someone watches and one is due; the encoder thread annotates, shrinks and
    encodes it once. Viewers wait in `next_jpeg` for a newer one than they sent last: a slow one skips."""

    def __init__(self, annotate: Annotate, max_fps: float, max_width: int):
        self.annotate, self.interval, self.max_width = annotate, 1.0 / max_fps, max_width
        self._changed = threading.Condition()
        self._pending: tuple[np.ndarray, Sequence] | None = None
        self._jpeg: bytes | None = None
        self._jpeg_number = 0
        self._next_due = 0.0
        self.viewers = 0
        self.closed = False
        self.encoded = 0
        self.last_frame_at: float | None = None
        self._fps_window: collections.deque[float] = collections.deque(maxlen=64)
        self._encoder = threading.Thread(target=self._encode_loop, name="fer-edge-live-view-encoder", daemon=True)
        self._encoder.start()

    def frame_seen(self, now: float) -> None:
        """Every frame the loop processes (for /healthz and the live FPS): two stores and an append."""
        self.last_frame_at = now
        self._fps_window.append(now)

    def wants_frame(self, now: float) -> bool:
        return self.viewers > 0 and now >= self._next_due

    def offer(self, image: np.ndarray, faces: Sequence, now: float) -> None:
        """The frame to stream next (a reference, not a copy: the loop does not change it afterwards)."""
        with self._changed:
            self._pending = (image, faces)
            self._next_due = now + self.interval
            self._changed.notify_all()

    def fps(self) -> float:
        times = list(self._fps_window)
        return round((len(times) - 1) / (times[-1] - times[0]), 2) if len(times) > 1 and times[-1] > times[0] else 0.0

    @contextmanager
    def viewer(self) -> Iterator[None]:
        with self._changed:
            self.viewers += 1
        try:
            yield
        finally:
            with self._changed:
                self.viewers -= 1
                if not self.viewers:
                    self._jpeg = None  # nobody watches: nothing kept

    def next_jpeg(self, after: int, timeout: float) -> tuple[int, bytes | None]:
        """A JPEG newer than number `after` (waits up to timeout): (its number, bytes), or (after, None)."""
        with self._changed:
            self._changed.wait_for(lambda: self._jpeg_number > after and self._jpeg is not None or self.closed, timeout)
            if self._jpeg is None or self._jpeg_number <= after:
                return after, None
            return self._jpeg_number, self._jpeg

    def _encode_loop(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending is not None or self.closed)
                if self.closed:
                    return
                (image, faces), self._pending = self._pending, None
            jpeg = self.encode(image, faces)
            with self._changed:
                if self.viewers:
                    self._jpeg, self._jpeg_number = jpeg, self._jpeg_number + 1
                    self.encoded += 1
                    self._changed.notify_all()

    def encode(self, image: np.ndarray, faces: Sequence) -> bytes:
        canvas, _ = self.annotate(image, faces)
        height, width = canvas.shape[:2]
        if self.max_width and width > self.max_width:
            canvas = cv2.resize(canvas, (self.max_width, round(height * self.max_width / width)), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError("live view: OpenCV could not encode a JPEG")
        return data.tobytes()

    def close(self) -> None:
        with self._changed:
            self.closed = True
            self._pending = self._jpeg = None
            self._changed.notify_all()
        self._encoder.join(timeout=5)


# -- the server ----------------------------------------------------------------------------------------
class LiveView:
    """Everything `--web` runs: state, feed, frame hub and the HTTP server in its threads."""

    def __init__(self, config, model, annotate: Annotate, token: str = ""):
        host, port = parse_web_address(config.web)
        self.state = LiveState(model.labels, model_summary(model))
        self.feed = RecordFeed()
        self.hub = FrameHub(annotate, config.web_max_fps, config.web_max_width)
        self.token = token
        self.cookie = hmac.new(token.encode(), b"fer-edge live view cookie", hashlib.sha256).hexdigest() if token else ""
        self.connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.loopback_only = is_loopback(host) and not token
        server_class = IPv6Server if ":" in host else LiveViewServer
        try:
            self.server = server_class((host, port), LiveViewHandler)
        except OSError as error:
            self.hub.close()
            raise ValueError(f"--web {config.web}: cannot listen there ({error.strerror or error})") from None
        self.server.live_view = self
        self.host, self.port = host, self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="fer-edge-live-view", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> LiveView:
        self._thread.start()
        sys.stderr.write(f"live view: {self.url}" + (" (token required)" if self.token else "") + "\n")
        return self

    def record(self, record: dict) -> None:
        """A record the log has written: to the page's state and to every event feed."""
        self.state.apply(record)
        self.feed.append(record)

    def tap(self, log) -> TappedLog:
        return TappedLog(log, self.record)

    def frame(self, image: np.ndarray | None, faces: Sequence, now: float) -> None:
        """Called by the loop for every frame: costs two comparisons unless a stream is open and a frame due."""
        self.hub.frame_seen(now)
        if self.hub.wants_frame(now) and image is not None:
            self.hub.offer(image, faces, now)

    def health(self) -> tuple[bool, str]:
        if self.hub.closed:
            return False, "the runtime is stopping"
        if self.state.lost is not None:
            return False, f"source lost: {self.state.lost}"
        last = self.hub.last_frame_at
        if last is None:
            return False, "no frame yet"
        age = time.monotonic() - last
        if age > STALE_S:
            return False, f"no frame for {age:.0f} s"
        return True, "frames arriving"

    def api_state(self) -> dict:
        ok, why = self.health()
        state = self.state.snapshot()
        state.update(time=utc_now(), healthy=ok, colours=COLOURS, health=why, processing_fps=self.hub.fps(), viewers=self.hub.viewers,
                     stream={"max_fps": round(1.0 / self.hub.interval, 2), "max_width": self.hub.max_width, "encoded": self.hub.encoded})
        return state

    def close(self) -> None:
        self.hub.close()
        self.feed.close()
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()


class LiveViewServer(ThreadingHTTPServer):
    daemon_threads = True  # a stalled viewer never keeps the runtime from exiting
    allow_reuse_address = True
    request_queue_size = 16
    live_view: LiveView

    def handle_error(self, request, client_address) -> None:
        pass  # a viewer that went away is not an error worth a traceback in the journal


class IPv6Server(LiveViewServer):
    address_family = socket.AF_INET6


class LiveViewHandler(BaseHTTPRequestHandler):
    server_version = "fer-edge"
    sys_version = ""
    timeout = SOCKET_TIMEOUT_S
    server: LiveViewServer

    def log_message(self, format, *args) -> None:
        pass  # requests are not logged: a ?token= query must never reach the journal

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def do_GET(self, head: bool = False) -> None:
        view = self.server.live_view
        url = urlsplit(self.path)
        if url.path == "/healthz":  # for a watchdog or uptime check: says only whether frames arrive
            ok, why = view.health()
            return self.send_json({"ok": ok, "health": why}, HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, head)
        if not self.allowed(view, url):
            return
        if url.path in PAGES:
            name, kind = PAGES[url.path]
            return self.send_body((ASSETS / name).read_bytes(), kind, HTTPStatus.OK, head)
        if url.path == "/favicon.ico":  # browsers ask for one; there is none
            return self.send_body(b"", "image/x-icon", HTTPStatus.NO_CONTENT, head=True)
        if url.path == "/api/state":
            return self.send_json(view.api_state(), HTTPStatus.OK, head)
        if url.path in ("/stream.mjpg", "/events") and not head:
            if not view.connections.acquire(blocking=False):
                return self.send_text(HTTPStatus.SERVICE_UNAVAILABLE, "too many viewers")
            try:
                self.stream(view) if url.path == "/stream.mjpg" else self.events(view)
            except (OSError, ValueError):  # the viewer went away, or stalled past the socket timeout
                pass
            finally:
                view.connections.release()
            return
        self.send_text(HTTPStatus.NOT_FOUND, "not found")

    # access
    def allowed(self, view: LiveView, url) -> bool:
        """Loopback without a token: only requests naming a loopback host (a page elsewhere cannot reach it
        by pointing a name at 127.0.0.1). With a token: the Bearer header, the cookie, or ?token= once."""
        if not view.token:
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
            if not is_loopback(host):
                self.send_text(HTTPStatus.FORBIDDEN, "live view: a loopback address only (reach it with ssh -L)")
                return False
            return True
        given = parse_qs(url.query).get("token", [""])[0]
        if given and hmac.compare_digest(given.encode(), view.token.encode()):
            if url.path == "/":  # the cookie takes over; the token leaves the address bar and the history
                self.send_response(HTTPStatus.SEE_OTHER)
                self.set_cookie(view)
                self.send_header("Location", "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return False
            return True
        header = self.headers.get("Authorization") or ""
        if header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), view.token.encode()):
            return True
        if hmac.compare_digest(self.cookie_value().encode(), view.cookie.encode()):
            return True
        self.send_response(HTTPStatus.UNAUTHORIZED)
        self.send_header("WWW-Authenticate", 'Bearer realm="fer-edge live view"')
        body = b"live view: a token is needed (open /?token=... once, or send Authorization: Bearer ...)\n"
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return False

    def cookie_value(self) -> str:
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value
        return ""

    def set_cookie(self, view: LiveView) -> None:
        self.send_header("Set-Cookie", f"{COOKIE}={view.cookie}; HttpOnly; SameSite=Strict; Path=/")

    # responses
    def send_body(self, body: bytes, kind: str, status: HTTPStatus, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def send_json(self, value: dict, status: HTTPStatus, head: bool = False) -> None:
        self.send_body(json.dumps(value, default=_json_default).encode(), "application/json", status, head)

    def send_text(self, status: HTTPStatus, text: str) -> None:
        self.send_body((text + "\n").encode(), "text/plain; charset=utf-8", status)

    def stream(self, view: LiveView) -> None:
        """MJPEG: one part per encoded frame, the newest each time this viewer is ready for one."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.send_header("Connection", "close")
        self.end_headers()
        number = 0
        with view.hub.viewer():
            while not view.hub.closed:
                number, jpeg = view.hub.next_jpeg(number, timeout=1.0)
                if jpeg is not None:
                    head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                    self.wfile.write(head + jpeg + b"\r\n")
                    self.wfile.flush()

    def events(self, view: LiveView) -> None:
        """Server-Sent Events: each record the log writes from now on, as the same JSON line, id = its seq."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"retry: 2000\n\n")
        self.wfile.flush()
        position = view.feed.position
        while not view.feed.closed:
            position, records = view.feed.after(position, timeout=15.0)
            if not records:
                self.wfile.write(b": still here\n\n")  # keeps proxies and the browser from timing out
            for record in records:
                line = json.dumps(record, separators=(",", ":"), default=_json_default)
                self.wfile.write(f"id: {record.get('seq', '')}\ndata: {line}\n\n".encode())
            self.wfile.flush()


def open_live_view(config, model, annotate: Annotate, token: str) -> LiveView | None:
    """The live view --web asks for, listening, with the token web_token(config) gave; None without --web."""
    if not config.web:
        return None
    return LiveView(config, model, annotate, token).start()
