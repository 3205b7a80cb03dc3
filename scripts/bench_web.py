"""What the live view costs the pipeline: end-to-end FPS of one runtime with 0, 1 and 5 viewers, in one run.

The runtime (`python -m edge run --web 127.0.0.1:0`) plays the bundled clip over and over as fast as it can
(--loop, not --realtime), pinned to one CPU like `edge bench pipeline`; its stats records (one a second) give
the processing FPS. The run goes through phases of --phase-s seconds, --rounds times over: no viewer, one, five,
and five of which four never read (stalled). Viewers here are threads of this process on the other CPUs
that read the MJPEG stream as a browser does. For each phase: median processing FPS, the runtime's CPU time
per frame (what the viewers cost, whatever else the machine runs), the stream's FPS and JPEG size, memory. Figures go to docs/live-view.md; JSON and CSV to --out-dir.

    python scripts/bench_web.py [--phase-s 8] [--rounds 3] [--out-dir bench] [--all-cores]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.measure.bench import save_results  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Viewer(threading.Thread):
    """Reads /stream.mjpg part by part, counting them, until stopped; a stalled one connects and reads nothing."""

    def __init__(self, port: int, stalled: bool = False):
        super().__init__(daemon=True)
        self.port, self.stalled, self.parts, self.bytes = port, stalled, 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        if self.stalled:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", self.port))
            sock.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode())
            self.stop.wait()
            sock.close()
            return
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("GET", "/stream.mjpg")
        response = connection.getresponse()  # kept: the stream closes with it
        stream = response.fp
        while not self.stop.is_set():
            line = stream.readline()
            if not line:
                return
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
                stream.readline()
                self.bytes += len(stream.read(length))
                self.parts += 1
        connection.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def measure_phase(pid: int, port: int, log: Path, readers: int, stalled: int, seconds: float) -> dict:
    """One phase: connect the viewers, let the stats window pass the change, then measure for `seconds`."""
    viewers = [Viewer(port) for _ in range(readers)] + [Viewer(port, stalled=True) for _ in range(stalled)]
    for viewer in viewers:
        viewer.start()
    time.sleep(2)
    seen = len(log.read_text().splitlines())
    cpu0, parts0, started = cpu_seconds(pid), sum(v.parts for v in viewers), time.monotonic()
    time.sleep(seconds)
    elapsed, cpu = time.monotonic() - started, cpu_seconds(pid) - cpu0
    stats = [json.loads(line) for line in log.read_text().splitlines()[seen:] if '"event":"stats"' in line]
    frames, interval = sum(s["frames"] for s in stats), sum(s["interval_s"] for s in stats)
    reading = [v for v in viewers if not v.stalled]
    parts = sum(v.parts for v in reading) - parts0
    result = {
        "fps": frames / interval if interval else 0.0,
        "cpu_ms_per_frame": cpu * 1000 / (frames / interval * elapsed) if frames else 0.0,
        "stream_fps": parts / elapsed / len(reading) if reading else 0.0,
        "jpeg_kb": sum(v.bytes for v in reading) / max(1, sum(v.parts for v in reading)) / 1024 if reading else 0.0,
        "rss_mb": rss_mb(pid),
    }
    for viewer in viewers:
        viewer.stop.set()
    time.sleep(1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase-s", type=float, default=8.0, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=3, help="times through the phases")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench")
    parser.add_argument("--all-cores", action="store_true", help="do not pin the runtime to one CPU")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    runtime_cpus = cpus if args.all_cores else cpus[:1]
    if not args.all_cores and len(cpus) > 1:
        os.sched_setaffinity(0, set(cpus[1:]))  # the viewers stay off the runtime's CPU
    phases = [("no viewer", 0, 0), ("1 viewer", 1, 0), ("5 viewers", 5, 0), ("5 viewers, 4 of them stalled", 1, 4)]
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "events.jsonl"
        command = [sys.executable, "-m", "edge", "run", "--source", "sample", "--loop", "--web", "127.0.0.1:0", "--log", str(log),
                   "--stats-interval", "1"]
        runtime = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "FER_WEB_TOKEN": ""}, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=lambda: os.sched_setaffinity(0, set(runtime_cpus)))
        measured: dict[str, list[dict]] = {name: [] for name, _, _ in phases}
        try:
            port = next(int(match.group(1)) for line in runtime.stderr if (match := re.search(r"live view: http://[^:]+:(\d+)/", line)))
            threading.Thread(target=lambda: [None for _ in runtime.stderr], daemon=True).start()
            time.sleep(5)  # warm-up: the model loaded, the first stats written
            for _ in range(args.rounds):  # phases interleaved, so a change in the machine's load hits them all
                for name, readers, stalled in phases:
                    measured[name].append(measure_phase(runtime.pid, port, log, readers, stalled, args.phase_s))
        finally:
            runtime.send_signal(signal.SIGINT)
            runtime.wait(30)
    rows = []
    for name, readers, stalled in phases:
        runs = measured[name]
        rows.append({
            "phase": name, "viewers": readers + stalled, "stalled": stalled, "rounds": len(runs),
            "fps_median": round(statistics.median(r["fps"] for r in runs), 2),
            "fps_best": round(max(r["fps"] for r in runs), 2),
            "cpu_ms_per_frame": round(statistics.median(r["cpu_ms_per_frame"] for r in runs), 2),
            "stream_fps_per_reader": round(statistics.median(r["stream_fps"] for r in runs), 2),
            "jpeg_kb": round(statistics.median(r["jpeg_kb"] for r in runs), 1),
            "rss_mb": max(r["rss_mb"] for r in runs), "runtime_cpus": len(runtime_cpus),
            "load_average": round(os.getloadavg()[0], 2),
        })
    print()
    print("| phase | viewers | processing FPS (median / best) | runtime CPU ms per frame | stream FPS per reading viewer | JPEG KB | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['phase']} | {row['viewers']} | {row['fps_median']} / {row['fps_best']} | {row['cpu_ms_per_frame']} | "
              f"{row['stream_fps_per_reader']} | {row['jpeg_kb']} | {row['rss_mb']} |")
    for path in save_results(rows, args.out_dir, "web"):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
