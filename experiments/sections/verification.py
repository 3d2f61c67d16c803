"""What verification costs (experiments/test_5_verification.py): cold fgo builds with
the default verification against rate 0, and splits with a cold and a warm ledger."""

from __future__ import annotations

from experiments.sections.common import Context, label, runs_and_summaries, table

RESULTS = "verification.json"


def render(ctx: Context) -> list[str]:
    doc = ctx.load(RESULTS)
    if not doc:
        return []
    rows, summaries = runs_and_summaries(doc, "run")
    md = [(f"{label(doc['meta'], 'measured')}. Cold `fgo build -a` on the embedded 2-worker cluster "
           "(every compile remote, `--local-slots 0`, in runs that show a `share`), "
           "empty GOCACHE and store each run (`pytest experiments/test_5_verification.py "
           "--benchmark`). `default` checks one of each worker's first compiles and a 3% sample "
           "drawn from the build's secret, on the head node when it has a core free, else on "
           "another worker (cross-checks); `rate 0` only each worker's first; `share` is the "
           "verified share of the remote compiles; the split runs split every "
           "package in two and compile it stock on the head node when the ledger has not seen "
           "its inputs."), "",
          table(rows, [("project", "project"), ("run", "run"), ("pair", "pair"),
                       ("wall_s", "wall s"), ("checked", "verified"), ("checked_share", "share"),
                       ("cross_checks", "on other workers"), ("split_checked", "splits verified"),
                       ("verify_s", "head s verifying"), ("wait_s", "link wait s"),
                       ("remote", "remote"), ("split", "split")]),
          ""]
    for s in summaries:
        md.append(f"- {s['project']}: default / rate 0, median of {len(s['ratios'])} pair(s): "
                  f"**{s['default_over_rate0_median']}×** (pairs {s['ratios']}); split with a cold "
                  f"ledger / off: {s['split_cold_over_off']}×; warm ledger / off: "
                  f"**{s['split_warm_over_off']}×**.")
    return md + [""]
