"""benchmarks.recipe_table: the settings × starts × archs table from the motion benchmark's tables."""

import json

from benchmarks.recipe_table import main


def table(results, stem, rows, command):
    (results / f"{stem}.json").write_text(json.dumps(rows))
    (results / f"{stem}.md").write_text(f"# t\n\nCommand: `{command}`\n")


def test_cells_from_the_runs_tables_absent_ones_said(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    table(results, "recipe_easy_scratch", [{"arch": "tsn_r18", "top1": 21.0, "train_top1": 30.5},
                                            {"arch": "tsi_r18", "top1": 84.1}], "python -m x --easy")
    table(results, "unseen_motion_tsi_init_square", [{"arch": "tsi_r18", "top1": 72.2}], "python -m x --new")
    out = tmp_path / "docs" / "t.md"
    assert main(["--results", str(results), "--out", str(out)]) == 0
    text = out.read_text()
    assert "| easy | scratch | 21.0 (30.5) | not run | 84.1 |" in text
    assert "| new | shipped motion initialisation | not run | not run | 72.2 |" in text
    assert "| hard | scratch | not run | not run | not run |" in text
    assert "[`recipe_easy_scratch.md`](../results/recipe_easy_scratch.md): `python -m x --easy`" in text
    assert "- hard, motion: [`recipe_hard_init.md`](../results/recipe_hard_init.md): absent" in text
