"""rk: a command kernel for the reliability tests, built only on kernelkit's public API.

One command per cell (anything else is echoed back as stdout):

- ``touch PATH``: append a line to PATH (the "did this cell run?" probe of the auth tests)
- ``flood MB LINE``: print MB megabytes of output in ``print()`` lines of LINE bytes
- ``chunks MB KB``: write MB megabytes to ``sys.stdout`` in writes of KB kilobytes each
- ``sleep S``: ``time.sleep(S)``; ``compute S``: a pure-Python busy loop for S seconds (holds the GIL)
- ``fail``: raise an exception from ``do_execute``
"""

from __future__ import annotations

import sys
import time

from kernelkit import Kernel


class RkKernel(Kernel):
    implementation = "rk"
    implementation_version = "1.0"
    language_info = {"name": "rk", "mimetype": "text/plain", "file_extension": ".txt"}

    def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
        command, _, rest = code.strip().partition(" ")
        args = rest.split()
        if command == "touch":
            with open(rest.strip(), "a", encoding="utf-8") as handle:
                handle.write("ran\n")
        elif command == "flood":
            total, width = int(float(args[0]) * 1_000_000), int(args[1])
            line = "x" * (width - 1)
            for _ in range(total // width):
                print(line)
        elif command == "chunks":
            total, size = int(float(args[0]) * 1_000_000), int(float(args[1]) * 1000)
            chunk = "y" * size
            for _ in range(total // size):
                sys.stdout.write(chunk)
        elif command == "sleep":
            time.sleep(float(args[0]))
        elif command == "compute":
            deadline = time.monotonic() + float(args[0])
            n = 0
            while time.monotonic() < deadline:
                n += 1
        elif command == "fail":
            raise RuntimeError("rk: failing on purpose")
        elif not silent:
            self.send_response(self.iopub_socket, "stream", {"name": "stdout", "text": code})
        return {"status": "ok", "execution_count": self.execution_count}


if __name__ == "__main__":
    RkKernel.launch()
