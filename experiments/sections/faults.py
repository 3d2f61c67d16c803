"""The randomized fault campaign (experiments/test_12_faults.py): faults by kind, counted
from observation against the oracle, and the intermittent worker's catch rate."""

from __future__ import annotations

from experiments.sections.common import Context, label, table

RESULTS = "faults.json"

COLUMNS = [("kind", "fault"), ("injected", "injected"), ("survived", "survived"),
           ("caught", "caught (symbol named)"), ("failed", "failed, nothing caught"),
           ("hang", "hang (timeout)"), ("wrong-binary", "wrong binary"),
           ("wrong-published", "wrong cache entry"), ("not-injected", "not injected (excluded)")]


def render(ctx: Context) -> list[str]:
    doc = ctx.load(RESULTS)
    if not doc:
        return []
    meta, rows = doc["meta"], doc["rows"]
    tally = meta.get("tally", {})
    kinds = [{"kind": k, **v} for k, v in sorted(tally.items()) if k != "all"]
    total = {"kind": "**all**", **tally.get("all", {})}
    c = meta.get("catch", {})
    short = total.get("injected", 0) < meta.get("target", 0)
    md = [(f"{label(meta, 'measured')}. {meta.get('what', '')}. Seed {meta.get('seed')}; one fault per "
           f"build, drawn at random (kind by weight, project, target worker, the compile count after "
           f"which it fires); {len(rows)} builds, campaign wall {meta.get('campaign_wall_s')} s "
           f"(budget {meta.get('budget_s')} s, per-build timeout {meta.get('build_timeout_s')} s; "
           f"target {meta.get('target')} injected faults"
           + (", **not reached within the budget**" if short else "") + ")."),
          "",
          ("Every build's binary is compared by sha256 with one oracle per project (a plain `go build` "
           "into its own empty GOCACHE, built once), and every entry of the cluster tier and of the "
           "head's cache with the oracle's entry for the same action ID. A fault counts as injected "
           "only when it was seen to hit: a kill, stop, partition, slow link or scheduler restart "
           "while a compile ran on the target (its compile processes), an FGO_FAULT that changed "
           "something (the worker's fault log), ENOSPC in the build's report, a stop before any "
           "compile for the connect faults, a cache entry the build read. Hosts are emulated "
           "(simulated network: a namespace per worker, tbf links; the disks are shared)."
           if meta.get("emulated_hosts") else
           "Hosts are not emulated here: " + meta.get("no_hosts_reason", "")),
          "",
          table([*kinds, total], COLUMNS),
          ""]
    if c.get("builds"):
        how = (f"`--verify-catch {meta['verify_catch']}`" if meta.get("verify_catch")
               else "default verification")
        md.append(f"- The intermittent worker (FGO_FAULT=wrong:{meta.get('q')}, {how}): "
                  f"caught in **{c['caught']} of {c['builds']}** builds in which it compiled "
                  f"(measured {c['measured']:.3f}), formula 1 - (1 - q)^c over each build's checks of "
                  f"its compiles (`fgo.head.checks.catch_probability`, mean c = {c['mean_checks']}): "
                  f"**{c['predicted']:.3f}**; {c.get('with_wrong_compile', 0)} of those builds had at "
                  "least one wrong compile.")
    walls = [r["wall_s"] for r in rows if r.get("wall_s") is not None]
    if short and walls:
        hit = max(total.get("injected", 0), 1)
        md.append(f"- Short of the target: the campaign's wall ({meta.get('campaign_wall_s')} s) "
                  f"includes its setup (oracles, template caches, cluster) and the worker restarts "
                  f"between builds; the builds alone averaged {sum(walls) / len(walls):.0f} s, and "
                  f"{total.get('injected', 0)} of {len(rows)} builds were injected: "
                  f"{meta.get('target')} injected faults would take at least "
                  f"{meta['target'] * sum(walls) / hit / 3600:.1f} h of builds alone on this "
                  "machine at this load.")
    errors = [r for r in rows if str(r.get("evidence", "")).startswith("campaign error")]
    if errors:
        md.append(f"- {len(errors)} build(s) not run to the end by the campaign itself (counted as "
                  "not injected): " + "; ".join(sorted({r['evidence'][16:120] for r in errors})) + ".")
    wrong = [r for r in rows if r.get("outcome") in ("wrong-binary", "wrong-published")]
    by_kind: dict[str, int] = {}
    for r in wrong:
        by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + 1
    md.append(f"- Wrong outputs (target 0): **{total.get('wrong', 0)}**"
              + (f" ({', '.join(f'{k}: {n}' for k, n in sorted(by_kind.items()))})" if by_kind else "")
              + ". Per build: kind, target, evidence, outcome, caught symbol in "
              f"`{ctx.rel(ctx.results / 'faults.csv')}`.")
    return md + [""]
