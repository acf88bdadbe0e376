"""One recipe on four kinds of data: the easy, hard and new (unseen generator, scenes a and b) settings × from
scratch and from the shipped motion initialisations × TSN, TSM and TSI, from the tables the
``benchmarks.synthetic_motion`` runs wrote (nothing is trained here).

    python -m benchmarks.recipe_table [--results benchmarks/results] [--out benchmarks/results/recipe_settings.md]

Each cell is validation top-1 and, where the run's table recorded it, the last epoch's training
top-1 (augmented clips); a cell whose run is absent says so. :data:`CELLS` names the result files;
each file's command is read from the ``.md`` beside it and listed under the table.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from benchmarks.common.results import command_of
from runtime.common.files import atomic_write_text
from tsi import recipes
from tsi.cli import UsageError, cli_main, new_output_file, parser

log = logging.getLogger("bench.recipe_table")

ARCHS = ("tsn_r18", "tsm_r18", "tsi_r18")
INITS = ("scratch", "scratch diff", "motion", "corpus")
START = {"scratch": "scratch, frames", "scratch diff": "scratch, frame differences",
         "motion": "motion initialisation v1 (the project's generators)",
         "corpus": "motion initialisation v2 (the motion corpus, shipped)"}
SETTINGS = ("easy", "hard", "new", "new b")
# (setting, init) -> the synthetic_motion tables (their .json) holding those runs
CELLS = {
    ("easy", "scratch"): ("recipe_easy_scratch",),
    ("easy", "scratch diff"): ("recipe_easy_scratch_diff",),
    ("easy", "motion"): ("recipe_easy_init",),
    ("easy", "corpus"): ("recipe_easy_corpus_init", "recipe_easy_corpus_init_tsm_r18"),
    ("hard", "scratch"): ("recipe_hard_scratch",),
    ("hard", "scratch diff"): ("recipe_hard_scratch_diff",),
    ("hard", "motion"): ("recipe_hard_init",),
    ("hard", "corpus"): ("recipe_hard_corpus_init", "recipe_hard_corpus_init_tsm_r18"),
    ("new", "scratch"): ("unseen_a_scratch",),
    ("new", "scratch diff"): ("unseen_a_scratch_diff_lr", "unseen_a_scratch_diff_lr_baselines"),
    ("new", "motion"): ("unseen_a_init",),
    ("new", "corpus"): ("unseen_a_corpus_init",),
    ("new b", "scratch"): ("unseen_b_scratch",),
    ("new b", "scratch diff"): ("unseen_b_scratch_diff_lr", "unseen_b_scratch_diff_lr_tsn_r18",
                                "unseen_b_scratch_diff_lr_tsm_r18"),
    ("new b", "motion"): ("unseen_b_init",),
    ("new b", "corpus"): ("unseen_b_corpus_init",),
}
DATA = {"easy": "the project's easy setting (`python -m tsi.data.synthetic --out artifacts/synthetic "
                "--train 80 --val 20 --seed 0`: 880 training, 220 validation clips, 11 classes)",
        "hard": "the project's hard setting (`... --out artifacts/synthetic_hard --setting hard`, the same "
                "counts)",
        "new": "the unseen generator, which no recipe was tuned on (`python -m benchmarks.unseen_motion --out "
               "artifacts/unseen --train 40 --val 12 --seed 0`: 480 training, 144 validation clips, 12 classes)",
        "new b": "the unseen generator's scene b, written after scene a's results had guided recipe choices, so "
                 "that nothing was decided on it (`python -m benchmarks.unseen_motion --scene b --out "
                 "artifacts/unseen_b --train 40 --val 12 --seed 0`: 480 training, 144 validation clips, 12 other "
                 "classes, other actors and camera)"}


# runs that predate training's span sampling (2026-12-07: a random window of the card's span_frames
# in training, the centred one in validation; before, the whole video), and what that changes
BEFORE_SPAN_SAMPLING = {
    "hard setting's runs on frames": "its 60-fps videos (64 frames, about a quarter) are longer than the span: "
                                     "those were sampled whole in training and validation; the others (16 and 26 "
                                     "frames at 15 and 24 fps, 32 at 30) fit in the span and sample as they do now"}


def gather(results: Path) -> tuple[dict, dict[str, str | None]]:
    """({(setting, init, arch): row}, {file stem: its command}) of the files of :data:`CELLS` present."""
    rows, commands = {}, {}
    for (setting, init), stems in CELLS.items():
        for stem in stems:
            path = results / f"{stem}.json"
            if not path.is_file():
                continue
            commands[stem] = command_of(path.with_suffix(".md"))
            for row in _table_rows(path):
                if row["arch"] in ARCHS:
                    rows[(setting, init, row["arch"])] = row
    return rows, commands


def _table_rows(path: Path) -> list[dict]:
    """The rows of a synthetic_motion table's JSON; a file that is not one is refused in one line."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: not a synthetic_motion table (not JSON: {e})") from None
    if not (isinstance(rows, list) and all(isinstance(r, dict) and {"arch", "top1"} <= r.keys() for r in rows)):
        raise UsageError(f"{path}: not a synthetic_motion table (a list of rows with arch and top1)")
    return rows


