"""The experiments, in REPORT.md's order: what each runs, what it writes, how it is shown.

An experiment is a test module under experiments/ that writes results files (JSON with
`meta` and `rows`, and a CSV of the rows) into the results directory; its section of
REPORT.md is rendered from those files alone by its `render`. A section's number is its
place here, so a new experiment is one entry and one module under experiments/sections/,
and sections refer to each other by key (`Context.ref`), never by a number typed in.
tests/test_report.py holds REPORT.md to what this registry renders from the committed
results, and each entry to its files and test module.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from experiments.sections import (at_scale, corpus, das5, faults, fgo_build, model, overhead,
                                  pipelining, scaleout, shard_cost, shared_cache, simulation,
                                  split, verification)
from experiments.sections.common import Context

# Written by experiments/conftest.py at the end of a --benchmark session: how long it took.
SESSION = "session.json"


class Kind(enum.StrEnum):
    """Where a section's numbers come from; its heading says so."""

    MEASURED = "measured"
    SIMULATED = "simulated"
    BOTH = "measured and simulated"         # in separate tables, each labelled
    MODEL = "simulated vs measured"         # a prediction beside the measurement


@dataclass(frozen=True)
class Experiment:
    key: str                                # how sections refer to it
    title: str                              # its REPORT.md heading, after the number
    module: str                             # the test module under experiments/ that runs it
    results: tuple[str, ...]                # the files it writes, relative to the results dir
    kind: Kind
    render: Callable[[Context], list[str]]  # its section's markdown, without the heading


EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("corpus", "Corpus builds and action-graph shape", "test_1_corpus.py",
               (corpus.RESULTS,), Kind.MEASURED, corpus.render),
    Experiment("simulation", "Scheduling simulation on measured durations", "test_2_simulation.py",
               tuple(simulation.results_file(p, s) for p in simulation.PROJECTS
                     for s in simulation.SOURCE_LABELS),
               Kind.SIMULATED, simulation.render),
    Experiment("fgo_build", "fgo build end to end", "test_3_fgo_build.py",
               (fgo_build.RESULTS,), Kind.MEASURED, fgo_build.render),
    Experiment("split", "Intra-package split", "test_4_split.py",
               (split.RESULTS, split.SIMULATED), Kind.BOTH, split.render),
    Experiment("verification", "What verification costs", "test_5_verification.py",
               (verification.RESULTS,), Kind.MEASURED, verification.render),
    Experiment("shared_cache", "The shared build cache", "test_6_shared_cache.py",
               (shared_cache.RESULTS,), Kind.MEASURED, shared_cache.render),
    Experiment("pipelining", "Pipelined compilation", "test_7_pipelining.py",
               (*(pipelining.results_file(p) for p in pipelining.PROJECTS),
                pipelining.EXPORT, pipelining.MEASURED), Kind.BOTH, pipelining.render),
    Experiment("scaleout", "Scale-out on emulated hosts", "test_8_scaleout.py",
               (scaleout.RESULTS, scaleout.CEILING, scaleout.GAP,
                *(name for name, _ in scaleout.STOCK_PHASES.values())), Kind.MEASURED,
               scaleout.render),
    Experiment("overhead", "What fgo costs on one machine", "test_9_overhead.py",
               (overhead.RESULTS,), Kind.MEASURED, overhead.render),
    Experiment("model", "The makespan model against measured builds", "test_9_overhead.py",
               (model.RESULTS,), Kind.MODEL, model.render),
    Experiment("das5", "DAS-5 sizes with fgo's measured costs", "test_9_overhead.py",
               (das5.RESULTS,), Kind.SIMULATED, das5.render),
    Experiment("shard_cost", "What a real shard costs", "test_10_shard_cost.py",
               (shard_cost.RESULTS,), Kind.MEASURED, shard_cost.render),
    Experiment("das5_scale", "DAS-5 at scale against go build on one node", "test_11_aws.py",
               (at_scale.RESULTS,), Kind.SIMULATED, at_scale.render),
    Experiment("limits", "Where fgo cannot help", "test_11_aws.py",
               (at_scale.LIMITS,), Kind.SIMULATED, at_scale.render_limits),
    Experiment("faults", "A randomized fault campaign", "test_12_faults.py",
               (faults.RESULTS,), Kind.MEASURED, faults.render),
)


def numbers() -> dict[str, int]:
    """Each experiment's section number: its place in EXPERIMENTS, from 1."""
    return {e.key: i for i, e in enumerate(EXPERIMENTS, 1)}
