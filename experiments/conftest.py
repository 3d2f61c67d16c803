"""pytest options for the experiments: `pytest experiments/ --benchmark [--quick]`.

pytest-benchmark (5.x) defines many `--benchmark-...` options but none spelled
exactly `--benchmark`, and pytest does not accept abbreviations, so the flag is
added here. Without it every experiment is skipped (they take minutes and
measure the machine); with it the benchmarks run and, at the end of the
session, its wall time goes to experiments/results/session.json and
experiments/REPORT.md and its plots are regenerated from experiments/results/.
With `--quick` (gin only, GOMAXPROCS=2 only) the results and the report go to
experiments/results/quick/ so that a CI run never overwrites the full report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from experiments import lab as labmod

HERE = Path(__file__).resolve().parent


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fgo experiments")
    group.addoption("--benchmark", action="store_true", default=False,
                    help="run the fgo experiments (real builds; minutes) and regenerate experiments/REPORT.md")
    group.addoption("--quick", action="store_true", default=False,
                    help="with --benchmark: a subset under 5 minutes (gin only, GOMAXPROCS=2 only); "
                         "results and report under experiments/results/quick/")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "quick: part of the --quick subset")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--benchmark"):
        skip = pytest.mark.skip(reason="experiments run only with --benchmark")
        for item in items:
            if HERE in Path(str(item.fspath)).parents:
                item.add_marker(skip)
        return
    if config.getoption("--quick"):
        skip = pytest.mark.skip(reason="not part of --quick")
        for item in items:
            if HERE in Path(str(item.fspath)).parents and "quick" not in item.keywords:
                item.add_marker(skip)


_LAB: labmod.Lab | None = None


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Any:
    global _LAB
    quick = bool(request.config.getoption("--quick"))
    results = HERE / "results" / ("quick" if quick else "")
    _LAB = labmod.Lab(quick=quick, command=labmod.python_cmdline(), results=results)
    labmod.write_bytecode()  # what a user's fgo has after its first run
    try:
        yield _LAB
    finally:
        _LAB.cleanup()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _LAB is None:
        return
    from experiments import registry, report

    out = HERE / "REPORT.md" if not _LAB.quick else _LAB.results / "REPORT.md"
    try:
        _LAB.save_session(registry.SESSION)  # the report reads the session's wall time there
        path = report.write_report(_LAB.results, out, quick=_LAB.quick)
        print(f"\nfgo experiments: report written to {path}")
    except Exception as exc:  # noqa: BLE001 - never hide the test results behind a report failure
        print(f"\nfgo experiments: could not write the report: {exc!r}")
