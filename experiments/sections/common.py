"""What every section renderer shares: the rendering context, captions, tables, figures.

A renderer's markdown is a function of the results files alone (read through
`Context.load`), so that REPORT.md is reproducible from the committed results. Figures
are the one side effect: drawn only when the context asks for them, and only from
inputs that are present (raw/ files are not committed), while their markdown reference
does not depend on either.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Context:
    """One rendering: results read from RESULTS, markdown for OUT (links relative to its
    directory), figures drawn or not, each section's number by its registry key."""

    results: Path
    out: Path
    figures: bool = True
    numbers: Mapping[str, int] = field(default_factory=dict)
    read: set[str] = field(default_factory=set)  # results files loaded, for the registry's test
    _docs: dict[str, Any] = field(default_factory=dict, repr=False)

    def load(self, name: str) -> dict[str, Any] | None:
        """Results file NAME (JSON), or None when it is missing or unreadable."""
        if name not in self._docs:
            self.read.add(name)
            try:
                self._docs[name] = json.loads((self.results / name).read_text())
            except (OSError, ValueError):
                self._docs[name] = None
        return self._docs[name]

    def rel(self, path: Path) -> str:
        """PATH as the report links it: relative to the report's directory, so that the
        report reads the same wherever the checkout is."""
        return os.path.relpath(path, self.out.parent)

    def ref(self, key: str) -> str:
        """How a section names another: "section N", N from the registry."""
        return f"section {self.numbers[key]}"

    def figure(self, name: str, alt: str, caption: str, draw: Callable[[Path], None]) -> list[str]:
        """The markdown of figure NAME (a PNG in the results directory); DRAW writes it there
        when this rendering draws figures (it may leave the file alone when its inputs are
        gone)."""
        path = self.results / name
        if self.figures:
            draw(path)
        return [f"![{alt}]({self.rel(path)})", "", f"*Figure: {caption}*", ""]


def label(meta: dict[str, Any], kind: str) -> str:
    """The caption of a table or figure: KIND (measured, simulated), machine, Go, date,
    load and the exact command, all from the results file's META."""
    m = meta.get("machine", {})
    return (f"{kind}; {m.get('uname_m', '?')}, {m.get('cores', '?')} cores ({m.get('cpu', '?')}); "
            f"{meta.get('go_version', '?')}; {meta.get('date', '?')}; "
            f"load avg at save {', '.join(str(x) for x in meta.get('loadavg', []))}; "
            f"command: `{meta.get('command', '?')}`")


def levels_note(ctx: Context) -> str:
    """What a ratio over DistGo-style levels leaves out: the baseline a user would run."""
    return ("Ratios over (a) DistGo-style levels are against a low bar; this run did not simulate "
            "go build on one node of the same size (k cores) with its -c, the baseline a user "
            f"would run instead: see {ctx.ref('das5_scale')} (etcd, aws-sdk-go) and "
            f"{ctx.ref('limits')}.")


def table(rows: Sequence[dict[str, Any]], cols: Sequence[tuple[str, str]]) -> str:
    """A markdown table of ROWS, COLS being (key, heading); floats to 3 significant digits."""
    if not rows:
        return "_(no rows)_\n"
    out = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for key, _ in cols:
            v = r.get(key)
            if isinstance(v, float):
                v = f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
            cells.append("" if v is None else str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def runs_and_summaries(doc: dict[str, Any], key: str) -> tuple[list[dict], list[dict]]:
    """A results file's rows split in two: the runs, and the summary rows (KEY == "summary")."""
    rows = doc["rows"]
    return ([r for r in rows if r.get(key) != "summary"],
            [r for r in rows if r.get(key) == "summary"])


# ---------------------------------------------------------------- plots

def pyplot() -> Any:
    """matplotlib's pyplot on the file-only backend, imported only when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, out: Path, meta: dict[str, Any], kind: str, **adjust: float) -> None:
    """FIG written to OUT with room at the bottom for the x label and a footer that
    captions it like its table (`label`); ADJUST: further subplots_adjust margins."""
    fig.subplots_adjust(bottom=0.95 / fig.get_figheight(), **adjust)
    fig.text(0.01, 0.005, "\n".join(textwrap.wrap(label(meta, kind).replace("`", ""), 150)),
             fontsize=6, va="bottom", ha="left", color="0.3")
    fig.savefig(out, dpi=110)
    pyplot().close(fig)
