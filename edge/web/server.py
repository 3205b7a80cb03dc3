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

import hashlib
import hmac
import json
import socket
import sys
import threading
import time
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

from edge.addresses import is_loopback, parse_web_address
from edge.events.log import json_default
from edge.timing import utc_now
from edge.web.access import COOKIE
from edge.web.state import COLOURS, LiveState, RecordFeed, TappedLog, model_summary
from edge.web.stream import Annotate, FrameHub

STATIC = Path(__file__).resolve().parent / "static"  # the page, its script and style
PAGES = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/app.css": ("app.css", "text/css; charset=utf-8")}
MAX_CONNECTIONS = 32  # streams and event feeds open at once; more are refused (memory stays bounded)
SOCKET_TIMEOUT_S = 10.0  # a viewer that takes nothing for this long is dropped
STALE_S = 5.0  # /healthz: no frame for this long means the source is not delivering
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}


# -- frames --------------------------------------------------------------------------------------------


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
            return self.send_body((STATIC / name).read_bytes(), kind, HTTPStatus.OK, head)
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
        self.send_body(json.dumps(value, default=json_default).encode(), "application/json", status, head)

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
                line = json.dumps(record, separators=(",", ":"), default=json_default)
                self.wfile.write(f"id: {record.get('seq', '')}\ndata: {line}\n\n".encode())
            self.wfile.flush()


def open_live_view(config, model, annotate: Annotate, token: str) -> LiveView | None:
    """The live view --web asks for, listening, with the token web_token(config) gave; None without --web."""
    if not config.web:
        return None
    return LiveView(config, model, annotate, token).start()
