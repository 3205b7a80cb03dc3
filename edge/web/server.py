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

import errno
import hashlib
import hmac
import os
import resource
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
from edge.events.log import json_text
from edge.timing import utc_now
from edge.web.access import COOKIE
from edge.web.state import COLOURS, LiveState, RecordFeed, TappedLog, model_summary
from edge.web.stream import Annotate, FrameHub

STATIC = Path(__file__).resolve().parent / "static"  # the page, its script and style
PAGES = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/app.css": ("app.css", "text/css; charset=utf-8")}
MAX_CONNECTIONS = 32  # streams and event feeds open at once; more are refused (memory stays bounded)
MAX_OPEN = 64  # connections of any kind open at once; more are closed as soon as they are accepted
MAX_UNREAD = 16  # connections still sending their request; a new one beyond this closes the oldest of them
REQUEST_DEADLINE_S = 5.0  # the request line and every header must arrive within this, however they trickle in
FD_RESERVE = 64  # file descriptors the web server never takes: the log, its rotation, a camera reopen
ACCEPT_BACKOFF_S = 0.1  # after accept() fails (EMFILE...): wait, rather than spin on a socket that stays readable
SOCKET_TIMEOUT_S = 10.0  # a viewer that takes nothing for this long is dropped
PING_S = 1.0  # an idle event feed sends a keep-alive comment this often
PING_BYTES = 8192  # ... this long, so a viewer that never reads fills its buffers and is dropped (see events())
FEED_SEND_BUFFER = 8192  # the event feed's socket send buffer: small, so a stalled viewer blocks a write soon
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


def connection_limit(reserve: int = FD_RESERVE) -> int:
    """MAX_OPEN, or fewer where the open-file limit is low: the runtime keeps `reserve` descriptors
    for its own files whatever the web server is asked to do."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_OPEN
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 64  # not Linux: a guess at what a running runtime holds
    return max(2, min(MAX_OPEN, soft - in_use - reserve))


class LiveViewServer(ThreadingHTTPServer):
    """Bounded: at most `max_open` connections, at most MAX_UNREAD of them still sending their request,
    each given REQUEST_DEADLINE_S in all for it (a client trickling a byte at a time is cut off, not kept
    alive by every byte as a per-recv timeout would). Connections beyond that are closed at once."""

    daemon_threads = True  # a stalled viewer never keeps the runtime from exiting
    allow_reuse_address = True
    request_queue_size = 16
    live_view: LiveView

    def __init__(self, address, handler):
        self.max_open = connection_limit()
        self._connections: dict[socket.socket, float | None] = {}  # open socket -> request deadline (None once read)
        self._connections_lock = threading.Lock()
        self.refused = 0  # connections closed at once, over a limit
        super().__init__(address, handler)

    def handle_error(self, request, client_address) -> None:
        pass  # a viewer that went away is not an error worth a traceback in the journal

    def get_request(self):
        try:
            return super().get_request()
        except OSError as error:
            if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                time.sleep(ACCEPT_BACKOFF_S)  # the listening socket stays readable: without a pause this spins
            raise

    def verify_request(self, request, client_address) -> bool:
        """Admit a connection within the limits (False closes it at once, before any thread or read)."""
        now = time.monotonic()
        with self._connections_lock:
            if len(self._connections) >= self.max_open:
                self.refused += 1
                return False
            unread = sorted((deadline, sock) for sock, deadline in self._connections.items() if deadline is not None)
            if len(unread) >= MAX_UNREAD:  # the slowest sender makes room: a real request arrives in one go
                self._cut(unread[0][1])
                self.refused += 1
            self._connections[request] = now + REQUEST_DEADLINE_S
        return True

    def request_read(self, request) -> None:
        with self._connections_lock:
            if request in self._connections:
                self._connections[request] = None

    def service_actions(self) -> None:
        """Every poll of serve_forever (0.2 s): cut connections whose request is past its deadline."""
        super().service_actions()
        now = time.monotonic()
        with self._connections_lock:
            for sock, deadline in list(self._connections.items()):
                if deadline is not None and now > deadline:
                    self._cut(sock)

    def _cut(self, sock: socket.socket) -> None:
        """End a connection's reads from another thread: its handler's recv returns at once, empty."""
        self._connections[sock] = None  # its handler's thread closes it
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def shutdown_request(self, request) -> None:
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    @property
    def open_connections(self) -> int:
        return len(self._connections)


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

    def parse_request(self) -> bool:
        ok = super().parse_request()
        self.server.request_read(self.connection)  # the request is in (or refused): its deadline no longer applies
        return ok

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
        if url.path in ("/stream.mjpg", "/events") and head:
            kind = "multipart/x-mixed-replace; boundary=frame" if url.path == "/stream.mjpg" else "text/event-stream; charset=utf-8"
            return self.send_body(b"", kind, HTTPStatus.OK, head=True)
        if url.path in ("/stream.mjpg", "/events"):
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
            if not is_loopback(host_name(self.headers.get("Host") or "")):
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
        scheme, _, credentials = (self.headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), view.token.encode()):
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
        self.send_body(json_text(value).encode(), "application/json", status, head)

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
        """Server-Sent Events: each record the log writes from now on, as the same JSON line, id = its seq.

        A viewer that never reads must not hold its place for ever, but a feed sends little, so its socket
        buffers would take hours to fill and no write would ever block. So the send buffer is small, an idle
        feed sends a padded keep-alive comment every PING_S, and a write that cannot finish within
        SOCKET_TIMEOUT_S (the progress deadline) drops the viewer: one that never reads is gone within
        about 20 s (its receive buffer, ~100 KB on Linux, fills first). A browser reads them and moves on."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, FEED_SEND_BUFFER)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"retry: 2000\n\n")
        self.wfile.flush()
        ping = b": still here" + b" " * (PING_BYTES - 14) + b"\n\n"
        position, pinged = view.feed.position, time.monotonic()
        while not view.feed.closed:
            position, records = view.feed.after(position, timeout=PING_S)
            for record in records:
                self.wfile.write(f"id: {record.get('seq', '')}\ndata: {json_text(record)}\n\n".encode())
            if time.monotonic() - pinged >= PING_S:  # keeps proxies and the browser from timing out, and tests progress
                self.wfile.write(ping)
                pinged = time.monotonic()
            self.wfile.flush()


def host_name(host: str) -> str:
    """The name in a Host header, without its port: "[::1]:8080" and "[::1]" -> "::1", "pi:8080" -> "pi"."""
    host = host.strip()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name if rest == "" or (rest.startswith(":") and rest[1:].isdigit()) else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def open_live_view(config, model, annotate: Annotate, token: str) -> LiveView | None:
    """The live view --web asks for, listening, with the token web_token(config) gave; None without --web."""
    if not config.web:
        return None
    return LiveView(config, model, annotate, token).start()
