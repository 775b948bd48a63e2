"""async: an ``async def do_execute`` kernel; ``sleep N`` awaits asyncio.sleep, ``block N`` blocks in
time.sleep, ``spin N`` computes for N seconds, anything else is shouted back."""

from __future__ import annotations

import asyncio

import time

from kernelkit import Kernel


class AsyncKernel(Kernel):
    implementation = "async"
    language_info = {"name": "async", "mimetype": "text/plain", "file_extension": ".txt"}

    async def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
        if code.startswith("sleep "):
            await asyncio.sleep(float(code.split()[1]))
        elif code.startswith("block "):
            time.sleep(float(code.split()[1]))
        elif code.startswith("spin "):
            end = time.monotonic() + float(code.split()[1])
            while time.monotonic() < end:
                pass
        else:
            await asyncio.sleep(0.01)
            self.print(code.upper())
        return {"status": "ok", "execution_count": self.execution_count}

    async def do_is_complete(self, code):
        await asyncio.sleep(0)
        return {"status": "complete" if code.strip() else "incomplete", "indent": ""}


if __name__ == "__main__":
    AsyncKernel.launch()
