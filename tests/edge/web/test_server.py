"""The live view (--web), over HTTP against a real runtime on the bundled clip: page, MJPEG, SSE, state,
health, the token, and a viewer that never reads; plus its parts on their own."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter

import cv2
import numpy as np
import pytest
from conftest import ROOT
from live_runtime import LiveRuntime, read_events, read_mjpeg_parts, stalled_client, wait_until

from edge import pipeline
from edge.addresses import is_loopback, parse_web_address
from edge.config import DEFAULT_MODEL, SAMPLE_CLIP, RunConfig, bundled_model
from edge.outputs.annotate import PALETTE
from edge.sources.frame import Frame, SourceError
from edge.sources.video import PlaybackSource, VideoSource
from edge.vision.model import sidecar_path
from edge.web import server as web
from edge.web.access import TOKEN_ENV, web_token
from edge.web.state import LiveState, RecordFeed
from edge.web.stream import FrameHub

PLAYING = ["--source", "sample", "--loop", "--realtime", "--stats-interval", "1", "--duration", "300"]
TOKEN = "correct-horse-battery-staple-42"
NO_TOKEN_ENV = {TOKEN_ENV: ""}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """One runtime playing the clip at its own pace, over and over, its live view on loopback (no token)."""
    log = tmp_path_factory.mktemp("live") / "events.jsonl"
    live = LiveRuntime(log, PLAYING, env=NO_TOKEN_ENV)
    wait_until(lambda: live.state()["faces"], 60, "a face in view")
    yield live
    assert live.stop() == 0, "".join(live.stderr)[-2000:]


def test_page_and_its_files_come_with_the_security_headers(runtime):
    status, headers, body = runtime.get("/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    page = body.decode()
    assert 'id="live-banner"' in page and 'src="/stream.mjpg"' in page
    assert '<script src="/app.js"' in page and "<script>" not in page  # no inline script: the CSP allows none
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
    for path, kind in (("/app.js", "text/javascript"), ("/app.css", "text/css")):
        status, file_headers, text = runtime.get(path)
        assert status == 200 and file_headers["content-type"].startswith(kind) and text
        assert b"http://" not in text and b"https://" not in text
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer" and headers["cache-control"] == "no-store"
    policy = headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy
    assert runtime.get("/nothing-here")[0] == 404


def test_the_stream_is_mjpeg_of_decodable_annotated_frames(runtime):
    connection = runtime.connection()
    connection.request("GET", "/stream.mjpg")
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type").startswith("multipart/x-mixed-replace")
    started = time.monotonic()
    parts = read_mjpeg_parts(response, 6)
    elapsed = time.monotonic() - started
    connection.close()
    images = [cv2.imdecode(np.frombuffer(part, np.uint8), cv2.IMREAD_COLOR) for part in parts]
    for image in images:
        assert image is not None and image.shape == (480, 640, 3)  # the clip is 640 wide: web_max_width keeps it
    assert elapsed > 0.5  # at most web_max_fps (5) frames a second: six take at least one second less one frame
    # The boxes are drawn: the clip's happy face gets the palette's happy colour, which the clip itself lacks.
    raw = VideoSource(SAMPLE_CLIP)
    with raw:
        plain = raw.read().color
    assert max(palette_pixels(image, "happy") for image in images) > 500 and palette_pixels(plain, "happy") < 50


def palette_pixels(image: np.ndarray, label: str) -> int:
    return int((np.abs(image.astype(int) - np.array(PALETTE[label])).max(axis=2) < 12).sum())


def test_events_are_the_log_records_as_written(runtime):
    connection = runtime.connection(timeout=30)
    connection.request("GET", "/events")
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type").startswith("text/event-stream")
    payloads = read_events(response, lambda got: json.loads(got[-1])["event"] == "new", timeout=30)
    connection.close()
    new = json.loads(payloads[-1])
    assert new["label"] in new["scores"] and isinstance(new["track"], int)
    logged = {record["seq"]: record for record in runtime.records()}
    for payload in payloads:
        record = json.loads(payload)
        assert logged[record["seq"]] == record  # the same record, ids and all
    line = next(text for text in runtime.log.read_text().splitlines() if json.loads(text)["seq"] == new["seq"])
    assert payloads[-1] == line  # the same JSON text, byte for byte


def replay(records: list[dict]) -> tuple[dict[int, str], Counter]:
    """Faces in view (track -> label) and tracks started per label, from the log alone."""
    faces, started = {}, Counter()
    for record in records:
        if record["event"] in ("new", "update"):
            faces[record["track"]] = record["label"]
            started[record["label"]] += record["event"] == "new"
        elif record["event"] == "end":
            faces.pop(record["track"], None)
    return faces, started


def test_state_agrees_with_the_log(runtime):
    wait_until(lambda: runtime.state()["stats"], 10, "a stats record")
    state = runtime.state()
    records = [record for record in runtime.records() if record["seq"] <= state["seq"]]
    assert records[-1]["seq"] == state["seq"]
    faces, started = replay(records)
    assert {face["track"]: face["label"] for face in state["faces"]} == faces
    assert state["tracks_by_label"] == {label: n for label, n in started.items() if n}
    assert state["faces_by_label"] == dict(Counter(faces.values()))
    last_stats = [record for record in records if record["event"] == "stats"][-1]
    assert state["stats"] == last_stats and state["processing_fps"] > 0
    assert state["model"]["verified"] and state["model"]["accuracy"]["PrivateTest"] > 0.5 and state["model"]["inferences_per_face"] == 2
    sidecar = json.loads(sidecar_path(bundled_model(DEFAULT_MODEL)).read_text())  # the default model's own figures
    assert state["model"]["balanced_accuracy"] == sidecar["balanced_accuracy"] and state["model"]["balance"] == sidecar["contract"]["balance"] > 0
    assert sum(sum(minute["counts"].values()) for minute in state["timeline"]) > 0 and len(state["timeline"]) == 30
    assert state["healthy"] and runtime.get("/healthz")[0] == 200


def test_loopback_needs_no_token_but_a_loopback_host_name(runtime):
    assert runtime.get("/api/state")[0] == 200
    # A page elsewhere that points its own name at 127.0.0.1 (DNS rebinding) sends that name as Host.
    status, _, body = runtime.get("/api/state", headers={"Host": f"evil.example:{runtime.port}"})
    assert status == 403 and b"loopback" in body
    assert runtime.get("/api/state", headers={"Host": f"localhost:{runtime.port}"})[0] == 200


def test_a_bracketed_ipv6_host_without_a_port_is_loopback(runtime):
    """Issue 28: `Host: [::1]` (no port) was cut at its last colon and refused."""
    assert runtime.get("/api/state", headers={"Host": "[::1]"})[0] == 200
    assert runtime.get("/api/state", headers={"Host": f"[::1]:{runtime.port}"})[0] == 200
    assert runtime.get("/api/state", headers={"Host": "[::1].evil.example"})[0] == 403
    assert [web.host_name(h) for h in ("[::1]", "[::1]:80", "pi:8080", "pi", "::1")] == ["::1", "::1", "pi", "pi", "::1"]


@pytest.mark.parametrize("path, kind", [("/stream.mjpg", "multipart/x-mixed-replace"), ("/events", "text/event-stream")])
def test_head_on_the_stream_and_the_feed_answers_headers_only(runtime, path, kind):
    connection = runtime.connection()
    try:
        connection.request("HEAD", path)
        response = connection.getresponse()
        assert response.status == 200 and response.getheader("Content-Type").startswith(kind)
        assert response.read() == b""
    finally:
        connection.close()


@pytest.mark.slow
def test_event_feeds_that_never_read_are_dropped_so_viewers_get_in_again(runtime):
    """Issue 28: 32 /events clients that never read locked every viewer out (503) for as long as they stayed,
    since a feed sends too little to ever fill a socket buffer. Padded keep-alive pings fill it, and a write
    that cannot finish in time drops the viewer."""
    stalled = [stalled_client(runtime.host, runtime.port, "/events") for _ in range(web.MAX_CONNECTIONS)]
    try:
        def a_viewer_gets_in() -> bool:
            connection = runtime.connection(timeout=5)
            try:
                connection.request("GET", "/events")
                return connection.getresponse().status == 200
            finally:
                connection.close()
        wait_until(a_viewer_gets_in, 60, "a slot freed by dropping a feed that never reads", interval=1)
    finally:
        for sock in stalled:
            sock.close()


def test_uptime_comes_from_a_monotonic_clock():
    wall, steady = [1_000_000.0], [50.0]
    state = LiveState(["happy"], {}, clock=lambda: wall[0], monotonic=lambda: steady[0])
    wall[0] -= 7200  # the wall clock is set back two hours (NTP after a boot without a clock)
    steady[0] += 14
    assert state.snapshot()["uptime_s"] == 14


class TokenView:
    """Just what the handler's token check and /api/state need."""

    token, cookie, loopback_only = TOKEN, "cookie-value", False

    def health(self):
        return True, "frames arriving"

    def api_state(self):
        return {"score": float("nan")}


