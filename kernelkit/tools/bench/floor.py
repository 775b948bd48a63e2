"""The floor kernel's kernelspec: a bare pyzmq kernel with no logic (``floor_kernel.py``), measured in every run."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

MB = 1_000_000
#: Name of the floor kernel's kernelspec: :mod:`kernelkit.floor_kernel`, bare pyzmq, no kernel logic.
FLOOR_KERNEL = "kernelkit-floor"
FLOOR_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor_kernel.py")


def write_floor_kernelspec(folder: Any, python: str = sys.executable) -> str:
    """Write the floor kernel's kernelspec under ``folder/kernels``; returns that kernels folder.

    The floor runs as a script (``python .../floor_kernel.py``), so it imports no kernelkit.
    """
    kernels = os.path.join(str(folder), "kernels")
    spec = os.path.join(kernels, FLOOR_KERNEL)
    os.makedirs(spec, exist_ok=True)
    with open(os.path.join(spec, "kernel.json"), "w", encoding="utf-8") as f:
        json.dump(
            {
                "argv": [python, FLOOR_SCRIPT, "-f", "{connection_file}"],
                "display_name": "floor (bare pyzmq)",
                "language": "text",
            },
            f,
            indent=1,
        )
    return kernels
