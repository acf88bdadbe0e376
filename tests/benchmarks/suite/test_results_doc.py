"""docs/results.md is what `python -m benchmarks.suite.results_doc` writes from the committed JSONs, and the
README stays a door (short, the two commands, links that resolve)."""

import re
import shutil
from pathlib import Path

from benchmarks.common.results import command_of
from benchmarks.suite.results_doc import main, render

REPO = Path(__file__).resolve().parents[3]
RESULTS = REPO / "benchmarks" / "results"
DOC = REPO / "docs" / "results.md"
LINK = re.compile(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)")


def test_results_doc_is_regenerated_exactly_from_the_committed_json():
    assert render(RESULTS, DOC) == DOC.read_text(encoding="utf-8"), \
        "docs/results.md is stale: run `python -m benchmarks.suite.results_doc`"


def test_check_fails_on_a_stale_page_and_the_writer_fixes_it(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results, ignore=shutil.ignore_patterns("*.png"))
    out = tmp_path / "docs" / "results.md"
    out.parent.mkdir()
    out.write_text("# hand-typed 99.9\n")
    assert main(["--results", str(results), "--out", str(out), "--check"]) == 1
    assert out.read_text() == "# hand-typed 99.9\n"  # --check writes nothing
    assert main(["--results", str(results), "--out", str(out)]) == 0
    assert main(["--results", str(results), "--out", str(out), "--check"]) == 0
    text = out.read_text()
    assert "| tsi_r18 | 84.1 |" in text and "hand-typed" not in text
    # a changed measurement changes the page
    (results / "synthetic_motion.json").write_text((results / "synthetic_motion.json").read_text()
                                                   .replace("84.0909090909091", "12.0"))
    assert main(["--results", str(results), "--out", str(out), "--check"]) == 1
    assert main(["--results", str(tmp_path / "nowhere"), "--out", str(out)]) == 2


def test_every_section_names_its_command():
    text = DOC.read_text(encoding="utf-8")
    for name in ("accuracy_latency", "synthetic_motion", "synthetic_motion_hard", "online_accuracy",
                 "online_sequences_seed0", "multistream", "data_loading"):
        assert f"{name}.json" in text, name
        assert command_of(RESULTS / f"{name}.md"), name
    assert command_of(RESULTS / "online.md") == "python -m benchmarks.online"


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(md: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for line in md.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


def _broken_links(md: Path) -> list[str]:
    broken = []
    for target, anchor in LINK.findall(md.read_text(encoding="utf-8")):
        if "://" in target:
            continue
        path = (md.parent / target).resolve() if target else md
        if not path.exists():
            broken.append(f"{md.relative_to(REPO)} -> {target}")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{md.relative_to(REPO)} -> {target}#{anchor}")
    return broken


def test_readme_is_a_door():
    readme = REPO / "README.md"
    lines = readme.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 170, f"README.md has {len(lines)} lines: results go to docs/results.md"
    text = "\n".join(lines)
    assert "./run.sh main" in text and "./run.sh test" in text
    assert "docs/README.md" in text and "docs/results.md" in text and "docs/what-ran-where.md" in text


def test_readme_and_docs_links_resolve():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = [b for md in pages for b in _broken_links(md)]
    assert not broken, broken
    indexed = {t for t, _ in LINK.findall((REPO / "docs" / "README.md").read_text(encoding="utf-8"))}
    unlisted = [p.name for p in pages[1:] if p.name != "README.md" and p.name not in indexed]
    assert not unlisted, f"docs/README.md does not list {unlisted}"


def test_a_missing_json_says_not_measured(tmp_path):
    (tmp_path / "results").mkdir()
    text = render(tmp_path / "results", tmp_path / "results.md")
    assert text.count("Not measured:") == 6 and "| tsi_r18 |" not in text
