"""The page in a real headless browser (Debian's chromium; .ci/run installs it): a video frame and
an event arrive, the screenshot is not blank and the event's label is on the page."""

from __future__ import annotations

import shutil
import subprocess

import cv2
import pytest

pytest.importorskip("prometheus_client")
from runtime.plan import LiveOptions  # noqa: E402
from tests.runtime.helpers import make_card, make_onnx, write_video  # noqa: E402
from tests.runtime.mjpeg import free_port  # noqa: E402
from tests.runtime.test_serve import Run, get, wait_for  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


def chromium(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1000,600", "--timeout=2500", *args, url],
                          capture_output=True, text=True, timeout=90)


def test_the_page_shows_the_video_and_the_event_label_in_chromium(tmp_path):
    model = make_onnx(tmp_path / "colour.onnx", card=make_card(frames=4, size=16, span=8))
    video = write_video(tmp_path / "clip.avi", ["red"] * 40 + ["blue"] * 400, size=(320, 240))
    port = free_port()
    run = Run(LiveOptions(model=str(model), sources=(str(video),), headless=True, realtime=True,
                          stride=2, serve=f"127.0.0.1:{port}", serve_token="t0k"))
    try:
        wait_for(lambda: b'"close"' in get(port, "/events", token="t0k")[1])  # red ended
        url = f"http://127.0.0.1:{port}/?token=t0k"
        shot = tmp_path / "page.png"
        r = chromium(url, f"--screenshot={shot}")
        assert r.returncode == 0 and shot.is_file(), r.stderr[-800:]
        dom = chromium(url, "--dump-dom").stdout
    finally:
        run.finish()
    image = cv2.imread(str(shot))
    assert image is not None and image.std() > 10  # not blank
    # the video: the clip's blue frames (BGR) fill part of the page
    blue = (image[..., 0] > 200) & (image[..., 1] < 60) & (image[..., 2] < 60)
    assert blue.mean() > 0.05, "no video frame on the page"
    log = dom[dom.index('id="log"'):]
    assert '<span class="label">red</span> ended' in log  # the closed event, listed
    assert '<span class="label">blue</span> started' in log
    assert "live" in dom
