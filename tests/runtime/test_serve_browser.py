"""The page in a real headless browser (Debian's chromium; .ci/run installs it): a video frame and
an event arrive, the screenshot is not blank and the event's label is on the page."""

from __future__ import annotations

import json
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


def chromium(url: str, *args: str, wait_ms: int = 2500) -> subprocess.CompletedProcess:
    """Headless chromium on ``url``; the page never finishes loading (its video is a stream), so
    chromium acts ``wait_ms`` after the start."""
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1000,600", f"--timeout={wait_ms}", *args, url],
                          capture_output=True, text=True, timeout=90)


def logged(port: int) -> set[tuple[str, str]]:
    """The (label, kind) of every event the server has logged."""
    body = get(port, "/events", token="t0k")[1]
    return {(e["label"], e["kind"]) for e in json.loads(body)["events"]} if body else set()


def rendered(url: str, *wanted: str, tries: int = 4) -> str:
    """The page as chromium renders it, once its event log lists every one of ``wanted`` or after
    ``tries`` loads: the log arrives by server-sent events, which a loaded machine can deliver
    after chromium has dumped the page, so a load that has not got them yet is retried, waiting
    longer each time."""
    dom = ""
    for i in range(tries):
        dom = chromium(url, "--dump-dom", wait_ms=2500 * (i + 1)).stdout
        if all(w in log_of(dom) for w in wanted):
            break
    return dom


def log_of(dom: str) -> str:
    return dom[dom.index('id="log"'):] if 'id="log"' in dom else ""


def test_the_page_shows_the_video_and_the_event_label_in_chromium(tmp_path):
    model = make_onnx(tmp_path / "colour.onnx", card=make_card(frames=4, size=16, span=8))
    # 48 s at 30 fps, stopped once the page is read: the run outlasts every reload of rendered()
    video = write_video(tmp_path / "clip.avi", ["red"] * 40 + ["blue"] * 1400, size=(320, 240))
    port = free_port()
    run = Run(LiveOptions(model=str(model), sources=(str(video),), headless=True, realtime=True,
                          stride=2, serve=f"127.0.0.1:{port}", serve_token="t0k"))
    try:
        wait_for(lambda: {("red", "close"), ("blue", "open")} <= logged(port))  # red ended, blue began
        url = f"http://127.0.0.1:{port}/?token=t0k"
        shot = tmp_path / "page.png"
        r = chromium(url, f"--screenshot={shot}")
        assert r.returncode == 0 and shot.is_file(), r.stderr[-800:]
        ended, started = '<span class="label">red</span> ended', '<span class="label">blue</span> started'
        dom = rendered(url, ended, started)
    finally:
        run.finish()
    image = cv2.imread(str(shot))
    assert image is not None and image.std() > 10  # not blank
    # the video: the clip's blue frames (BGR) fill part of the page
    blue = (image[..., 0] > 200) & (image[..., 1] < 60) & (image[..., 2] < 60)
    assert blue.mean() > 0.05, "no video frame on the page"
    assert ended in log_of(dom)  # the closed event, listed
    assert started in log_of(dom)
    assert "live" in dom
