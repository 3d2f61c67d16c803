"""The fault campaign's decisions (experiments/faultplan.py): drawing faults from a seed,
classifying a build from what was observed, counting, and the catch-rate formula."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def plan(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(ROOT))  # experiments/ is a package at the checkout's root
    from experiments import faultplan
    return faultplan


def test_the_draw_is_the_seed_s(plan) -> None:
    a = plan.draw(7, 50, 2, 0.1, plan.KINDS)
    assert a == plan.draw(7, 50, 2, 0.1, plan.KINDS)
    assert a != plan.draw(8, 50, 2, 0.1, plan.KINDS)


def test_drawn_faults_fit_their_kind(plan) -> None:
    faults = plan.draw(1, 2000, 2, 0.1, plan.KINDS, max_after=4)
    assert {f.kind for f in faults} == set(plan.KINDS)  # every kind comes up
    for f in faults:
        assert f.project in plan.KINDS[f.kind].projects and 0 <= f.worker < 2 and 0 <= f.after < 4
        assert (f.q == 0.1) == (f.kind == "wrong-q")
    assert next(f for f in faults if f.kind == "wrong-q").env() == "wrong:0.1"
    assert next(f for f in faults if f.kind == "wrong").env() == "wrong-archive"
    # kinds by weight: kill (4) comes up about four times as often as full-disk (1)
    counts = {k: sum(1 for f in faults if f.kind == k) for k in ("kill", "full-disk")}
    assert 2.5 < counts["kill"] / counts["full-disk"] < 6


def test_kinds_needing_hosts_are_left_out_without_them(plan) -> None:
    assert "partition" in plan.available(True) and "slow-link" in plan.available(True)
    assert not any(k.hosts for k in plan.available(False).values())


def test_every_env_fault_is_one_faults_py_knows(plan) -> None:
    """An FGO_FAULT the worker does not know would be a fault that never hits."""
    text = (ROOT / "fgo" / "worker" / "faults.py").read_text()
    for k in plan.KINDS.values():
        if k.env:
            assert f"``{k.env.split('{')[0]}" in text, k.env


@pytest.mark.parametrize("obs, outcome", [
    (dict(injected=False, exit_code=0, identical=False), "not-injected"),
    (dict(injected=True, exit_code=0, identical=True), "survived"),
    (dict(injected=True, exit_code=0, identical=False), "wrong-binary"),
    (dict(injected=True, exit_code=0, identical=True, published_wrong=1), "wrong-published"),
    (dict(injected=True, exit_code=1, identical=None, caught_symbols=("p f",)), "caught"),
    (dict(injected=True, exit_code=1, identical=None), "failed"),
    (dict(injected=True, exit_code=None, identical=None), "hang"),
    (dict(injected=True, exit_code=0, identical=None), "failed"),   # exit 0 but no binary
    # caught, but a wrong entry was published all the same: the wrong output counts
    (dict(injected=True, exit_code=1, identical=None, caught_symbols=("p f",), published_wrong=2),
     "wrong-published"),
])
def test_classify(plan, obs: dict, outcome: str) -> None:
    assert plan.classify(plan.Observation(**obs)) == outcome


def test_tally_counts_injected_and_wrong(plan) -> None:
    rows = [{"kind": "kill", "outcome": "survived"}, {"kind": "kill", "outcome": "not-injected"},
            {"kind": "wrong", "outcome": "caught"}, {"kind": "wrong", "outcome": "wrong-binary"}]
    t = plan.tally(rows)
    assert t["kill"]["injected"] == 1 and t["kill"]["not-injected"] == 1
    assert t["all"]["injected"] == 3 and t["all"]["wrong"] == 1 and t["wrong"]["caught"] == 1


def test_catch_rate_against_the_formula(plan) -> None:
    """Only builds in which the worker compiled count; the prediction is the mean of
    1 - (1 - q)^c over them."""
    builds = [{"armed": True, "injected": True, "outcome": "caught", "checks": 1},
              {"armed": True, "injected": False, "outcome": "survived", "checks": 2},
              {"armed": False, "injected": False, "outcome": "survived", "checks": 0}]
    r = plan.catch_rate(builds, 0.5)
    assert r["builds"] == 2 and r["caught"] == 1 and r["measured"] == 0.5
    assert r["predicted"] == pytest.approx((0.5 + 0.75) / 2)
    assert r["with_wrong_compile"] == 1
    assert plan.catch_rate([], 0.1) == {"builds": 0}


def test_no_fault_env_leaks_into_the_suite() -> None:
    assert "FGO_FAULT" not in os.environ


def test_a_fault_that_hits_is_logged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FGO_FAULT_LOG: one line per compile the fault changed, none for those it left alone."""
    from fgo.worker import faults
    log = tmp_path / "hits"
    monkeypatch.setenv("FGO_FAULT_LOG", str(log))
    monkeypatch.setenv("FGO_FAULT", "wrong:0.5")
    ids = [f"t{i}" for i in range(40)]
    wrong = [t for t in ids if faults.compile_args(["a.go"], t) != ["a.go"]]
    assert 0 < len(wrong) < len(ids)
    assert log.read_text().splitlines() == [f"wrong:0.5 compile {t}" for t in wrong]
    monkeypatch.setenv("FGO_FAULT", "corrupt-transfer")
    assert faults.damage("shard", b"xy") == b"xy" and faults.damage("transfer", b"xy") != b"xy"
    assert log.read_text().splitlines()[-1] == "corrupt-transfer transfer "
