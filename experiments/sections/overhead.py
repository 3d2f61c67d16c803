"""What fgo costs on one machine (experiments/test_9_overhead.py): fgo build against go
build, each with its defaults, cold and no-op, quiet and loaded, its targets; one compile
message as a Dask task against one RPC; dispatch over TCP and to the embedded cluster's workers."""

from __future__ import annotations

from typing import Any

from experiments.sections.common import Context, label, table

RESULTS = "overhead.json"


def render(ctx: Context) -> list[str]:
    doc = ctx.load(RESULTS)
    if not doc:
        return []
    rows = doc["rows"]
    pairs = [r for r in rows if isinstance(r.get("pair"), int)]
    how = next((r["load_how"] for r in pairs if r.get("load_how")), "")
    md = [(f"{label(doc['meta'], 'measured')}. `go build -a` with its defaults into an empty "
           "GOCACHE against `fgo build -a` with its defaults (on one machine with nothing to "
           "distribute, go build compiles alone, without fgo's shim), empty GOCACHE and store, "
           "alternating, then no-op rebuilds on each side's warm cache "
           "(`pytest experiments/test_9_overhead.py --benchmark`). Loaded: "
           f"{how or 'another build beside it'}. fgo CPU: user+sys of the fgo process itself "
           "(imports included), its peak memory. Every fgo build's outputs are asserted "
           "equal to the go side's. The `new install` rows: the design card's `fgo build "
           "--split-large PROJECT` of aws-sdk-go's `service/ec2` (its dependencies cold too) with "
           "an empty fgo cache, no patched compiler built (`-k new_install`)."), "",
          table(pairs, [
              ("project", "project"), ("load", "load"), ("pair", "pair"), ("first", "first"),
              ("go_cold_s", "go s"), ("fgo_cold_s", "fgo s"), ("ratio", "fgo/go"),
              ("go_noop_s", "go no-op s"), ("fgo_noop_s", "fgo no-op s"),
              ("local", "local"), ("remote", "remote"), ("head_cpu_s", "fgo CPU s"),
              ("head_peak_rss_mb", "fgo peak MB"), ("load1", "load avg")]),
          ""]
    md += [_median(s) for s in rows if s.get("pair") == "median"]
    md += [_rpc(r) for r in rows if r.get("pair") == "rpc"]
    md += [_tcp(t) for t in rows if t.get("pair") == "tcp"]
    md += [_embedded(e) for e in rows if e.get("pair") == "embedded"]
    md += [_channel(c) for c in rows if c.get("pair") == "channel"]
    md += [_goroot(c) for c in rows if c.get("pair") == "goroot"]
    return md + [""]


AB_FIGURES = [("dispatch_median_ms", "dispatch p50", "ms"),
              ("head_build_cpu_per_remote_ms", "head CPU per remote compile while go ran", "ms"),
              ("worker_cpu_per_remote_ms", "workers' CPU per remote compile", "ms"),
              ("wall_s", "wall", "s")]


def _ab(c: dict[str, Any], base: str, new: str, base_is: str, new_is: str) -> str:
    """An A/B row's figures: each side's builds, and NEW's median over BASE's."""
    def side(t: str, k: str) -> str:
        return "/".join(str(v) for v in c[t].get(k, []))
    return "; ".join(f"{label} {side(base, k)} {unit} {base_is}, {side(new, k)} {unit} "
                     f"{new_is} (**{c['ratios'].get(k)}×**)" for k, label, unit in AB_FIGURES)


def _channel(c: dict[str, Any]) -> str:
    return (f"- {c['project']}, fgo's compile channel against Dask's comms (`-k "
            f"channel_against`, {c['pairs']} alternating pairs of cold builds, every compile "
            f"remote, the workers' stores warm, `FGO_CHANNEL=off` on the Dask side): "
            + _ab(c, "dask", "channel", "over Dask's comms", "over the channel")
            + ". Every binary identical to a plain go build's.")


def _goroot(c: dict[str, Any]) -> str:
    sent = "/".join(f"{b / 1e6:.1f}" for b in c["sent"]["bytes_sent"])
    own = "/".join(f"{b / 1e6:.1f}" for b in c["own"]["bytes_sent"])
    return (f"- {c['project']}, the workers taking the standard library's sources from their "
            f"own GOROOT against receiving them (`-k goroot_sources`, {c['pairs']} alternating "
            f"pairs of cold builds, every compile remote, the workers' stores emptied before "
            f"each, `FGO_GOROOT_SOURCES=off` on the sending side): "
            + _ab(c, "sent", "own", "sent", "from their own GOROOT")
            + f"; MB sent to the workers {sent} against {own}. Every binary identical to a "
              "plain go build's.")


