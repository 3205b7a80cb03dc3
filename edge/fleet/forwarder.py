"""Events to an MQTT broker, store-and-forward: the event log is the queue, a cursor says what was delivered.

The forwarder tails the log (rotated backups included, oldest first), publishes each line with QoS 1 as
it is, and persists the position of the last line the broker acknowledged. Events written while the
broker is down, or before a crash, go out when it is back, in order; a restart resumes at the cursor, so
each event arrives at least once and a repeat carries the same (device, run, seq). Lines rotated away
before they could be sent are counted from the gaps in the sequence numbers and reported.

paho-mqtt (the `mqtt` extra) is imported only when a broker is used.
"""

from __future__ import annotations

import collections
import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from edge.events.records import record_key
from edge.events.tail import LogTail, Position
from edge.fleet.broker import WINDOW, BrokerSettings, broker_settings, new_client, reason_text
from edge.fleet.topics import OFFLINE, ONLINE, DeviceState, SequencedLog, Topics, default_device_id, discovery_configs

CURSOR_EVERY_S = 0.5  # the cursor is written at most this often (and when caught up, and at stop)
STATUS_EVERY_S = 2.0
BACKOFF_S = (0.5, 30.0)  # reconnect delay: first, then doubling up to the last
REPEAT_EVERY_S = 60.0  # the same problem is said at most this often, with a count of the repeats


class RepeatLimiter:
    """Says each kind of problem at most once a minute, with how often it happened in between: a full
    disk would otherwise print one line per attempt (hundreds a second) and flood the journal."""

    def __init__(self, report: Callable[[str], None], every_s: float = REPEAT_EVERY_S, clock: Callable[[], float] = time.monotonic):
        self.report, self.every_s, self.clock = report, every_s, clock
        self._said: dict[str, float] = {}  # kind -> when it was last said
        self._unsaid: dict[str, tuple[int, str]] = {}  # kind -> (repeats since, the latest message)

    def __call__(self, kind: str, message: str) -> None:
        now = self.clock()
        said = self._said.get(kind)
        if said is not None and now - said < self.every_s:
            repeats, _ = self._unsaid.get(kind, (0, message))
            self._unsaid[kind] = (repeats + 1, message)
            return
        repeats, _ = self._unsaid.pop(kind, (0, message))
        self._said[kind] = now
        self.report(message + (f" (and {repeats} more times in the last {now - said:.0f} s)" if repeats else ""))

    def flush(self) -> None:
        """What was not said yet (at stop): the latest message of each kind, with its count."""
        for kind, (repeats, message) in list(self._unsaid.items()):
            self.report(f"{message} ({repeats} more times since it was last said)")
            del self._unsaid[kind]


class Cursor:
    """The last acknowledged position, in a small JSON file replaced atomically (write, fsync, rename).
    A lock file keeps a second forwarder off the same log."""

    def __init__(self, path: Path):
        self.path = path
        self._lock_file = None

    def lock(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.path.with_name(self.path.name + ".lock"), "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise ValueError(f"another forwarder is already sending {self.path.parent} (lock {self.path}.lock)") from None

    def unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def load(self) -> tuple[Position | None, str]:
        try:
            return Position.from_json(json.loads(self.path.read_text())), ""
        except FileNotFoundError:
            return None, ""
        except (OSError, ValueError, RecursionError) as error:  # not JSON, or JSON that is not a position
            return None, f"cursor {self.path} unreadable ({error}): sending the log again from its oldest file"

    def save(self, position: Position) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "w") as handle:
            json.dump(position.to_json(), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)


def cursor_path(log_path: str | Path) -> Path:
    log_path = Path(log_path)
    return log_path.with_name(log_path.name + ".mqtt-cursor")


