"""Temporary Jupyter and IPython folders for a benchmark run, so no installed kernelspec or config leaks in.

Shared by the scripts in this folder (run as ``python benchmarks/NAME.py``, which puts this
folder first on ``sys.path``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

_FOLDERS = (
    ("JUPYTER_PATH", "path"),
    ("JUPYTER_DATA_DIR", "data"),
    ("JUPYTER_RUNTIME_DIR", "runtime"),
    ("JUPYTER_CONFIG_DIR", "config"),
    ("IPYTHONDIR", "ipython"),
)


def jupyter_folders(root: Path, env: MutableMapping[str, str] = os.environ) -> Path:
    """Point ``env``'s Jupyter and IPython folders (default: this process's) into ``root``; returns ``root``.

    Kernelspecs written to ``root / "path" / "kernels"`` are then the only ones found.
    """
    for var, sub in _FOLDERS:
        (root / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(root / sub)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    return root


def temporary_jupyter(prefix: str) -> Path:
    """A new temporary folder holding this process's Jupyter and IPython folders."""
    return jupyter_folders(Path(tempfile.mkdtemp(prefix=prefix)))
