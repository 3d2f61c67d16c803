"""Where an action runs and which blobs it must carry: a pure state machine.

The head node keeps, per worker store, the set of blobs it knows the store
holds (asked once per build, then learned from each task's result) and the
blobs already on their way there. Placement prefers a worker with a free
thread, then the one whose store already holds most of the action's bytes.
Several workers on one host share one store, so a blob crosses to a host once.

Speculative compiles (pipelining, fgo.head.speculation) are counted apart: they take only
a thread no compile holds, and a real compile is placed as if they were not there (they run
niced on the worker, so a real compile beside one gets the core).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class WorkerState:
    address: str
    threads: int
    store_id: str
    cores: int = 1                     # the cores its process may run on
    running: int = 0                   # real compiles
    speculating: int = 0               # speculative compiles
    paused: bool = False               # asked whether it is alive: nothing new until it answers


@dataclass
class Placement:
    workers: dict[str, WorkerState] = field(default_factory=dict)
    stored: dict[str, set[str]] = field(default_factory=dict)     # store_id -> blobs held
    inflight: dict[str, set[str]] = field(default_factory=dict)   # store_id -> blobs on the way

    def add_worker(self, address: str, threads: int, store_id: str, hashes: set[str],
                   cores: int = 1) -> None:
        self.workers[address] = WorkerState(address, threads, store_id, cores)
        self.stored.setdefault(store_id, set()).update(hashes)
        self.inflight.setdefault(store_id, set())

    def remove_worker(self, address: str) -> None:
        self.workers.pop(address, None)

    def pause(self, address: str) -> bool:
        """Place nothing more on ADDRESS until `resume`; False if it is unknown or paused."""
        w = self.workers.get(address)
        if w is None or w.paused:
            return False
        w.paused = True
        return True

    def resume(self, address: str) -> None:
        if (w := self.workers.get(address)) is not None:
            w.paused = False

    def usable(self) -> list[WorkerState]:
        """The workers new work may go to."""
        return [w for w in self.workers.values() if not w.paused]

    def total_threads(self) -> int:
        return sum(w.threads for w in self.workers.values())

    def choose(self, needs: dict[str, int]) -> str | None:
        """A worker for an action needing NEEDS (sha -> size); None if there is none."""
        def score(w: WorkerState) -> tuple[bool, bool, int, int]:
            held = self.stored[w.store_id] | self.inflight[w.store_id]
            local_bytes = sum(size for sha, size in needs.items() if sha in held)
            return (w.running < w.threads, w.running + w.speculating < w.threads, local_bytes,
                    -w.running)
        usable = self.usable()
        if not usable:
            return None
        best = max(usable, key=score)
        best.running += 1
        return best.address

    def free_threads(self) -> int:
        """Worker threads no compile holds now, real or speculative."""
        return sum(max(0, w.threads - w.running - w.speculating) for w in self.usable())

    def choose_speculative(self, needs: dict[str, int]) -> str | None:
        """A worker with a thread no compile holds, for a speculative compile; None if none."""
        free = [w for w in self.usable() if w.running + w.speculating < w.threads]
        if not free:
            return None
        held = lambda w: self.stored[w.store_id] | self.inflight[w.store_id]  # noqa: E731
        best = max(free, key=lambda w: sum(size for sha, size in needs.items() if sha in held(w)))
        best.speculating += 1
        return best.address

    def choose_check(self, needs: dict[str, int], avoid: str) -> str | None:
        """A worker other than AVOID for a cross-check of a compile needing NEEDS: one with
        a free thread first, else any other (it waits there, in idle time); counted as a
        speculation (it yields to real compiles). None: there is no other worker."""
        others = [w for w in self.usable() if w.address != avoid]
        if not others:
            return None
        held = lambda w: self.stored[w.store_id] | self.inflight[w.store_id]  # noqa: E731
        best = max(others, key=lambda w: (w.running + w.speculating < w.threads,
                                          sum(size for sha, size in needs.items()
                                              if sha in held(w))))
        best.speculating += 1
        return best.address

    def cores_per_compile(self) -> int:
        """The cores one compile has on a worker (its cores over its threads), the fewest
        of any worker: the -c a whole compile or a shard can use there."""
        return min((max(1, w.cores // max(1, w.threads)) for w in self.workers.values()),
                   default=1)

    def free_hosts(self, besides: frozenset[str] = frozenset(),
                   among: set[str] | None = None) -> int:
        """Hosts (stores) with a free thread: shards on one host share its cores, which a
        compile's own -c backend goroutines already use, so only other hosts add capacity.
        (Measured: ssa split in two on one 2-core host took 18.8-20.0 s against 13.2-14.7 s
        for go build's -c=2 compile; each process's frontend slowed from ~5 s to 7.6 s.)
        BESIDES: workers whose hosts do not count (the head's, when its leader counts it);
        AMONG: only those workers count (e.g. the ones holding the patched compiler)."""
        skip = {w.store_id for w in self.workers.values() if w.address in besides}
        return len({w.store_id for w in self.usable()
                    if w.running < w.threads and w.store_id not in skip
                    and (among is None or w.address in among)})

    def choose_distinct(self, needs: dict[str, int], k: int, free_only: bool = False,
                        among: set[str] | None = None) -> list[str]:
        """K workers for the shards of one package: distinct ones while there are enough.
        FREE_ONLY: only workers with a free thread now (a shard queued behind a whole
        compile there keeps its leader waiting for both: aws-sdk-go's glue behind ec2), so
        maybe fewer than K. AMONG: only those workers (e.g. the ones holding the patched
        compiler), so maybe fewer than K."""
        chosen: list[str] = []
        for _ in range(k):
            others = {a: w for a, w in self.workers.items() if a not in chosen
                      and (not free_only or w.running < w.threads)
                      and (among is None or a in among)}
            if (free_only or among is not None) and not others:
                break
            pool = others or self.workers
            saved, self.workers = self.workers, pool
            try:
                address = self.choose(needs)
            finally:
                self.workers = saved
            if address is None:
                break
            chosen.append(address)
        return chosen

    def transfer(self, address: str, needs: dict[str, int]) -> tuple[list[str], list[str]]:
        """(blobs to send with the task, blobs another task is already carrying there)."""
        store = self.workers[address].store_id
        held, flying = self.stored[store], self.inflight[store]
        send = sorted(sha for sha in needs if sha not in held and sha not in flying)
        wait = sorted(sha for sha in needs if sha in flying)
        flying.update(send)
        return send, wait

    def finished(self, address: str, sent: list[str], confirmed: list[str],
                 speculative: bool = False) -> None:
        """The task to ADDRESS ended: SENT are no longer in flight, CONFIRMED are stored."""
        w = self.workers.get(address)
        if w is None:
            return
        if speculative:
            w.speculating = max(0, w.speculating - 1)
        else:
            w.running = max(0, w.running - 1)
        self.inflight[w.store_id].difference_update(sent)
        self.stored[w.store_id].update(confirmed)

    def lacks(self, address: str, missing: list[str]) -> None:
        """The store said it lacks MISSING (wiped, or a concurrent task failed)."""
        w = self.workers.get(address)
        if w is not None:
            self.stored[w.store_id].difference_update(missing)
            self.inflight[w.store_id].difference_update(missing)