@pytest.fixture
def token_server():
    server = web.LiveViewServer(("127.0.0.1", 0), web.LiveViewHandler)
    server.live_view = TokenView()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_bearer_scheme_is_case_insensitive_and_state_is_json(token_server, scheme):
    import http.client

    connection = http.client.HTTPConnection(*token_server.server_address, timeout=5)
    try:
        connection.request("GET", "/api/state", headers={"Authorization": f"{scheme} {TOKEN}"})
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read(), parse_constant=lambda name: pytest.fail(name)) == {"score": None}
        connection.request("GET", "/api/state", headers={"Authorization": f"{scheme} wrong"})
        response = connection.getresponse()
        assert response.status == 401
        response.read()
    finally:
        connection.close()


@pytest.mark.slow
def test_a_viewer_that_never_reads_does_not_slow_the_run_or_grow_memory(tmp_path):
    """Unpaced, so the run goes as fast as it can: stats per second before and after five viewers connect
    and never read (one more reads): the loop keeps its pace, memory stays put. Generous margins."""
    live = LiveRuntime(tmp_path / "e.jsonl", ["--source", "sample", "--loop", "--stats-interval", "1", "--duration", "40"], env=NO_TOKEN_ENV)
    try:
        wait_until(lambda: len([r for r in live.records() if r["event"] == "stats"]) >= 5, 30, "five stats records")
        before = [r["processing_fps"] for r in live.records() if r["event"] == "stats"][1:]
        rss_before = live.rss_mb()
        stalled = [stalled_client(live.host, live.port) for _ in range(5)]
        connection = live.connection()
        connection.request("GET", "/stream.mjpg")
        reader = connection.getresponse()
        read_mjpeg_parts(reader, 3)  # the stream flows for a viewer that reads while the others stall
        wait_until(lambda: live.state()["viewers"] == 6, 10, "six viewers")
        counted = len([r for r in live.records() if r["event"] == "stats"])
        rss = [live.rss_mb()]
        for _ in range(8):
            time.sleep(1)
            rss.append(live.rss_mb())
        read_mjpeg_parts(reader, 2)
        after = [r["processing_fps"] for r in live.records() if r["event"] == "stats"][counted + 1:]
        assert len(after) >= 5 and live.state()["stream"]["encoded"] > 20
        # A loop held by a stalled viewer would make next to nothing here (the socket gives up only after 10 s);
        # a quarter of the pace before leaves room for a busy shared machine.
        assert statistics.median(after) > 0.25 * statistics.median(before), (before, after)
        assert max(rss) - rss_before < 40, (rss_before, rss)  # one JPEG per viewer at most, never a queue
        assert rss[-1] - rss[1] < 15, rss  # and no growth while they stall
        for sock in stalled:
            sock.close()
        connection.close()
    finally:
        assert live.stop() == 0


