"""experiments/REPORT.md is exactly what its renderer makes from the committed results,
and the experiments' registry names files and test modules that exist."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
RESULTS = EXPERIMENTS / "results"
REPORT = EXPERIMENTS / "REPORT.md"
REGENERATE = ("regenerate it from the committed results with `.venv/bin/python -m "
              "experiments.report --no-figures` (never edit REPORT.md by hand)")


@pytest.fixture
def report(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """experiments.report (experiments/ is a package at the checkout's root, which pytest
    does not put on the path for tests/)."""
    monkeypatch.syspath_prepend(str(ROOT))
    from experiments import report
    return report


def test_report_md_is_what_the_renderer_makes(report: ModuleType, tmp_path: Path) -> None:
    """Rendered into a copy (the report links its results relative to itself; figures
    off, so the committed PNGs stay as they are), byte for byte."""
    results = shutil.copytree(RESULTS, tmp_path / "results", ignore=shutil.ignore_patterns("raw", "quick"))
    rendered = report.write_report(results, tmp_path / "REPORT.md", figures=False).read_bytes()
    committed = REPORT.read_bytes()
    diff = difflib.unified_diff(committed.decode().splitlines(), rendered.decode().splitlines(),
                                "committed", "rendered", lineterm="", n=0)
    assert rendered == committed, (f"{REPORT} is not what the renderer makes: {REGENERATE}\n"
                                   + "\n".join(line[:200] for line in list(diff)[:20]))


def test_figures_do_not_change_the_markdown(report: ModuleType, tmp_path: Path) -> None:
    """Drawing the plots is a side effect only: the markdown is the same without it."""
    results = shutil.copytree(RESULTS, tmp_path / "results", ignore=shutil.ignore_patterns("raw", "quick"))
    drawn = report.write_report(results, tmp_path / "drawn.md").read_text()
    assert drawn == report.write_report(results, tmp_path / "plain.md", figures=False).read_text()


def test_every_experiment_names_files_that_exist(report: ModuleType) -> None:
    from experiments import registry
    for e in registry.EXPERIMENTS:
        assert (EXPERIMENTS / e.module).is_file(), f"{e.key}: no test module {e.module}"
        missing = [f for f in e.results if not (RESULTS / f).is_file()]
        assert not missing, f"{e.key}: results {missing} are not in {RESULTS}"
    assert len({e.key for e in registry.EXPERIMENTS}) == len(registry.EXPERIMENTS)


def test_the_report_reads_only_the_registered_results(report: ModuleType, tmp_path: Path) -> None:
    """Every results file a section reads is registered, and every registered one is read:
    the registry says what REPORT.md is made of."""
    from experiments import registry
    from experiments.sections.common import Context
    ctx = Context(RESULTS, tmp_path / "REPORT.md", figures=False, numbers=registry.numbers())
    report.render(ctx)
    registered = {f for e in registry.EXPERIMENTS for f in e.results} | {registry.SESSION}
    assert sorted(ctx.read - registered) == [], "read but not in experiments/registry.py"
    assert sorted(registered - ctx.read) == [], "in experiments/registry.py but never read"


def test_the_session_time_comes_from_the_results(report: ModuleType, tmp_path: Path) -> None:
    """The wall time of the last --benchmark session is read from results/session.json
    (written by experiments/conftest.py), not passed in: re-rendering keeps it."""
    results = shutil.copytree(RESULTS, tmp_path / "results", ignore=shutil.ignore_patterns("raw", "quick"))
    (results / "session.json").write_text('{"command": "pytest experiments/ --benchmark", '
                                          '"started": "2026-11-30 03:01 UTC", "wall_s": 1758.0}')
    text = report.write_report(results, tmp_path / "REPORT.md", figures=False).read_text()
    assert "The last session, `pytest experiments/ --benchmark` (started 2026-11-30 03:01 UTC), took 29.3 min." in text


def test_links_are_relative_to_the_report(report: ModuleType, tmp_path: Path) -> None:
    results = shutil.copytree(RESULTS, tmp_path / "a" / "results", ignore=shutil.ignore_patterns("raw", "quick"))
    (tmp_path / "b").mkdir()
    text = report.write_report(results, tmp_path / "b" / "REPORT.md", figures=False).read_text()
    assert "](../a/results/fig1_corpus_walls.png)" in text and "`../a/results/`" in text
    assert str(tmp_path) not in text


def test_a_split_s_ceiling_repeats_the_frontend_and_writes_the_archive_once(
        report: ModuleType) -> None:
    """The no-overhead ceiling REPORT gives beside the giant splits: only the backend is
    shared (aws-sdk-go's ec2 at its measured -c=1 phases: 1.59x for K=2)."""
    from experiments.sections.scaleout import split_ceiling
    assert split_ceiling(0.0, 10.0, 0.0, 2) == 2.0
    assert split_ceiling(2.0, 8.0, 0.0, 2) == pytest.approx(10 / 6)
    assert split_ceiling(2.45, 10.89, 1.35, 2) == pytest.approx(1.588, abs=1e-3)
    assert split_ceiling(2.45, 10.89, 1.35, 1) == 1.0