def _embedded(e: dict[str, Any]) -> str:
    met = ", ".join(f"{k}: {'met' if ok else 'NOT met'}" for k, ok in e["targets"].items())

    def each(key: str) -> str:
        return "/".join(str(v) for v in e[key])
    return (f"- {e['project']} on the embedded cluster's 2 worker processes, every compile sent "
            f"to them once they were up (`{e['fgo_command']}`, `-k dispatch_to_embedded`), "
            f"{e['builds']} cold build(s), each with an empty GOCACHE and store: "
            f"{each('remote')} remote, {each('local')} local while the cluster started; "
            f"median dispatch **{e['dispatch_median_ms']} ms** (median of the builds' medians "
            f"{each('dispatch_median_ms_per_build')} ms), head CPU "
            f"{e['head_build_cpu_per_remote_ms']} ms per remote compile while go build ran, "
            f"{each('fgo_cold_s')} s. Targets: {met}.")


def _median(s: dict[str, Any]) -> str:
    met = ", ".join(f"{k}: {'met' if ok else 'NOT met'}" for k, ok in s["targets"].items())
    return (f"- {s['project']}, {s.get('load', 'quiet')}, medians of {s['pairs']} pairs: fgo/go "
            f"**{s['ratio']}×**, no-op +{s['noop_extra_s']} s, fgo CPU {s.get('fgo_cpu_s')} s, "
            f"peak {s.get('head_peak_rss_mb')} MB. Targets: {met}.")


def _rpc(r: dict[str, Any]) -> str:
    return (f"- One compile message, {r['calls']} calls × {r['rounds']} rounds to 2 worker "
            f"processes (`test_a_task_against_one_rpc`): as a Dask task "
            f"{r['task_head_cpu_ms']} ms of head CPU and {r['task_wall_ms']} ms each; as "
            f"one RPC to fgo's handler {r['rpc_head_cpu_ms']} ms and {r['rpc_wall_ms']} ms.")


def _idle(t: dict[str, Any]) -> str:
    idle = t.get("workers_idle_cpu_pct")
    if not idle:
        return ""
    before, quieted = idle["before any head"], idle["after fgo's service"]
    return (f"; idle, the {t.get('worker_processes')} worker processes together take "
            f"{before}% of a core before any head (each worker quieted by its preload, the "
            f"nannies not yet) and {quieted}% once fgo's service has quieted them")


def _tcp(t: dict[str, Any]) -> str:
    met = ", ".join(f"{k}: {'met' if ok else 'NOT met'}" for k, ok in t["targets"].items())
    worker = t.get("worker_cpu_per_remote_ms")
    return (f"- {t['project']} on `dask scheduler` + 2 `dask worker` processes over TCP, every "
            f"compile remote (`{t['fgo_command']}`): median dispatch **{t['dispatch_median_ms']} "
            f"ms**, head CPU {t['head_cpu_per_remote_ms']} ms per remote compile "
            f"({t['head_build_cpu_per_remote_ms']} ms while go build ran"
            + (f"; {t['head_build_cpu_per_remote_ms_less_connect']} ms less the "
               f"{t['head_connect_cpu_s']} s of its connect beside go build, once a build"
               if t.get("head_build_cpu_per_remote_ms_less_connect") is not None else "")
            + ")"
            + (f", the worker processes' own CPU (nannies included, their compiles not "
               f"counted) {worker} ms per remote compile" if worker is not None else "")
            + (f" ({t['worker_cpu_per_compile_cpu_pct']}% of their compiles' "
               f"{t['worker_compile_cpu_s']} s of CPU)"
               if t.get("worker_cpu_per_compile_cpu_pct") is not None else "")
            + _user_sys(t.get("worker_user_sys_per_remote_ms"))
            + _warm(t.get("warm_stores"))
            + _idle(t)
            + (f"; peak memory: head {t['head_peak_rss_mb']} MB, workers "
               f"{', '.join(str(v) for v in (t.get('workers_peak_rss_mb') or {}).values())} MB"
               if t.get("head_peak_rss_mb") else "")
            + _noop(t.get("noop")) + _edit(t.get("edit")) + _second(t.get("second_head"))
            + f". Targets: {met}.")


def _user_sys(split: list[float] | None) -> str:
    return f", {split[0]} ms of it user and {split[1]} ms kernel time" if split else ""