def test_the_token_missing_wrong_and_right_on_a_network_address(tmp_path):
    log = tmp_path / "e.jsonl"
    live = LiveRuntime(log, PLAYING, env={TOKEN_ENV: TOKEN}, web="0.0.0.0:0")
    try:
        assert "(token required)" in "".join(live.stderr)
        for headers in ({}, {"Authorization": "Bearer wrong-token-of-some-length"}, {"Authorization": TOKEN}):
            status, response_headers, _ = live.get("/api/state", headers)
            assert status == 401 and response_headers["www-authenticate"].startswith("Bearer")
        assert live.get("/?token=wrong-token-of-some-length")[0] == 401
        assert live.get("/stream.mjpg")[0] == 401
        assert live.get("/api/state", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        status, headers, _ = live.get(f"/?token={TOKEN}")  # the browser's way in: a cookie, and the token off the URL
        assert status == 303 and headers["location"] == "/"
        cookie = headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        assert live.get("/api/state", {"Cookie": cookie.split(";")[0]})[0] == 200
        assert live.get("/api/state", {"Cookie": "fer_edge_view=forged"})[0] == 401
        wait_until(lambda: live.get("/healthz")[0] == 200, 30, "healthz 200")  # a watchdog needs no token: it learns only "frames arrive"
    finally:
        assert live.stop() == 0
    assert TOKEN not in log.read_text() and TOKEN not in "".join(live.stderr)  # never logged, nor in the start record
    start = json.loads(log.read_text().splitlines()[0])
    assert start["event"] == "start" and start["config"]["web"] == "0.0.0.0:0"


def test_the_cli_refuses_a_network_address_without_a_token(tmp_path):
    log = tmp_path / "e.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--source", "sample", "--web", "0.0.0.0:8080", "--log", str(log)],
        cwd=ROOT, env={**os.environ, **NO_TOKEN_ENV}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "error: --web 0.0.0.0:8080: serving the camera on an address other than loopback needs an access token" in result.stderr
    assert "FER_WEB_TOKEN" in result.stderr and "ssh -L" in result.stderr
    assert not log.exists()  # refused before the log, the model or the camera was opened


