"""The default verification's decisions, ledger and GOCACHE eviction (no processes)."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from fgo.head import checks, ledger
from fgo.head import verification as v


def test_the_sample_comes_from_a_secret_a_worker_cannot_know() -> None:
    keys = [f"pkg{i}" for i in range(20000)]
    a, b = b"a" * 32, b"b" * 32
    share = sum(checks.secret_draw(a, k) < 0.05 for k in keys) / len(keys)
    assert 0.04 < share < 0.06
    # the same key samples differently under another build's secret
    assert [checks.secret_draw(a, k) < 0.5 for k in keys[:64]] != \
        [checks.secret_draw(b, k) < 0.5 for k in keys[:64]]
    assert {checks.first_check_at(a, f"w{i}") for i in range(200)} == \
        set(range(1, checks.FIRST_WITHIN + 1))


def test_check_reason_every_branch() -> None:
    assert checks.check_reason(True, 1, 2, 0.9, 0.03) is None            # not its turn yet
    assert checks.check_reason(True, 2, 2, 0.9, 0.03) == "first of worker"
    assert checks.check_reason(True, 5, 2, 0.9, 0.03) == "first of worker"  # still due
    assert checks.check_reason(False, 5, 2, 0.01, 0.03) == "sampled"
    assert checks.check_reason(False, 5, 2, 0.9, 0.03) is None
    # the build's checks fell behind 3% of its compiles: the next one is checked
    assert checks.check_reason(False, 5, 2, 0.9, 0.03, checked=1, compiles=34) == "keeping the rate"
    assert checks.check_reason(False, 5, 2, 0.9, 0.03, checked=1, compiles=33) is None
    assert checks.check_reason(False, 5, 2, 0.9, 0.03, checked=2, compiles=34) is None
    assert checks.check_reason(False, 5, 2, 0.9, 0.0, checked=0, compiles=34) is None  # off


def test_where_a_check_runs() -> None:
    assert checks.where_to_check("first of worker", False, True) == "head"  # the reference
    assert checks.where_to_check("sampled", True, True) == "head"
    assert checks.where_to_check("sampled", False, True) == "cross"         # the head is busy
    assert checks.where_to_check("sampled", False, False) == "head"         # nobody else
    assert checks.arbiter(True, False) == ["checker"]
    assert checks.arbiter(False, True) == ["producer"]
    assert checks.arbiter(False, False) == ["producer", "checker"]


def test_the_catch_formula() -> None:
    """A worker wrong on 5% of its compiles escapes c checks with probability 0.95^c: 90
    checks catch it with 99% confidence."""
    assert checks.checks_needed(0.05, 0.99) == 90
    assert checks.catch_probability(0.05, 90) >= 0.99 > checks.catch_probability(0.05, 89)
    assert checks.checks_needed(0.5, 0.99) == 7
    assert checks.sample_rate(0.03, None, 240) == 0.03
    assert checks.sample_rate(0.03, 0.05, 240) == 90 / 240      # etcd's 480 on 2 workers
    assert checks.sample_rate(0.03, 0.05, 50) == 1.0
    assert checks.sample_rate(0.03, 0.05, None) == 1.0          # size unknown: check all
    assert checks.sample_rate(0.5, 0.05, 10_000) == 0.5


def test_split_needs_check_every_mode() -> None:
    assert checks.split_needs_check("first", False, 0.9, 0.03) == "first of inputs"
    assert checks.split_needs_check("first", True, 0.9, 0.03) is None
    assert checks.split_needs_check("first", True, 0.01, 0.03) == "sampled"   # re-checked
    assert checks.split_needs_check("always", True, 0.9, 0.03) == "always"
    assert checks.split_needs_check("off", False, 0.0, 1.0) is None


def test_action_id_prefix_decodes_gos_hash_to_string() -> None:
    action = hashlib.sha256(b"action").digest()
    encoded = base64.urlsafe_b64encode(action[:15]).decode()   # cmd/internal/buildid.HashToString
    assert checks.action_id_prefix(f"{encoded}/{encoded}") == action[:15].hex()
    assert checks.action_id_prefix("short/x") is None


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
    removed = ledger.evict(tmp_path, f"{encoded}/{encoded}")
    assert sorted(removed) == sorted([str(index), str(data)])
    assert not index.exists() and not data.exists() and other.exists()


def test_ledger_remembers_and_disables(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    book = ledger.Ledger(path)
    key = checks.split_key("s" * 64, "p", "h" * 64, 2)
    assert not book.is_verified(key) and book.split_allowed("s" * 64, "p")
    book.record(key, True, "s" * 64, "p")
    assert not path.exists()  # written once per build, by save
    book.save()
    again = ledger.Ledger(path)
    assert again.is_verified(key)
    again.record(key, False, "s" * 64, "p", "mismatch at p.F")
    again.save()
    third = ledger.Ledger(path)
    assert not third.is_verified(key) and not third.split_allowed("s" * 64, "p")
    assert third.split_allowed("t" * 64, "p")  # another compiler series may split it


def test_inputs_are_identified_by_gos_action_id() -> None:
    assert checks.inputs_id("AAAA/BBBB", {"/tmp/go-build1/importcfg": "x"}) == "AAAA"
    assert checks.inputs_id("AAAA/BBBB", {"/tmp/go-build2/importcfg": "y"}) == "AAAA"  # new WORK dir
    assert checks.inputs_id("", {"/a": "1"}) == checks.inputs_hash({"/a": "1"}) != checks.inputs_id("", {"/a": "2"})


def test_corrupt_ledger_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    path.write_text("{not json")
    assert not ledger.Ledger(path).verified


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


def _verifier(**kw) -> v.Verifier:
    """A verifier whose workers' first checks come at their first compile."""
    ver = v.Verifier(**kw)
    while any(checks.first_check_at(ver.secret, w) != 1
              for w in ("w1", "w2", "w1 (speculative)")):
        ver.secret = os.urandom(32)
    return ver


