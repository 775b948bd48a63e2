"""Start a kernel from a kernelspec's argv: import the kernel class TARGET names and serve it.

What ``python -m kernelkit_launcher TARGET [kernel options]`` runs (TARGET: ``module:Class``,
a module, or ``/path/to/file.py[:Class]``). It imports only the kernel, the engine and the
standard library modules they need: none of kernelkit's tools or CLI, which cost every start
(kernelspecs written by earlier versions, ``-m kernelkit run``, keep working through the CLI).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import ModuleType

from kernelkit.kernel.app import launch
from kernelkit.kernel.base import Kernel


class TargetError(ValueError):
    """The target names no importable Kernel subclass; the message says what to do."""


def import_file(path: str) -> ModuleType:
    """Import a ``.py`` file as a module named after its stem (its folder stays off ``sys.path``)."""
    import importlib.util
    import os

    if not os.path.isfile(path):
        raise TargetError(f"{path} does not exist: reinstall the kernel (kernelkit install) from the file's new place")
    name = os.path.splitext(os.path.basename(path))[0]
    if not name.isidentifier():
        raise TargetError(f"{os.path.basename(path)} cannot be imported as a module: rename it to a valid Python identifier")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def import_module(name: str) -> ModuleType:
    import importlib

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise TargetError(
                f"no module named {exc.name!r} for {sys.executable}: install its package in this "
                f"environment (pip install ...) or give a path to the .py file"
            ) from None
        raise


def kernel_classes(module: ModuleType) -> list[type[Kernel]]:
    """The Kernel subclasses a module defines (not those it imports)."""
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, Kernel) and obj is not Kernel and obj.__module__ == module.__name__
    ]


def split_target(target: str) -> tuple[str, str, bool]:
    """``(module or path, class name or "", is_path)`` for a target string."""
    module_part, _, class_name = target.partition(":")
    is_path = module_part.endswith(".py") or "/" in module_part
    return module_part, class_name, is_path


def load(target: str) -> type[Kernel]:
    """Import ``target`` and return its Kernel subclass (the only one in the module, or the one named)."""
    module_part, class_name, is_path = split_target(target)
    module = import_file(module_part) if is_path else import_module(module_part)
    if class_name:
        kernel_class = getattr(module, class_name, None)
        if not (isinstance(kernel_class, type) and issubclass(kernel_class, Kernel)):
            raise TargetError(f"{module.__name__} has no Kernel subclass named {class_name!r}")
        return kernel_class
    found = kernel_classes(module)
    if len(found) != 1:
        names = ", ".join(c.__name__ for c in found) or "none"
        raise TargetError(
            f"{module.__name__} defines {len(found)} Kernel subclasses ({names}): name one as {module_part}:ClassName"
        )
    return found[0]


def main(argv: Sequence[str] | None = None) -> None:
    """``kernelkit_launcher TARGET [kernel options]``; a bad target is one line on stderr and exit 1."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        print("usage: python -m kernelkit_launcher TARGET [-f CONNECTION_FILE] [kernel options]\n"
              "TARGET: module:Class, a module, or /path/to/file.py", file=sys.stderr)
        sys.exit(2)
    try:
        kernel_class = load(args[0])
    except TargetError as exc:
        print(f"kernelkit: error: {exc}", file=sys.stderr)
        sys.exit(1)
    launch(kernel_class, args[1:])