@pytest.mark.parametrize(
    "web_address, env, message",
    [
        ("192.168.1.20:8080", NO_TOKEN_ENV, "needs an access token"),
        ("[::]:8080", NO_TOKEN_ENV, "needs an access token"),
        ("pi.local:8080", NO_TOKEN_ENV, "needs an access token"),  # a name may reach the network
        ("0.0.0.0:8080", {TOKEN_ENV: "short"}, "FER_WEB_TOKEN: the live view's token must be at least 16 characters"),
    ],
)
def test_the_runtime_refuses_to_start_without_a_usable_token(tmp_path, monkeypatch, web_address, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    log = tmp_path / "e.jsonl"
    with pytest.raises(ValueError, match=f"--web {re.escape(web_address)}: .*{message}"):
        pipeline.run(RunConfig(source="sample", web=web_address, log=str(log)))
    assert not log.exists()


def test_a_port_in_use_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = RunConfig(source="sample", web=f"127.0.0.1:{port}", log=str(tmp_path / "e.jsonl"), max_frames=3)
        with pytest.raises(ValueError, match=f"--web 127.0.0.1:{port}: cannot listen there"):
            pipeline.run(config)


def test_images_are_refused_with_web(tmp_path):
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), np.zeros((48, 48), np.uint8))
    with pytest.raises(ValueError, match="--web shows a camera or a video"):
        pipeline.run(RunConfig(source=str(image), web="127.0.0.1:0", log=str(tmp_path / "e.jsonl")))


