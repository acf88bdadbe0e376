"""Data loading measured: video files vs frame folders, and how long a training step waits for data.

    python -m benchmarks.data_loading --videos artifacts/synthetic_hard --out artifacts/data_loading

1. Extracts the training split's videos to frame folders twice with ``tsi.data.extract`` (at the
   demo card's ``resize_short``, and at full size), timing it.
2. Clips/s of the training pipeline (TSN sampling of T frames + multi-scale crop + normalise,
   batch 8) from the video files and from both frame trees, with 1 and 2 DataLoader workers.
3. The share of a training step spent waiting for the next batch, at the demo budget's model and
   batch (the demo checkpoint's config and card: TSI-R18 at its width, T and input size; batch 8,
   AdamW): time blocked in ``next(loader)`` against time in forward/backward/step, for the same
   sources and worker counts.

Writes ``benchmarks/results/data_loading.md`` and ``.json``. The machine's load average is recorded
before and after every measurement: on a CPU shared with other jobs the absolute figures move with
it; the rows of one run are taken back to back so their ratios are the comparison.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from benchmarks.common.demo_geometry import demo_card, demo_config
from runtime.common.files import atomic_write_text
from tsi.checkpoint import make_card
from tsi.data.datasets import build_dataset
from tsi.data.extract import extract_tree
from tsi.model import TSINet

log = logging.getLogger("benchmarks.data_loading")

RESULTS = Path("benchmarks") / "results" / "data_loading.md"  # below the working directory, as the other benchmarks


def load() -> tuple[float, float, float]:
    return tuple(round(x, 2) for x in os.getloadavg())


def make_loader(ds, workers: int, batch: int, seed: int = 0) -> DataLoader:
    return DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                      generator=torch.Generator().manual_seed(seed), persistent_workers=False)


def clips_per_second(ds, workers: int, batch: int, clips: int) -> dict:
    """Throughput of the loader alone over ``clips`` clips (the first batch, which includes the
    workers' start-up, is timed apart)."""
    ds.set_epoch(0)
    before = load()
    t0 = time.perf_counter()
    it = iter(make_loader(ds, workers, batch))
    next(it)
    first = time.perf_counter() - t0
    n, t1 = 0, time.perf_counter()
    for clip, _ in it:
        n += clip.shape[0]
        if n >= clips:
            break
    dt = time.perf_counter() - t1
    del it
    return {"clips": n, "seconds": dt, "clips_per_s": n / dt, "first_batch_s": first,
            "load_before": before, "load_after": load()}


def step_wait_share(ds, workers: int, batch: int, steps: int, num_classes: int, warmup: int = 3) -> dict:
    """Train the demo model for ``steps`` steps; the share of wall time spent waiting for batches."""
    torch.manual_seed(0)
    model = TSINet(demo_config().replace(num_classes=num_classes))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    crit = torch.nn.CrossEntropyLoss()
    model.train()
    ds.set_epoch(1)
    before = load()
    it = iter(make_loader(ds, workers, batch, seed=1))
    wait = compute = 0.0
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        try:
            clips, labels = next(it)
        except StopIteration:  # an epoch ended: the next one's loader start counts as waiting
            it = iter(make_loader(ds, workers, batch, seed=1 + i))
            clips, labels = next(it)
        t1 = time.perf_counter()
        loss = crit(model(clips), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if i >= warmup:
            wait += t1 - t0
            compute += t2 - t1
    del it
    return {"steps": steps, "wait_s": wait, "compute_s": compute, "wait_share": wait / (wait + compute),
            "step_s": (wait + compute) / steps, "load_before": before, "load_after": load()}


def run(args) -> dict:
    out = Path(args.out)
    probe = build_dataset("folder", args.videos, split="train", labels_only=True)
    card = make_card(demo_config().replace(num_classes=len(probe.classes)), list(probe.classes),
                     resize_short=demo_card().resize_short)
    trees = {"videos": Path(args.videos)}
    extraction = {}
    for name, short in ((f"frames, short side {card.resize_short}", card.resize_short), ("frames, full size", 0)):
        dst = out / f"frames_{short}"
        t0 = time.perf_counter()
        res = extract_tree(Path(args.videos) / "train", dst / "train", short_side=short,
                           workers=args.extract_workers, progress=False)
        extraction[name] = {"seconds": time.perf_counter() - t0, "videos": res["extracted"],
                            "already": res["skipped"], "frames": res["frames"], "workers": args.extract_workers,
                            "load_after": load()}
        trees[name] = dst
    rows = []
    for name, root in trees.items():
        ds = build_dataset("folder", root, card=card, split="train", mode="train", seed=0)
        for workers in args.workers:
            log.info("%s, %d worker(s): loader throughput", name, workers)
            thr = clips_per_second(ds, workers, args.batch, args.clips)
            log.info("%s, %d worker(s): training steps", name, workers)
            st = step_wait_share(ds, workers, args.batch, args.steps, len(card.labels))
            rows.append({"source": name, "workers": workers, **{f"loader_{k}": v for k, v in thr.items()},
                         **{f"train_{k}": v for k, v in st.items()}})
            log.info("%s", rows[-1])
    return {"extraction": extraction, "rows": rows, "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "batch": args.batch, "card": {"frames": card.frames,
            "input_size": card.input_size, "resize_short": card.resize_short, "arch": card.arch,
            "base_width": card.config["base_width"]}}


def write(results: dict, args, path: Path) -> None:
    cmd = "python -m benchmarks.data_loading " + " ".join(sys.argv[1:])
    r0 = results["rows"]
    lines = ["# Data loading: video files vs frame folders", "", f"Command: `{cmd}`", "",
             f"Training pipeline of the demo budget: TSN sampling of T={results['card']['frames']} frames, "
             f"short side {results['card']['resize_short']}, multi-scale crop to {results['card']['input_size']}², "
             f"batch {results['batch']}; data `{args.videos}` (train split). {results['cpus']} CPU cores, "
             f"torch {results['torch_threads']} threads in the main process. **The CPU was shared with other "
             "jobs** (other agents' work and this project's trainings): the load average (1/5/15 min) is "
             "recorded beside every figure, and absolute rates move with it; compare rows of this run.", "",
             "## Extraction (`tsi-extract`)", "", "| frame tree | videos | frames | time | videos/s | load after |",
             "|---|---|---|---|---|---|"]
    for name, e in results["extraction"].items():
        rate = f"{e['videos'] / e['seconds']:.1f}" if e["videos"] else "— (already extracted)"
        lines.append(f"| {name} | {e['videos']} (+{e['already']} already) | {e['frames']} | "
                     f"{e['seconds']:.1f} s | {rate} | {e['load_after'][0]} |")
    lines += ["", "## Loader throughput and the share of a training step spent waiting", "",
              f"Loader alone: {args.clips} clips after the first batch. Training: {args.steps} steps of "
              f"{results['card']['arch']} (base width {results['card']['base_width']}, the demo model's config) "
              "with AdamW after 3 warm-up steps; *waiting* = time blocked in "
              "`next(loader)`.", "",
              "| source | workers | clips/s (loader alone) | first batch | step time | waiting for data | load before → after |",
              "|---|---|---|---|---|---|---|"]
    for r in r0:
        lines.append(f"| {r['source']} | {r['workers']} | {r['loader_clips_per_s']:.1f} | "
                     f"{r['loader_first_batch_s']:.2f} s | {r['train_step_s']:.2f} s | "
                     f"{100 * r['train_wait_share']:.1f}% | {r['loader_load_before'][0]} → {r['train_load_after'][0]} |")
    atomic_write_text(path, "\n".join(lines) + "\n")
    atomic_write_text(path.with_suffix(".json"), json.dumps(results, indent=2))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tsi-bench-data-loading", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", required=True, help="a folder-format video dataset (DIR/train/<class>/...)")
    p.add_argument("--out", required=True, help="where the frame trees are extracted (reused if there)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--clips", type=int, default=240, help="clips timed per loader measurement")
    p.add_argument("--steps", type=int, default=20, help="training steps timed per measurement")
    p.add_argument("--extract-workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of the training process (1: on a shared CPU, more threads than "
                        "free cores make OpenMP spin and every figure worse)")
    p.add_argument("--table", default=str(RESULTS))
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        results = run(args)
    except (ValueError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write(results, args, Path(args.table))
    print(Path(args.table).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
