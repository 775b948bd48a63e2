"""Find a Kernel subclass from what a user types: ``module:Class``, ``module``, or ``path/to/file.py``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from kernelkit.kernel.base import Kernel


class TargetError(ValueError):
    """The target names no importable Kernel subclass; the message says what to do."""


@dataclass(frozen=True)
class KernelTarget:
    kernel_class: type[Kernel]
    module: str  # importable module name ("__main__"-free), or the file's stem for a path
    path: Path | None  # the .py file, when the target was given as a path

    @property
    def spec(self) -> str:
        return f"{self.module}:{self.kernel_class.__qualname__}"


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise TargetError(f"{path} does not exist")
    name = path.stem
    if not name.isidentifier():
        raise TargetError(f"{path.name} cannot be imported as a module: rename it to a valid Python identifier")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise TargetError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise TargetError(
                f"no module named {exc.name!r} for {sys.executable}: install its package in this "
                f"environment (pip install ...) or give a path to the .py file"
            ) from None
        raise TargetError(f"importing {name} failed: {exc}") from exc
    except Exception as exc:
        raise TargetError(f"importing {name} failed: {type(exc).__name__}: {exc}") from exc


def _kernel_classes(module: ModuleType) -> list[type[Kernel]]:
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Kernel) and obj is not Kernel and obj.__module__ == module.__name__
    ]


def resolve_target(target: str) -> KernelTarget:
    """Import ``target`` and return its Kernel subclass (the only one in the module, or the one named)."""
    module_part, _, class_name = target.partition(":")
    path: Path | None = None
    if module_part.endswith(".py") or "/" in module_part:
        path = Path(module_part).resolve()
        module = _import_file(path)
        module_name = path.stem
    else:
        module = _import_module(module_part)
        module_name = module_part
    if class_name:
        kernel_class = getattr(module, class_name, None)
        if not (inspect.isclass(kernel_class) and issubclass(kernel_class, Kernel)):
            raise TargetError(f"{module_name} has no Kernel subclass named {class_name!r}")
    else:
        found = _kernel_classes(module)
        if len(found) != 1:
            names = ", ".join(c.__name__ for c in found) or "none"
            raise TargetError(
                f"{module_name} defines {len(found)} Kernel subclasses ({names}): name one as {module_part}:ClassName"
            )
        kernel_class = found[0]
    return KernelTarget(kernel_class, module_name, path)
