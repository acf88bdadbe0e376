"""Write ``docs/results.md``, the measured results, from the files the benchmarks wrote (no hand-typed figures).

    python -m benchmarks.suite.results_doc [--results benchmarks/results] [--out docs/results.md] [--check]

Each table is rendered from the JSON that measured it (``accuracy_latency.json`` through
``benchmarks.suite.readme_section``; ``synthetic_motion*.json``, ``online_accuracy.json``,
``online_sequences_seed*.json``, ``multistream.json``, ``data_loading.json`` here). The command
of each is read from the ``.md`` the same run wrote beside its JSON, and linked. Results with only a
``.md`` are listed with their command and a link. ``--check`` writes nothing and exits 1 when the file
differs from what the JSONs give (the test ``tests/benchmarks/test_results_doc.py`` does the same).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from benchmarks.common.results import command_of
from benchmarks.suite.readme_section import section as accuracy_latency_section
from benchmarks.suite.report import FORMAT

log = logging.getLogger(__name__)

RESULTS = Path("benchmarks/results")
OUT = Path("docs/results.md")
COMMAND = "python -m benchmarks.suite.results_doc"

# runs linked rather than rendered, (file, what it measured): their only record is the .md their command
# wrote, or (the quick and rerun accuracy-vs-latency runs) a side run of a benchmark rendered above
MD_ONLY = [
    ("online.md", "online step vs sliding window: MACs, latency and `tsi-live` frames/s per output"),
    ("online_streams.md", "8 online streams at 30 fps in `tsi-live`: batched steps vs a step per stream"),
    ("online_streams_stride4.md", "the same at the default online stride (the frame step)"),
    ("int8_accuracy.md", "INT8 Q/DQ vs FP32 of the demo model in onnxruntime, per calibration method"),
    ("int8_bare_build.md", "INT8 Q/DQ of the bare `python export/build_engine.py --int8` vs FP32 (entropy, before "
                           "the choice by measurement)"),
    ("int8_bare_demo.md", "INT8 Q/DQ of the bare `--int8` (chosen by measurement) vs FP32: the demo model"),
    ("int8_bare_hard.md", "INT8 Q/DQ of the bare `--int8` vs FP32: TSI-R18 fine-tuned on the hard setting"),
    ("int8_bare_unseen.md", "INT8 Q/DQ of the bare `--int8` vs FP32: TSI-R18 fine-tuned on the unseen generator's data"),
    ("int8_qat_unseen.md", "INT8 Q/DQ vs FP32 after quantization-aware fine-tuning (`tsi-train --qat`) of the model "
                           "of `int8_bare_unseen.md`"),
    ("int8_bare_unseen_init.md", "INT8 Q/DQ of the bare `--int8` vs FP32: TSI-R18 fine-tuned on the unseen "
                                 "generator's data from the shipped motion initialisation"),
    ("unseen_motion_scratch_baselines.md", "TSN-R18 and TSM-R18 from scratch on the unseen generator's data"),
    ("unseen_motion_tsn_init.md", "TSN-R18 from its shipped motion initialisation on the unseen generator's data"),
    ("unseen_motion_tsi_init.md", "training on the unseen generator's data from the shipped motion initialisation"),
    ("unseen_motion_tsi_init_square.md", "TSI-R18 from the shipped motion initialisation on the unseen generator's "
                                         "data, `--resize square`"),
    ("unseen_motion_tsi_scratch_square.md", "TSI-R18 from scratch on the unseen generator's data, `--resize square`"),
    ("unseen_motion_tsn_init_square.md", "TSN-R18 from its shipped motion initialisation on the unseen generator's "
                                         "data, `--resize square`"),
    ("unseen_motion_tsi_init_mix.md", "TSI-R18 from the shipped motion initialisation on the unseen generator's data, "
                                      "`--resize square --mix-background 0.5`"),
    ("unseen_motion_tsi_scratch_mix.md", "TSI-R18 from scratch on the unseen generator's data, `--resize square "
                                         "--mix-background 0.5`"),
    ("unseen_motion_scratch_baselines_square.md", "TSN-R18 and TSM-R18 from scratch on the unseen generator's data, "
                                                  "`--resize square`"),
    ("unseen_motion_tsm_init_square.md", "TSM-R18 from its shipped motion initialisation on the unseen generator's "
                                         "data, `--resize square`"),
    ("cpu_attention_log2_scores.md", "the CPU attention study with the kernel of commit f2be834, before its "
                                     "exponent became one FMA: the same timings, PyTorch's logits 10.8 of 420 from onnxruntime's"),
    ("recipe_easy_scratch.md", "the README's small-data recipe on the easy setting, TSN/TSM/TSI from scratch"),
    ("recipe_easy_init.md", "the same from the motion initialisations v1 (shipped until 2026-12-08)"),
    ("recipe_hard_scratch.md", "the README's small-data recipe on the hard setting, TSN/TSM/TSI from scratch"),
    ("recipe_hard_init.md", "the same from the motion initialisations v1"),
    ("unseen_b_init.md", "the README's small-data recipe on the unseen generator's scene b, TSN/TSM/TSI from the "
                         "motion initialisations v1"),
    ("unseen_b_scratch.md", "the same from scratch"),
    ("unseen_a_init.md", "the README's small-data recipe on the unseen generator's scene a, TSN/TSM/TSI from the "
                         "motion initialisations v1, training sampling the card's span"),
    ("unseen_a_scratch.md", "the same from scratch"),
    ("recipe_easy_scratch_diff.md", "`--recipe small` from scratch (frame differences, lr 0.0149) on the easy setting, "
                                    "TSN/TSM/TSI"),
    ("recipe_hard_scratch_diff.md", "the same on the hard setting"),
    ("unseen_a_scratch_diff_lr.md", "the same on the unseen generator's scene a, TSI"),
    ("unseen_a_scratch_diff_lr_baselines.md", "the same on scene a, TSN and TSM"),
    ("unseen_b_scratch_diff_lr.md", "the same on scene b, TSI"),
    ("unseen_b_scratch_diff_lr_tsn_r18.md", "the same on scene b, TSN"),
    ("unseen_b_scratch_diff_lr_tsm_r18.md", "the same on scene b, TSM"),
    ("unseen_a_corpus_init.md", "the small recipe on scene a, TSI/TSN/TSM from the motion-corpus initialisations "
                                "(v2, shipped since 2026-12-08)"),
    ("unseen_b_corpus_init.md", "the same on scene b"),
    ("recipe_easy_corpus_init.md", "the same on the easy setting, TSI"),
    ("recipe_hard_corpus_init.md", "the same on the hard setting, TSI"),
    ("recipe_easy_corpus_init_tsm_r18.md", "the same on the easy setting, TSM"),
    ("recipe_hard_corpus_init_tsm_r18.md", "the same on the hard setting, TSM"),
    ("recipe_settings.md", "one recipe on the easy, hard and new (scenes a and b) settings × scratch (frames and frame "
                           "differences) and the initialisations v1 and v2 × TSN/TSM/TSI (from the tables above)"),
    ("int8_bare_unseen_square.md", "INT8 Q/DQ of the bare `--int8` vs FP32: TSI-R18 from the motion initialisation "
                                   "on the unseen generator's data, `--resize square`"),
    ("cpu_int8_demo.md", "INT8 for CPUs (`--int8-target cpu`, NNCF, OpenVINO IR) vs FP32 on OpenVINO: the demo "
                         "model's latency at batch 1, one thread"),
    ("cpu_int8_scene_b.md", "INT8 for CPUs vs FP32 on OpenVINO: TSI-R18 trained on the unseen generator's "
                            "scene b, top-1 on its 144 validation clips through the runtime (FP32 87.5, INT8 87.5, 1.39x faster)"),
    ("cpu_int8_scene_b_vnni_build.md", "the same with `--int8-cpu-vnni` (full 8-bit weights): INT8 87.5, 1.38x faster"),
    ("cpu_int8_demo_vnni_build.md", "the demo built with `--int8-cpu-vnni` for a CPU with VNNI: INT8 1.36x faster "
                                    "than FP32, top-1 on the 220 validation clips 0.9 points lower"),
    ("cpu_int8_demo_vnni.md", "the same on another AMD EPYC, with AVX-512 and VNNI: INT8 "
                              "1.38x faster than FP32, top-1 on the 220 validation clips 1.8 points lower"),
    ("cpu_attention.md", "the saliency attention on a CPU: the C++ kernel vs torch, onnxruntime (the MatMul form, "
                         "in blocks of query rows, MultiHeadAttention) at TSI-R50's stages; TSI/TSN in PyTorch "
                         "eager and in onnxruntime (standard and block graphs)"),
    ("cpu_attention_avx2_form.md", "the attention alone again, the kernel built for AVX2 (`x86-64-v3`) on the "
                                   "same AVX-512 CPU: its 8-wide form"),
    ("cpu_backends.md", "TSI/TSN on onnxruntime and OpenVINO before and after the runtime's CPU attention, one "
                        "run, with per-operation profiles; TSN-R50 and TSI-R50 INT8 for CPUs against FP32"),
    ("fp16_converter.md", "the FP16 graph: `calib.fp16` vs onnxruntime's float16 converter alone"),
    ("fp16_converter_handwritten.md", "the same, when `calib.fp16` was hand-written (commit named in the file)"),
    ("crop_coverage.md", "how often the crop loses the acting object (short-side vs square resize)"),
    ("camera_share.md", "how much of a frame-difference input is the camera: raw, gain out, best shift out"),
    ("synthetic_motion_hard_default_recipe.md", "the hard setting with the easy recipe unchanged (runs stopped)"),
    ("accuracy_latency_quick.md", "the `--quick` accuracy-vs-latency run"),
    ("r50_t8_rerun/accuracy_latency.md", "the R50 T=8 TSI/TSN rows again, other random weights"),
    ("openvino_rows/accuracy_latency.md", "the OpenVINO FP32 and INT8 (NNCF) rows beside onnxruntime's, demo and "
                                          "R50 at T=8, after the runtime's CPU attention"),
]

def _load(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


class _Doc:
    """Links relative to the output file's folder; the source line of each section."""

    def __init__(self, results: Path, out_dir: Path):
        self.results, self.out_dir = results, out_dir

    def link(self, name: str) -> str:
        rel = os.path.relpath(self.results / name, self.out_dir).replace(os.sep, "/")
        return f"[`{name}`]({rel})"

    def source(self, json_name: str, md_name: str | None = None) -> str:
        md_name = md_name or json_name.removesuffix(".json") + ".md"
        cmd = command_of(self.results / md_name)
        ran = f"`{cmd}`" if cmd else "named in the table's file"
        return f"From {self.link(json_name)}; command: {ran}; full table: {self.link(md_name)}."


