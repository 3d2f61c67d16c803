"""REPORT.md's sections, one module per experiment: each `render(ctx)` returns its
section's markdown lines (without the heading, which experiments/report.py writes from
the section's place in experiments/registry.py) and draws its figures."""
