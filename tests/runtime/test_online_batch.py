"""Online steps batched across streams (a ``--dynamic-batch`` step graph): one inference per tick
for N streams, each row equal to that stream stepped alone (onnxruntime, OpenVINO and PyTorch's
``tsi.streaming``), whatever each stream's history; ``export.stream_export.check_batched_step``;
``tsi-live`` on several streams giving what each stream gives alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from export.stream_export import BATCH_TOL, check_batched_step
from runtime.backends.onnxruntime_step import OnnxRuntimeStep
from runtime.common.errors import ExportError

HISTORY = (0, 1, 3, 6)  # frames each stream has already stepped when the batch starts
TICKS, RESET_AT, RESET_STREAM = 4, 2, 3  # stream 3 is reset (fresh zero state) before tick 2
STATE_RTOL = 1e-5  # the states (activations, up to ~100 here) against each alone, relative to their scale


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """(the step graph with a dynamic batch, the same model's batch-1 graph, the causal model)."""
    from export.friendly import export_friendly_model
    from export.stream_export import export_step_onnx
    from tests.export.helpers import make_causal_checkpoint

    tmp = tmp_path_factory.mktemp("online_batch")
    ckpt, model = make_causal_checkpoint(tmp / "m.pt")
    friendly, card = export_friendly_model(ckpt)
    dynamic = export_step_onnx(friendly, card, tmp / "m.online.onnx", source_sha256="t", dynamic_batch=True)
    static = export_step_onnx(friendly, card, tmp / "s.online.onnx", source_sha256="t")
    return dynamic, static, model


def frames(n, seed):
    return np.random.default_rng(seed).standard_normal((n, 3, 64, 64)).astype(np.float32)


class Spy:
    """An onnxruntime session (``run``) or an OpenVINO infer request (``infer``) that counts its
    calls and the batch of each."""

    def __init__(self, target):
        self.target, self.batches = target, []

    def run(self, outputs, feeds, *a, **k):
        self.batches.append(len(feeds["frame"]))
        return self.target.run(outputs, feeds, *a, **k)

    def infer(self, feeds, *a, **k):
        self.batches.append(len(feeds["frame"]))
        return self.target.infer(feeds, *a, **k)

    def __getattr__(self, name):
        return getattr(self.target, name)


def host_step(backend, path):
    """(the host step model of ``backend`` on ``path``, its inference calls counted)."""
    if backend == "onnxruntime":
        step = OnnxRuntimeStep(path)
        spy = step.session = Spy(step.session)
    else:
        from runtime.backends.openvino_step import OpenVINOStep

        step = OpenVINOStep(path)
        spy = step._request = Spy(step._request)
    return step, spy


def batched_against_alone(one, batch, new_state, reset):
    """Streams with the histories of HISTORY (different content, seeds), then TICKS ticks stepped
    as one batch (``batch(frames, states)``) and each alone (``one(frame, state)``), stream
    RESET_STREAM reset before tick RESET_AT. Returns the batched and the alone logits per tick and
    the states after each tick, both ways."""
    def copy(state):  # a snapshot: a reset zeroes a host state in place
        return {k: v.copy() if isinstance(v, np.ndarray) else v.clone() for k, v in state.items()}

    n = len(HISTORY)
    content = [frames(h + TICKS, seed=10 + i) for i, h in enumerate(HISTORY)]
    together, alone = [], []
    for i, h in enumerate(HISTORY):
        s = new_state()
        for f in content[i][:h]:
            _, s = one(f, s)
        together.append(s)
        alone.append(copy(s))
    out = []
    for t in range(TICKS):
        if t == RESET_AT:
            together[RESET_STREAM], alone[RESET_STREAM] = reset(together[RESET_STREAM]), new_state()
        tick = np.stack([content[i][HISTORY[i] + t] for i in range(n)])
        primed_in = [s.get("primed") for s in together]
        logits, together = batch(tick, together)
        ref = []
        for i in range(n):
            lg, alone[i] = one(tick[i], alone[i])
            ref.append(lg)
        out.append((np.asarray(logits), np.stack(ref), [copy(s) for s in together], [copy(s) for s in alone],
                    primed_in))
    return out


def assert_rows_equal(results):
    for t, (logits, ref, together, alone, primed_in) in enumerate(results):
        assert logits.shape == ref.shape and np.abs(logits - ref).max() <= BATCH_TOL, t
        for a, b in zip(together, alone):
            assert a.keys() == b.keys()
            for k in a:
                x, y = np.asarray(a[k]), np.asarray(b[k])
                assert np.abs(x - y).max() <= STATE_RTOL * max(1.0, float(np.abs(y).max())), (t, k)
        # the histories differ: so do the rows (a batch that mixed or repeated rows would fail above)
        assert len({np.round(r, 3).tobytes() for r in logits}) == len(HISTORY), t
        # primed = 0 (zero motion) on a stream's first frame: stream 0's at tick 0, the reset
        # stream's at the reset; 1 everywhere else
        primed = [float(np.asarray(p).ravel()[0]) for p in primed_in]
        first = [HISTORY[i] + t == 0 or (i == RESET_STREAM and t == RESET_AT) for i in range(len(HISTORY))]
        assert primed == [0.0 if f else 1.0 for f in first], t


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_host_batched_step_equals_each_stream_alone_in_one_inference_per_tick(graphs, backend):
    dynamic, static, _ = graphs
    (step, spy), (ref, _) = host_step(backend, dynamic), host_step(backend, dynamic)
    assert step.fixed_batch is None
    calls = []

    def batch(tick, states):
        before = len(spy.batches)
        logits, new = step.run_batch(tick, states)
        calls.append(spy.batches[before:])
        return logits, new

    results = batched_against_alone(ref.run, batch, ref.new_state, step.reset_state)
    assert_rows_equal(results)
    assert calls == [[len(HISTORY)]] * TICKS  # one inference of N rows per tick
    # the batch-1 graph is the per-stream route: N inferences of one row each per tick
    one, spy1 = host_step(backend, static)
    assert one.fixed_batch == 1
    tick = frames(len(HISTORY), seed=1)
    logits, _ = one.run_batch(tick, [one.new_state() for _ in HISTORY])
    assert spy1.batches == [1] * len(HISTORY)
    np.testing.assert_allclose(logits, step.run_batch(tick, [step.new_state() for _ in HISTORY])[0], atol=1e-4)


def test_pytorch_streaming_batch_equals_each_stream_alone(graphs):
    """In float64: float32 CPU convolutions round differently at batch 4 than at batch 1, and the
    recurrence through the state grows that to a few 1e-6 of these logits within 4 ticks (as
    close to BATCH_TOL as kernel noise, not the batching, would bring it); float64 leaves the
    batching alone to test."""
    import copy

    from tsi.streaming import StreamingTSI

    step = StreamingTSI(copy.deepcopy(graphs[2]).double().eval())

    def one(frame, state):
        logits, new = step.step(torch.from_numpy(frame[None]).double(), state)
        return logits[0].numpy(), new

    def batch(tick, states):
        joined = {k: torch.cat([s[k] for s in states]) for k in step.state_names}
        logits, new = step.step(torch.from_numpy(tick).double(), joined)
        return logits.numpy(), [{k: v[i:i + 1] for k, v in new.items()} for i in range(len(states))]

    def zero():
        return step.zero_state(dtype=torch.float64)

    with torch.no_grad():
        results = batched_against_alone(one, batch, zero, lambda s: zero())
    assert_rows_equal([(lg, ref, [{k: v.numpy() for k, v in s.items()} for s in tog],
                        [{k: v.numpy() for k, v in s.items()} for s in al], primed)
                       for lg, ref, tog, al, primed in results])


def row_mixing(path, out):
    """The step graph with its logits pulled halfway to the batch mean: a batch of one is
    unchanged (its mean is itself), a batch of several is wrong."""
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load(str(path))
    node = next(n for n in proto.graph.node if "logits" in n.output)
    node.output[list(node.output).index("logits")] = "logits_raw"
    proto.graph.initializer.append(numpy_helper.from_array(np.array(0.5, np.float32), "half"))
    proto.graph.node.extend([
        helper.make_node("ReduceMean", ["logits_raw"], ["batch_mean"], axes=[0], keepdims=1),
        helper.make_node("Sub", ["batch_mean", "logits_raw"], ["to_mean"]),
        helper.make_node("Mul", ["to_mean", "half"], ["pulled"]),
        helper.make_node("Add", ["logits_raw", "pulled"], ["logits"]),
    ])
    onnx.save(proto, str(out))
    return out


def test_check_batched_step_passes_a_batched_graph_and_fails_the_others(graphs, tmp_path):
    dynamic, static, _ = graphs
    streams = np.stack([frames(5, seed=20 + i) for i in range(3)])
    assert 0.0 <= check_batched_step(dynamic, streams) <= BATCH_TOL
    with pytest.raises(ExportError, match="batch 1, not a dynamic batch: export it with --dynamic-batch"):
        check_batched_step(static, streams)
    with pytest.raises(ExportError, match=r"differs from the per-stream steps by .* \(tolerance 1e-05\)"):
        check_batched_step(row_mixing(dynamic, tmp_path / "mix.onnx"), streams)
    with pytest.raises(ValueError, match=r"streams >= 2"):
        check_batched_step(dynamic, streams[:1])


def test_tsi_live_on_four_streams_batched_gives_what_each_gives_alone(graphs, tmp_path, monkeypatch):
    """The live runtime (``run_live``, offline) on 4 files of different lengths and content, on the
    dynamic-batch graph: the events and counts of each stream are those of the stream run alone,
    and every tick is one session.run over the streams still running."""
    import onnxruntime

    from runtime.plan import LiveOptions
    from runtime.run import run_live
    from tests.export.helpers import write_video

    dynamic, _, _ = graphs
    lengths = (20, 24, 28, 34)
    videos = [write_video(tmp_path / f"v{i}.mp4", frames=n, seed=30 + i, direction=1 - 2 * (i % 2))
              for i, n in enumerate(lengths)]
    batches = []
    real_run = onnxruntime.InferenceSession.run

    def spy(self, outputs, feeds, *a, **k):
        batches.append(len(feeds["frame"]))
        return real_run(self, outputs, feeds, *a, **k)

    monkeypatch.setattr(onnxruntime.InferenceSession, "run", spy)

    def live(sources, out):
        return run_live(LiveOptions(model=str(dynamic), sources=tuple(map(str, sources)), headless=True,
                                    realtime=False, stride=2, threshold=0.0, out_jsonl=str(out)))

    def events(path):  # the events (the last line is the run summary)
        return [json.loads(x) for x in path.read_text().splitlines()][:-1]

    together = live(videos, tmp_path / "together" / "{name}.jsonl")  # {name}: the file's stem
    calls = list(batches)
    # stride 2 of frame step 4: 2 phases, a step every 2 frames; the streams step in lock-step, each
    # step a row per track (the default memory, 3T/2 = 6 at T = 4: 2 tracks)
    assert [s.inferences for s in together] == [n // 2 for n in lengths]
    assert calls == [2 * sum(n > 2 * t for n in lengths) for t in range(max(lengths) // 2)]
    for video, s in zip(videos, together):
        batches.clear()
        (alone,) = live([video], tmp_path / "alone" / f"{video.stem}.jsonl")
        assert batches == [2] * alone.inferences
        assert (s.reason, s.frames, s.inferences, s.events) == ("end_of_stream", alone.frames, alone.inferences,
                                                                 alone.events)
        got = events(tmp_path / "together" / f"{video.stem}.jsonl")
        want = events(tmp_path / "alone" / f"{video.stem}.jsonl")
        assert len(got) == len(want) == s.events >= 1
        for a, b in zip(got, want):
            assert a.pop("score") == pytest.approx(b.pop("score"), abs=1e-5) and a == b


# -- the TensorRT step engine of the dynamic-batch graph (TensorRT double + cudart stand-in) -------
def trt_engine(graph, out, monkeypatch, profile):
    from export.build_engine import main as build_main
    from tests import trt_double
    from tests.runtime.fake_cudart import CudaRt

    cudart, world = CudaRt(), trt_double.World()
    trt_double.install(monkeypatch, "11.1", world, cudart=cudart)
    assert build_main(["--onnx", str(graph), "--out", str(out), "--batch", profile]) == 0
    return out / f"{graph.stem}.fp32.engine", cudart, world


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_tensorrt_batched_steps_run_each_tick_in_chunks_of_the_profile_and_equal_onnxruntime(
        graphs, tmp_path, monkeypatch, cuda_graph):
    """3 streams x 3 forgetting tracks (memory 5 at T = 4) = 9 rows a tick on an engine of profile
    1..4: 3 executions a tick (4 + 4 + 1), the states gathered and scattered on the GPU (no state
    crosses to the host), every output equal to onnxruntime's stream alone; all buffers freed."""
    from runtime.backends import open_model
    from runtime.frames import Frame
    from runtime.online import OnlineRecognizer, OnlineWindow, StepBatch

    dynamic, _, _ = graphs
    engine, cudart, world = trt_engine(dynamic, tmp_path / "eng", monkeypatch, "1,4,4")
    step = open_model(engine, cuda_graph=cuda_graph)
    assert (step.fixed_batch, step.max_batch) == (None, 4)
    ctx = world.engines[-1]._values["_contexts"][0]
    fs, memory, ticks = step.card.frame_step, 5, 14
    windows = [OnlineWindow(step, memory=memory) for _ in range(3)]
    batch = StepBatch(step, len(windows))
    rng = np.random.default_rng(7)
    streams = [list(rng.integers(0, 256, (ticks, 72, 88, 3), dtype=np.uint8)) for _ in windows]
    got = [[] for _ in windows]
    for k in range(ticks):
        for w, s in zip(windows, streams):
            assert w.push(Frame(k * fs, 0.0, k * fs / 30.0, s[k])).due
        executed, cudart.ops = ctx._values["_executed"], []
        logits, carried = batch(windows)
        for i, w in enumerate(windows):
            got[i].append(w.scores(logits[i], carried[i]))
        ops = [op for op in cudart.ops if op not in ("memset", "sync")]  # (a due reset: memset, sync)
        runs = ops.count("graph") if cuda_graph else ctx._values["_executed"] - executed
        assert runs == 3 and ops.count("h2d") == 3 and ops.count("d2h") == 3, (k, cudart.ops)
        n_state = len(step.state_spec)
        assert ops.count("d2d") == 2 * 8 * n_state  # the two chunks of 4 gathered and scattered
    if cuda_graph:
        assert ("rows", 4) in step._graphs
    for s, g in zip(streams, got):
        alone = OnlineRecognizer(OnnxRuntimeStep(dynamic), memory=memory)
        for k, f in enumerate(s):
            want = alone.push(f, index=k * fs)
            assert (want is None) == (g[k] is None)
            if want is not None:
                np.testing.assert_allclose(g[k], want, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="distinct, open states"):
        state = step.new_state()
        step.run_batch(frames(2, 0), [state, state])
    step.close()
    assert cudart.buffers == {}


def test_tensorrt_step_engine_whose_profile_cannot_take_one_stream_is_refused(graphs, tmp_path, monkeypatch):
    from runtime.backends import open_model
    from runtime.card import CardError

    engine, cudart, _ = trt_engine(graphs[0], tmp_path / "eng", monkeypatch, "2,4,4")
    with pytest.raises(CardError, match="profile starts at batch 2; a step engine must take batch 1"):
        open_model(engine)
    assert cudart.buffers == {}
