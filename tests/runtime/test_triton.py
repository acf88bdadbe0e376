"""tsi-live against a real Triton server on 127.0.0.1 (benchmarks/common/triton_server.py: PyTriton's
tritonserver, started by the test, serving a repository written by export.triton_repo): the same
events as in-process onnxruntime for 4 streams batched into one request (gRPC and HTTP) and for the
online step model; the server killed and restarted mid-run is every stream's gap and nothing else;
a wrong model name, a model that does not match its card, no server: one line, exit 2."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time

import pytest

pytest.importorskip("tritonclient.grpc")

from google.protobuf import text_format  # noqa: E402
from tritonclient.grpc import model_config_pb2 as pb  # noqa: E402

from export.triton_config import ServingOptions  # noqa: E402
from export.triton_repo import write_model  # noqa: E402
from runtime.backends import BackendError  # noqa: E402
from runtime.backends.triton_client import TritonAddress  # noqa: E402
from runtime.card import ONNX_METADATA_KEY, ModelCard  # noqa: E402
from runtime.live import main  # noqa: E402
from runtime.reconnect import ReconnectPolicy  # noqa: E402
from tests.runtime.helpers import make_card, make_onnx, make_step_onnx, write_video  # noqa: E402
from benchmarks.common.triton_server import TritonServer, free_port, pytriton_python  # noqa: E402

SOON = ReconnectPolicy(initial_delay=0.2, max_delay=0.5, max_retries=None, timeout=60.0)  # a server restarting
ORDERS = [("red", "green", "blue"), ("green", "blue", "red"), ("blue", "red", "green"), ("red", "blue", "green")]


def test_a_server_that_does_not_come_back_is_given_up_or_stopped_in_one_line():
    import numpy as np

    from runtime.backends.triton_client import TritonConnection

    x = {"clip": np.zeros((1, 4, 3, 16, 16), np.float32)}
    address = TritonAddress("grpc", "127.0.0.1", free_port(), "colour")
    conn = TritonConnection(address, ReconnectPolicy(initial_delay=0.01, max_delay=0.02, max_retries=2))
    with pytest.raises(BackendError, match=r"went away and did not come back after 2 attempt\(s\)"):
        conn.infer(x, ["logits"], 1)
    stop = threading.Event()
    conn = TritonConnection(address, ReconnectPolicy(max_retries=None, timeout=None), stop)
    threading.Timer(0.3, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="stopped while waiting for the server"):
        conn.infer(x, ["logits"], 1)
    assert time.monotonic() - t0 < 3.0
    assert conn.take_outage() is None and conn.requests == 0


def test_addresses():
    assert TritonAddress.parse("triton://10.0.0.5:9001/tsi_demo") == TritonAddress("grpc", "10.0.0.5", 9001, "tsi_demo")
    assert TritonAddress.parse("triton+http://gpu-1/m") == TritonAddress("http", "gpu-1", 8000, "m")
    assert str(TritonAddress.parse("triton://h/m")) == "triton://h:8001/m"
    for bad in ("triton://h:8001/", "triton://:8001/m", "triton://h:x/m", "triton://h/a/b", "triton://h/m?v=1"):
        with pytest.raises(BackendError, match="expected triton://HOST:PORT/NAME"):
            TritonAddress.parse(bad)
    from runtime.backends import open_model

    with pytest.raises(BackendError, match="takes --backend auto or triton"):
        open_model("triton://127.0.0.1:1/m", "onnxruntime")
    with pytest.raises(BackendError, match="--providers, --threads apply to a local model"):
        open_model("triton://127.0.0.1:1/m", providers=["cpu"], threads=2)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    python, why = pytriton_python()
    if python is None:
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("triton")
    clip = make_onnx(tmp / "colour.onnx", card=make_card(frames=4, size=16, span=8))
    step = make_step_onnx(tmp / "colour.online.onnx", make_card(mode="online"))
    repo = tmp / "repo"
    write_model(repo, clip, opts=ServingOptions(kind="cpu"))
    write_model(repo, step, opts=ServingOptions(kind="cpu"))
    # the clip model's config with a card of T=8: the served model does not match its card
    bad = repo / "colour_t8"
    shutil.copytree(repo / "colour", bad)
    cfg = text_format.Parse((bad / "config.pbtxt").read_text(), pb.ModelConfig())
    cfg.name = "colour_t8"
    card = ModelCard.from_json(cfg.parameters[ONNX_METADATA_KEY].string_value)
    cfg.parameters[ONNX_METADATA_KEY].string_value = card.replace(frames=8, span_frames=16).to_json()
    (bad / "config.pbtxt").write_text(text_format.MessageToString(cfg))
    with TritonServer(python, repo, tmp / "server.log") as server:
        yield server, clip, step, tmp


def videos(tmp, frames_per_colour, n=4, stem="v"):
    return [write_video(tmp / f"{stem}{i}.mp4", [c for c in ORDERS[i] for _ in range(frames_per_colour)])
            for i in range(n)]


def run(model, sources, out, *extra):
    args = ["--model", str(model), "--headless", "--stride", "2", "--smoothing", "mean", "--smooth-n", "2",
            "--out-jsonl", str(out / "{name}.jsonl"), *extra]
    for i, v in enumerate(sources):
        args += ["--source", f"s{i}={v}"]
    rc = main(args)
    return rc, {f"s{i}": [json.loads(x) for x in (out / f"s{i}.jsonl").read_text().splitlines()]
                for i in range(len(sources))}


def same_events(got, want):
    assert got.keys() == want.keys()
    for name in want:
        g, w = got[name][:-1], want[name][:-1]
        assert [(e["label"], e["start_frame"], e["end_frame"]) for e in g] == \
            [(e["label"], e["start_frame"], e["end_frame"]) for e in w], name
        assert all(abs(a["score"] - b["score"]) < 1e-4 for a, b in zip(g, w))
        assert got[name][-1]["summary"]["inferences"] == want[name][-1]["summary"]["inferences"]


def test_four_streams_through_triton_are_one_request_and_the_in_process_events(served, tmp_path, caplog):
    server, clip, _, _ = served
    sources = videos(tmp_path, 24)
    rc, local = run(clip, sources, tmp_path / "local", "--no-realtime")
    assert rc == 0 and [e["label"] for e in local["s1"][:-1]] == list(ORDERS[1])
    for protocol in ("grpc", "http"):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="runtime"):
            rc, remote = run(server.url("colour", protocol), sources, tmp_path / protocol, "--no-realtime")
        assert rc == 0
        same_events(remote, local)
        batching = [r.getMessage() for r in caplog.records if "clips per request" in r.getMessage()]
        assert len(batching) == 1 and batching[0].endswith('clips per request {"4": 33}'), batching


def test_the_online_step_model_through_triton_gives_the_in_process_events(served, tmp_path):
    server, _, step, _ = served
    sources = videos(tmp_path, 24, n=2)
    rc, local = run(step, sources, tmp_path / "local", "--no-realtime")
    assert rc == 0 and any(e.get("label") for e in local["s0"])
    rc, remote = run(server.url("colour_online"), sources, tmp_path / "remote", "--no-realtime")
    assert rc == 0
    same_events(remote, local)


SEGMENTS = (("red", 90), ("green", 150), ("blue", 360))  # 3 s, 5 s, 12 s at 30 fps


def colour_of(start, end):
    """The segment that overlaps frames [start, end] most."""
    best, at = None, 0
    for label, n in SEGMENTS:
        overlap = min(end, at + n - 1) - max(start, at)
        if best is None or overlap > best[1]:
            best = (label, overlap)
        at += n
    return best[0]


@pytest.fixture(scope="module")
def alone(served, tmp_path_factory):
    """A server of the clip model alone (it restarts in ~4 s; the module's three models take ~11 s)."""
    shared, _, _, _ = served
    tmp = tmp_path_factory.mktemp("alone")
    shutil.copytree(shared.repo / "colour", tmp / "repo" / "colour")
    with TritonServer(shared.python, tmp / "repo", tmp / "server.log") as server:
        yield server


def test_over_http_the_request_sent_while_the_server_is_down_gets_its_logits(alone):
    import numpy as np

    from runtime.backends import open_model

    backend = open_model(alone.url("colour", "http"), reconnect=SOON)
    clips = np.random.default_rng(0).random((3, 4, 3, 16, 16), dtype=np.float32)
    before = backend.infer(clips)
    alone.kill()
    restart = threading.Thread(target=lambda: (time.sleep(0.5), alone.start()))
    restart.start()
    try:
        during = backend.infer(clips)  # sent while the server is down: waited for, sent again
    finally:
        restart.join()
    np.testing.assert_array_equal(during, before)
    outage = backend.take_outage()
    assert outage is not None and outage.end - outage.start > 0.5 and outage.attempts >= 2
    assert backend.take_outage() is None
    backend.close()


def test_the_server_killed_and_restarted_mid_run_is_a_gap_for_every_stream(alone, tmp_path):
    server = alone
    frames = [label for label, n in SEGMENTS for _ in range(n)]
    sources = [write_video(tmp_path / f"live{i}.mp4", frames) for i in range(4)]
    times = {}

    def outage():
        time.sleep(1.5)  # the streams are in the red segment
        times["killed"] = time.monotonic()
        server.kill()
        server.start()
        times["up"] = time.monotonic()

    t = threading.Thread(target=outage, daemon=True)
    t.start()
    try:
        rc, out = run(server.url("colour"), sources, tmp_path / "out", "--reconnect-attempts", "inf",
                      "--reconnect-limit", "60")
    finally:
        t.join()
    assert rc == 0
    for name, lines in out.items():
        kinds = [("gap" if "gap" in x else "summary" if "summary" in x else x["label"]) for x in lines]
        assert kinds.count("gap") == 1 and kinds[-1] == "summary", (name, kinds)
        i = kinds.index("gap")
        gap, before, after = lines[i]["gap"], lines[:i], lines[i + 1:-1]
        assert gap["reason"] == "server_down" and gap["attempts"] >= 1, gap
        assert gap["duration_s"] >= (times["up"] - times["killed"]) - 0.5, (gap, times)
        assert [e["label"] for e in before] == ["red"], (name, kinds)
        assert after and after[-1]["label"] == "blue", (name, kinds)
        for e in before + after:  # each event is the colour of its frames
            assert e["label"] == colour_of(e["start_frame"], e["end_frame"]), (name, e)
        assert before[0]["end_s"] <= gap["start_s"] + 0.2  # closed at the outage ...
        assert after[0]["start_frame"] >= gap["frame"] + 7  # ... and a fresh window after it
        assert lines[-1]["summary"]["gaps"] == 1


def test_a_wrong_name_a_model_that_is_not_its_card_and_no_server_are_one_line(served, tmp_path, caplog):
    server, _, _, _ = served
    video = write_video(tmp_path / "v.mp4", ["red"] * 16)
    cases = [(server.url("nope"), "cannot serve this model (Request for unknown model: 'nope' is not found)"),
             (server.url("colour_t8"), "does not match its card"),
             (f"triton://127.0.0.1:{free_port()}/colour", "the server is not reachable")]
    for model, message in cases:
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="runtime"):
            rc = main(["--model", model, "--source", str(video), "--headless", "--no-realtime"])
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert rc == 2 and len(errors) == 1 and message in errors[0] and "\n" not in errors[0], (model, errors)


