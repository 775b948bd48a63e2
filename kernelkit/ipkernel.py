"""``kernelkit.ipkernel``: ipykernel's IPython kernel is not part of kernelkit.

Published kernels sometimes import ``IPythonKernel`` without using it (a leftover, a type
check, an optional feature). So that the import swap still gives a working kernel, importing it
works: it warns once, naming the importing line. Any real use (making one, subclassing it,
launching it) raises ``NotImplementedError`` that names that line and says what to do: a kernel
that is an IPython kernel needs ipykernel; kernelkit runs wrapper kernels (``Kernel`` subclasses).
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, NoReturn

__all__ = ["IPythonKernel"]

_imported_at = "an unknown line"


class IPythonKernelNotAvailableWarning(UserWarning):
    """``IPythonKernel`` was imported from kernelkit: fine if unused, an error if used."""


def _explain(action: str) -> str:
    return (
        f"{action}: kernelkit has no IPython kernel (IPythonKernel imported at {_imported_at}). "
        "A kernel that runs Python through IPython needs ipykernel (keep `from ipykernel.ipkernel import "
        "IPythonKernel` and run it on ipykernel); a wrapper kernel subclasses `kernelkit.Kernel` instead."
    )


class _Unavailable(type):
    def __call__(cls, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(_explain("IPythonKernel() cannot be made"))

    def __getattr__(cls, name: str) -> NoReturn:
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotImplementedError(_explain(f"IPythonKernel.{name} does not exist"))


class IPythonKernel(metaclass=_Unavailable):
    """A stand-in: importing it works (with a warning); using it raises ``NotImplementedError``."""

    def __init_subclass__(cls, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(_explain(f"class {cls.__name__}(IPythonKernel) cannot be defined"))


def _importer() -> str:
    """``file:line`` of the import statement that loaded this module (skipping importlib's frames)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith("<frozen importlib") and filename != __file__:
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return "an unknown line"


_imported_at = _importer()
warnings.warn(
    f"kernelkit.ipkernel.IPythonKernel (imported at {_imported_at}) is a stand-in: kernelkit has no IPython "
    "kernel, so using it raises NotImplementedError",
    IPythonKernelNotAvailableWarning,
    stacklevel=2,
)
