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
    """The target names no importable Kernel subclass: ``problem`` says what is wrong, ``fix`` what to do.

    ``kind`` names the case for tools that add advice: ``not_found`` (the module itself),
    ``syntax``, ``ipykernel`` (a kernel written for ipykernel), ``no_class``, ``ambiguous``,
    ``dependency``, ``import`` (any other exception while importing), ``other``.
    """

    def __init__(self, problem: str, fix: str = "", kind: str = "other") -> None:
        super().__init__(f"{problem}; {fix}" if fix else problem)
        self.problem, self.fix, self.kind = problem, fix, kind


#: What to change in a kernel written for ipykernel (the seed article's two lines).
PORT_FIX = (
    "change its import to `from kernelkit import Kernel` (and `IPKernelApp.launch_instance(kernel_class=K)` "
    "to `K.launch()`)"
)


def import_error(what: str, exc: BaseException) -> TargetError | None:
    """A one-line TargetError for an import failure whose traceback says less than a sentence can, else None.

    A syntax error (where, what, the line) and a kernel written for ipykernel on an interpreter
    without it; any other exception keeps its traceback.
    """
    if isinstance(exc, SyntaxError):
        where = (exc.filename or what) + (f" line {exc.lineno}" if exc.lineno else "")
        code = (exc.text or "").strip()
        return TargetError(
            f"{where} has a syntax error ({exc.msg}" + (f": {code})" if code else ")"),
            "fix that line, then try again",
            "syntax",
        )
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").partition(".")[0] == "ipykernel":
        return TargetError(
            f"{what} imports {exc.name}, which {sys.executable} does not have: it is written for "
            "ipykernel, and kernelkit kernels do not need it",
            PORT_FIX,
            "ipykernel",
        )
    return None


def _based_on_ipykernel(cls: type) -> bool:
    return any(base.__name__ == "Kernel" and base.__module__.startswith("ipykernel") for base in cls.__mro__[1:])


def no_kernel_class(module: ModuleType, where: str, class_name: str = "") -> TargetError:
    """Why ``module`` (``where``: its path or name) offers no usable Kernel subclass, and what to do."""
    ours = [c.__name__ for c in kernel_classes(module)]
    ported = [
        obj.__name__
        for obj in vars(module).values()
        if isinstance(obj, type) and obj.__module__ == module.__name__ and _based_on_ipykernel(obj)
    ]
    if (class_name in ported) if class_name else (ported and not ours):
        names = class_name or ", ".join(ported)
        return TargetError(f"{names} in {where} is based on ipykernel's Kernel, not kernelkit's", PORT_FIX, "ipykernel")
    if class_name:
        return TargetError(
            f"{where} has no Kernel subclass named {class_name!r}",
            f"use one it defines ({', '.join(ours)})"
            if ours
            else "check the name, or define it as `class " + class_name + "(kernelkit.Kernel)`",
            "no_class",
        )
    if ours:
        return TargetError(
            f"{where} defines {len(ours)} Kernel subclasses ({', '.join(ours)})",
            f"name the one to run, e.g. {where}:{ours[0]}",
            "ambiguous",
        )
    return TargetError(
        f"{where} defines no Kernel subclass",
        "define one in it (`class MyKernel(kernelkit.Kernel): ...`), or name the module or file that does",
        "no_class",
    )


def import_file(path: str) -> ModuleType:
    """Import a ``.py`` file as a module named after its stem (its folder stays off ``sys.path``)."""
    import importlib.util
    import os

    if not os.path.isfile(path):
        raise TargetError(
            f"{path} does not exist",
            "reinstall the kernel (kernelkit install) from the file's new place",
            "missing_file",
        )
    name = os.path.splitext(os.path.basename(path))[0]
    if not name.isidentifier():
        raise TargetError(
            f"{os.path.basename(path)} cannot be imported as a module: rename it to a valid Python identifier"
        )
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        error = import_error(path, exc)
        if error is not None:
            raise error from None
        raise
    return module


def import_module(name: str) -> ModuleType:
    import importlib

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise TargetError(
                f"no module named {exc.name!r} for {sys.executable}",
                "install its package in this environment (pip install ...) or give a path to the .py file",
                "not_found",
            ) from None
        error = import_error(name, exc)
        if error is not None:
            raise error from None
        raise
    except SyntaxError as exc:
        raise import_error(name, exc) or exc from None


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
            raise no_kernel_class(module, module_part, class_name)
        return kernel_class
    found = kernel_classes(module)
    if len(found) != 1:
        raise no_kernel_class(module, module_part)
    return found[0]


def main(argv: Sequence[str] | None = None) -> None:
    """``kernelkit_launcher TARGET [kernel options]``; a bad target is one line on stderr and exit 1."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        print(
            "usage: python -m kernelkit_launcher TARGET [-f CONNECTION_FILE] [kernel options]\n"
            "TARGET: module:Class, a module, or /path/to/file.py",
            file=sys.stderr,
        )
        sys.exit(2)
    try:
        kernel_class = load(args[0])
    except TargetError as exc:
        print(f"kernelkit: error: {exc}", file=sys.stderr)
        sys.exit(1)
    launch(kernel_class, args[1:])
