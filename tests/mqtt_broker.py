"""A real mosquitto on 127.0.0.1 for the MQTT tests, and a subscriber that records what arrives."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if os.path.exists(p)), None)
needs_mosquitto = pytest.mark.skipif(
    MOSQUITTO is None or shutil.which("mosquitto_passwd") is None,
    reason="mosquitto is not installed (Debian: apt-get install -y mosquitto; .ci/run does it)",
)
paho = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (pip install -e '.[mqtt]')")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Broker:
    """mosquitto with a config of our own: loopback only, optional password file, persistence in the folder."""

    def __init__(self, folder: Path, users: dict[str, str] | None = None, tls: tuple[Path, Path, Path] | None = None):
        self.folder, self.port, self.tls = folder, free_port(), tls is not None
        self.process: subprocess.Popen | None = None
        lines = [f"listener {self.port} 127.0.0.1", f"persistence_location {folder}/", "persistence true",
                 "log_dest stderr", "log_type error", "max_queued_messages 0",
                 f"user {getpass.getuser()}"]  # as root, mosquitto would switch to a user who cannot read tmp_path
        if users:
            password_file = folder / "passwords"
            password_file.write_text("")
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(password_file), user, password], check=True, timeout=30)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        if tls:  # (CA certificate, server certificate, server key)
            lines += [f"cafile {tls[0]}", f"certfile {tls[1]}", f"keyfile {tls[2]}"]
        self.config = folder / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self) -> Broker:
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(self._accepting, 10, f"mosquitto on port {self.port}")
        return self

    def _accepting(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"mosquitto exited: {self.process.stderr.read().decode(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def save(self) -> None:
        """Have mosquitto write its persistence file now (SIGUSR1), so a kill keeps the sessions it had."""
        database = self.folder / "mosquitto.db"
        before = database.stat().st_mtime_ns if database.exists() else 0
        self.process.send_signal(signal.SIGUSR1)
        wait_until(lambda: database.exists() and database.stat().st_mtime_ns != before, 10, "mosquitto to save its sessions")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


class Subscriber:
    """Records (topic, payload, retained) of everything under `topic`; a persistent session (fixed client id,
    clean_session off) so messages published while it reconnects after a broker restart are kept for it."""

    def __init__(self, broker: Broker, topic: str = "#", username: str = "", password: str = ""):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        client_id = f"test-sub-{free_port()}"
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(0.05, 0.2)
        self.topic = topic
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(self.topic, qos=1)
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port, keepalive=5)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise AssertionError("the test subscriber did not get its subscription")

    def _on_message(self, client, userdata, message) -> None:
        with self.lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def on(self, suffix: str) -> list[bytes]:
        with self.lock:
            return [payload for topic, payload, _ in self.messages if topic.endswith(suffix)]

    def topics(self) -> list[str]:
        with self.lock:
            return [topic for topic, _, _ in self.messages]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    ca_key, ca, key, request, cert = (folder / name for name in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2", "-subj", "/CN=fer-edge test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(request), "-subj", "/CN=127.0.0.1")
    extensions = folder / "san.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(cert),
        "-days", "2", "-extfile", str(extensions))
    return ca, cert, key