# -- a camera that is lost: /healthz turns 503 ------------------------------------------------------------
class CameraThatDies:
    """A live camera that delivers the clip's frames at 30 FPS for about two seconds, then is gone for good."""

    live, fps, description, scale_to_main = True, 30.0, "camera that dies", 1.0

    def __init__(self):
        self.clip = VideoSource(SAMPLE_CLIP)
        self.reads, self.dead = 0, False

    def open(self):
        if self.dead:
            raise SourceError("no camera")
        self.clip.open()

    def close(self):
        self.clip.close()

    def read(self):
        self.reads += 1
        if self.reads > 60:
            self.dead = True
            raise SourceError("camera unplugged")
        time.sleep(1 / self.fps)
        frame = self.clip.read()
        return Frame(self.reads, time.monotonic(), frame.gray, frame.color)


def test_healthz_turns_503_when_the_camera_is_lost(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "open_source", lambda *a, **k: CameraThatDies())
    opened: list[web.LiveView] = []
    real_open = pipeline.open_live_view
    monkeypatch.setattr(pipeline, "open_live_view", lambda *a: opened.append(real_open(*a)) or opened[-1])
    monkeypatch.setenv(TOKEN_ENV, "")
    stop = threading.Event()
    log = tmp_path / "e.jsonl"
    config = RunConfig(source="usb:0", web="127.0.0.1:0", log=str(log), duration=60)
    runner = threading.Thread(target=pipeline.run, args=(config, stop), daemon=True)
    runner.start()
    try:
        wait_until(lambda: opened, 30, "the live view")
        import http.client

        def healthz() -> tuple[int, dict]:
            connection = http.client.HTTPConnection("127.0.0.1", opened[0].port, timeout=5)
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            return response.status, json.loads(response.read())

        assert wait_until(lambda: healthz()[0] == 200, 20, "healthz 200 while frames arrive")
        status, body = wait_until(lambda: (lambda got: got if got[0] == 503 else None)(healthz()), 20, "healthz 503")
        assert body == {"ok": False, "health": "source lost: camera unplugged"}
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive()
    kinds = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert "source_lost" in kinds and kinds[-1] == "stop"
    with pytest.raises(OSError):  # the live view is closed with the run
        http.client.HTTPConnection("127.0.0.1", opened[0].port, timeout=2).request("GET", "/healthz")


# -- the parts on their own -------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:0", ("::1", 0)),
                                            ("localhost:80", ("localhost", 80)), ("pi.lan:8080", ("pi.lan", 8080))])
def test_web_address_forms(text, expected):
    assert parse_web_address(text) == expected


@pytest.mark.parametrize("text", ["8080", ":8080", "host:", "host:http", "host:70000", "::1:8080", "user@host:80", "[::1]"])
def test_bad_web_addresses_name_the_flag(text):
    with pytest.raises(ValueError, match=r"--web \(run.web\)"):
        parse_web_address(text)
    with pytest.raises(ValueError, match=r"--web \(run.web\)"):
        RunConfig(web=text)


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
                                            ("0.0.0.0", False), ("::", False), ("192.168.1.2", False), ("pi.local", False)])
