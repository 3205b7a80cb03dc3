"""A real runtime with the live view, in a process of its own, and small HTTP clients for it (MJPEG parts,
Server-Sent Events). Shared by tests/edge/web/test_server.py, the browser test and scripts/bench_web.py."""

from __future__ import annotations

import http.client
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from mqtt_broker import wait_until  # noqa: F401  (the suite's one polling helper; the live-view tests import it from here)

ROOT = Path(__file__).resolve().parents[1]
URL_LINE = re.compile(r"live view: (http://\S+/)")


class LiveRuntime:
    """`python -m edge run --web ... ARGS` until stop(); `url` is where its live view listens."""

    def __init__(self, log: Path, args: list[str], env: dict | None = None, web: str = "127.0.0.1:0", timeout: float = 90,
                 open_files: int | None = None):
        self.log = log
        environment = {**os.environ, **(env or {})}
        environment.pop("PYTHONPATH", None)
        command = [sys.executable, "-m", "edge", "run", "--web", web, "--log", str(log), *args]
        def limit_open_files() -> None:  # `ulimit -n open_files` for the runtime alone
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        self.process = subprocess.Popen(command, cwd=ROOT, env=environment, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                        preexec_fn=limit_open_files if open_files else None)
        self.stderr: list[str] = []
        found = threading.Event()
        self.url = ""

        def drain() -> None:
            for line in self.process.stderr:
                self.stderr.append(line)
                match = URL_LINE.search(line)
                if match and not found.is_set():
                    self.url = match.group(1)
                    found.set()
            found.set()

        threading.Thread(target=drain, daemon=True).start()
        if not found.wait(timeout) or not self.url:
            self.stop()
            raise AssertionError("the runtime did not start its live view:\n" + "".join(self.stderr)[-3000:])
        parts = self.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        self.host, self.port = "127.0.0.1" if parts[0] in ("0.0.0.0", "::") else parts[0], int(parts[1])
        self.base = f"http://{self.host}:{self.port}"

    def connection(self, timeout: float = 10) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def get(self, path: str, headers: dict | None = None, timeout: float = 10) -> tuple[int, dict, bytes]:
        connection = self.connection(timeout)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def state(self, headers: dict | None = None) -> dict:
        status, _, body = self.get("/api/state", headers)
        assert status == 200, body
        return json.loads(body)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def records(self) -> list[dict]:
        text = self.log.read_text()
        return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]  # whole lines only

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def read_mjpeg_parts(response, count: int) -> list[bytes]:
    """`count` JPEG parts of a multipart/x-mixed-replace response, by their Content-Length."""
    boundary = response.getheader("Content-Type").split("boundary=", 1)[1].encode()
    parts = []
    while len(parts) < count:
        line = response.fp.readline()
        if not line:
            raise AssertionError("the stream ended")
        if line.strip() != b"--" + boundary:
            continue
        headers = {}
        while (header := response.fp.readline().strip()):
            name, _, value = header.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg", headers
        parts.append(response.fp.read(int(headers["content-length"])))
    return parts


def read_events(response, until, timeout: float) -> list[str]:
    """`data:` payloads of an event stream until until(payloads) is true; AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    payloads: list[str] = []
    while time.monotonic() < deadline:
        line = response.fp.readline()
        if not line:
            break
        if line.startswith(b"data: "):
            payloads.append(line[6:].rstrip(b"\r\n").decode())
            if until(payloads):
                return payloads
    raise AssertionError(f"no matching event within {timeout} s; got {payloads[-5:]}")


def stalled_client(host: str, port: int, path: str = "/stream.mjpg") -> socket.socket:
    """Asks for the stream and never reads a byte of it (its receive buffer kept small)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return sock
