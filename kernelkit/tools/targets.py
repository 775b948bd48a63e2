"""Find a Kernel subclass from what a user types: ``module:Class``, ``module``, or ``path/to/file.py``.

The rules (and the errors: one sentence of what is wrong, one of what to do) are the
launcher's, which installed kernels run; this adds what tools want to report, the module
name and the file, and explains every import failure instead of showing a traceback.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from kernelkit.kernel.base import Kernel
from kernelkit.launcher import TargetError, import_error, kernel_classes, no_kernel_class, split_target

__all__ = ["KernelTarget", "TargetError", "resolve_target"]


@dataclass(frozen=True)
class KernelTarget:
    kernel_class: type[Kernel]
    module: str  # importable module name ("__main__"-free), or the file's stem for a path
    path: Path | None  # the .py file, when the target was given as a path

    @property
    def spec(self) -> str:
        return f"{self.module}:{self.kernel_class.__qualname__}"


def _explained(what: str, exc: Exception) -> TargetError:
    """Any exception raised while importing ``what``, as a TargetError that says where and what to do."""
    known = import_error(what, exc)
    if known is not None:
        return known
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.partition(".")[0]
        return TargetError(
            f"{what} imports {exc.name!r}, which {sys.executable} cannot find",
            f"install it there ({sys.executable} -m pip install {top}) or choose the interpreter "
            "that has it (--python PATH)",
            "dependency",
        )
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "importlib" not in f.filename] or frames
    where = f" at {own[-1].filename} line {own[-1].lineno}" if own else ""
    return TargetError(
        f"importing {what} failed{where}: {type(exc).__name__}: {exc}", "fix that error, then try again", "import"
    )


def _import_file(path: Path) -> ModuleType:
    from kernelkit.launcher import import_file

    if not path.is_file():
        raise TargetError(
            f"{path} does not exist", "check the path (a relative one starts from the current folder)", "missing_file"
        )
    try:
        return import_file(str(path))
    except TargetError:
        raise
    except Exception as exc:
        raise _explained(str(path), exc) from None


def _import_module(name: str) -> ModuleType:
    from kernelkit.launcher import import_module

    try:
        return import_module(name)
    except TargetError:
        raise
    except Exception as exc:
        raise _explained(name, exc) from None


def resolve_target(target: str) -> KernelTarget:
    """Import ``target`` and return its Kernel subclass (the only one in the module, or the one named)."""
    module_part, class_name, is_path = split_target(target)
    path: Path | None = None
    if is_path:
        path = Path(module_part).resolve()
        module = _import_file(path)
        module_name, where = path.stem, str(path)
    else:
        module = _import_module(module_part)
        module_name, where = module_part, module_part
    if class_name:
        kernel_class = getattr(module, class_name, None)
        if not (isinstance(kernel_class, type) and issubclass(kernel_class, Kernel)):
            raise no_kernel_class(module, where, class_name)
    else:
        found = kernel_classes(module)
        if len(found) != 1:
            raise no_kernel_class(module, where)
        kernel_class = found[0]
    return KernelTarget(kernel_class, module_name, path)