def test_only_loopback_counts_as_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_token_comes_from_the_environment_or_a_file(tmp_path, capsys):
    config = RunConfig(web="0.0.0.0:8080", web_token_file=str(tmp_path / "web.env"))
    (tmp_path / "web.env").write_text(f"# the live view\n{TOKEN_ENV}='{TOKEN}'\n")
    (tmp_path / "web.env").chmod(0o600)
    assert web_token(config, environ={}) == TOKEN and capsys.readouterr().err == ""
    (tmp_path / "web.env").write_text(TOKEN + "\n")
    (tmp_path / "web.env").chmod(0o644)
    assert web_token(config, environ={}) == TOKEN
    assert "chmod 600" in capsys.readouterr().err
    assert web_token(config, environ={TOKEN_ENV: "from-the-environment-1"}) == "from-the-environment-1"
    (tmp_path / "web.env").write_text("OTHER=1\nMORE=2\n")
    with pytest.raises(ValueError, match=f"web_token_file {tmp_path / 'web.env'}: expected the token alone"):
        web_token(config, environ={})
    with pytest.raises(ValueError, match="cannot read it"):
        web_token(RunConfig(web="0.0.0.0:1", web_token_file=str(tmp_path / "none")), environ={})
    assert web_token(RunConfig(web="127.0.0.1:8080"), environ={}) == ""  # loopback: none needed


def test_a_binary_token_file_is_named_not_a_traceback(tmp_path):
    (tmp_path / "web.env").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(ValueError, match=f"web_token_file {tmp_path / 'web.env'}: not a text file"):
        web_token(RunConfig(web="0.0.0.0:8080", web_token_file=str(tmp_path / "web.env")), environ={})


def test_a_run_reads_its_token_file_once(tmp_path):
    """Checked before the camera opens and handed to the live view: one read, one permissions warning."""
    (tmp_path / "web.env").write_text(TOKEN + "\n")
    (tmp_path / "web.env").chmod(0o644)
    env = {key: value for key, value in os.environ.items() if key != TOKEN_ENV}
    result = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--source", "sample", "--max-frames", "3", "--web", "127.0.0.1:0",
         "--web-token-file", str(tmp_path / "web.env"), "--log", str(tmp_path / "events.jsonl")],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count("can be read by other users; chmod 600 it") == 1


def test_the_hub_encodes_only_for_viewers_and_each_takes_the_newest():
    drawn = []

    def annotate(image, faces):
        drawn.append(image)
        return image, []

    hub = FrameHub(annotate, max_fps=1000, max_width=320)
    frames = [np.full((240, 640, 3), value, np.uint8) for value in (10, 120, 240)]
    try:
        assert not hub.wants_frame(time.monotonic())  # nobody watches: the loop hands nothing over
        with hub.viewer():
            hub.offer(frames[0], [], time.monotonic())
            number, jpeg = hub.next_jpeg(0, timeout=5)
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert number == 1 and image.shape == (120, 320, 3)  # shrunk to web_max_width, aspect kept
            time.sleep(0.01)
            hub.offer(frames[1], [], time.monotonic())
            hub.offer(frames[2], [], time.monotonic())  # replaces the one not yet encoded, if any
            number, jpeg = wait_until(lambda: (lambda got: got if got[1] is not None and abs(
                int(cv2.imdecode(np.frombuffer(got[1], np.uint8), cv2.IMREAD_GRAYSCALE).mean()) - 240) < 3 else None)(
                hub.next_jpeg(number, timeout=1)), 5, "the newest frame")
            assert len(drawn) <= 3 and hub.encoded == len(drawn)
        assert hub.viewers == 0 and hub.next_jpeg(0, timeout=0.01) == (0, None)  # nothing kept once nobody watches
    finally:
        hub.close()


def test_the_hub_keeps_to_the_frame_rate():
    hub = FrameHub(lambda image, faces: (image, []), max_fps=5, max_width=0)
    try:
        with hub.viewer():
            assert hub.wants_frame(100.0)
            hub.offer(np.zeros((8, 8, 3), np.uint8), [], 100.0)
            assert not hub.wants_frame(100.1) and hub.wants_frame(100.2)
    finally:
        hub.close()