def _warm(w: dict[str, Any] | None) -> str:
    """The same build again once the workers' blob stores hold its inputs."""
    if not w:
        return ""
    return (f"; once the workers' stores held its inputs (a second cold build, their shares "
            f"of the cluster tier emptied), the workers' own CPU {w['worker_cpu_per_remote_ms']}"
            f" ms per remote compile{_user_sys(w.get('worker_user_sys_per_remote_ms'))}, "
            f"dispatch {w['dispatch_median_ms']} ms, the head's CPU while go build ran "
            f"{w['head_build_cpu_per_remote_ms']} ms per remote compile"
            + _by_kind(w.get("worker_cpu_by_kind_ms"), w.get("worker_cpu_samples")))


def _by_kind(kinds: dict[str, float] | None, samples: int | None) -> str:
    """What the workers' own CPU was doing (sampled by perf), in ms per remote compile."""
    if not kinds:
        return ""
    parts = " · ".join(f"{k} {v}" for k, v in kinds.items() if v >= 0.1)  # kinds hold commas
    return (f"; sampled by perf ({samples} samples of the worker processes), that CPU by kind, "
            f"ms per remote compile: {parts}")


def _noop(n: dict[str, Any] | None) -> str:
    if not n:
        return ""
    tiers = sorted(set(str(x) for x in n["cluster_tier"]))
    return (f"; a no-op rebuild on the same cluster (each side on its own warm cache, "
            f"{n['pairs']} alternating pairs): go {_walls(n['go_s'])} s, "
            f"fgo {_walls(n['fgo_s'])} s, **+{n['extra_s']:.2f} s** "
            f"(median; the cacheprog's cluster tier: {', '.join(tiers)}{_beside(n)}"
            + _front(n) + ")")


def _front(n: dict[str, Any]) -> str:
    """How many of each no-op's gets the cacheprog front answered."""
    front = n.get("front_gets")
    if not front:
        return ""
    return ("; gets the cacheprog front answered: "
            + ", ".join(f"{f} of {g}" for f, g in front))


def _beside(row: dict[str, Any]) -> str:
    """How many of fgo's builds started go build while the head connected."""
    beside = row.get("connected_beside_go")
    if beside is None:  # a results file from before it was recorded
        return ""
    out = f"; go build started while connecting in {sum(beside)} of {len(beside)}"
    if (never := row.get("not_connected")) is not None:  # (recorded since the connect on demand)
        out += f", never connected (nothing needed the cluster) in {sum(never)}"
    if any(deferred := row.get("deferred") or []):
        out += f", puts deferred to the next build that connects: {'/'.join(map(str, deferred))}"
    return out


def _edit(e: dict[str, Any] | None) -> str:
    if not e:
        return ""
    return (f"; one file added to the package and rebuilt, on each side's warm cache "
            f"({e['pairs']} alternating pairs, fgo with its default local slots): go "
            f"{_walls(e['go_s'])} s, fgo "
            f"{_walls(e['fgo_s'])} s, **+{e['extra_s']:.2f} s** "
            f"(median; {e['ratio']}×{_beside(e)}{_front_alone(e)})")


def _front_alone(e: dict[str, Any]) -> str:
    """In how many edits the cacheprog front served go alone (no helper started)."""
    alone = e.get("front_alone")
    if alone is None:  # a results file from before it was recorded
        return ""
    return f"; the cacheprog front alone served go in {sum(alone)} of {len(alone)}"


def _second(h: dict[str, Any] | None) -> str:
    """The rebuilds of a head whose entries came from the cluster tier (workers made them)."""
    if not h:
        return ""
    n, e = h["noop"], h["edit"]
    current = sum(n.get("revocations_current") or []) + sum(e.get("revocations_current") or [])
    return (f"; a second head, whose first build fetched {h['fetched']} entries workers made "
            f"from the cluster tier: its no-ops go {_walls(n['go_s'])} s, "
            f"fgo {_walls(n['fgo_s'])} s, **+{n['extra_s']:.2f} s**"
            + _front(n) + f"; its edits go {_walls(e['go_s'])} s, fgo "
            f"{_walls(e['fgo_s'])} s, **+{e['extra_s']:.2f} s** "
            f"({e['ratio']}×{_front_alone(e)}); the revocations it kept were the cluster's (the scheduler's "
            f"beacon unchanged) in {current} of {n['pairs'] + e['pairs']} rebuilds")


def _walls(seconds: list[float]) -> str:
    return "/".join(f"{x:.2f}" for x in seconds)
