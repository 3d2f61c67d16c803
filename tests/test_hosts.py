"""The emulated hosts of the scale-out experiment (experiments/hosts.py): their names and
subnet, and that leaving the context removes everything, also after an error."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "fgo_experiment_hosts", Path(__file__).resolve().parents[1] / "experiments" / "hosts.py")
assert _SPEC and _SPEC.loader
hosts = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = hosts  # its dataclasses look their module up
_SPEC.loader.exec_module(hosts)
_ACCT = importlib.util.spec_from_file_location(
    "fgo_experiment_acct", Path(__file__).resolve().parents[1] / "experiments" / "acct.py")
assert _ACCT and _ACCT.loader
acct = importlib.util.module_from_spec(_ACCT)
sys.modules[_ACCT.name] = acct
_ACCT.loader.exec_module(acct)


def test_names_fit_linux_interface_names_and_name_their_owner() -> None:
    ns, veth = hosts.names(4194304, 12)
    bridge = hosts.bridge_name(4194304)
    assert max(len(veth), len(bridge)) <= 15  # IFNAMSIZ - 1
    assert {hosts.owner_of(n) for n in (ns, veth, bridge)} == {4194304}
    assert hosts.owner_of("eth0") is None and hosts.owner_of("fgob12x") is None


def test_subnet_avoids_those_in_use() -> None:
    assert hosts.pick_subnet(99, set()) == 100
    assert hosts.pick_subnet(99, {100, 101}) == 102
    assert hosts.pick_subnet(253, {254}) == 1  # wraps within 1..254
    with pytest.raises(RuntimeError):
        hosts.pick_subnet(0, set(range(1, 255)))


def test_tbf_limits_both_rate_and_burst() -> None:
    cmd = hosts.tbf("fgov1x0", "1gbit")
    assert cmd[cmd.index("rate") + 1] == "1gbit" and "burst" in cmd and "tbf" in cmd


@pytest.fixture
def can_emulate() -> None:
    why = hosts.unavailable()
    if why:
        pytest.skip(why)


def test_an_error_inside_leaves_nothing_behind(tmp_path: Path, can_emulate) -> None:
    h = hosts.Hosts(cores=(0,), workdir=tmp_path / "hosts")
    with pytest.raises(RuntimeError, match="boom"):
        with h:
            assert len(h.leftovers()) == 3  # namespace, veth, bridge
            inside = subprocess.Popen(["ip", "netns", "exec", h.hosts[0].netns, "sleep", "600"])
            assert hosts.netns_pids(h.hosts[0].netns) or inside.poll() is None
            raise RuntimeError("boom")
    assert inside.wait(timeout=10) != 0  # killed with its namespace
    assert h.leftovers() == []


def test_a_dead_runs_namespace_is_removed_by_the_next(can_emulate) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    ns, _ = hosts.names(dead.pid, 0)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        assert ns in hosts.remove_stale()
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
    assert hosts.netns_pids(ns) == [] and ns not in subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_process_accounting_charges_each_process_to_its_role() -> None:
    line = "{comm:<16}|v3|{u:9.2f}|{s:9.2f}|   100.00|     0|     0|  1000.00|     0.00|{pid:8d}|{ppid:8d}|S|0|__|Mon"
    rows = [("fgo", 300, 100, 10, 1), ("go", 200, 50, 11, 10), ("fgo-shim", 1, 1, 12, 11),
            ("python3", 400, 100, 13, 11), ("compile", 150, 0, 14, 10), ("link", 250, 0, 15, 11),
            ("cc1", 10, 0, 16, 11), ("python3", 700, 100, 20, 2), ("compile", 5000, 0, 21, 20),
            ("dask", 400, 0, 30, 2), ("compile", 900, 0, 40, 99)]   # the last: someone else's
    dump = "\n".join(line.format(comm=c, u=u, s=s, pid=p, ppid=pp) for c, u, s, p, pp in rows)
    records = acct.parse(dump + "\nnot a record")
    assert len(records) == len(rows) and records[0] == acct.Record("fgo", 4.0, 10, 1)
    got = acct.breakdown(records, head_parent=1, hosts={"host0": {20}}, scheduler=30,
                         already={20: 3.0})
    assert got == {"host0 compiles": 50.0, "fgo cacheprog": 5.0, "fgo head": 4.0,
                   "scheduler": 4.0, "go build": 2.5, "link": 2.5,
                   "head compiles (verification, local)": 1.5,
                   "host0 python (worker, nanny)": 5.0, "asm, cgo and C": 0.1}  # (shims: < 0.05 s)


def test_a_run_on_the_head_alone_measured_nothing() -> None:
    ok = {"remote": 40, "local": 2, "split": 0, "fallbacks": 1, "fallback_reasons": {"timeout": 1}}
    assert hosts.measured_nothing(ok) == []
    # workers sent paths they cannot read: every compile falls back, the build succeeds
    alone = {"remote": 0, "local": 42, "split": 0, "fallbacks": 42,
             "fallback_reasons": {"store-error": 42}}
    why = hosts.measured_nothing(alone)
    assert len(why) == 3 and "no compile ran on the emulated hosts" in why
    assert any("store-error" in w for w in why)
    assert hosts.measured_nothing({**ok, "fallbacks": 10}) != []   # > 10% fell back
    assert hosts.measured_nothing(ok, split_wanted=True) == ["a split was asked for and none ran"]
    assert hosts.measured_nothing({**ok, "split": 1}, split_wanted=True) == []
    # one package alone, split: its shards are what ran on the hosts
    assert hosts.measured_nothing({**alone, "fallbacks": 0, "fallback_reasons": {},
                                   "local": 0, "split": 1}, split_wanted=True) == []


def test_a_host_has_a_tmp_of_its_own_and_still_runs_fgo(tmp_path: Path, can_emulate) -> None:
    """The head's temp files (its host token) are not seen from a host, also when the
    head's TMPDIR is /tmp; fgo and its Python stay runnable (bound back when under /tmp)."""
    h = hosts.Hosts(cores=(0,), workdir=tmp_path / "hosts")
    with h:
        h.check_isolation()   # raises if a host sees the head's token or /tmp
        root = h.hosts[0].install
        (root / "store-gocache" / "x").mkdir(parents=True)
        with h.cluster():
            assert not any((root / "store-gocache").iterdir())   # every cluster starts empty
    assert h.leftovers() == []


def test_keep_only_what_a_hidden_directory_covers() -> None:
    isolation = hosts.isolation
    keep = isolation.keep_dirs([Path("/nonexistent-hidden")])
    assert all(p.is_relative_to("/tmp") for p in keep)   # nothing else covers them
    everything = isolation.keep_dirs([Path("/")])
    assert Path(sys.prefix).resolve() in everything
