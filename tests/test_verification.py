"""The default verification's decisions, ledger and GOCACHE eviction (no processes)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from fgo.head import verification as v


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


def test_a_workers_first_check_is_a_small_compile_or_an_early_one() -> None:
    never = next(k for k in (f"k{i}" for i in range(1000)) if not v.sampled(k, 0.5))
    big, small = v.FIRST_CHECK_MAX_BYTES + 1, v.FIRST_CHECK_MAX_BYTES
    assert v.remote_reason("w1", set(), never, 0.5, False, source_bytes=big, nth=1) is None
    assert v.remote_reason("w1", set(), never, 0.5, False, source_bytes=small,
                           nth=2) == "first of worker"
    assert v.remote_reason("w1", set(), never, 0.5, False, source_bytes=big,
                           nth=v.FIRST_CHECK_BY) == "first of worker"
    assert v.remote_reason("w1", {"w1"}, never, 0.5, False, source_bytes=small, nth=2) is None


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
    assert not path.exists()  # written once per build, by save
    ledger.save()
    again = v.Ledger(path)
    assert again.is_verified(key)
    again.record(key, False, "s" * 64, "p", "mismatch at p.F")
    again.save()
    third = v.Ledger(path)
    assert not third.is_verified(key) and not third.split_allowed("s" * 64, "p")
    assert third.split_allowed("t" * 64, "p")  # another compiler series may split it


def test_inputs_are_identified_by_gos_action_id() -> None:
    assert v.inputs_id("AAAA/BBBB", {"/tmp/go-build1/importcfg": "x"}) == "AAAA"
    assert v.inputs_id("AAAA/BBBB", {"/tmp/go-build2/importcfg": "y"}) == "AAAA"  # new WORK dir
    assert v.inputs_id("", {"/a": "1"}) == v.inputs_hash({"/a": "1"}) != v.inputs_id("", {"/a": "2"})


def test_corrupt_ledger_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    path.write_text("{not json")
    assert not v.Ledger(path).verified


class Result:
    def __init__(self, outputs: dict, ok: bool = True) -> None:
        self.outputs, self.ok = outputs, ok


def job(result: Result, runs: list | None = None, name: str = ""):
    """A LocalJob: snapshot now (recorded), compile later (returns RESULT)."""
    def local():
        def run():
            if runs is not None:
                runs.append(name)
            return result
        return run
    return local


def test_verifier_counts_matches_and_names_a_mismatch(tmp_path: Path) -> None:
    runs: list[str] = []
    excluded: list[str] = []
    ver = v.Verifier(rate=0.0, split_mode="first", ledger=v.Ledger(tmp_path / "l.json"),
                     on_exclude=excluded.append)
    same, right = Result({"/o/_pkg_.a": b"same"}), Result({"/o/_pkg_.a": b"right"})
    ver.after_remote("p/good", "w1", {"/src/x.go": "1"}, lambda: {"/o/_pkg_.a": b"same"}, "",
                     job(same, runs, "good"))
    ver.after_remote("p/other", "w1", {"/src/y.go": "1"}, lambda: {"/o/_pkg_.a": b"x"}, "",
                     job(same, runs, "other"))
    ver.after_remote("p/bad", "w2", {"/src/z.go": "1"}, lambda: {"/o/_pkg_.a": b"wrong"}, "B/B",
                     job(right, runs, "bad"))
    mismatches = ver.wait()
    assert runs == ["good", "bad"]  # w1's second compile is not sampled at rate 0
    assert [(m.package, m.worker, m.kind) for m in mismatches] == [("p/bad", "w2", "remote")]
    assert mismatches[0].buildid == "B/B" and excluded == ["w2"]
    assert "p/bad on w2" in mismatches[0].line()
    rep = ver.report()
    assert (rep["checked"], rep["matched"], len(rep["mismatched"])) == (2, 1, 1)
    ver.close()


def test_verifier_splits_once_per_key_and_disables_after_a_mismatch(tmp_path: Path) -> None:
    ledger = v.Ledger(tmp_path / "l.json")
    runs: list[str] = []
    stock = Result({"/o/_pkg_.a": b"stock"})
    outcomes: list[tuple] = []
    series = "s" * 64
    ver = v.Verifier(split_mode="first", ledger=ledger)
    for _ in range(2):
        ver.after_split(series, "p", 2, "w1+w2", {"/a.go": "1"}, {"/o/_pkg_.a": b"stock"}, "",
                        job(stock, runs), lambda *o: outcomes.append(o))
        ver.wait()
    assert len(runs) == 1 and ver.report()["matched"] == 1  # the warm ledger skips the second
    assert outcomes and outcomes[0][0] is True and outcomes[0][1] == outcomes[0][2]
    ver.after_split(series, "q", 2, "w1+w2", {"/b.go": "1"}, {"/o/_pkg_.a": b"bad"}, "",
                    job(stock, runs))
    assert ver.wait() and not ledger.split_allowed(series, "q") and ledger.split_allowed(series, "p")
    always = v.Verifier(split_mode="always", ledger=ledger)
    always.after_split(series, "p", 2, "w1+w2", {"/a.go": "1"}, {"/o/_pkg_.a": b"stock"}, "",
                       job(stock, runs))
    always.wait()
    assert len(runs) == 3
    for ver_ in (ver, always):
        ver_.close()


def test_unverifiable_is_not_a_match() -> None:
    ver = v.Verifier(rate=1.0)
    ver.after_remote("p", "w1", {}, lambda: {"/o/_pkg_.a": b"x"}, "", job(Result({}, ok=False)))
    assert ver.wait() == []
    rep = ver.report()
    assert (rep["checked"], rep["matched"], rep["unverifiable"]) == (0, 0, 1)
    ver.close()


def test_an_excluded_worker_taints_everything_it_produced() -> None:
    ver = v.Verifier(rate=0.0)
    ok, bad = Result({"/o/_pkg_.a": b"x"}), Result({"/o/_pkg_.a": b"y"})
    ver.after_remote("p1", "w1", {"/1": "1"}, lambda: {"/o/_pkg_.a": b"x"}, "A1/A1", job(ok))
    ver.after_remote("p2", "w2", {"/2": "2"}, lambda: {"/o/_pkg_.a": b"x"}, "B1/B1", job(bad))
    ver.after_remote("p3", "w2", {"/3": "3"}, lambda: {"/o/_pkg_.a": b"x"}, "B2/B2", job(ok))
    assert ver.wait()
    assert ver.suspects() == ["B1/B1", "B2/B2"]
    assert ver.report()["excluded"] == ["w2"]
    ver.close()


def test_idle_cores_over_the_interval() -> None:
    from fgo.head import headload
    assert headload.idle_cores((100, 1000), (150, 1100), cores=2) == 1.0   # half of 2 cores
    assert headload.idle_cores((100, 1000), (100, 1100), cores=2) == 0.0   # all busy
    assert headload.idle_cores((100, 1000), (100, 1000), cores=2) == 0.0   # no time passed


def test_a_busy_head_skips_samples_but_never_a_workers_first_check(tmp_path: Path) -> None:
    from fgo.head.headload import HeadLoad
    stat = tmp_path / "stat"
    busy = HeadLoad(str(stat))  # no readable counters: free, until a reading says otherwise
    busy.cpus, busy.last, busy.at, busy.free = {"cpu0"}, (0, 0), 0.0, True
    stat.write_text("cpu0 100 0 0 0 0 0 0 0 0 0\n")   # 100 jiffies, none idle
    assert busy.core_free() is False
    ver = v.Verifier(rate=1.0, head=busy)
    ok = Result({"/o/_pkg_.a": b"x"})
    ver.after_remote("p1", "w1", {"/1": "1"}, lambda: {"/o/_pkg_.a": b"x"}, "A1/A1", job(ok))
    ver.after_remote("p2", "w1", {"/2": "2"}, lambda: {"/o/_pkg_.a": b"x"}, "A2/A2", job(ok))
    assert ver.wait() == []
    rep = ver.report()
    assert [c["reason"] for c in rep["checks"]] == ["first of worker"]
    assert rep["skipped_busy"] == 1
    ver.close()
