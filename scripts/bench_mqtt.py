"""MQTT store-and-forward benchmark against a local mosquitto.

1. Sustained rate: a log of N track events (rotated like the runtime's, 10 MB files) is forwarded from
   its first line; events/s = N / the time until a subscriber has every one of them.
2. Outage backlog: the events a 10-minute broker outage leaves in the log, at the rate the runtime
   writes them on the bundled clip (measured from a real run) and at a busy-scene rate; the time from
   the broker's return until the subscriber has the whole backlog.

    python scripts/bench_mqtt.py [--events 50000] [--busy-rate 50] [--out bench/mqtt.json]

Needs mosquitto (apt-get install -y mosquitto) and paho-mqtt. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import getpass
import json
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.config import RunConfig  # noqa: E402
from edge.events.log import EventLog  # noqa: E402
from edge.events.tail import log_files  # noqa: E402
from edge.fleet.broker import broker_settings  # noqa: E402
from edge.fleet.forwarder import Forwarder
from edge.fleet.topics import SequencedLog, Topics  # noqa: E402

OUTAGE_S = 600.0
DEFAULTS = RunConfig()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_broker(folder: Path) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    config = folder / "mosquitto.conf"
    # max_queued_messages 0: the subscriber may fall behind a backlog without the broker dropping QoS 1 messages
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nuser {getpass.getuser()}\n")
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("mosquitto did not start")


class Counter:
    """A QoS 1 subscriber that counts distinct event ids and notes when it has `target` of them."""

    def __init__(self, port: int):
        import paho.mqtt.client as paho

        self.ids: set = set()
        self.done = threading.Event()
        self.target = 0
        self.ready = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-{port}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("bench/+/track", qos=1)
        self.client.on_subscribe = lambda *args: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.ready.wait(10)

    def _on_message(self, client, userdata, message) -> None:
        record = json.loads(message.payload)
        self.ids.add((record["run"], record["seq"]))
        if len(self.ids) >= self.target:
            self.done.set()

    def expect(self, target: int) -> None:
        self.ids.clear()
        self.done.clear()
        self.target = target

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def track_record(n: int, t: float) -> dict:
    """Shaped like the runtime's track events (the same fields and sizes)."""
    scores = {"angry": 0.0123, "disgust": 0.0008, "fear": 0.0411, "happy": 0.8123, "sad": 0.0532, "surprise": 0.0121, "neutral": 0.0682}
    return {
        "event": ("new", "update", "end")[n % 3], "time": "2026-11-22T05:00:00.000Z", "t": round(t, 3), "frame": n,
        "track": n // 3, "box": [88, 172, 114, 114], "label": "happy", "score": 0.8123, "scores": scores,
    }


def write_log(path: Path, count: int, rate: float) -> int:
    log = SequencedLog(EventLog(path, max_bytes=DEFAULTS.log_max_bytes, backups=max(DEFAULTS.log_backups, 50)), "bench")
    for n in range(count):
        log.write(track_record(n, n / rate if rate else 0.0))
    log.close()
    return sum(p.stat().st_size for p in log_files(path))


def drain(path: Path, port: int, counter: Counter, count: int) -> float:
    """Seconds from starting a forwarder on an unsent log until the subscriber has all `count` events."""
    counter.expect(count)
    forwarder = Forwarder(path, broker_settings(f"mqtt://127.0.0.1:{port}"), Topics("bench", "pi"), report=lambda m: None)
    start = time.perf_counter()
    forwarder.start()
    if not counter.done.wait(180):
        raise RuntimeError(f"only {len(counter.ids)} of {count} events arrived")
    seconds = time.perf_counter() - start
    counts = forwarder.stop()
    assert counts["dropped"] == 0 and counts["delivered"] == count, counts
    return seconds


def sample_clip_rate() -> tuple[float, int]:
    """Events per second the runtime writes on the bundled clip (default settings), from a real run."""
    from edge import pipeline

    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "e.jsonl"
        summary = pipeline.run(RunConfig(source="sample", log=str(log)))
        records = [json.loads(line) for line in log.read_text().splitlines()]
    events = sum(r["event"] in ("new", "update", "end") for r in records)
    media_seconds = summary["frames"] / 30.0  # the clip is 30 fps
    stats_per_s = 1.0 / DEFAULTS.stats_interval
    return events / media_seconds + stats_per_s, len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000, help="events in the sustained-rate log")
    parser.add_argument("--busy-rate", type=float, default=50.0, help="events/s of the busy-scene outage")
    parser.add_argument("--out", type=Path, default=Path("bench/mqtt.json"))
    args = parser.parse_args()
    clip_rate, _ = sample_clip_rate()
    results = {"machine": platform.processor() or platform.machine(), "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        broker, port = start_broker(folder)
        counter = Counter(port)
        try:
            path = folder / "sustained" / "events.jsonl"
            size = write_log(path, args.events, 0.0)
            seconds = drain(path, port, counter, args.events)
            results["sustained"] = {
                "events": args.events, "bytes": size, "files": len(log_files(path)), "seconds": round(seconds, 2),
                "events_per_s": round(args.events / seconds), "mb_per_s": round(size / seconds / 1e6, 2),
            }
            for name, rate in (("outage_clip_rate", clip_rate), ("outage_busy", args.busy_rate)):
                count = round(rate * OUTAGE_S)
                path = folder / name / "events.jsonl"
                size = write_log(path, count, rate)
                seconds = drain(path, port, counter, count)
                results[name] = {
                    "rate_per_s": round(rate, 2), "outage_s": OUTAGE_S, "events": count, "bytes": size,
                    "drain_s": round(seconds, 2), "events_per_s": round(count / seconds),
                }
        finally:
            counter.close()
            broker.terminate()
            broker.wait(10)
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
