"""A compile run by the head itself, in place: the local copy of a race.

The head has every input where go build put it, so a compile it runs needs no sandbox and
no store: the same command line with its outputs written aside (`compilecall.with_outputs`;
the compiler records no output path, so the bytes are those of go's own run). The outputs
are moved into place only if this run wins; otherwise it is killed and its files removed.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any

from fgo import compilecall, toolchain
from fgo.head.action import CompileAction
from fgo.wire import CompileResult, Status

WORKER = "head"


class HeadRun:
    """ACTION's compile, started at once in a thread of its own."""

    def __init__(self, action: CompileAction) -> None:
        call = action.parse()
        tag = uuid.uuid4().hex[:8]
        self.aside = {out: f"{out}.fgo-head-{tag}" for out in call.outputs}
        self.argv = [action.request.argv[0],
                     *compilecall.with_outputs(call.args, call.cwd, self.aside)]
        self.cwd = call.cwd
        self.env = toolchain.go_env({**os.environ, **action.request.env})
        self.proc: Any = None
        self.cancelled = False
        self.result: CompileResult | None = None
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.started = time.time()
        threading.Thread(target=self._run, name="fgo-head-run", daemon=True).start()

    def _run(self) -> None:
        try:
            with self.lock:
                if self.cancelled:
                    return
                self.proc = toolchain.start(self.argv, cwd=self.cwd, env=self.env, text=False,
                                            merge_output=True)
            out, _ = self.proc.communicate()
            tool_done = time.time()
            if self.cancelled:
                return
            code = self.proc.returncode
            delivered = {path: (aside, os.stat(aside).st_size)
                         for path, aside in self.aside.items()
                         if code == 0 and os.path.exists(aside)}
            self.result = CompileResult(Status.OK, WORKER, exit=code, output=out or b"",
                                        delivered=delivered, started=self.started,
                                        tool_start=self.started, tool_done=tool_done,
                                        returned=tool_done)
        except OSError as exc:
            self.result = CompileResult(Status.STORE_ERROR, WORKER, reason=str(exc))
        finally:
            self.done.set()

    def ok(self) -> bool:
        """Finished, with a result that can be used."""
        return self.done.is_set() and self.result is not None and self.result.ok

    def cancel(self) -> None:
        """Kill it (if it still runs) and remove what it wrote."""
        with self.lock:
            self.cancelled = True
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
        for aside in self.aside.values():
            try:
                os.unlink(aside)
            except OSError:
                pass