def _absent(title: str, doc: _Doc, name: str) -> list[str]:
    return [title, "", f"Not measured: {doc.link(name)} is absent.", ""]


def _pct(x) -> str:
    return "—" if x is None else f"{x:.1f}"


def synthetic(doc: _Doc) -> list[str]:
    lines = ["## The synthetic motion benchmark", "",
             "Same budget for every model (the demo budget: 20 epochs, AdamW, batch 8, T=8, 64², ResNet-18 at half "
             "width, from scratch, CPU); validation 1 view. Train times are wall-clock on a shared CPU, not a speed "
             "comparison. What the data is: [training.md](training.md#the-synthetic-motion-benchmark).", ""]
    for name, title in (("synthetic_motion.json", "Easy setting"), ("synthetic_motion_hard.json", "Hard setting")):
        rows = _load(doc.results / name)
        if not rows:
            lines += _absent(f"### {title}", doc, name)
            continue
        epochs = any("epochs" in r for r in rows)  # older runs did not record it (their .md states the budget)
        lines += [f"### {title}", "", doc.source(name), "",
                  "| model | " + "epochs | " * epochs + "top-1 | top-5 | top-1, reversed-pair classes | "
                  "reversed pairs told apart (chance 50%) | train time |", "|---|" + "---|" * (5 + epochs)]
        for r in rows:
            ep = f"{r.get('epochs', '—')} | " if epochs else ""
            lines.append(f"| {r['arch']} | {ep}{_pct(r['top1'])} | {_pct(r['top5'])} | "
                         f"{_pct(r['reversed_pairs_top1'])} | {_pct(r['pair_direction'])} | {r['train_s'] / 60:.1f} min |")
        by = {r["arch"]: r["top1"] for r in rows}
        tsi = next((a for a in by if a.startswith("tsi")), None)
        if tsi:
            lines += ["", f"{tsi} against " + ", ".join(f"{a}: {by[tsi] - by[a]:+.1f} points" for a in by if a != tsi)
                      + f" (top-1, {rows[0]['clips']} clips)."]
        lines.append("")
    return lines


