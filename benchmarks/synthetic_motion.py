"""The synthetic motion benchmark: TSN vs TSM vs TSI with the same training budget.

    python -m benchmarks.synthetic_motion --data artifacts/synthetic --out artifacts/bench \
        --epochs 12 [--archs tsn_r18 tsm_r18 tsi_r18 tsi_r18-causal]

Trains each architecture with identical data, schedule, width, input size and seed
(``tsi.train``), evaluates 1 view on the validation split (``tsi.evaluate``), and writes
``benchmarks/results/synthetic_motion.md``: overall top-1, and top-1 on the time-reversed pairs,
which no single frame and no unordered set of frames can tell apart.

An architecture spelled ``<arch>-causal`` is trained with ``--causal`` (every temporal operation
looks backwards: the model that runs online, ``tsi.streaming``), ``<arch>-causal-warm`` with
``--causal --warm-state`` too (``tsi.warm_state``); its run folder and table row keep the suffix. Its 1-view clip accuracy is the online runtime's at its first output of a clip (T frames
from the zero state), where the step equals the causal clip model.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path


from benchmarks.common.demo_geometry import demo_card, demo_config
from benchmarks.common.unseen_scene import REVERSED_PAIRS as UNSEEN_PAIRS
from runtime.card import RESIZE_MODES
from runtime.common.files import atomic_write_text
from tsi import evaluate as tsi_evaluate
from tsi import init as tsi_init
from tsi import train as tsi_train
from tsi.config import INPUT_MODES
from tsi.data.synthetic_scene import REVERSED_PAIRS as SYNTHETIC_PAIRS

log = logging.getLogger("bench.synthetic")

CAUSAL_SUFFIX = "-causal"
WARM_SUFFIX = "-warm"  # after the causal one: tsi-train --causal --warm-state (tsi.warm_state)


def split_arch(name: str) -> tuple[str, bool]:
    """``"tsi_r18-causal"`` (or ``"tsi_r18-causal-warm"``) -> ``("tsi_r18", True)``; a plain name ->
    ``(name, False)``."""
    stem = name[: -len(WARM_SUFFIX)] if name.endswith(CAUSAL_SUFFIX + WARM_SUFFIX) else name
    if stem.endswith(CAUSAL_SUFFIX):
        return stem[: -len(CAUSAL_SUFFIX)], True
    return name, False

# pairs of classes that are time reversals of each other: the synthetic benchmark's, and the
# unseen generator's (benchmarks.unseen_motion; a table counts the pairs its classes have)
REVERSED_PAIRS = [*SYNTHETIC_PAIRS, *UNSEEN_PAIRS]


def pair_accuracy(res: dict, pairs=REVERSED_PAIRS) -> float | None:
    """Top-1 restricted to clips of the time-reversed classes (mean over those classes)."""
    accs = [res["per_class"].get(c) for p in pairs for c in p]
    accs = [a for a in accs if a is not None]
    return sum(accs) / len(accs) if accs else None


def pair_direction_accuracy(res: dict, pairs=REVERSED_PAIRS) -> float | None:
    """Of the clips of a time-reversed pair predicted as one of the pair's two classes, the share
    predicted as the right one: telling a clip from its own reversal (chance 50%)."""
    names = list(res["per_class"])
    conf = res["confusion"]
    ok = total = 0
    for a, b in pairs:
        if a in names and b in names:
            i, j = names.index(a), names.index(b)
            ok += conf[i][i] + conf[j][j]
            total += conf[i][i] + conf[i][j] + conf[j][i] + conf[j][j]
    return 100.0 * ok / total if total else None


def result_row(arch: str, res: dict, run_dir: Path) -> dict:
    """One table row: the evaluation ``res`` of the run in ``run_dir``, with its log's epochs, train
    time and last training top-1."""
    rows = log_rows(run_dir)
    return {"arch": arch, "top1": res["top1"], "top5": res["top5"],
            "reversed_pairs_top1": pair_accuracy(res), "pair_direction": pair_direction_accuracy(res),
            "train_s": logged_train_seconds(rows), "clips": res["clips"], "per_class": res["per_class"],
            "epochs": logged_epochs(rows), "train_top1": logged_train_top1(rows)}


def log_rows(run_dir: Path, *, missing_ok: bool = False) -> list[dict]:
    """The epochs of a run's log.jsonl, in order (``missing_ok``: [] when there is none)."""
    path = run_dir / "log.jsonl"
    if missing_ok and not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def validation_curve(rows: list[dict]) -> dict[int, float]:
    """{epoch: validation top-1} of a run's log rows (epochs that were evaluated)."""
    return {r["epoch"]: r["val_top1"] for r in rows if "val_top1" in r}


