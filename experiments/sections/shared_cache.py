"""The shared build cache (experiments/test_6_shared_cache.py): head B building from
the cluster tier that head A filled, against A and a build without the shared cache."""

from __future__ import annotations

from experiments.sections.common import Context, label, runs_and_summaries, table

RESULTS = "shared_cache.json"


def render(ctx: Context) -> list[str]:
    doc = ctx.load(RESULTS)
    if not doc:
        return []
    rows, summaries = runs_and_summaries(doc, "run")
    md = [(f"{label(doc['meta'], 'measured')}. A real cluster (`dask scheduler` + 2 `dask worker` "
           "processes on 127.0.0.1, a new one per pair; `pytest "
           "experiments/test_6_shared_cache.py --benchmark`). Head A builds with an empty GOCACHE "
           "and an empty cluster tier and publishes; head B, with its own empty GOCACHE and HOME, "
           "builds the same sources from the cluster tier; a cold `--no-shared-cache` build "
           "beside them is what A's publishing costs. B always follows A (it needs A's entries)."),
          "",
          table(rows, [("project", "project"), ("pair", "pair"), ("run", "run"),
                       ("wall_s", "wall s"), ("hit_rate", "compiles cached"),
                       ("remote_hits", "cluster hits"), ("misses", "misses"),
                       ("bytes_fetched", "bytes fetched"), ("fetch_s", "fetch s"),
                       ("published", "published"), ("publish_s", "publish s")]),
          ""]
    for s in summaries:
        md.append(f"- {s['project']}: B / A wall, median of {s['pairs']} pair(s): "
                  f"**{s['b_over_a_median']}×** (pairs {s['b_over_a']}); A (publishing) / cold "
                  f"without the shared cache: {s['a_over_local_median']}× (pairs "
                  f"{s['a_over_local']}); B's compiles cached: at least "
                  f"{100 * s['b_hit_rate_min']:.1f}%.")
    return md + [""]
