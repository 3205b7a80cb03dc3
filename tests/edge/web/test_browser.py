"""The live view in a real browser: Debian's chromium, headless, driven by Playwright (no browser download).

Loads the page from a runtime playing the bundled clip and checks what a person would look at: the stream
shows, the faces panel names an expression, the timeline has data, the event list grows. A screenshot is
kept in out/test-artifacts/live-view.png (docs/images/live-view.png is one of these)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from live_runtime import ROOT, LiveRuntime, wait_until

from edge.web.access import TOKEN_ENV

CHROMIUM = next((path for path in ("/usr/bin/chromium", shutil.which("chromium") or "") if path and os.path.exists(path)), None)
pytestmark = [
    pytest.mark.service,  # drives a real browser: make test runs it, make check does not
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)"),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
ARTIFACT = ROOT / "out" / "test-artifacts" / "live-view.png"


ARTIFACTS = {"laptop": (1280, 900), "phone": (390, 844)}


def check_layout(page, width: int) -> None:
    """The timeline is drawn at its own size times the pixel ratio, with round ticks, and fits the screen."""
    box = page.evaluate(
        """() => { const c = document.getElementById('timeline'); const r = c.getBoundingClientRect();
                   return {w: c.width, h: c.height, cw: c.clientWidth, ch: c.clientHeight, top: r.top, right: r.right,
                           ratio: window.devicePixelRatio, ticks: c.dataset.ticks, scroll: document.documentElement.scrollWidth}; }"""
    )
    assert box["w"] == round(box["cw"] * box["ratio"]) and box["h"] == round(box["ch"] * box["ratio"])
    assert box["right"] <= width and box["scroll"] <= width  # nothing wider than the screen
    ticks = [int(t) for t in box["ticks"].split(",")]
    step = ticks[1] - ticks[0]
    assert ticks[0] == 0 and all(b - a == step for a, b in zip(ticks, ticks[1:], strict=False))
    assert str(step).strip("0") in ("1", "2", "5")  # 1, 2, 5, 10, 20, 50 ...
    if width >= 1280:
        assert box["top"] < 900 - 120, "the timeline is below the fold at 1280x900"


def test_the_page_shows_stream_faces_timeline_and_events_in_chromium(tmp_path):
    live = LiveRuntime(tmp_path / "e.jsonl", ["--source", "sample", "--loop", "--realtime", "--emoji", "--stats-interval", "2",
                                              "--duration", "300"], env={TOKEN_ENV: ""})
    errors: list[str] = []
    try:
        with playwright_api.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(live.url)
            page.wait_for_function("() => document.getElementById('live-banner').dataset.kind === 'video'", timeout=30_000)
            banner = page.inner_text("#live-banner")
            assert "video file sample.mp4" in banner and "camera is live" not in banner
            page.wait_for_function("() => document.getElementById('stream').naturalWidth > 0", timeout=30_000)
            width, height = page.evaluate("() => [document.getElementById('stream').naturalWidth, document.getElementById('stream').naturalHeight]")
            assert (width, height) == (640, 480)
            page.wait_for_selector("#faces tbody tr", timeout=30_000)
            labels = page.eval_on_selector_all("#faces tbody tr", "rows => rows.map(row => row.dataset.label)")
            assert set(labels) <= {"happy", "neutral", "sad", "surprise", "angry", "fear", "disgust"} and labels
            assert page.inner_text("#faces tbody tr") .count("#") == 1  # the track id shows
            page.wait_for_function("() => Number(document.getElementById('timeline').dataset.faces) > 0", timeout=30_000)
            drawn = page.evaluate(
                """() => { const c = document.getElementById('timeline'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                           let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) n++; return n; }"""
            )
            assert drawn > 100  # bars and axes are on the canvas
            before = page.eval_on_selector_all("#events li[data-event='new'], #events li.fresh", "items => items.length")
            page.wait_for_function(f"() => document.querySelectorAll('#events li.fresh').length > {before}", timeout=30_000)
            page.wait_for_function("() => document.getElementById('health-badge').textContent === 'ok'", timeout=30_000)
            assert "ferplus" in page.inner_text("#health") and "verified" in page.inner_text("#health")
            assert "2 inferences a face" in page.inner_text("#health")
            wait_until(lambda: "FPS delivered" in page.inner_text("#health"), 10, "health figures")
            page.wait_for_timeout(2500)  # the stats record lands and the next refresh shows it
            for name, (width, height) in ARTIFACTS.items():
                page.set_viewport_size({"width": width, "height": height})
                page.wait_for_timeout(2500)  # redrawn at the new size
                check_layout(page, width)
                ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(ARTIFACT.with_name(f"live-view-{name}.png")), full_page=True)
            page.set_viewport_size({"width": 1280, "height": 900})
            page.screenshot(path=str(ARTIFACT), full_page=True)
            browser.close()
    finally:
        assert live.stop() == 0
    assert errors == []  # no script error, nothing the CSP blocked
    assert ARTIFACT.stat().st_size > 10_000
    assert Path(ARTIFACT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_a_saved_webm_plays_in_chromium(tmp_path):
    """--save-video NAME.webm is the browser's choice (OpenCV's pip wheel writes no H.264 .mp4)."""
    import subprocess
    import sys

    video = tmp_path / "demo.webm"
    subprocess.run([sys.executable, "-m", "edge", "run", "--source", "sample", "--max-frames", "10", "--save-video", str(video),
                    "--log", str(tmp_path / "e.jsonl")], cwd=ROOT, check=True, timeout=300)
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        page = browser.new_page()
        page.goto(video.as_uri())
        page.wait_for_function("() => { const v = document.querySelector('video'); return v && v.readyState >= 2; }", timeout=30_000)
        assert page.evaluate("() => [document.querySelector('video').videoWidth, document.querySelector('video').videoHeight]") == [640, 480]
        browser.close()
