"""A kernel whose ``do_shutdown`` raises: shutting it down must still end the process."""

from __future__ import annotations

from kernelkit import Kernel


class BadShutdownKernel(Kernel):
    implementation = "bad-shutdown"
    language_info = {"name": "text", "mimetype": "text/plain", "file_extension": ".txt"}

    def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
        if not silent:
            self.print(code, end="")
        return {"status": "ok", "execution_count": self.execution_count}

    def do_shutdown(self, restart):
        raise RuntimeError("do_shutdown failing on purpose")


if __name__ == "__main__":
    BadShutdownKernel.launch()
