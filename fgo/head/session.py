"""One `fgo build`'s head: its parts, wired together once (fgo.head.action says how a
compile moves through them).

  Front        the shim's socket, and the order the executors are asked in
  LocalSlots   the head's own cores
  WorkerPool   the cluster's workers: handshake, placement, calls
  Tasks        what is sent to a worker
  executors    RemoteExecutor, SplitExecutor (--split-large), Speculator (pipelining)
  Completion   the one way a compile completes
  Verifier     the head's checks of remote and split outputs
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from fgo import toolchain
from fgo.blobs import BlobIndex
from fgo.errors import FgoError
from fgo.head.action import Completion
from fgo.head.front import Front
from fgo.head import policy
from fgo.head.options import BuildOptions
from fgo.head.pool import WorkerPool
from fgo.head.race import Racer
from fgo.head.shim import socket_path
from fgo.head.remote import RemoteExecutor
from fgo.head.slots import LocalSlots
from fgo.head.tasks import Tasks
from fgo.report.record import Recorder


class BuildSession:
    """The head of one build, serving the shim's socket in TMP."""

    def __init__(self, cluster: Any, recorder: Recorder, opts: BuildOptions, tmp: str,
                 project: Path, listener: socket.socket | None = None,
                 failing: dict[str, dict[str, float]] | None = None) -> None:
        self.cluster = cluster
        self.opts = opts
        self.verifier = _verifier(opts, project)
        self.completion = Completion(recorder, self.verifier)
        self.slots = LocalSlots(policy.local_slots(opts.local_slots))
        self.blobs = BlobIndex()
        self.pool = WorkerPool(cluster, tmp) if cluster is not None else None
        self.tasks = Tasks(self.pool) if self.pool is not None else None
        self.remote = RemoteExecutor(self.pool, self.tasks, recorder, opts.timeout) \
            if self.pool is not None and self.tasks is not None else None
        self.front = Front(socket_path(tmp), recorder, self.completion,
                           self.slots, self.blobs, self.pool, self.remote, listener)
        self.front.verifier = self.verifier
        self.speculator: Any = None
        self.racer: Racer | None = None
        # An embedded cluster on the head's own cores adds no capacity beside its slots: it
        # starts only for what only it can do (a split), never for an overflow.
        self.workers_count = cluster is not None and (
            not cluster.local or policy.embedded_adds_capacity(self.slots.n,
                                                               opts.workers is not None))
        if self.pool is not None:
            self.pool.lazy_start = self.workers_count
            if not cluster.local:  # workers an earlier build on this scheduler left out
                self.pool.remembered_failing = failing or {}
        if self.remote is not None and self.slots.n > 0:
            self.racer = self.remote.racer = Racer(self.slots)
        self._wire_verifier()
        if self.remote is not None:
            self.remote.verifier = self.verifier
        if self.pool is not None:
            self.verifier.on_exclude = self.pool.exclude
            if opts.pipeline or opts.pipeline is None and not cluster.local:
                # (an embedded cluster is one host: there pipelining is off unless asked)
                self._pipeline(tmp, project)
            if cluster.local and opts.split_large is not None \
                    or not cluster.local and getattr(cluster, "started", True):
                # a split needs its workers from the first compile on
                self.pool.start_now()
            elif not cluster.local:  # a scheduler still connecting: learned once it is up
                if opts.split_large is not None:  # begun now: a split's decision waits for it
                    cluster.start()
                self.pool.start_soon()
            if opts.split_large is not None:
                self.front.split = self._splitter()

    def _wire_verifier(self) -> None:
        """Checks go to the head while it has a core free (a free local slot, and its
        cores idle enough), else to another worker; the build's size splits over its
        workers once they are known; pending cross-checks run at full priority once go
        build waits for them (the link)."""
        verifier, slots = self.verifier, self.slots
        if slots.n:
            verifier.head_free = lambda: slots.available() > 0 and verifier.head.core_free()
        if self.pool is not None and self.tasks is not None:
            pool, tasks = self.pool, self.tasks
            verifier.other_workers = pool.has_other
            verifier.before_wait = tasks.promote_checks
            pool.on_learned.append(lambda hosts, threads: verifier.size_known(
                len(pool.placement.workers)))

    def start(self) -> None:
        self.front.start()

    def stop(self) -> None:
        self.front.stop()

    @property
    def socket_path(self) -> str:
        return self.front.socket_path

    def size(self) -> tuple[int, int]:
        """The cluster's workers and threads (0, 0 without one)."""
        return self.pool.size() if self.pool is not None else (0, 0)

    def parallelism(self) -> int | None:
        """go build's -p: the head's local slots and, where they add capacity, the workers'
        threads and (with slots) one compile queued at each worker (None: go's default, when
        there is neither)."""
        workers, threads = self.size()
        return policy.parallelism(self.slots.n, threads, self.workers_count, workers)

    def _splitter(self) -> Any:
        from fgo.compiler.patched import PatchError
        from fgo.head.split import SplitExecutor, SplitOptions
        opts = self.opts
        threshold = None if opts.split_large == "auto" else float(opts.split_large or 0)
        shards = None if opts.shards == "auto" else int(opts.shards)
        assert self.pool is not None and self.tasks is not None and self.remote is not None
        try:
            split = SplitExecutor(self.pool, self.tasks, self.remote,
                                  SplitOptions(threshold, shards), self.verifier,
                                  slots=self.slots, say=None if opts.quiet else _say)
        except PatchError as exc:
            raise FgoError(f"--split-large needs the patched compiler: {exc}") from None
        split.speculator = self.speculator
        return split

    def _pipeline(self, tmp: str, project: Path) -> None:
        """A speculator; go's plan (`go build -n`) is read in the background, once
        speculation is wanted for the workers at hand."""
        from fgo.head.speculation import Speculator
        from fgo.worker import faults
        assert self.pool is not None and self.remote is not None
        speculator = Speculator(self.pool, self.tasks, self.blobs,
                                os.path.join(tmp, "speculation"), forced=self.opts.pipeline,
                                task_timeout=self.opts.timeout)
        self.speculator = self.front.speculator = self.remote.speculator = \
            self.completion.speculator = speculator
        self.pool.on_learned.append(speculator.workers_known)
        self.pool.on_free.append(speculator.poke)
        go_args = self.opts.go_args

        def plan() -> None:
            from fgo.planner import prediction
            try:
                predictions = prediction.plan(go_args, cwd=project)
            except (prediction.PredictError, toolchain.ToolchainError, OSError) as exc:
                speculator.set_plan(None, str(exc))
                return
            faults.after_plan()
            speculator.set_plan(predictions)
        if faults.edits_after_plan():  # go build must start from the edited tree
            plan()
        else:
            speculator.plan_when_wanted(
                lambda: threading.Thread(target=plan, name="fgo-plan", daemon=True).start())


def _say(line: str) -> None:
    print(f"fgo: {line}", file=sys.stderr, flush=True)


def _verifier(opts: BuildOptions, project: Path) -> Any:
    """The default verification; --check compiles every split stock here as well. The
    build's size, for a catch target, is the last build of the same target's."""
    from fgo.head.ledger import Ledger
    from fgo.head.verification import Verifier
    from fgo.paths import cache_dir
    from fgo.report.record import last_durations
    expected = len(last_durations(project, opts.go_args)) if opts.verify_catch else 0
    return Verifier(rate=opts.verify_rate, catch=opts.verify_catch,
                    expected_per_worker=expected or None,
                    split_mode="always" if opts.check else opts.verify_splits,
                    ledger=Ledger(Path(os.environ.get("FGO_LEDGER")
                                       or cache_dir() / "verified-splits.json")))