def _clip_rows(acc: list[dict]) -> list[str]:
    lines = []
    for a in acc:
        top1 = [r["top1"] for r in a["runs"]]
        pairs = [r["pair_direction"] for r in a["runs"]]
        lines.append(f"| {a['arch']} | {' / '.join(_pct(t) for t in top1)} | {sum(top1) / len(top1):.1f} | "
                     f"{sum(pairs) / len(pairs):.1f} |")
    return lines


def online(doc: _Doc) -> list[str]:
    accs = [(name, _load(doc.results / name)) for name in ("online_accuracy.json", "online_warm_accuracy.json")]
    accs = [(name, acc) for name, acc in accs if acc]
    if not accs:
        return _absent("## Online (causal) and offline models", doc, "online_accuracy.json")
    lines = ["## Online (causal) and offline models", "",
             "The demo budget, each model trained once per seed (`<arch>-causal`: trained with `--causal`, run as a "
             "step graph; `-warm`: with `--warm-state` too), then run by `tsi-live` over continuous videos. How the "
             "online model works and what these figures say: [online.md](online.md).", ""]
    for name, acc in accs:
        seeds = [Path(d).name for d in acc[0]["dirs"]]
        lines += [doc.source(name), "",
                  "| model | clip top-1, " + " / ".join(seeds) + " | mean | reversed pairs told apart (mean) |",
                  "|---|---|---|---|", *_clip_rows(acc), ""]
    seqs = sorted(doc.results.glob("online_sequences_seed*.json"))
    if seqs:
        runs = {p.stem.removeprefix("online_sequences_"): _load(p) for p in seqs}
        keys = list(dict.fromkeys((r["arch"], r.get("memory")) for rows in runs.values() for r in rows))
        lines += ["The runs in the live runtime: "
                  + ", ".join(f"{doc.link(p.name)} (command: `{command_of(p.with_suffix('.md')) or 'in the file'}`)"
                              for p in seqs) + ".", "",
                  "| model | runtime | actions recognised, " + " / ".join(runs) + " (all) | events that matched no "
                  "action | of them in the idle stretch |", "|---|---|---|---|---|"]
        for arch, memory in keys:
            live = [next((r for r in rows if (r["arch"], r.get("memory")) == (arch, memory)), None)
                    for rows in runs.values()]
            ok = [x for x in live if x]
            mode = ("sliding window (clip graph)" if ok[0]["mode"] != "online" else
                    "online, unbounded" if memory is None else
                    f"online, memory {ok[0].get('bound', memory)}{' (auto)' if memory == 'auto' else ''}"
                    + (f", {ok[0]['tracks']} tracks" if ok[0].get("tracks") else ""))
            rec = " / ".join(f"{x['recognised']}/{x['segments']}" if x else "—" for x in live)
            rec += f" ({sum(x['recognised'] for x in ok)}/{sum(x['segments'] for x in ok)})"
            spur = " / ".join(f"{x['unmatched_events']} of {x['events']}" if x else "—" for x in live)
            idle = " / ".join(str(x.get("events_in_idle", "—")) if x else "—" for x in live)
            lines.append(f"| {arch} | {mode} | {rec} | {spur} | {idle} |")
        lines.append("")
    lines += [f"Cost per output, online against the sliding window: {doc.link('online.md')} "
              f"(`{command_of(doc.results / 'online.md') or 'named in the file'}`; no JSON).", ""]
    return lines


