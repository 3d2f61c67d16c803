"""One `fgo build`'s use of the shared cache: go's GOCACHEPROG set to `fgo cacheprog`, its
puts listed instead of published, and published by the build once verification found no
mismatch (or evicted from the local tier when it found one), each entry signed with who
produced it; revocations of what the build found wrong."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote

from fgo.cache import trust
from fgo.cache.local import DiskTier, local_root, namespace
from fgo.cache.handover import (CHECK_AFTER_ENV, INDEX_ENV, OUTPUTS_ENV, PENDING_ENV,
                                REVOKED_ENV, STATS_ENV, WANT_ENV)
from fgo.cluster import beacon
from fgo.cluster.deadline import LateWorkers

if TYPE_CHECKING:
    from fgo import wire
    from fgo.cache.publish import Provenance
    from fgo.cache.stage import Stager

# The cluster tier's modules (fgo.wire the largest) are imported where they are used: this
# module sets go's cache up before go build starts, which a no-op build waits for.

REVOKE_TIMEOUT_S = 30.0
BEACON_S = 5.0     # the scheduler's answer with its beacon's token
ACTION_ID = re.compile(r"[0-9a-f]{64}")  # go's action IDs, as the local tier names entries


def _beacon_state(client: Any) -> tuple[str, str] | None:
    """The scheduler's beacon (address, token), or None (none installed, or no answer)."""
    from fgo.cluster.deadline import within
    try:
        got = within(BEACON_S, client.run_on_scheduler, beacon.state,
                     what="the scheduler's revocation beacon")
    except Exception:  # noqa: BLE001 - then the next build reads the index again
        return None
    if isinstance(got, (list, tuple)) and len(got) == 2 and all(isinstance(x, str) for x in got):
        return got[0], got[1]
    return None


def go_quote(args: list[str]) -> str:
    """ARGS as one GOCACHEPROG value (go splits it with cmd/internal/quoted: fields are
    separated by spaces and may be wrapped in single or double quotes)."""
    out = []
    for a in args:
        if a and not re.search(r"[\s'\"]", a):
            out.append(a)
        elif "'" not in a:
            out.append(f"'{a}'")
        elif '"' not in a:
            out.append(f'"{a}"')
        else:
            raise ValueError(f"cannot quote {a!r} for GOCACHEPROG")
    return " ".join(out)


