"""sleepy: ``do_execute`` sleeps for ``float(code)`` seconds, to test interrupts, heartbeat and control."""

from __future__ import annotations

import time

from kernelkit import Kernel


class SleepyKernel(Kernel):
    implementation = "sleepy"
    language_info = {"name": "sleepy", "mimetype": "text/plain", "file_extension": ".txt"}

    def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
        print(f"sleeping {code}")
        time.sleep(float(code))
        print("woke up")
        return {"status": "ok", "execution_count": self.execution_count}


if __name__ == "__main__":
    SleepyKernel.launch()
