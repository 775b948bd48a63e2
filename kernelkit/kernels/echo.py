"""The echo kernel from "Making kernels for Jupyter": every cell's code comes back as its output.

Run it with ``python -m kernelkit.kernels.echo -f CONNECTION_FILE``, or install it with
``kernelkit install kernelkit.kernels.echo``.
"""

from __future__ import annotations

from typing import Any

from kernelkit import Kernel


class EchoKernel(Kernel):
    implementation = "Echo"
    implementation_version = "1.0"
    language = "no-op"
    language_version = "0.1"
    language_info = {
        "name": "Any text",
        "mimetype": "text/plain",
        "file_extension": ".txt",
    }
    banner = "Echo kernel - as useful as a parrot"

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, str] | None = None,
        allow_stdin: bool = False,
    ) -> dict[str, Any]:
        if not silent:
            self.send_response(self.iopub_socket, "stream", {"name": "stdout", "text": code})
        return {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}


if __name__ == "__main__":
    EchoKernel.launch()
