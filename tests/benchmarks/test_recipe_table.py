"""benchmarks.recipe_table: the settings × starts × archs table from the motion benchmark's tables."""

import json

import pytest

from benchmarks.recipe_table import main


def table(results, stem, rows, command):
    (results / f"{stem}.json").write_text(json.dumps(rows))
    (results / f"{stem}.md").write_text(f"# t\n\nCommand: `{command}`\n")


def test_cells_from_the_runs_tables_absent_ones_said(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    table(results, "recipe_easy_scratch", [{"arch": "tsn_r18", "top1": 21.0, "train_top1": 30.5},
                                            {"arch": "tsi_r18", "top1": 84.1}], "python -m x --easy")
    table(results, "unseen_a_init", [{"arch": "tsi_r18", "top1": 72.2}], "python -m x --new")
    table(results, "unseen_a_corpus_init", [{"arch": "tsn_r18", "top1": 9.0}], "python -m x --new-v2")
    # a cell's archs from more than one run's table
    table(results, "unseen_b_scratch_diff_lr", [{"arch": "tsi_r18", "top1": 73.6}], "python -m x --b")
    table(results, "unseen_b_scratch_diff_lr_tsm_r18", [{"arch": "tsm_r18", "top1": 61.1}], "python -m x --b-tsm")
    out = tmp_path / "docs" / "t.md"
    assert main(["--results", str(results), "--out", str(out)]) == 0
    text = out.read_text()
    assert "| easy | scratch, frames | 21.0 (30.5) | not run | 84.1 |" in text
    assert "| new b | scratch, frame differences | not run | 61.1 | 73.6 |" in text
    assert "from scratch `--input-mode diff --lr 0.0149`" in text
    assert "| new | motion initialisation v1 (the project's generators) | not run | not run | 72.2 |" in text
    assert "| new | motion initialisation v2 (the motion corpus, shipped) | 9.0 | not run | not run |" in text
    assert "| easy | motion initialisation v2 (the motion corpus, shipped) | not run | not run | not run |" in text
    assert "| hard | scratch, frames | not run | not run | not run |" in text
    assert "[`recipe_easy_scratch.md`](../results/recipe_easy_scratch.md): `python -m x --easy`" in text
    assert "- hard, motion: [`recipe_hard_init.md`](../results/recipe_hard_init.md): absent" in text


@pytest.mark.parametrize("text", ["not json", '{"arch": "tsi_r18"}', '[{"top1": 3}]'])
def test_a_results_file_that_is_not_a_table_is_refused_in_one_line(tmp_path, capsys, text):
    (tmp_path / "recipe_hard_init.json").write_text(text)
    assert main(["--results", str(tmp_path), "--out", str(tmp_path / "t.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tsi-bench-recipe-table: error: ") and "recipe_hard_init.json: not a synthetic_motion table" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "t.md").exists()