def test_a_server_that_comes_back_with_another_card_is_refused(alone):
    import numpy as np

    from runtime.backends import open_model
    from runtime.card import CardError

    backend = open_model(alone.url("colour"), reconnect=SOON)
    clips = np.zeros((1, 4, 3, 16, 16), np.float32)
    backend.infer(clips)
    alone.kill()
    config = alone.repo / "colour" / "config.pbtxt"
    cfg = text_format.Parse(config.read_text(), pb.ModelConfig())
    card = ModelCard.from_json(cfg.parameters[ONNX_METADATA_KEY].string_value)
    cfg.parameters[ONNX_METADATA_KEY].string_value = card.replace(labels=("rot", "gruen", "blau")).to_json()
    config.write_text(text_format.MessageToString(cfg))
    restart = threading.Thread(target=lambda: (time.sleep(0.5), alone.start()))
    restart.start()
    try:
        with pytest.raises(CardError, match="came back with another model card"):
            backend.infer(clips)  # sent while the server is down; the card is read again once it is back
    finally:
        restart.join()
    backend.close()


def test_a_stop_while_the_server_is_down_ends_the_streams_as_stopped(alone, tmp_path):
    from runtime.plan import LiveOptions
    from runtime.run import run_live

    sources = [write_video(tmp_path / f"v{i}.mp4", ["red"] * 300) for i in range(2)]
    stop = threading.Event()
    opts = LiveOptions(model=alone.url("colour"), sources=tuple(f"s{i}={v}" for i, v in enumerate(sources)),
                       headless=True, out_jsonl=str(tmp_path / "{name}.jsonl"), reconnect_attempts=None)
    killer = threading.Thread(target=lambda: (time.sleep(1.0), alone.kill(), time.sleep(1.5), stop.set()))
    killer.start()
    t0 = time.monotonic()
    try:
        summaries = run_live(opts, stop=stop)
    finally:
        killer.join()
    assert time.monotonic() - t0 < 6.0  # not the 10 s of video: the wait for the server ended at the stop
    assert [s.reason for s in summaries] == ["stopped", "stopped"] and all(s.error is None for s in summaries)
    lines = [json.loads(x) for x in (tmp_path / "s0.jsonl").read_text().splitlines()]
    assert lines[-1]["summary"]["reason"] == "stopped"
