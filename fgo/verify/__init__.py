"""Determinism checks: Go object readers (goobj), symbol-level diff, verify builds, --check."""
