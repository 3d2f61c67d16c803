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
