"""The screenshot in docs/images/live-view.png: the runtime plays the bundled clip at its own pace with the
live view on loopback for a few minutes (so the timeline has some history), then headless chromium
(Debian's, driven by Playwright) takes the page.

    python scripts/live_view_screenshot.py [--minutes 4] [--out docs/images/live-view.png]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "live-view.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "FER_WEB_TOKEN": ""}
        runtime = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--source", "sample", "--loop", "--realtime", "--emoji", "--web", "127.0.0.1:0",
             "--log", f"{folder}/events.jsonl", "--stats-interval", "5"],
            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
        )
        try:
            url = next(match.group(1) for line in runtime.stderr if (match := re.search(r"live view: (http://\S+/)", line)))
            time.sleep(args.minutes * 60)
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=args.chromium, args=LAUNCH_ARGS, headless=True)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url)
                page.wait_for_function("() => document.getElementById('stream').naturalWidth > 0", timeout=30_000)
                page.wait_for_timeout(8000)  # a few events arrive and the state refreshes
                # both people of the clip in view (the second leaves and comes back every pass)
                page.wait_for_function("() => document.querySelectorAll('#faces tbody tr').length >= 2", timeout=30_000)
                page.wait_for_timeout(400)  # the stream's next frame (5 FPS) shows them too
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=True)
                browser.close()
        finally:
            runtime.send_signal(signal.SIGINT)
            runtime.wait(30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
