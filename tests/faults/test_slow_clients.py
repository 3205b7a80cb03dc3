"""Slow and unauthenticated clients against the live view: the runtime must keep running, keep its log and
keep answering /healthz while they try (issue 28, cases 1 and 2; the accept loop at the fd limit)."""

from __future__ import annotations

import errno
import json
import socket
import socketserver
import threading
import time

import pytest
from live_runtime import LiveRuntime, wait_until

from edge.web import server as web_server

TOKEN_ENV = {"FER_WEB_TOKEN": "s3cret-token-for-the-test"}
TRICKLERS = 300
OPEN_FILES = 256  # `ulimit -n 256`: a few hundred connections would exhaust it without a bound


class Tricklers:
    """`count` connections that each send a partial request and then one more header byte every `every_s`,
    reconnecting whenever the server closes one, until stop()."""

    def __init__(self, host: str, port: int, count: int, every_s: float = 1.0):
        self.address, self.count, self.every_s = (host, port), count, every_s
        self.sockets: list[socket.socket | None] = [None] * count
        self.connects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _connect(self) -> socket.socket | None:
        sock = socket.socket()
        sock.settimeout(0.5)
        try:
            sock.connect(self.address)
            sock.sendall(b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        except OSError:
            sock.close()
            return None
        self.connects += 1
        return sock

    def _run(self) -> None:
        while not self._stop.is_set():
            for index in range(self.count):
                sock = self.sockets[index]
                if sock is not None:
                    try:
                        sock.send(b"a")
                        continue
                    except OSError:
                        sock.close()
                self.sockets[index] = self._connect()
                if self._stop.is_set():
                    break
            self._stop.wait(self.every_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        for sock in self.sockets:
            if sock is not None:
                sock.close()


def healthz(live: LiveRuntime) -> int:
    return live.get("/healthz", timeout=5)[0]


@pytest.mark.slow
@pytest.mark.parametrize("env", [{}, TOKEN_ENV], ids=["loopback", "token"])
def test_trickling_clients_under_a_low_fd_limit_do_not_stop_the_run(tmp_path, env):
    """300 connections trickling their headers (with a token set they would only ever get 401) against a
    runtime under `ulimit -n 256` that rotates its log every few records: it keeps running, /healthz answers
    throughout, and at the end its stop record is written."""
    log = tmp_path / "e.jsonl"
    live = LiveRuntime(log, ["--source", "sample", "--realtime", "--loop", "--stats-interval", "1",
                             "--log-max-bytes", "4000", "--log-backups", "3"], env=env, open_files=OPEN_FILES)
    attack = None
    try:
        wait_until(lambda: healthz(live) == 200, 30, "frames arriving")
        attack = Tricklers(live.host, live.port, TRICKLERS)
        wait_until(lambda: attack.connects >= TRICKLERS, 60, "every trickling client connected once")
        answers = []
        for _ in range(8):  # the headers' deadline (5 s) passes, rotations happen, health is asked all along
            answers.append(healthz(live))
            time.sleep(1)
        assert answers == [200] * len(answers)
        assert live.process.poll() is None, "".join(live.stderr)[-3000:]
    finally:
        if attack is not None:
            attack.stop()
        code = live.stop()
    assert code == 0, "".join(live.stderr)[-3000:]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[-1]["event"] == "stop" and records[-1]["reason"] == "signal"
    assert list(tmp_path.glob("e.jsonl.*")), "the log rotated during the attack"


def test_a_request_trickled_byte_by_byte_is_cut_off_at_the_deadline(monkeypatch):
    """The socket timeout is per recv: a byte every 0.2 s would keep a connection for ever. The whole request
    has REQUEST_DEADLINE_S."""
    monkeypatch.setattr(web_server, "REQUEST_DEADLINE_S", 1.0)
    server = web_server.LiveViewServer(("127.0.0.1", 0), web_server.LiveViewHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        sock = socket.create_connection(server.server_address, timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\nX-Slow: ")
        started, closed = time.monotonic(), False
        while time.monotonic() - started < 4:
            try:
                sock.send(b"a")
            except OSError:
                closed = True
                break
            sock.settimeout(0.2)
            try:
                if sock.recv(100) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
        assert closed and time.monotonic() - started < 3
        sock.close()
    finally:
        server.shutdown()
        server.server_close()


def test_connections_beyond_the_bounds_are_closed_at_once(monkeypatch):
    """At most MAX_UNREAD connections sending their request (a new one closes the oldest), at most max_open
    in all (more are closed as accepted): bounded threads and descriptors, and a real request still gets in."""
    monkeypatch.setattr(web_server, "MAX_UNREAD", 4)
    server = web_server.LiveViewServer(("127.0.0.1", 0), web_server.LiveViewHandler)
    server.live_view = type("View", (), {"health": lambda self: (True, "frames arriving")})()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    socks = []
    try:
        for _ in range(20):
            sock = socket.create_connection(server.server_address, timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\n")
            socks.append(sock)
        wait_until(lambda: server.open_connections <= 4, 5, "at most MAX_UNREAD unread connections")
        request = socket.create_connection(server.server_address, timeout=5)
        request.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert request.recv(100).startswith(b"HTTP/1.0 200")
        request.close()
        # it made room by closing the oldest of the 4 unread; once answered, 3 remain
        wait_until(lambda: server.open_connections == 3, 5, "the answered request closed")
        server.max_open = server.open_connections  # full: the next ones are closed as they are accepted
        refused_before = server.refused
        extra = [socket.create_connection(server.server_address, timeout=5) for _ in range(3)]
        socks += extra
        assert [sock.recv(100) for sock in extra] == [b"", b"", b""]
        assert server.refused == refused_before + 3
    finally:
        for sock in socks:
            sock.close()
        server.shutdown()
        server.server_close()


def test_the_accept_loop_backs_off_when_out_of_file_descriptors(monkeypatch):
    """accept() failing with EMFILE leaves the listening socket readable: without a pause serve_forever
    would call it again at once, thousands of times a second."""
    server = web_server.LiveViewServer(("127.0.0.1", 0), web_server.LiveViewHandler)
    calls = []

    def accept_fails(self):
        calls.append(time.monotonic())
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(socketserver.TCPServer, "get_request", accept_fails)  # what LiveViewServer.get_request calls
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        client = socket.create_connection(server.server_address, timeout=5)
        time.sleep(1.0)
        client.close()
    finally:
        server.shutdown()
        server.server_close()
    assert 1 <= len(calls) <= 1.0 / web_server.ACCEPT_BACKOFF_S + 2, len(calls)


def test_the_connection_limit_keeps_a_reserve_under_the_open_file_limit(monkeypatch):
    monkeypatch.setattr(web_server.resource, "getrlimit", lambda which: (256, 256))
    assert web_server.connection_limit(reserve=64) <= 256 - 64
    monkeypatch.setattr(web_server.resource, "getrlimit", lambda which: (100, 100))
    assert 2 <= web_server.connection_limit(reserve=64) < 100 - 64