class Forwarder:
    """Publishes the event log to the broker; run() in a thread (start/stop) or in the foreground."""

    def __init__(
        self, log_path: str | Path, settings: BrokerSettings, topics: Topics, *, discovery_prefix: str = "",
        report: Callable[[str], None] | None = None, version: str = "",
    ):
        self.log_path, self.settings, self.topics = Path(log_path), settings, topics
        self.discovery_prefix, self.version = discovery_prefix, version
        self.report = report or (lambda message: sys.stderr.write(f"mqtt: {message}\n"))
        self.repeated = RepeatLimiter(self.report)
        self.cursor = Cursor(cursor_path(self.log_path))
        self.tail = LogTail(self.log_path)
        self.state = DeviceState()
        self.counts = {"delivered": 0, "dropped": 0, "unreadable": 0, "connects": 0}
        self.stop_event, self.drain_event = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._client = None
        self._connected = False
        self._pending: collections.deque = collections.deque()  # [mid, position, acked], in log order
        self._by_mid: dict[int, list] = {}
        self._acked: Position | None = None
        self._saved: Position | None = None
        self._last_key: tuple | None = None  # of the last line read, for gap counting
        self._caught_up = self._drained = False
        self._times = {"cursor": 0.0, "status": 0.0}
        self._status_dirty = True
        self._backoff = BACKOFF_S[0]
        self._next_connect = 0.0
        self._tried = self._said_unreachable = self._drain_tried = False

    # -- lifecycle -------------------------------------------------------------------------------------
    def open(self) -> None:
        """Lock and read the cursor, place the reader and build the client; errors here are the caller's."""
        self.cursor.lock()
        try:
            self._client = new_client(self.settings, f"fer-edge-{self.topics.device}", self.topics.availability)
        except BaseException:
            self.cursor.unlock()
            raise
        position, problem = self.cursor.load()
        if problem:
            self.report(problem)
        self._acked = self._saved = position
        self._last_key = position.key if position else None
        self.tail.start(position)
        if position is not None and self.tail.resumed not in ("cursor", "cursor (found by id)"):
            self.report(f"cursor {self.cursor.path}: {self.tail.resumed} (events already sent may go out again)")
        self._client.on_connect, self._client.on_disconnect = self._on_connect, self._on_disconnect
        self._client.on_publish, self._client.on_message = self._on_publish, self._on_message

    def start(self) -> Forwarder:
        self.open()
        self._thread = threading.Thread(target=self.run, name="mqtt-forwarder", daemon=True)
        self._thread.start()
        return self

    def stop(self, drain_s: float = 5.0) -> dict:
        """Deliver what the log still holds (for up to drain_s), say offline, save the cursor."""
        self.drain_event.set()
        if self._thread is not None:
            self._thread.join(drain_s)
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(5.0)
        return dict(self.counts)

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                if self.drain_event.is_set() and (
                    (self._drained and not self._pending) or (not self._connected and self._drain_tried)
                ):
                    break  # all sent, or the broker is out of reach: the rest waits in the log for the next start
                try:
                    self._step()
                except Exception as error:  # noqa: BLE001 - a thread that dies stops delivery without a word
                    self.repeated("step", f"forwarder error, retrying in 1 s: {type(error).__name__}: {error}")
                    self.stop_event.wait(1.0)
        finally:
            self._finish()

    def _step(self) -> None:
        if not self._connected:
            if not self._connect():
                self.stop_event.wait(0.05 if self.drain_event.is_set() else 0.2)
                return
        busy = self._publish_more() if self._connected else False
        rc = self._client.loop(timeout=0.0 if busy else 0.1)
        if rc != 0 and self._connected:  # the connection broke inside loop()
            self._lost(f"connection lost ({reason_text(rc)})")
        self._housekeeping()

    def _finish(self) -> None:
        if self._client is not None and self._connected:
            info = self._client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)
            deadline = time.monotonic() + 1.0
            while not info.is_published() and self._connected and time.monotonic() < deadline:
                self._client.loop(timeout=0.05)
            self._connected = False
            self._client.disconnect()
        self._save_cursor(force=True)
        behind = self.tail.backlog_bytes()
        self.tail.close()
        self.cursor.unlock()
        self.repeated.flush()
        self.report(
            f"delivered {self.counts['delivered']} events, dropped {self.counts['dropped']}, unreadable "
            f"{self.counts['unreadable']}" + (f"; {behind} bytes left in the log for the next start" if behind else "")
        )

    # -- connection ------------------------------------------------------------------------------------
    def _connect(self) -> bool:
        now = time.monotonic()
        draining = self.drain_event.is_set()
        if now < self._next_connect and not (draining and not self._drain_tried):
            return False
        self._drain_tried = self._drain_tried or draining
        self._next_connect = now + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_S[1])
        try:
            if self._tried:
                self._client.reconnect()
            else:
                self._tried = True
                self._client.connect(self.settings.host, self.settings.port, keepalive=30)
        except (OSError, ValueError) as error:
            self._note_unreachable(str(error))
            return False
        deadline = time.monotonic() + 5.0  # wait for CONNACK
        while not self._connected and time.monotonic() < deadline and not self.stop_event.is_set():
            if self._client.loop(timeout=0.1) != 0:
                break
        return self._connected

    def _note_unreachable(self, why: str) -> None:
        if not self._said_unreachable:
            self.report(f"broker {self.settings.describe()} unreachable ({why}); events wait in the log")
            self._said_unreachable = True

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._note_unreachable(f"refused: {reason_text(reason_code)}")
            return
        self._connected, self._said_unreachable = True, False
        self._backoff = BACKOFF_S[0]
        self.counts["connects"] += 1
        self.report(f"connected to {self.settings.describe()} as {self.topics.base()}")
        client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
        if self.discovery_prefix:
            client.subscribe(f"{self.discovery_prefix}/status", qos=1)
            self._publish_discovery()
        self._status_dirty = True

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._connected:
            self._lost(f"disconnected ({reason_text(reason_code)})")

    def _lost(self, why: str) -> None:
        self._connected = False
        self._next_connect = time.monotonic() + self._backoff
        self.report(f"{why}; will reconnect, unacknowledged events are sent again")

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == f"{self.discovery_prefix}/status" and message.payload.strip() == ONLINE.encode():
            self._publish_discovery()  # Home Assistant (re)started: it forgot non-retained state

    def _publish_discovery(self) -> None:
        for topic, config in discovery_configs(self.topics, self.discovery_prefix, self.version).items():
            self._client.publish(topic, json.dumps(config), qos=1, retain=True)
        self._status_dirty = True

    # -- the queue -------------------------------------------------------------------------------------
    def _publish_more(self) -> bool:
        """Read and publish lines while the window has room; True when it published anything."""
        published, draining = False, self.drain_event.is_set()
        while len(self._pending) < WINDOW:
            item = self.tail.read()
            if item is None:
                self._caught_up = True
                self._drained = draining  # read to the end after the log was closed
                break
            self._caught_up = False
            line, position = item
            record = self._parse(line)
            if record is None:
                self._advance_unsent(position)
                continue
            key = record_key(record)
            self._count_gap(key)
            position = Position(position.inode, position.offset, key)
            info = self._client.publish(self.topics.for_record(record), line, qos=1)
            entry = [info.mid, position, False]
            self._pending.append(entry)
            self._by_mid[info.mid] = entry
            try:
                if self.state.apply(record):
                    self._status_dirty = True
            except ValueError:
                pass  # sent as it is; only the summary in the state topic skips a record it cannot read
            published = True
        return published

    def _parse(self, line: bytes) -> dict | None:
        try:
            record = json.loads(line)
            if isinstance(record, dict):
                return record
        except ValueError:
            pass
        self.counts["unreadable"] += 1
        self._status_dirty = True
        self.repeated("unreadable", f"skipped an unreadable line in {self.log_path} ({len(line)} bytes: {line[:60]!r})")
        return None

    def _advance_unsent(self, position: Position) -> None:
        """A skipped line still moves the cursor, once everything before it is acknowledged."""
        entry = [None, position, True]
        self._pending.append(entry)
        self._release()

    def _count_gap(self, key: tuple | None) -> None:
        """Sequence numbers run 1, 2, ... within a run: a jump means lines rotated away unsent."""
        last, self._last_key = self._last_key, key or self._last_key
        if key is None:
            return
        same_run = last is not None and key[:2] == last[:2]
        missing = key[2] - last[2] - 1 if same_run else key[2] - 1
        if missing > 0:
            self.counts["dropped"] += missing
            self._status_dirty = True
            where = f"run {key[1]} seq {last[2] + 1}..{key[2] - 1}" if same_run else f"the first {missing} of run {key[1]}"
            self.report(
                f"DROPPED {missing} events ({where}): the log rotated them away before the broker took them; "
                "raise log_max_bytes or log_backups to queue a longer outage"
            )

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        entry = self._by_mid.pop(mid, None)
        if entry is not None:
            entry[2] = True
            self._release()

    def _release(self) -> None:
        while self._pending and self._pending[0][2]:
            mid, position, _ = self._pending.popleft()
            self._acked = position
            if mid is not None:
                self.counts["delivered"] += 1

    def _housekeeping(self) -> None:
        now = time.monotonic()
        idle = self._caught_up and not self._pending
        if now - self._times["cursor"] >= CURSOR_EVERY_S or idle:
            self._save_cursor()
        if self._connected and self._status_dirty and (idle or now - self._times["status"] >= STATUS_EVERY_S):
            self._times["status"] = now
            self._status_dirty = False
            summary = {**self.state.summary(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            self._client.publish(self.topics.state, json.dumps(summary), qos=1, retain=True)
            self._client.publish(self.topics.forwarder, json.dumps(self.counts), qos=1, retain=True)

    def _save_cursor(self, force: bool = False) -> None:
        if self._acked is None or (self._acked == self._saved and not force):
            return
        try:
            self.cursor.save(self._acked)
        except OSError as error:  # a full disk must not stop delivery: at worst events are sent twice
            self.repeated("cursor", f"cannot save the cursor {self.cursor.path}: {error}")
            return
        self._saved = self._acked
        self._times["cursor"] = time.monotonic()


def forwarder_from_config(config, version: str = "") -> Forwarder:
    """The forwarder a RunConfig asks for (config.mqtt set, config.log a file)."""
    settings = broker_settings(config.mqtt, config.mqtt_ca_file, config.mqtt_credentials_file)
    topics = Topics(config.mqtt_prefix, config.device_id or default_device_id())
    discovery = config.mqtt_discovery_prefix if config.mqtt_discovery else ""
    return Forwarder(config.log, settings, topics, discovery_prefix=discovery, version=version)


def open_fleet_log(log, config) -> SequencedLog:
    """The runtime's EventLog with event ids; with config.mqtt, a forwarder thread sends it to the broker
    from now until the log is closed (then it delivers what is left, for a few seconds at most)."""
    device = config.device_id or default_device_id()
    if not config.mqtt:
        return SequencedLog(log, device)
    try:
        forwarder = forwarder_from_config(config, package_version()).start()
    except BaseException:
        log.close()
        raise
    return SequencedLog(log, device, on_close=forwarder.stop)


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fer-edge")
    except PackageNotFoundError:
        return ""