@dataclass
class SharedCache:
    gocache: Path
    identity: Any            # fgo.toolchain.Identity of the head's toolchain
    tmp: Path                # this build's temporary directory
    command: list[str]       # how go starts the helper: fgo.cache.helper.command(...)
    key: bytes               # the heads' cache key (trust.load_key)
    scheduler: str = ""      # the cluster's scheduler, as the build was given it
    # what this build published already (action IDs), and its early pass (publish_early)
    published: set[str] = field(default_factory=set, init=False, repr=False)
    _early: threading.Thread | None = field(default=None, init=False, repr=False)
    _early_result: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    # the workers found unresponsive (by the build's probes, or a deadline of the
    # staging or a publish pass): no later pass waits for them again
    late: LateWorkers = field(default_factory=LateWorkers, init=False, repr=False)
    # go build starts before the index is read: its helper waits for the file
    index_coming: bool = field(default=False, init=False)
    # the revocations kept beside the local tier are all the cluster's: its beacon said
    # so before go started (`check_revocations`); go may be given workers' entries at once
    revocations_current: bool = field(default=False, init=False)
    # the signed revocations the cluster's index named, as `read_index` found them
    _cluster_revoked: list[wire.CacheRevocation] = field(default_factory=list, init=False,
                                                          repr=False)

    @property
    def pending(self) -> Path:
        return self.tmp / "cache-pending.jsonl"

    @property
    def stats_path(self) -> Path:
        return self.tmp / "cache-stats.json"

    @property
    def outputs(self) -> Path:
        """Where the head lists its compiles' -o files for the cacheprog (fgo.cache.outputs)."""
        return self.tmp / "cache-outputs.txt"

    def local(self) -> DiskTier:
        return DiskTier(local_root(self.gocache, namespace(self.identity)))

    @property
    def check_after(self) -> Path:
        """Where go's cache helper (and its front) logs the workers' local entries it gave
        go without waiting for the cluster's revocations (trust.used_line)."""
        return self.tmp / "cache-check-after"

    def hits_to_check(self) -> bool:
        """Whether go was given a worker's entry that `revoked_in_use` must check."""
        try:
            return self.check_after.stat().st_size > 0
        except OSError:
            return False

    def revoked_in_use(self) -> list[tuple[str, str, str]]:
        """The workers' entries go was given this build that a revocation covers: one this
        head keeps, or one the cluster's index named (read by now: the caller waited for the
        connect). An index that could not be read counts as none, as for a helper the
        cluster did not answer in time."""
        try:
            text = self.check_after.read_text(encoding="ascii", errors="replace")
        except OSError:
            return []
        used = trust.used_entries(text)
        if not used:
            return []
        revoked = self.known_revocations()
        for r in self.cluster_revocations():
            revoked.add(r)
        return trust.revoked_in_use(used, revoked)

    def cluster_revocations(self) -> list[wire.CacheRevocation]:
        """The signed revocations of the cluster's index as this head read it (none when it
        could not be read)."""
        return self._cluster_revoked

    def drop_revoked(self) -> int:
        """Keep the cluster's revocations beside the local tier (the next build's helper and
        front apply them) and remove the local entries they cover; how many were removed."""
        return len(self._drop_covered(self.cluster_revocations()))

    @property
    def want(self) -> Path:
        """The doorbell its helper rings at its first need of the cluster tier (a head that
        connects on demand: `index_coming`)."""
        return self.tmp / "cache-want"

    @property
    def index(self) -> Path:
        """The cluster tier's index as this head read it, for its helper (`read_index`)."""
        return self.tmp / "cache-index"

    def read_index(self, client: Any, timeout: float) -> None:
        """Read the cluster tier's index for the helper go starts: it then makes a client
        of its own (its import of Dask, its connect: on the head's core, at the build's
        start) only for a get of an entry the index names. When the workers do not answer
        in time, the helper asks them itself (an index of None says so to a helper that
        waits for it: `index_coming`). Its revocations are kept beside the local tier, with
        the beacon's token noted before it was read (fgo.cluster.beacon)."""
        from fgo.cache.tier import RemoteError, fetch_index, save_index
        noted = _beacon_state(client)
        try:
            found = fetch_index(client, self.ns, timeout)
            save_index(found, self.index)
        except RemoteError:
            self._save_index(None)
            return
        except OSError:
            return
        self._note_revocations(found, noted)

    def _note_revocations(self, found: dict[str, Any],
                          noted: tuple[str, str] | None) -> None:
        """Keep FOUND's signed revocations beside the local tier and, when every worker
        answered and the scheduler has a beacon (NOTED: its address and token before the
        index was read), record that they are all of them as of that token."""
        from fgo import wire
        from fgo.cache.tier import decode_shares, signed_revocations
        root = self.local().root
        answered = {w: v for w, v in found.items() if not isinstance(v, BaseException)}
        complete = len(answered) == len(found) and all(v is not None for v in answered.values())
        revocations = signed_revocations(decode_shares(answered), self.ns, self.key)
        self._cluster_revoked = revocations
        try:
            if revocations:
                self.local().keep_revocations([wire.encode(r) for r in revocations])
            if noted is not None and complete and self.scheduler:
                beacon.write_seen(root, self.scheduler, *noted)
            else:
                beacon.forget_seen(root)
        except OSError:
            beacon.forget_seen(root)

    def check_revocations(self) -> bool:
        """Before go starts: ask the beacon whether the revocations kept beside the local
        tier are still all the cluster's; when they are, list them (signed ones only) for
        go's cache helper and its front, which then give go workers' entries at once."""
        if not self.scheduler or not beacon.still_current(self.local().root, self.scheduler):
            return False
        known = self.known_revocations()
        lines = [f"e {a} {o}\n" for a, o in sorted(known.entries)] + \
            [f"p {quote(p, safe='')}\n" for p in sorted(known.producers)]
        try:
            self.revoked_list.write_text("".join(lines), encoding="ascii")
        except OSError:
            return False
        self.revocations_current = True
        return True

    @property
    def revoked_list(self) -> Path:
        """The kept revocations for go's cache helper and its front, while current."""
        return self.tmp / "cache-revoked"

    def no_cluster(self) -> None:
        """The cluster could not be reached: an empty index, every miss the helper's own."""
        self._save_index({})

    def _save_index(self, found: dict[str, Any] | None) -> None:
        from fgo.cache.tier import save_index
        try:
            save_index(found, self.index)
        except OSError:
            pass  # the helper waits its limit, and goes on without the cluster tier

    def puts(self) -> list[str]:
        """The action IDs go build put (what this build has to publish)."""
        from fgo.cache.publish import pending_actions
        return pending_actions(self.pending)

    @property
    def unpublished(self) -> Path:
        """The puts of builds that ended before their connect (`defer`), beside the local
        tier, for the next build that connects to publish."""
        return self.local().root / "unpublished"

    def defer(self, actions: list[str]) -> int:
        """Keep ACTIONS, this build's puts, for the next build that connects (a build that
        needed nothing of the cluster does not wait for it: fgo.head.policy.after_go_build);
        how many were kept (none: not shared, the entries stay in the local tier)."""
        try:
            self.unpublished.parent.mkdir(parents=True, exist_ok=True)
            with open(self.unpublished, "a") as f:
                f.write("".join(f"{a}\n" for a in actions))
        except OSError:
            return 0
        return len(actions)

    def _take_deferred(self) -> list[str]:
        """The puts earlier builds deferred, claimed by this one (another head on the same
        GOCACHE does not publish them as well)."""
        claimed = self.unpublished.with_name(f"unpublished.{os.getpid()}")
        try:
            os.rename(self.unpublished, claimed)
            lines = claimed.read_text().split()
            claimed.unlink()
        except OSError:
            return []
        return [a for a in lines if ACTION_ID.fullmatch(a)]

    def go_env(self) -> dict[str, str]:
        """go's environment; with INDEX_COMING, the helper waits for an index to appear (the
        head reads it once connected, while go build starts)."""
        env = {"GOCACHEPROG": go_quote(self.command), "GOCACHE": str(self.gocache),
               PENDING_ENV: str(self.pending), STATS_ENV: str(self.stats_path),
               OUTPUTS_ENV: str(self.outputs)}
        if self.revocations_current:   # no check needed: they are the cluster's
            env[REVOKED_ENV] = str(self.revoked_list)
        else:                          # checked by the head before it links
            env[CHECK_AFTER_ENV] = str(self.check_after)
        if self.index_coming or self.index.is_file():
            env[INDEX_ENV] = str(self.index)
        if self.index_coming and self.want.exists():
            env[WANT_ENV] = str(self.want)
        return env

    def evict(self, prefixes: list[str]) -> list[str]:
        """Remove the local tier's entries of these action-ID prefixes (failed verification)."""
        local = self.local()
        return [p for prefix in prefixes for p in local.evict_prefix(prefix)]

    @property
    def ns(self) -> str:
        return namespace(self.identity)

    def stage(self, client: Any, wanted: Callable[[str, int], bool]) -> Stager:
        """Stage the bodies no worker holds (WANTED(action-ID prefix, size)) on the workers
        while go build runs (fgo.cache.stage): `stop` it before the publish."""
        from fgo.cache.stage import Stager
        from fgo.cache.tier import ClusterTier
        return Stager(ClusterTier(client, self.ns, self.key, self.late), self.local(),
                      self.pending,
                      wanted).start()

    def publish_early(self, client: Any, known: Callable[[], Provenance],
                      skip: Callable[[], frozenset[str]], stager: Stager | None) -> None:
        """Publish, in a thread, what go build has put so far. Called when its first link
        may run: every compile before it is done and verified, so the publish runs beside
        the link (one core busy, the workers idle) rather than after go build. `publish`
        sends the rest; a mismatch found later revokes its worker's entries, these too."""
        if self._early is not None:
            return

        def run() -> None:
            t0 = time.monotonic()
            self._early_result = self._publish_new(client, known(), skip(),
                                                   self.known_revocations(), stager)
            self._early_result["publish_early_s"] = round(time.monotonic() - t0, 3)
        self._early = threading.Thread(target=run, daemon=True, name="fgo-publish-early")
        self._early.start()

    def early_result(self) -> dict[str, Any]:
        """The early pass's counters, once it has ended (empty when there was none)."""
        if self._early is not None:
            self._early.join()
        return dict(self._early_result)

    def publish(self, client: Any, known: Provenance, skip: frozenset[str] = frozenset(),
                revoked: trust.Revoked | None = None,
                stager: Stager | None = None) -> dict[str, Any]:
        """Copy this build's puts to the cluster tier, signed (none to the workers in SKIP,
        which did not answer this build; none a REVOKED producer computed), by reference
        to what STAGER staged; what it cost. What the early pass published is not sent
        again; publish_s is what the build waited for after go build."""
        t0 = time.monotonic()
        early = self.early_result()
        late = self._publish_new(client, known, skip, revoked, stager)
        out: dict[str, Any] = {
            k: early.get(k, 0) + late.get(k, 0)
            for k in ("published", "bytes_published", "published_by_reference",
                      "published_deferred")}
        out["bytes_staged"] = stager.bytes if stager is not None else 0
        if errors := [r["publish_error"] for r in (early, late) if "publish_error" in r]:
            out["publish_error"] = "; ".join(errors)
        if early:
            out["published_early"] = early.get("published", 0)
            out["publish_early_s"] = early["publish_early_s"]
        out["publish_s"] = round(time.monotonic() - t0, 3)
        return out

    def _publish_new(self, client: Any, known: Provenance, skip: frozenset[str],
                     revoked: trust.Revoked | None, stager: Stager | None) -> dict[str, Any]:
        """One pass: the puts listed since the last pass."""
        from fgo.cache.publish import pending_actions, publish_entries
        from fgo.cache.tier import ClusterTier
        staged = stager.stop(flush=True) if stager is not None else {}
        # an earlier build's deferred puts: all its head's own compiles (Provenance's default)
        deferred = [a for a in self._take_deferred() if a not in self.published]
        actions = [a for a in dict.fromkeys(deferred + pending_actions(self.pending))
                   if a not in self.published]
        tier = ClusterTier(client, self.ns, self.key, self.late)
        try:
            stored, size, adopted = publish_entries(tier, self.local(), actions, self.key,
                                                    known, skip, revoked, staged)
        except Exception as exc:  # a cluster gone by now: nothing shared, the build stands
            self.defer(deferred)  # (for the next build, again)
            return {"published": 0, "bytes_published": 0, "publish_error": str(exc)}
        self.published.update(actions)
        return {"published": stored, "bytes_published": size, "published_by_reference": adopted,
                **({"published_deferred": len(deferred)} if deferred else {})}

    def known_revocations(self) -> trust.Revoked:
        """What this head knows to be revoked: the signed revocations beside its local tier
        (its own, and the cluster's as its helper found them)."""
        from fgo import wire
        known = trust.Revoked()
        for data in self.local().revocations():
            try:
                r = wire.decode(data, wire.CacheRevocation)
            except wire.ProtocolMismatch:
                continue
            if trust.revocation_signed(self.key, self.ns, r):
                known.add(r)
        return known

    def revoke(self, client: Any, revocations: list[wire.CacheRevocation]) -> int:
        """REVOCATIONS to every worker and beside the local tier; the entries removed from
        the workers' disks."""
        from fgo.cache.tier import ClusterTier
        if not revocations:
            return 0
        self._drop_covered(revocations)
        return ClusterTier(client, self.ns, self.key).revoke(revocations, REVOKE_TIMEOUT_S)

    def _drop_covered(self, revocations: list[wire.CacheRevocation]) -> list[str]:
        """REVOCATIONS kept beside the local tier, and its entries they cover removed (what
        this head itself fetched earlier goes too): the actions removed."""
        from fgo import wire
        local = self.local()
        if revocations:
            try:
                local.keep_revocations([wire.encode(r) for r in revocations])
            except OSError:
                pass
        revoked = self.known_revocations()
        for r in revocations:  # (kept above, unless the disk refused them)
            revoked.add(r)
        removed = []
        for e in local.records():
            if revoked.covers(e.action, e.output, e.producer):
                local.remove(e.action)
                removed.append(e.action)
        return removed

    def counters(self) -> dict[str, Any]:
        """What the cacheprog counted (empty when go never started it), and whether the
        revocations kept were the cluster's at the start (its beacon said so)."""
        try:
            counted = json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return {}
        return {**counted, "revocations_current": self.revocations_current} \
            if isinstance(counted, dict) else {}