def test_verifier_counts_matches_and_names_a_mismatch(tmp_path: Path) -> None:
    runs: list[str] = []
    excluded: list[str] = []
    ver = _verifier(rate=0.0, split_mode="first", ledger=ledger.Ledger(tmp_path / "l.json"),
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


def test_a_worker_that_stops_short_of_its_pick_is_checked_on_its_last_compile() -> None:
    """A worker's first check comes at a secret one of its first compiles; one that does
    fewer (a wrong worker with two compiles to do) is checked on its latest one when the
    build waits (the link asks first), on the head, and caught before anything is linked."""
    ver = v.Verifier(rate=0.0)
    while checks.first_check_at(ver.secret, "w1") != 4:
        ver.secret = os.urandom(32)
    runs: list[str] = []
    right = Result({"/o/_pkg_.a": b"right"})
    workdir_gone = False

    def snapshot(name: str):
        def local():          # go build removes its work dir once it has its answer
            assert not workdir_gone, "snapshotted after go build removed the inputs"
            return job(right, runs, name)()
        return local
    for name in ("a", "b"):
        ver.after_remote(f"p/{name}", "w1", {f"/src/{name}.go": "1"},
                         lambda: {"/o/_pkg_.a": b"wrong"}, f"{name}/{name}", snapshot(name))
    workdir_gone = True
    assert runs == []                       # not its turn yet
    mismatches = ver.wait()
    assert runs == ["b"]                    # its latest compile
    assert [(m.package, m.worker) for m in mismatches] == [("p/b", "w1")]
    assert ver.wait() == mismatches and runs == ["b"]   # once
    ver.close()


def test_a_busy_head_sends_samples_to_another_worker() -> None:
    """The sampling rate holds under load: the head keeps the first check of each worker;
    a sample goes to another worker, and agreeing outputs are a match."""
    ver = _verifier(rate=1.0)
    ver.head_free = lambda: False
    ver.other_workers = lambda worker: True
    crossed: list[str] = []

    def cross(result: Result):
        def pick(avoid: str):
            crossed.append(avoid)
            result.worker, result.exit = "w9", 0
            return lambda: result
        return pick
    ok = Result({"/o/_pkg_.a": b"x"})
    for i in range(3):
        ver.after_remote(f"p{i}", "w1", {f"/{i}": "1"}, lambda: {"/o/_pkg_.a": b"x"}, f"A{i}/A{i}",
                         job(ok), cross=cross(Result({"/o/_pkg_.a": b"x"})))
    assert ver.wait() == []
    rep = ver.report()
    assert [c["where"] for c in rep["checks"]] == ["head", "cross", "cross"]
    assert crossed == ["w1", "w1"] and rep["checked"] == rep["matched"] == 3
    assert rep["cross_checks"] == 2 and rep["catch"]["workers"]["w1"]["checks"] == 3
    ver.close()


def test_a_disagreement_is_arbitrated_by_the_head() -> None:
    """The producer and the checking worker differ: the head's own compile names the wrong
    one, who is excluded."""
    excluded: list[str] = []
    ver = _verifier(rate=1.0, on_exclude=excluded.append)
    ver.head_free = lambda: False
    ver.other_workers = lambda worker: True
    reference = Result({"/o/_pkg_.a": b"right"})
    first = Result({"/o/_pkg_.a": b"right"})
    ver.after_remote("p0", "w1", {"/0": "1"}, lambda: {"/o/_pkg_.a": b"right"}, "A/A", job(first))

    def lying_checker(avoid: str):
        wrong = Result({"/o/_pkg_.a": b"WRONG"})
        wrong.worker, wrong.exit = "w9", 0
        return lambda: wrong
    ver.after_remote("p1", "w1", {"/1": "1"}, lambda: {"/o/_pkg_.a": b"right"}, "B/B",
                     job(reference), cross=lying_checker)
    mismatches = ver.wait()
    assert [m.worker for m in mismatches] == ["w9"] and excluded == ["w9"]
    assert ver.report()["checks"][1]["matched"] is True
    ver.close()


def test_an_unverifiable_first_check_leaves_the_worker_unchecked() -> None:
    """A check the head cannot run proves nothing: the worker's next compile is checked."""
    runs: list[str] = []
    ver = _verifier(rate=0.0)
    ver.after_remote("p1", "w1", {"/1": "1"}, lambda: {"/o/_pkg_.a": b"x"}, "",
                     job(Result({}, ok=False), runs, "broken"))
    ver.wait()
    ver.after_remote("p2", "w1", {"/2": "1"}, lambda: {"/o/_pkg_.a": b"x"}, "",
                     job(Result({"/o/_pkg_.a": b"x"}), runs, "again"))
    ver.after_remote("p3", "w1", {"/3": "1"}, lambda: {"/o/_pkg_.a": b"x"}, "",
                     job(Result({"/o/_pkg_.a": b"x"}), runs, "not this one"))
    ver.wait()
    assert runs == ["broken", "again"]
    rep = ver.report()
    assert (rep["checked"], rep["unverifiable"]) == (1, 1)
    ver.close()


def test_a_speculative_mismatch_excludes_the_real_worker() -> None:
    excluded: list[str] = []
    ver = _verifier(rate=0.0, on_exclude=excluded.append)
    ver.after_remote("p", "w1", {"/1": "1"}, lambda: {"/o/_pkg_.a": b"spec"}, "S/S",
                     job(Result({"/o/_pkg_.a": b"stock"})), speculative=True)
    mismatches = ver.wait()
    assert [(m.worker, m.kind) for m in mismatches] == [("w1", "speculative")]
    assert excluded == ["w1"] and ver.suspects() == ["S/S"]
    ver.close()


def test_verifier_splits_once_per_key_and_disables_after_a_mismatch(tmp_path: Path) -> None:
    book = ledger.Ledger(tmp_path / "l.json")
    runs: list[str] = []
    stock = Result({"/o/_pkg_.a": b"stock"})
    outcomes: list[tuple] = []
    series = "s" * 64
    ver = v.Verifier(rate=0.0, split_mode="first", ledger=book)
    for _ in range(2):
        ver.after_split(series, "p", 2, "w1+w2", {"/a.go": "1"}, {"/o/_pkg_.a": b"stock"}, "",
                        job(stock, runs), lambda *o: outcomes.append(o))
        ver.wait()
    assert len(runs) == 1 and ver.report()["matched"] == 1  # the warm ledger skips the second
    assert outcomes and outcomes[0][0] is True and outcomes[0][1] == outcomes[0][2]
    ver.after_split(series, "q", 2, "w1+w2", {"/b.go": "1"}, {"/o/_pkg_.a": b"bad"}, "",
                    job(stock, runs))
    assert ver.wait() and not book.split_allowed(series, "q") and book.split_allowed(series, "p")
    always = v.Verifier(split_mode="always", ledger=book)
    always.after_split(series, "p", 2, "w1+w2", {"/a.go": "1"}, {"/o/_pkg_.a": b"stock"}, "",
                       job(stock, runs))
    always.wait()
    assert len(runs) == 3
    for ver_ in (ver, always):
        ver_.close()


def test_unverifiable_is_not_a_match() -> None:
    ver = _verifier(rate=1.0)
    ver.after_remote("p", "w1", {}, lambda: {"/o/_pkg_.a": b"x"}, "", job(Result({}, ok=False)))
    assert ver.wait() == []
    rep = ver.report()
    assert (rep["checked"], rep["matched"], rep["unverifiable"]) == (0, 0, 1)
    ver.close()


def test_an_excluded_worker_taints_everything_it_produced() -> None:
    ver = _verifier(rate=0.0)
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


def test_every_build_checks_its_share_whatever_the_draws() -> None:
    """A random sample meets its rate on average; each build must: however the secret
    draws fall, the checks never fall behind RATE of the compiles back so far."""
    for _ in range(5):
        ver = v.Verifier(rate=0.1)
        same = Result({"/o/_pkg_.a": b"same"})
        for i in range(200):
            ver.after_remote(f"p/{i}", f"w{i % 2}", {f"/src/{i}.go": "1"},
                             lambda: {"/o/_pkg_.a": b"same"}, f"{i}/{i}", job(same))
            assert ver.remote_checks >= 0.1 * (i + 1), i
        assert not ver.wait()
        assert len(ver.checks) >= 20
        ver.close()


def test_a_long_compile_is_drawn_when_it_is_sent() -> None:
    """A compile expected to take long is drawn at dispatch with the draw and the rate its
    result would get; a short one is left to its result."""
    assert checks.dispatch_reason(1.0, 0.01, 0.03, 0, 10) is None        # short: later
    assert checks.dispatch_reason(20.0, 0.01, 0.03, 5, 10) == "sampled"
    assert checks.dispatch_reason(20.0, 0.9, 0.03, 0, 10) == "keeping the rate"
    assert checks.dispatch_reason(20.0, 0.9, 0.03, 1, 10) is None


def test_a_check_drawn_at_dispatch_runs_beside_its_remote_compile() -> None:
    """Its reference compile starts when the compile is sent (before its result is
    back); the result is compared with it, a wrong one is named and its worker excluded;
    a draw whose compile gave no remote result (the head won it) is dropped; a link's
    wait leaves the draws of compiles still out alone."""
    ver = _verifier(rate=1.0)
    runs: list[str] = []
    right = Result({"/o/_pkg_.a": b"right"})
    assert ver.at_dispatch("p/ec2", "w1", {"/src/ec2.go": "1"}, "E/E", 30.0,
                           job(right, runs, "ec2"))
    assert not ver.at_dispatch("p/small", "w1", {"/src/s.go": "1"}, "S/S", 0.5,
                               job(right, runs, "small"))
    ver.head_pool.submit(lambda: None).result()   # the reference has run meanwhile
    assert runs == ["ec2"]
    ver.after_remote("p/ec2", "w1", {"/src/ec2.go": "1"}, lambda: {"/o/_pkg_.a": b"wrong"},
                     "E/E", job(right, runs, "again"))
    won = ver.at_dispatch("p/won", "w2", {"/src/w.go": "1"}, "W/W", 30.0,
                          job(right, runs, "won"))
    late = ver.at_dispatch("p/late", "w2", {"/src/l.go": "1"}, "L/L", 30.0,
                           job(right, runs, "late"))
    assert won and late
    ver.drop_early(won)                           # the head's run of it won
    mismatches = ver.wait()                       # a link's gate: "late" is still out
    assert "again" not in runs                    # compared with the one from dispatch
    assert [(m.package, m.worker) for m in mismatches] == [("p/ec2", "w1")]
    rep = ver.report()
    assert rep["at_dispatch"] == 1 and rep["checks"][0]["reason"] == "first of worker"
    assert set(ver.early) == {late}
    ver.close()
    assert not ver.early


def test_a_sampled_check_yields_the_heads_core_and_what_the_link_waits_for_does_not() -> None:
    """A sampled check's compiler runs CHECK_NICE below the head (what go build waits for
    comes first), not the thread that waits for it (a niced thread holding the GIL stalls
    the head); a reference drawn at dispatch, which the link may wait for, at the head's own
    priority."""
    from fgo.worker import runner
    ver = _verifier(rate=1.0)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    seen: dict[str, tuple[int, int]] = {}

    def niceness(name: str):
        def local():
            def run():
                import threading
                child = runner.run(name, ["sh", "-c", "sleep 0.3; nice"], "/", dict(os.environ))
                seen[name] = (int(child.output), os.getpriority(os.PRIO_PROCESS,
                                                               threading.get_native_id()))
                return Result({"/o/_pkg_.a": b"same"})
            return run
        return local
    assert ver.at_dispatch("p/ec2", "w1", {"/src/ec2.go": "1"}, "E/E", 30.0, niceness("dispatch"))
    ver.after_remote("p/a", "w1", {"/src/a.go": "1"}, lambda: {"/o/_pkg_.a": b"same"}, "A/A",
                     niceness("sampled"))
    assert ver.wait() == []
    ver.head_pool.submit(lambda: None).result()   # the reference from dispatch has run too
    assert seen == {"dispatch": (base, base), "sampled": (min(19, base + v.CHECK_NICE), base)}
    ver.close()