def cell(row: dict | None) -> str:
    if row is None:
        return "not run"
    train = row.get("train_top1")
    return f"{row['top1']:.1f}" + (f" ({train:.1f})" if train is not None else "")


def render(rows: dict, commands: dict[str, str | None], results: Path, out: Path) -> str:
    lines = ["# One recipe, four settings: from scratch and from the shipped motion initialisations", "",
             f"Written by `python -m benchmarks.recipe_table --out {out}` from the runs' tables below.", "",
             f"The recipe: `--recipe small` (README; tsi/recipes.py), `{recipes.flags(recipes.SMALL)}`, batch 8, seed 0, "
             f"CPU; validation 1 view. Its two forms: from a shipped initialisation on frames; from scratch "
             f"`{recipes.flags(recipes.SMALL_SCRATCH)}` (the \"frame differences\" rows). The \"scratch, frames\" rows "
             "are the frames form started from scratch, what the recipe was before its scratch form. Each cell: "
             "validation top-1, and in brackets the last epoch's training top-1 (augmented) where the run's table "
             "recorded it.", "",
             "| setting | start | " + " | ".join(a.split("_")[0].upper() + "-R18" for a in ARCHS) + " |",
             "|---|---|" + "---|" * len(ARCHS)]
    for setting in SETTINGS:
        for init in INITS:
            lines.append(f"| {setting} | {START[init]} | "
                         + " | ".join(cell(rows.get((setting, init, a))) for a in ARCHS) + " |")
    lines += ["", "Clips cover the card's span of 32 frames: a random window of a longer video in training, the "
              "centred one in validation, as the live runtime's window sees it (docs/training.md, "
              "`--span-frames`)." + "".join(f" The {s} predate that: {why}." for s, why in BEFORE_SPAN_SAMPLING.items())]
    lines += ["", "The data:", ""] + [f"- {s}: {DATA[s]}" for s in SETTINGS]
    lines += ["", "The initialisations (docs/training.md, \"The motion initialisation\"): v1 was pretrained on clips "
              "of the easy and hard generators (seed 100, not these clips), so its easy and hard rows are data like "
              "its pretraining; v2, shipped now, is v1 trained on the motion corpus (`tsi.data.motion_corpus`, its "
              "own scene; its 24 classes of 2-D motion were written knowing both scenes' class lists). Only the new "
              "rows measure data no initialisation saw (scene a guided recipe choices since; scene b none)."]
    lines += ["", "The runs (each file's command):", ""]
    for (setting, init), stems in CELLS.items():
        for stem in stems:
            cmd = commands.get(stem)
            what = "absent" if stem not in commands else f"`{cmd}`" if cmd else "command in the file"
            link = os.path.relpath(results / f"{stem}.md", out.parent).replace(os.sep, "/")
            lines.append(f"- {setting}, {init}: [`{stem}.md`]({link}): {what}")
    return "\n".join(lines) + "\n"


def run(argv: list[str] | None = None) -> int:
    p = parser("tsi-bench-recipe-table", __doc__)
    p.add_argument("--results", type=Path, default=Path("benchmarks/results"),
                   help="the folder of the synthetic_motion tables (%(default)s)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/recipe_settings.md"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.results.is_dir():
        raise UsageError(f"--results {args.results} is not a folder")
    new_output_file(args.out, "--out")
    rows, commands = gather(args.results)
    atomic_write_text(args.out, render(rows, commands, args.results, args.out))
    log.info("wrote %s (%d of %d cells)", args.out, len(rows), len(SETTINGS) * len(INITS) * len(ARCHS))
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli_main(run, argv, "tsi-bench-recipe-table")


if __name__ == "__main__":
    sys.exit(main())
