"""The default verification's decisions, ledger and GOCACHE eviction (no processes)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from fgo.build import verification as v


def test_sampling_is_deterministic_and_near_the_rate() -> None:
    keys = [f"pkg{i}" for i in range(20000)]
    share = sum(v.sampled(k, 0.05) for k in keys) / len(keys)
    assert 0.04 < share < 0.06
    assert [v.sampled(k, 0.05) for k in keys[:50]] == [v.sampled(k, 0.05) for k in keys[:50]]
    assert not any(v.sampled(k, 0) for k in keys[:1000])
    assert all(v.sampled(k, 1.0) for k in keys[:1000])


def test_remote_reason_every_branch() -> None:
    always = next(k for k in (f"k{i}" for i in range(1000)) if v.sampled(k, 0.5))
    never = next(k for k in (f"k{i}" for i in range(1000)) if not v.sampled(k, 0.5))
    assert v.remote_reason("w1", set(), never, 0.0, head_busy=True) == "first of worker"
    assert v.remote_reason("w1", {"w1"}, always, 0.5, head_busy=False) == "sampled"
    assert v.remote_reason("w1", {"w1"}, always, 0.5, head_busy=True) is None
    assert v.remote_reason("w1", {"w1"}, never, 0.5, head_busy=False) is None


def test_split_needs_check_every_mode() -> None:
    assert v.split_needs_check("first", verified=False)
    assert not v.split_needs_check("first", verified=True)
    assert v.split_needs_check("always", verified=True)
    assert not v.split_needs_check("off", verified=False)


def test_action_id_prefix_decodes_gos_hash_to_string() -> None:
    action = hashlib.sha256(b"action").digest()
    encoded = base64.urlsafe_b64encode(action[:15]).decode()   # cmd/internal/buildid.HashToString
    assert v.action_id_prefix(f"{encoded}/{encoded}") == action[:15].hex()
    assert v.action_id_prefix("short/x") is None


def test_evict_removes_the_index_and_its_output(tmp_path: Path) -> None:
    action = hashlib.sha256(b"a").digest()
    output = hashlib.sha256(b"archive").hexdigest()
    (tmp_path / action.hex()[:2]).mkdir()
    (tmp_path / output[:2]).mkdir(exist_ok=True)
    index = tmp_path / action.hex()[:2] / f"{action.hex()}-a"
    index.write_text(f"v1 {action.hex()} {output} 7 123\n")
    data = tmp_path / output[:2] / f"{output}-d"
    data.write_bytes(b"archive")
    other = tmp_path / action.hex()[:2] / f"{'ff' * 32}-a"
    other.write_text("v1 x y 1 1\n")
    encoded = base64.urlsafe_b64encode(action[:15]).decode()
    removed = v.evict(tmp_path, f"{encoded}/{encoded}")
    assert sorted(removed) == sorted([str(index), str(data)])
    assert not index.exists() and not data.exists() and other.exists()


def test_ledger_remembers_and_disables(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    ledger = v.Ledger(path)
    key = v.split_key("s" * 64, "p", "h" * 64, 2)
    assert not ledger.is_verified(key) and ledger.split_allowed("s" * 64, "p")
    ledger.record(key, True, "s" * 64, "p")
    again = v.Ledger(path)
    assert again.is_verified(key)
    again.record(key, False, "s" * 64, "p", "mismatch at p.F")
    third = v.Ledger(path)
    assert not third.is_verified(key) and not third.split_allowed("s" * 64, "p")
    assert third.split_allowed("t" * 64, "p")  # another compiler series may split it


def test_corrupt_ledger_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    path.write_text("{not json")
    assert not v.Ledger(path).verified


def task(inputs: dict[str, str]) -> dict:
    return {"inputs": inputs, "call": {}, "split": None}


def test_verifier_counts_matches_and_names_a_mismatch(tmp_path: Path) -> None:
    answers = {"good": {"/o/_pkg_.a": b"same"}, "bad": {"/o/_pkg_.a": b"right"}}
    runs: list[str] = []

    def local_run(t: dict, blobs: dict) -> dict:
        runs.append(t["inputs"]["/src/x.go"])
        return {"status": "ok", "outputs": answers[t["inputs"]["/src/x.go"]]}

    ver = v.Verifier(local_run, rate=0.0, split_mode="first", ledger=v.Ledger(tmp_path / "l.json"))
    ver.after_remote("p/good", "w1", task({"/src/x.go": "good"}), dict, {"/o/_pkg_.a": b"same"}, "")
    ver.after_remote("p/other", "w1", task({"/src/x.go": "good"}), dict, {"/o/_pkg_.a": b"x"}, "")
    ver.after_remote("p/bad", "w2", task({"/src/x.go": "bad"}), dict, {"/o/_pkg_.a": b"wrong"}, "B/B")
    mismatches = ver.wait()
    assert runs == ["good", "bad"]  # w1's second compile is not sampled at rate 0
    assert [(m.package, m.worker, m.kind) for m in mismatches] == [("p/bad", "w2", "remote")]
    assert mismatches[0].buildid == "B/B" and "w2" in ver.excluded
    assert "p/bad on w2" in mismatches[0].line()
    rep = ver.report()
    assert (rep["checked"], rep["matched"], len(rep["mismatched"])) == (2, 1, 1)
    ver.close()


def test_verifier_splits_once_per_key_and_disables_after_a_mismatch(tmp_path: Path) -> None:
    ledger = v.Ledger(tmp_path / "l.json")
    calls = []

    def local_run(t: dict, blobs: dict) -> dict:
        calls.append(1)
        return {"status": "ok", "outputs": {"/o/_pkg_.a": b"stock"}}

    series = "s" * 64
    ver = v.Verifier(local_run, split_mode="first", ledger=ledger)
    for _ in range(2):
        ver.after_split(series, "p", 2, "w1+w2", task({"/a.go": "1"}), dict, {"/o/_pkg_.a": b"stock"}, "")
        ver.wait()
    assert len(calls) == 1 and ver.report()["matched"] == 1  # the warm ledger skips the second
    ver.after_split(series, "q", 2, "w1+w2", task({"/b.go": "1"}), dict, {"/o/_pkg_.a": b"bad"}, "")
    assert ver.wait() and not ledger.split_allowed(series, "q") and ledger.split_allowed(series, "p")
    always = v.Verifier(local_run, split_mode="always", ledger=ledger)
    always.after_split(series, "p", 2, "w1+w2", task({"/a.go": "1"}), dict, {"/o/_pkg_.a": b"stock"}, "")
    always.wait()
    assert len(calls) == 3
    for ver_ in (ver, always):
        ver_.close()


def test_unverifiable_is_not_a_match(tmp_path: Path) -> None:
    ver = v.Verifier(lambda t, b: {"status": "refused", "reason": "no tool"}, rate=1.0)
    ver.after_remote("p", "w1", task({}), dict, {"/o/_pkg_.a": b"x"}, "")
    assert ver.wait() == []
    rep = ver.report()
    assert (rep["checked"], rep["matched"], rep["unverifiable"]) == (0, 0, 1)
    ver.close()
