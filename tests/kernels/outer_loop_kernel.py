"""outer-loop: a kernel launched from inside ``asyncio.run(main())`` (with nest_asyncio), whose
``async def`` hooks use an asyncio subprocess created on that outer loop: the pattern of a
published kernel (one shell per kernel, started before the kernel serves)."""

from __future__ import annotations

import asyncio
import sys

import nest_asyncio

from kernelkit import Kernel


class OuterLoopKernel(Kernel):
    implementation = "outer-loop"
    language_info = {"name": "text", "mimetype": "text/plain", "file_extension": ".txt"}
    process: asyncio.subprocess.Process

    async def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(code.encode() + b"\n")
        await self.process.stdin.drain()
        line = await self.process.stdout.readline()
        self.print(line.decode().rstrip("\n"))
        return {"status": "ok", "execution_count": self.execution_count}


async def main() -> None:
    # `cat` echoes each line: the subprocess's pipes belong to this (outer) event loop.
    OuterLoopKernel.process = await asyncio.create_subprocess_exec(
        "cat", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    nest_asyncio.apply()
    OuterLoopKernel.launch(sys.argv[1:])
    OuterLoopKernel.process.kill()
    await OuterLoopKernel.process.wait()


if __name__ == "__main__":
    asyncio.run(main())
