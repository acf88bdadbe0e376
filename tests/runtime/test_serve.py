"""tsi-live --serve: /metrics parsed by prometheus_client's own parser, /healthz going unhealthy
when the only stream dies, the token, the client bound, /events, and the page and video."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from runtime.plan import LiveOptions  # noqa: E402
from runtime.run import run_live  # noqa: E402
from runtime.serve.server import MAX_CLIENTS  # noqa: E402
from tests.runtime.helpers import make_card, make_onnx, write_video  # noqa: E402
from tests.runtime.mjpeg import MjpegServer, free_port  # noqa: E402

TOKEN = "s3cret"


def get(port: int, path: str, token: str | None = TOKEN, timeout: float = 5.0) -> tuple[int, bytes]:
    url = f"http://127.0.0.1:{port}{path}"
    if token:
        url += ("&" if "?" in path else "?") + f"token={token}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except urllib.error.URLError:  # not listening (yet)
        return 0, b""


def wait_for(check, limit_s: float = 20.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("timed out")


class Run:
    def __init__(self, opts: LiveOptions) -> None:
        self.stop = threading.Event()
        self.summaries = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(opts,), daemon=True)
        self.thread.start()

    def _run(self, opts):
        try:
            self.summaries = run_live(opts, stop=self.stop)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def finish(self):
        self.stop.set()
        self.thread.join(20)
        assert not self.thread.is_alive() and self.error is None, self.error


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A 7 s clip played in real time (red, green, blue, red) with --serve and a token."""
    d = tmp_path_factory.mktemp("serve")
    model = make_onnx(d / "colour.onnx", card=make_card(frames=4, size=16, span=8))
    video = write_video(d / "clip.avi", ["red"] * 50 + ["green"] * 50 + ["blue"] * 50 + ["red"] * 60,
                        size=(160, 120))
    port = free_port()
    run = Run(LiveOptions(model=str(model), sources=(str(video),), headless=True, realtime=True,
                          stride=2, out_jsonl=str(d / "a.jsonl"), serve=f"127.0.0.1:{port}",
                          serve_token=TOKEN))
    wait_for(lambda: run.error or get(port, "/healthz")[0] == 200)
    assert run.error is None, run.error
    yield port, run, d
    run.finish()


def scrape(port):
    code, body = get(port, "/metrics")
    assert code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}


def test_metrics_parse_and_counters_increase_while_the_clip_plays(served):
    port, _, _ = served
    key = ("tsi_frames_read_total", (("stream", "clip"),))
    first = wait_for(lambda: (m := scrape(port)).get(key, 0) > 0 and m)
    time.sleep(1.0)
    second = scrape(port)
    assert second[key] > first[key] > 0
    inf = ("tsi_inferences_total", (("stream", "clip"),))
    assert second[inf] > first[inf]
    assert second[("tsi_stream_state", (("state", "live"), ("stream", "clip")))] == 1.0
    count = ("tsi_stage_latency_seconds_count", (("stage", "inference"), ("stream", "clip")))
    assert second[count] > 0


def test_every_route_refuses_a_request_without_the_token(served):
    port, _, _ = served
    for path in ("/", "/metrics", "/healthz", "/events", "/updates", "/video.mjpg"):
        assert get(port, path, token=None)[0] == 401, path
        assert get(port, path, token="wrong")[0] == 401, path
    req = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
    assert get(port, "/../../etc/passwd")[0] == 404  # nothing is served from disk


def _open_stream(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"GET /video.mjpg?token={TOKEN} HTTP/1.0\r\n\r\n".encode())
    return s


def test_twenty_clients_are_served_and_the_21st_is_refused(served):
    port, _, _ = served
    clients = [_open_stream(port) for _ in range(MAX_CLIENTS)]
    try:
        for s in clients:  # each gets a JPEG frame
            data = b""
            while b"\xff\xd8" not in data:
                data += s.recv(65536)
            assert data.startswith(b"HTTP/1.0 200")
        assert get(port, "/healthz")[0] == 503  # the 21st connection
    finally:
        for s in clients:
            s.close()
    wait_for(lambda: get(port, "/healthz")[0] == 200)


def test_the_page_and_events_show_what_the_runtime_saw(served):
    port, _, d = served
    code, page = get(port, "/")
    assert code == 200 and b"/video.mjpg" in page and TOKEN.encode() in page
    events = wait_for(lambda: [e for e in json.loads(get(port, "/events")[1])["events"]
                               if e["kind"] == "close"])
    assert events[0]["label"] in ("red", "green", "blue")
    snap = json.loads(get(port, "/events")[1])
    assert snap["streams"][0]["name"] == "clip" and snap["streams"][0]["state"] == "live"
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"GET /updates?token={TOKEN} HTTP/1.0\r\n\r\n".encode())
    data = b""
    while b"event: log" not in data:
        data += s.recv(65536)
    s.close()
    assert b"event: state" in data


def test_healthz_turns_unhealthy_when_the_only_stream_dies(tmp_path):
    model = make_onnx(tmp_path / "colour.onnx", card=make_card(frames=4, size=16, span=8))
    cam = MjpegServer("red", fps=20)
    cam.start()
    port = free_port()
    run = Run(LiveOptions(model=str(model), sources=(f"cam={cam.url}",), headless=True, stride=2,
                          serve=f"127.0.0.1:{port}", serve_down_limit=1.0, stall_timeout=1.0,
                          reconnect_attempts=None, reconnect_limit=None))
    try:
        wait_for(lambda: get(port, "/healthz", token=None)[0] == 200 and
                 json.loads(get(port, "/events", token=None)[1])["streams"][0]["state"] == "live")
        cam.drop()
        wait_for(lambda: get(port, "/healthz", token=None)[0] == 503)
        body = json.loads(get(port, "/healthz", token=None)[1])
        assert body["status"] == "unhealthy" and body["down_s"]["cam"] >= 1.0  # down > 1.0 s, written rounded
        state = json.loads(get(port, "/events", token=None)[1])["streams"][0]["state"]
        assert state in ("reconnecting", "gap")
    finally:
        run.finish()
        cam.stop()