def test_state_says_what_is_playing_without_the_machine_s_folders():
    state = LiveState(("happy", "sad"), {})
    assert state.snapshot()["source_kind"] == "camera"  # before the start record: never understate a camera
    state.apply({"event": "start", "source": "video /home/dev/checkout/edge/assets/sample.mp4",
                 "config": {"source": "sample", "loop": True, "stats_interval": 10.0}})
    snapshot = state.snapshot()
    assert snapshot["source_kind"] == "video" and snapshot["stats_interval"] == 10.0
    assert snapshot["source"] == "video file sample.mp4 (the bundled clip), looping" and "/home" not in snapshot["source"]
    state.apply({"event": "start", "source": "USB camera 0 (/dev/video0)", "config": {"source": "usb:0"}})
    assert state.snapshot()["source_kind"] == "camera" and state.snapshot()["source"] == "USB camera 0 (/dev/video0)"


def test_state_timeline_counts_faces_per_label_per_minute():
    now = [600.0]
    state = LiveState(("happy", "sad"), {}, clock=lambda: now[0])
    state.apply({"event": "new", "track": 1, "label": "happy", "score": 0.9, "seq": 1})
    state.apply({"event": "new", "track": 2, "label": "sad", "score": 0.8, "seq": 2})
    now[0] += 60  # a minute later both are still in view: a stats record counts them again
    state.apply({"event": "stats", "seq": 3, "dropped": 2})
    state.apply({"event": "update", "track": 1, "label": "sad", "score": 0.7, "seq": 4})
    state.apply({"event": "end", "track": 2, "label": "sad", "score": 0.7, "seq": 5})
    snapshot = state.snapshot()
    assert [minute["counts"] for minute in snapshot["timeline"][-2:]] == [{"happy": 1, "sad": 1}, {"happy": 1, "sad": 2}]
    assert snapshot["timeline"][-1]["minute"] == "1970-01-01T00:11Z"
    assert snapshot["faces"] == [{"track": 1, "label": "sad", "score": 0.7, "scores": None, "box": None}]
    assert snapshot["tracks_by_label"] == {"happy": 1, "sad": 1} and snapshot["dropped_total"] == 2
    assert [record["seq"] for record in snapshot["events"]] == [5, 4, 2, 1]  # newest first, no stats
    now[0] += 31 * 60
    assert all(not minute["counts"] for minute in state.snapshot()["timeline"][:-1])  # older than 30 minutes: gone


def test_the_event_feed_is_bounded_and_each_listener_keeps_its_place():
    feed = RecordFeed(size=3)
    start = feed.position
    for seq in range(1, 6):
        feed.append({"seq": seq})
    position, records = feed.after(start, timeout=0)
    assert position == 5 and [r["seq"] for r in records] == [3, 4, 5]  # one too far behind skips ahead
    assert feed.after(position, timeout=0.01) == (5, [])


def test_playback_loops_the_clip_at_its_own_pace():
    stop = threading.Event()
    source = PlaybackSource(VideoSource(SAMPLE_CLIP), realtime=False, loop=True, stop_event=stop)
    with source:
        frames = [source.read() for _ in range(320)]
    assert [f.index for f in frames] == list(range(320))
    assert all(b.timestamp > a.timestamp for a, b in zip(frames, frames[1:], strict=False))
    assert not any(f.after_gap for f in frames)  # a start again is no gap: tracks go on across the seam
    paced = PlaybackSource(VideoSource(SAMPLE_CLIP), realtime=True, loop=False, stop_event=stop)
    with paced:
        started = time.monotonic()
        for _ in range(16):
            paced.read()
        assert time.monotonic() - started >= 15 / 30 - 0.01  # never ahead of the file's 30 FPS
    once = PlaybackSource(VideoSource(SAMPLE_CLIP), realtime=False, loop=False)
    with once:
        assert sum(1 for _ in iter(once.read, None)) == 150