def logged_epochs(rows: list[dict]) -> int:
    """Epochs a run has completed."""
    return len({r["epoch"] for r in rows})


def logged_train_top1(rows: list[dict]) -> float | None:
    """Training top-1 (augmented clips, during the epoch) of the last epoch logged with one."""
    return next((r["train_top1"] for r in reversed(rows) if "train_top1" in r), None)


def logged_train_seconds(rows: list[dict]) -> float:
    """Training time of a run: the sum of its epochs' ``time_s`` (validation excluded; a resumed or
    re-invoked run counts each epoch once)."""
    return sum({r["epoch"]: r["time_s"] for r in rows}.values())


def train_all(args) -> list[dict]:
    rows = []
    for arch in args.archs:
        out = Path(args.out) / arch
        base, causal = split_arch(arch)
        argv = ["--data", args.data, "--arch", base, "--out", str(out), "--epochs", str(args.epochs),
                "--frames", str(args.frames), "--input-size", str(args.input_size),
                "--base-width", str(args.base_width), "--sme-reduction", str(args.sme_reduction),
                "--batch-size", str(args.batch_size), "--lr", str(args.lr),
                "--lr-steps", *[str(s) for s in args.lr_steps], "--workers", str(args.workers),
                "--seed", str(args.seed), "--span-frames", str(args.span_frames),
                "--attention", "matmul", "--dropout", str(args.dropout),
                "--optimizer", args.optimizer, "--weight-decay", str(args.weight_decay),
                "--eval-every", str(args.eval_every), "--warmup-epochs", str(args.warmup_epochs),
                "--crop-scales", *[str(c) for c in args.crop_scales], "--resize", args.resize,
                "--mix-background", str(args.mix_background), "--input-mode", args.input_mode]
        if causal:
            argv += ["--causal", *(["--warm-state"] if arch.endswith(WARM_SUFFIX) else [])]
        # a resumed run has its weights: --init is for a new one only
        argv += ["--resume"] if (out / "last.pt").exists() else ["--init", args.init]
        tsi_train.main(argv)
        res = tsi_evaluate.evaluate(str(out / "last.pt"), args.data, views=1, workers=args.workers,
                                    out=str(out))
        rows.append(result_row(arch, res, out))
        log.info("%s: top-1 %.1f, reversed pairs %.1f", arch, res["top1"], rows[-1]["reversed_pairs_top1"] or -1)
    return rows