def multistream(doc: _Doc) -> list[str]:
    data = _load(doc.results / "multistream.json")
    if not data:
        return _absent("## Many streams: one process (batched) against separate processes", doc, "multistream.json")
    meta, rows = data["meta"], data["runs"]
    cores = meta["cpu_count"]
    busy = [r for r in rows if r["loadavg_before"][0] > cores]
    lines = ["## Many streams: one process (batched) against separate processes", "",
             doc.source("multistream.json") + f" Model `{meta['model']}`, onnxruntime {meta['onnxruntime']} CPU, "
             f"{cores} cores, stride {meta['stride']}; each stream a 30 fps video played in real time for "
             f"{meta['seconds']:g} s; the median of {meta['repeats']} interleaved runs. How to run many streams: "
             "[runtime-service.md](runtime-service.md).", "",
             "| streams | setup | windows/s | frames dropped | end-to-end p50 / p95 ms | windows/s of each repeat |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if not r["realtime"]:
            continue
        setup = "one process" if r["processes"] == 1 else f"{r['processes']} processes"
        lines.append(f"| {r['streams']} | {setup} | {r['windows_per_s']} | {r['dropped']} of {r['read']} "
                     f"({100 * r['dropped'] / max(1, r['read']):.0f}%) | {r['e2e_p50_ms']:.0f} / {r['e2e_p95_ms']:.0f} | "
                     f"{', '.join(map(str, r['repeats']))} |")
    lines += ["", f"Load: {len(busy)} of {len(rows)} runs started with a 1-minute load average above the {cores} cores "
              "(1-minute load " + f"{min(r['loadavg_before'][0] for r in rows)}–{max(r['loadavg_before'][0] for r in rows)}"
              "): the absolute figures are disturbed; compare the two setups of one stream count. The offline runs "
              "(every frame, as fast as possible) are in the full table.", ""]
    return lines


def data_loading(doc: _Doc) -> list[str]:
    data = _load(doc.results / "data_loading.json")
    if not data:
        return _absent("## Data loading: video files against frame folders", doc, "data_loading.json")
    by: dict[str, dict[int, dict]] = {}
    for r in data["rows"]:
        by.setdefault(r["source"], {})[r["workers"]] = r
    workers = sorted({r["workers"] for r in data["rows"]})
    loads = [x for r in data["rows"] for x in (r["loader_load_before"][0], r["train_load_after"][0])]
    lines = ["## Data loading: video files against frame folders", "",
             doc.source("data_loading.json") + f" The demo budget's training pipeline (T={data['card']['frames']}, "
             f"{data['card']['input_size']}², batch {data['batch']}) on the hard setting's training videos; "
             f"{data['cpus']} cores shared with other jobs (1-minute load {min(loads)}–{max(loads)}), so every absolute "
             "figure is slowed; the rows ran back to back. Frame folders: "
             "[training-data.md](training-data.md#frame-folders-python--m-tsidataextract-tsi-extract).", "",
             "| source | " + " | ".join(f"clips/s, {w} worker{'s' * (w > 1)}" for w in workers)
             + " | training step waiting for data (" + " / ".join(f"{w}" for w in workers) + " workers) | step time |",
             "|---|" + "---|" * (len(workers) + 2)]
    for source, rs in by.items():
        rate = " | ".join(f"{rs[w]['loader_clips_per_s']:.1f}" if w in rs else "—" for w in workers)
        wait = " / ".join(f"{100 * rs[w]['train_wait_share']:.1f}%" if w in rs else "—" for w in workers)
        step = " / ".join(f"{rs[w]['train_step_s']:.1f} s" if w in rs else "—" for w in workers)
        lines.append(f"| {source} | {rate} | {wait} | {step} |")
    ext = data.get("extraction") or {}
    if ext:
        lines += ["", "Extraction (`tsi-extract`): " + "; ".join(
            f"{name}: {e['videos']} videos in {e['seconds']:.0f} s with {e['workers']} workers" for name, e in ext.items()) + "."]
    return lines + [""]


def accuracy_latency(doc: _Doc) -> list[str]:
    path = doc.results / "accuracy_latency.json"
    report = _load(path)
    if not isinstance(report, dict) or report.get("format") != FORMAT:
        return _absent("## Accuracy against latency", doc, "accuracy_latency.json")
    text = accuracy_latency_section(report, path, doc.out_dir, heading="## Accuracy against latency",
                                    regenerate=COMMAND, schema="benchmarks.md")
    # this page's header says how to regenerate it
    lines = [line for line in text.splitlines() if not line.startswith("Regenerate this section")]
    return lines[:2] + [f"From {doc.link('accuracy_latency.json')}.", ""] + lines[2:] + [""]


def md_only(doc: _Doc) -> list[str]:
    lines = ["## Other runs", "",
             "Linked, not copied: each file is what its command wrote, with the command inside. Most have no JSON; "
             "the quick and the rerun accuracy-vs-latency runs are side runs of the benchmark above.", "",
             "| result | file | command |", "|---|---|---|"]
    for name, what in MD_ONLY:
        if (doc.results / name).is_file():
            cmd = command_of(doc.results / name)
            lines.append(f"| {what} | {doc.link(name)} | {f'`{cmd}`' if cmd else 'named in the file'} |")
    return lines + [""]


def render(results: Path = RESULTS, out: Path = OUT) -> str:
    doc = _Doc(results.resolve(), out.resolve().parent)
    folder = os.path.relpath(doc.results, doc.out_dir).replace(os.sep, "/")
    lines = ["# Measured results", "",
             f"Written by `{COMMAND}` from the files in [`benchmarks/results/`]({folder}/): "
             "each table is rendered from the JSON that measured it, with the command that wrote it; "
             "`tests/benchmarks/test_results_doc.py` fails when this page and the JSON disagree. Do not edit it by hand.", "",
             "Every figure was taken on a 2-core CPU, most of them while other jobs shared it, with no GPU and no "
             "TensorRT: [what-ran-where.md](what-ran-where.md) says what ran and what did not.", ""]
    for part in (accuracy_latency, synthetic, online, multistream, data_loading, md_only):
        lines += part(doc)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from runtime.common.files import atomic_write_text

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=RESULTS, help="the folder of the benchmarks' JSON and .md files")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if --out differs from the JSONs")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.results.is_dir():
        log.error("error: %s is not a folder", args.results)
        return 2
    text = render(args.results, args.out)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else None
        if current != text:
            log.error("%s is stale: run `%s`", args.out, COMMAND)
            return 1
        log.info("%s matches the JSONs", args.out)
        return 0
    atomic_write_text(args.out, text)
    log.info("wrote %s from %s", args.out, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
