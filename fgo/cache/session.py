"""One `fgo build`'s use of the shared cache: go's GOCACHEPROG set to `fgo cacheprog`, its
puts listed instead of published, and published by the build once verification found no
mismatch (or evicted from the local tier when it found one), each entry signed with who
produced it; revocations of what the build found wrong."""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fgo import wire
from fgo.cache import trust
from fgo.cache.tier import ClusterTier, namespace
from fgo.cache.local import DiskTier, local_root
from fgo.cache.publish import Provenance, pending_actions, publish_entries
from fgo.cache.server import OUTPUTS_ENV, PENDING_ENV, STATS_ENV
from fgo.cache.stage import Stager

REVOKE_TIMEOUT_S = 30.0


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


def cacheprog_args(scheduler: str, tls: tuple[str | None, str | None, str | None],
                   size: int, timeout: float, key: str | None = None,
                   recheck: float | None = None) -> list[str]:
    """How go starts `fgo cacheprog` for this build: this interpreter, this fgo."""
    args = [sys.executable, "-m", "fgo.cli", "cacheprog", "--scheduler", scheduler,
            "--cache-size", str(size), "--cache-timeout", f"{timeout:g}"]
    if key is not None:
        args += ["--cache-key", key]
    if recheck is not None:
        args += ["--cache-recheck", f"{recheck:g}"]
    for flag, value in zip(("--tls-ca-file", "--tls-cert", "--tls-key"), tls):
        if value:
            args += [flag, value]
    return args


@dataclass
class SharedCache:
    gocache: Path
    identity: Any            # fgo.toolchain.Identity of the head's toolchain
    tmp: Path                # this build's temporary directory
    command: list[str]       # cacheprog_args(...)
    key: bytes               # the heads' cache key (trust.load_key)

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

    def go_env(self) -> dict[str, str]:
        return {"GOCACHEPROG": go_quote(self.command), "GOCACHE": str(self.gocache),
                PENDING_ENV: str(self.pending), STATS_ENV: str(self.stats_path),
                OUTPUTS_ENV: str(self.outputs)}

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
        return Stager(ClusterTier(client, self.ns, self.key), self.local(), self.pending,
                      wanted).start()

    def publish(self, client: Any, known: Provenance, skip: frozenset[str] = frozenset(),
                revoked: trust.Revoked | None = None,
                stager: Stager | None = None) -> dict[str, Any]:
        """Copy this build's puts to the cluster tier, signed (none to the workers in SKIP,
        which did not answer this build; none a REVOKED producer computed), by reference
        to what STAGER staged; what it cost."""
        t0 = time.monotonic()
        staged = stager.stop(flush=True) if stager is not None else {}
        actions = pending_actions(self.pending)
        tier = ClusterTier(client, self.ns, self.key)
        try:
            stored, size, adopted = publish_entries(tier, self.local(), actions, self.key,
                                                    known, skip, revoked, staged)
        except Exception as exc:  # a cluster gone by now: nothing shared, the build stands
            return {"published": 0, "bytes_published": 0, "publish_error": str(exc),
                    "publish_s": round(time.monotonic() - t0, 3)}
        return {"published": stored, "bytes_published": size, "published_by_reference": adopted,
                "bytes_staged": stager.bytes if stager is not None else 0,
                "publish_s": round(time.monotonic() - t0, 3)}

    def known_revocations(self) -> trust.Revoked:
        """What this head knows to be revoked: the signed revocations beside its local tier
        (its own, and the cluster's as its helper found them)."""
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
        if not revocations:
            return 0
        local = self.local()
        try:
            local.keep_revocations([wire.encode(r) for r in revocations])
        except OSError:
            pass
        revoked = trust.Revoked()
        for r in revocations:
            revoked.add(r)
        for e in local.records():  # what this head itself fetched earlier goes too
            if revoked.covers(e.action, e.output, e.producer):
                local.remove(e.action)
        return ClusterTier(client, self.ns, self.key).revoke(revocations, REVOKE_TIMEOUT_S)

    def counters(self) -> dict[str, Any]:
        """What the cacheprog counted (empty when go never started it)."""
        try:
            return json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return {}