def write_table(rows: list[dict], args, path: Path) -> None:
    n_classes = len(rows[0]["per_class"]) if rows else 0
    lines = [
        f"# {args.title}",
        "",
        f"Command: `python -m benchmarks.synthetic_motion {shlex.join(a for a in sys.argv[1:] if a != '--table-only')}`",
        "",
        *([f"(This table: the same command with `--table-only`, from the runs' logs and their "
           f"`python -m tsi.evaluate` results in `{args.out}/<arch>/eval_val_1view.json`.)", ""]
          if args.table_only else []),
        "Train time: the sum of the epochs' training time in each run's log.jsonl (validation excluded).",
        "",
        f"Same budget for each: {args.epochs} epochs, {args.optimizer}, batch {args.batch_size}, "
        f"lr {args.lr} per 64 clips (scaled linearly), weight decay {args.weight_decay}, "
        f"T={args.frames}, {args.input_size}², base width {args.base_width}, "
        f"dropout {args.dropout}, warm-up {args.warmup_epochs:g} epoch(s), crop scales "
        f"{' '.join(f'{c:g}' for c in args.crop_scales)}, resize {args.resize}, background mixing {args.mix_background:g}, input {args.input_mode}, seed {args.seed}, CPU. Validation: 1 view, {rows[0]['clips'] if rows else 0} clips, "
        f"{n_classes} classes (chance {100 / max(n_classes, 1):.1f}%).",
        "",
        "| model | epochs run | top-1 | top-5 | top-1 on the 10 reversed-pair classes | reversed pairs told apart (chance 50%) | train top-1, last epoch | train time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        pa, pd, tt = (("—" if v is None else f"{v:.1f}")
                      for v in (r["reversed_pairs_top1"], r["pair_direction"], r.get("train_top1")))
        lines.append(f"| {r['arch']} | {r.get('epochs') or args.epochs} of {args.epochs} | {r['top1']:.1f} | {r['top5']:.1f} | {pa} | {pd} | {tt} | "
                     f"{r['train_s'] / 60:.1f} min |")
    curves = {r["arch"]: validation_curve(log_rows(Path(args.out) / r["arch"], missing_ok=True)) for r in rows}
    epochs = sorted({e for c in curves.values() for e in c})
    if epochs:
        lines += ["", "Validation top-1 at each evaluated epoch (the runs' log.jsonl; 1 view, during training):", "",
                  "| epoch | " + " | ".join(curves) + " |", "|---|" + "---|" * len(curves)]
        for e in epochs:
            lines.append(f"| {e} | " + " | ".join(f"{c[e]:.1f}" if e in c else "—" for c in curves.values()) + " |")
    lines += ["", "Per-class top-1:", "", "| class | " + " | ".join(r["arch"] for r in rows) + " |",
              "|---|" + "---|" * len(rows)]
    for c in (rows[0]["per_class"] if rows else {}):
        lines.append(f"| {c} | " + " | ".join(f"{r['per_class'][c]:.0f}" for r in rows) + " |")
    atomic_write_text(path, "\n".join(lines) + "\n")
    atomic_write_text(path.with_suffix(".json"), json.dumps(rows, indent=2))


def seed_rows(run_dirs: list[Path], archs: list[str]) -> list[dict]:
    """Per arch, the finished runs of the same command in ``run_dirs`` (one seed each)."""
    rows = []
    for arch in archs:
        runs = []
        for d in run_dirs:
            res = json.loads((d / arch / "eval_val_1view.json").read_text())
            runs.append(result_row(arch, res, d / arch))
        rows.append({"arch": arch, "runs": runs, "dirs": [str(d) for d in run_dirs]})
    return rows


def write_seed_table(rows: list[dict], args, path: Path) -> None:
    """The runs of one command with different seeds side by side, and each causal model against the
    offline model of the same architecture (``<arch>-causal`` vs ``<arch>``), run by run."""
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    dirs = rows[0]["dirs"] if rows else []
    lines = [
        f"# {args.title}",
        "",
        f"Command: `python -m benchmarks.synthetic_motion {shlex.join(a for a in sys.argv[1:])}` — this table "
        "from finished runs. The training command of each run wrote its own table (the full command, the "
        "budget, per-class top-1, validation curves).",
        "",
        f"Runs (one seed each): {', '.join(f'`{d}`' for d in dirs)}. Validation: 1 view, "
        f"{rows[0]['runs'][0]['clips'] if rows else 0} clips.",
        "",
        "| model | " + " | ".join(f"top-1 ({Path(d).name})" for d in dirs) + " | mean top-1 | "
        + " | ".join(f"reversed pairs told apart ({Path(d).name})" for d in dirs) + " | mean |",
        "|---|" + "---|" * (2 * len(dirs) + 2),
    ]
    for r in rows:
        t1 = [x["top1"] for x in r["runs"]]
        pd = [x["pair_direction"] for x in r["runs"]]
        lines.append(f"| {r['arch']} | " + " | ".join(f"{v:.1f}" for v in t1) + f" | **{mean(t1):.1f}** | "
                     + " | ".join(f"{v:.1f}" for v in pd) + f" | {mean(pd):.1f} |")
    by_arch = {r["arch"]: r for r in rows}
    pairs = [(a, split_arch(a)[0]) for a in by_arch if split_arch(a)[1] and split_arch(a)[0] in by_arch]
    if pairs:
        lines += ["", "Causal minus offline, top-1 points (same seed, same budget):", "",
                  "| models | " + " | ".join(Path(d).name for d in dirs) + " | mean |", "|---|" + "---|" * (len(dirs) + 1)]
        for causal, offline in pairs:
            diff = [c["top1"] - o["top1"] for c, o in zip(by_arch[causal]["runs"], by_arch[offline]["runs"])]
            lines.append(f"| {causal} − {offline} | " + " | ".join(f"{v:+.1f}" for v in diff) + f" | {mean(diff):+.1f} |")
    atomic_write_text(path, "\n".join(lines) + "\n")
    atomic_write_text(path.with_suffix(".json"), json.dumps(rows, indent=2))