def test_playback_says_how_long_it_held_a_frame_back():
    now = [100.0]

    class Clock:  # a stop event whose wait moves a fake clock on: no real time, no CPU speed involved
        def is_set(self):
            return False

        def wait(self, seconds):
            now[0] += seconds
            return False

    paced = PlaybackSource(VideoSource(SAMPLE_CLIP), realtime=True, loop=False, stop_event=Clock(), clock=lambda: now[0])
    with paced:
        paced.read()
        assert paced.last_wait_ms == 0  # the first frame sets the pace
        paced.read()
        assert paced.last_wait_ms == pytest.approx(1000 / 30, abs=0.5)  # held until its time in the file
        now[0] += 1.0  # the pipeline fell behind: the next frame is late, not held
        paced.read()
        assert paced.last_wait_ms == 0


def test_realtime_playback_after_a_pause_skips_to_now_instead_of_racing(monkeypatch):
    """Issue 28: after SIGSTOP/SIGCONT, --realtime handed out every missed frame at once (143 FPS). A camera
    drops them: the frame after the pause is the one due now, marked as a gap. A fake clock, no sleeping."""
    now = [100.0]
    stop = threading.Event()
    monkeypatch.setattr(stop, "wait", lambda seconds: now.__setitem__(0, now[0] + seconds))  # time passes while it waits
    paced = PlaybackSource(VideoSource(SAMPLE_CLIP), realtime=True, loop=True, stop_event=stop, clock=lambda: now[0])
    with paced:
        before = [paced.read() for _ in range(10)]
        now[0] += 3.0  # stopped for 3 s
        after = [paced.read() for _ in range(10)]
    assert [f.index for f in before] == list(range(10)) and not any(f.after_gap for f in before[1:])
    assert after[0].after_gap and after[0].timestamp >= before[-1].timestamp + 3.0 - 1 / 30  # the frame due now
    assert [f.index for f in after[1:]] == list(range(after[0].index + 1, after[0].index + 10))  # then paced again
    assert not any(f.after_gap for f in after[1:])


def test_picamera2_fetches_colour_only_while_someone_watches(tmp_path, monkeypatch):
    import types

    from picamera2_standin import FakePicamera2

    class CountingCamera(FakePicamera2):
        both = 0

        def capture_arrays(self, names=("main",)):
            CountingCamera.both += 1
            time.sleep(0.005)
            return super().capture_arrays(names)

        def capture_array(self, name="main"):
            time.sleep(0.005)
            return super().capture_array(name)

    module = types.ModuleType("picamera2")
    module.Picamera2 = CountingCamera
    monkeypatch.setitem(sys.modules, "picamera2", module)
    opened: list[web.LiveView] = []
    real_open = pipeline.open_live_view
    monkeypatch.setattr(pipeline, "open_live_view", lambda *a: opened.append(real_open(*a)) or opened[-1])
    monkeypatch.setenv(TOKEN_ENV, "")
    stop = threading.Event()
    config = RunConfig(source="picamera2", web="127.0.0.1:0", log=str(tmp_path / "e.jsonl"), duration=60)
    runner = threading.Thread(target=pipeline.run, args=(config, stop), daemon=True)
    runner.start()
    try:
        wait_until(lambda: opened and opened[0].hub.last_frame_at, 30, "frames")
        time.sleep(0.5)
        assert CountingCamera.both == 0  # nobody watches: the lores stream alone
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", opened[0].port, timeout=10)
        connection.request("GET", "/stream.mjpg")
        parts = read_mjpeg_parts(connection.getresponse(), 2)
        image = cv2.imdecode(np.frombuffer(parts[-1], np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (480, 640, 3)  # the main stream, not the 320x240 lores one
        assert CountingCamera.both > 0
        connection.close()
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive()


def test_without_web_the_server_is_not_even_imported(tmp_path):
    probe = (
        "import sys\nfrom edge.config import RunConfig\nfrom edge.pipeline import run\n"
        f"run(RunConfig(source='sample', max_frames=3, log={str(tmp_path / 'e.jsonl')!r}))\n"
        "print('edge.web.server' in sys.modules, 'http.server' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "False"]
