"""The patched compiler on demand (fgo.compiler.patched.OnDemand): a build that may split
builds it only when its first split is decided, waiting for it only when the user asked for
splits; otherwise in the background, for the builds after it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fgo.compiler import patched as cp


@pytest.fixture
def unbuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """A cache without the patched compiler; the background builds started, not run."""
    monkeypatch.setenv("FGO_CACHE_DIR", str(tmp_path / "cache"))
    started: list[list[str]] = []
    monkeypatch.setattr(cp, "detach", lambda argv, log: started.append([str(a) for a in argv]))
    return started


def test_an_automatic_split_never_waits_for_it(unbuilt: list[list[str]]) -> None:
    said: list[str] = []
    compiler = cp.OnDemand(wait=False, say=said.append)
    assert not unbuilt and not said                    # nothing until a split is decided
    assert compiler.get() is None and compiler.get() is None
    assert unbuilt == [[sys.executable, "-m", "fgo.compiler.patched"]]   # started once
    assert len(said) == 1 and "background" in said[0]


def test_a_split_the_user_asked_for_waits_for_it(unbuilt: list[list[str]],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    built = cp.Patched(Path("/x/compile"), "s" * 64, True, 1.0)
    calls: list[object] = []
    monkeypatch.setattr(cp, "ensure_compiler", lambda log=None: calls.append(log) or built)
    compiler = cp.OnDemand(wait=True)
    assert compiler.get() == built.path and compiler.get() == built.path
    assert len(calls) == 1 and not unbuilt


def test_one_that_cannot_be_built_says_why_once(unbuilt: list[list[str]],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(log=None):
        raise cp.PatchError("0001.patch does not apply")
    monkeypatch.setattr(cp, "ensure_compiler", broken)
    compiler = cp.OnDemand(wait=True)
    assert compiler.get() is None and "does not apply" in compiler.error
    monkeypatch.setattr(cp, "ensure_compiler", lambda log=None: pytest.fail("built again"))
    assert compiler.get() is None


def test_a_worker_refuses_an_automatic_splits_shard_until_it_has_it(
        unbuilt: list[list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    from fgo.wire import SplitRole
    from fgo.worker import runner, shard
    monkeypatch.setattr(runner, "_on_demand", None)
    role = SplitRole(k=1, n=2, series="s", plan="", timeout=1.0, split_id="x",
                     wait_compiler=False)
    assert shard._patched(role) is None and shard._patched(role) is None
    assert unbuilt == [[sys.executable, "-m", "fgo.compiler.patched"]]   # started once
    built = cp.Patched(Path("/x/compile"), "s" * 64, True, 1.0)
    monkeypatch.setattr(cp, "ensure_compiler", lambda log=None: built)
    asked = SplitRole(k=1, n=2, series="s", plan="", timeout=1.0, split_id="x")
    assert shard._patched(asked) is built                  # a split asked for waits for it


def test_a_worker_that_refuses_such_a_shard_stays_in_use(unbuilt: list[list[str]],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from fgo.head import policy
    from fgo.wire import SplitRole, Status
    from fgo.worker import runner, shard
    monkeypatch.setattr(runner, "_on_demand", None)
    role = SplitRole(k=1, n=2, series="s", plan="", timeout=1.0, split_id="refused",
                     wait_compiler=False)
    done = shard.run(None, role, [], {}, "/nonexistent", "w", 0.0)  # type: ignore[arg-type]
    assert done.status is Status.SHARD_FAILED and not policy.judge(done.status).drop_worker
    assert shard.RESULTS.take("refused", 1, 0.1).status is Status.SHARD_FAILED  # no wait


@pytest.mark.slow
def test_the_background_build_is_a_module_that_runs() -> None:
    """What OnDemand starts: with the compiler built (it is, once, for every test that
    splits), it finds it and exits at once."""
    path = cp.ensure_compiler().path
    proc = subprocess.run([sys.executable, "-m", "fgo.compiler.patched"], capture_output=True,
                          text=True, timeout=120, env=os.environ, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert cp.built_compiler() == path