def run(argv: list[str] | None = None) -> list[dict]:
    """The CLI's work; returns the table's rows."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo, demo_cfg = demo_card(), demo_config()  # the geometry defaults to the demo model's
    p.add_argument("--data", help="output of python -m tsi.data.synthetic (required unless --seed-runs)")
    p.add_argument("--out", help="folder of the runs, one subfolder per arch (required unless --seed-runs)")
    p.add_argument("--archs", nargs="+", default=["tsn_r18", "tsm_r18", "tsi_r18"])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--lr-steps", type=int, nargs="*", default=[8, 11])
    p.add_argument("--lr", type=float, default=0.08)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--frames", type=int, default=demo.frames, help="(the demo model's: %(default)s)")
    p.add_argument("--input-size", type=int, default=demo.input_size, help="(the demo model's: %(default)s)")
    p.add_argument("--base-width", type=int, default=demo_cfg.base_width, help="(the demo model's: %(default)s)")
    p.add_argument("--sme-reduction", type=int, default=demo_cfg.sme_reduction,
                   help="(the demo model's: %(default)s)")
    p.add_argument("--span-frames", type=int, default=demo.span_frames, help="(the demo model's: %(default)s)")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--warmup-epochs", type=float, default=0.0)
    p.add_argument("--crop-scales", type=float, nargs="+", default=[1.0, 0.875, 0.75, 0.66])
    p.add_argument("--resize", default=RESIZE_MODES[0], choices=RESIZE_MODES, help="tsi-train --resize")
    p.add_argument("--mix-background", type=float, default=0.0, help="tsi-train --mix-background")
    p.add_argument("--input-mode", default=INPUT_MODES[0], choices=INPUT_MODES, help="tsi-train --input-mode")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", default="scratch", choices=tsi_init.CHOICES,
                   help="tsi-train --init for every run (%(default)s: the benchmark compares from scratch)")
    p.add_argument("--table-only", action="store_true",
                   help="only rewrite the table from the finished runs in --out")
    p.add_argument("--seed-runs", nargs="+", type=Path, metavar="DIR",
                   help="with --table-only: finished --out folders of the same command with different "
                   "seeds; writes one table of them side by side (and causal minus offline per seed)")
    p.add_argument("--table", default="benchmarks/results/synthetic_motion.md")
    p.add_argument("--title", default="Synthetic motion benchmark", help="the table's heading")
    p.add_argument("--curves", help="also draw the runs' train/validation curves into this PNG")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.seed_runs and (args.data is None or args.out is None):
        p.error("--data and --out are required (unless --table-only --seed-runs)")
    if args.seed_runs:
        if not args.table_only:
            p.error("--seed-runs needs --table-only (train each seed with its own --out first)")
        rows = seed_rows(args.seed_runs, args.archs)
        write_seed_table(rows, args, Path(args.table))
        print(Path(args.table).read_text())
        return rows
    if args.table_only:  # rebuild the table from finished runs (their eval JSON and recorded train time)
        # train time and epochs from each run's log.jsonl: a run stopped early shows the epochs it ran
        rows = [result_row(a, json.loads((Path(args.out) / a / "eval_val_1view.json").read_text()), Path(args.out) / a)
                for a in args.archs]
    else:
        rows = train_all(args)
    write_table(rows, args, Path(args.table))
    if args.curves:
        from tsi.plots import plot_curves

        plot_curves([Path(args.out) / a / "log.csv" for a in args.archs], args.curves, labels=args.archs,
                    title=args.title)
    print(Path(args.table).read_text())
    return rows


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
