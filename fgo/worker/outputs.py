"""A finished compile's outputs, read back from its sandbox (by the executor and the
shard task alike)."""

from __future__ import annotations

import os
from pathlib import Path

from fgo.worker import compileargs
from fgo.worker.blobs import sha256


def read_outputs(call: compileargs.CompileCall, sandbox: str) -> dict[str, bytes]:
    return {out: Path(sandbox + out).read_bytes() for out in call.outputs
            if os.path.exists(sandbox + out)}


def output_sha256(call: compileargs.CompileCall, outputs: dict[str, bytes]) -> str | None:
    """The -o output's hash, for the report (computed here, not on the busy head node)."""
    data = outputs.get(call.outputs[0]) if call.outputs else None
    return sha256(data) if data is not None else None
