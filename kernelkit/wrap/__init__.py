"""``kernelkit wrap``: any command-line REPL as a Jupyter kernel.

The kernel (:class:`kernelkit.wrap.kernel.ReplKernel`) runs the program in a pseudo-terminal
and feeds it each cell; :mod:`kernelkit.wrap.profiles` says how to talk to bash, zsh, python,
sqlite3, node and lua. Built on the public :class:`kernelkit.Kernel` API only. See docs/wrap.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernelkit.wrap.kernel import ReplKernel
    from kernelkit.wrap.profiles import PROFILES, Profile

__all__ = ["PROFILES", "Profile", "ReplKernel"]


def __getattr__(name: str) -> Any:
    if name == "ReplKernel":
        from kernelkit.wrap.kernel import ReplKernel

        return ReplKernel
    if name in ("PROFILES", "Profile"):
        from kernelkit.wrap import profiles

        return getattr(profiles, name)
    raise AttributeError(f"module 'kernelkit.wrap' has no attribute {name!r}")
