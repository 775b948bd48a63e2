"""engine: the calc kernel, recording which thread ran each hook, and printing from control-thread hooks."""

from __future__ import annotations

import threading
from typing import Any

from calc_kernel import CalcKernel


class EngineKernel(CalcKernel):
    implementation = "engine"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hook_threads: list[tuple[str, str]] = []
        self.namespace["hook_threads"] = self.hook_threads

    def _record(self, hook: str) -> None:
        self.hook_threads.append((hook, threading.current_thread().name))

    def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
        self._record("execute")
        return super().do_execute(code, silent, store_history, user_expressions, allow_stdin)

    def do_complete(self, code, cursor_pos):
        self._record("complete")
        return super().do_complete(code, cursor_pos)

    def do_interrupt(self):
        print("interrupting from", threading.current_thread().name)

    def do_shutdown(self, restart):
        print("shutting down")
        return {"status": "ok", "restart": restart}


if __name__ == "__main__":
    EngineKernel.launch()
