"""Turn what a user names (a Kernel class, ``module:Class``, a module, a ``.py`` file, a kernelspec
folder) into a kernel.json that starts from any working directory, then write it.

The written ``argv`` for a kernelkit Kernel class is always::

    [ABS_PYTHON, "-m", "kernelkit_launcher", "TARGET", "-f", "{connection_file}", *KERNEL_ARGS]

rather than ``[ABS_PYTHON, "-m", MODULE, ...]``: it works for every Kernel subclass whether or
not its module launches itself under ``if __name__ == "__main__"`` (which install cannot see
without running it), it never imports the module twice (as ``__main__`` and by name, which
splits class identity), it lets ``-f``/``--parent``/``--log-level`` behave the same for every
kernelkit kernel, and the launcher removes the current folder from ``sys.path`` before it
imports anything (a notebook folder's ``hmac.py`` cannot break the kernel) and imports none of
kernelkit's CLI. For a ``.py`` target, TARGET is the file's absolute path, so no PYTHONPATH is needed. ``ABS_PYTHON``
is absolute and checked to import the target from an empty folder before anything is written.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelkit.tools import kernelspecs as kernelspec
from kernelkit.tools import probe
from kernelkit.tools.kernelspecs import InvalidKernelSpec, KernelSpecError

#: The kernel handshake (JEP 66) is protocol 5.6 in jupyter_client's messaging spec; JEP 66 itself
#: says a kernelspec whose ``kernel_protocol_version`` is >= 5.5 supports it. 5.6 adds no message,
#: only the start-up handshake, which kernelkit's launcher implements for every kernel.
HANDSHAKE_PROTOCOL_VERSION = "5.6"


def advertised_protocol_version(spoken: str) -> str:
    """The ``kernel_protocol_version`` to install for a kernelkit kernel whose class speaks ``spoken``.

    A kernel speaking 5.5 is advertised as 5.6, so launchers know it accepts a registration file
    (the handshake) as well as a connection file; other versions are written as they are.
    """
    if not spoken:
        return HANDSHAKE_PROTOCOL_VERSION
    try:
        major_minor = tuple(int(part) for part in spoken.split(".")[:2])
    except ValueError:
        return spoken
    return HANDSHAKE_PROTOCOL_VERSION if major_minor == (5, 5) else spoken


@dataclass
class InstallResult:
    """What ``install`` wrote (or, for a dry run, would write)."""

    name: str
    resource_dir: Path
    kernel_json: dict[str, Any]
    python: str | None
    dry_run: bool
    #: The kernelspec was already installed exactly so: nothing was written.
    unchanged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "resource_dir": str(self.resource_dir),
            "spec": self.kernel_json,
            "python": self.python,
            "dry_run": self.dry_run,
            "unchanged": self.unchanged,
        }


def write(
    kernel_json: dict[str, Any],
    name: str,
    python: str | None,
    *,
    user: bool = False,
    prefix: str | os.PathLike[str] | None = None,
    sys_prefix: bool = False,
    files: Mapping[str, str | os.PathLike[str]] | None = None,
    source_dir: Path | None = None,
    replace: bool = False,
    dry_run: bool = False,
) -> InstallResult:
    """Write the kernelspec (unless ``dry_run``, or it is installed exactly so already) and say what was done.

    Shared by ``kernelkit install`` and ``kernelkit wrap install``. A different kernelspec of
    the same name is replaced only with ``replace``.
    """
    resource_dir = kernelspec.destination_dir(user=user, prefix=prefix, sys_prefix=sys_prefix) / name
    unchanged = False
    if not dry_run:
        unchanged = not replace and kernelspec.matches(resource_dir, kernel_json, files, source_dir)
        if not unchanged:
            resource_dir = kernelspec.install(
                kernel_json,
                name,
                user=user,
                prefix=prefix,
                sys_prefix=sys_prefix,
                files=files,
                source_dir=source_dir,
                replace=replace,
            )
    return InstallResult(name, resource_dir, kernel_json, python, dry_run, unchanged)


def install(
    target: type | str | os.PathLike[str],
    name: str | None = None,
    display_name: str | None = None,
    *,
    language: str | None = None,
    user: bool = False,
    prefix: str | os.PathLike[str] | None = None,
    sys_prefix: bool = False,
    env: Mapping[str, str] | None = None,
    interrupt_mode: str | None = None,
    logo: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    metadata: Mapping[str, Any] | None = None,
    python: str | os.PathLike[str] | None = None,
    replace: bool = False,
    dry_run: bool = False,
    kernel_args: Sequence[str] = (),
) -> InstallResult:
    """Install a kernel so Jupyter can start it from anywhere; see the module docstring for the argv.

    With none of ``user``/``prefix``/``sys_prefix`` it installs for the current user. Raises
    KernelSpecError (or probe.TargetNotImportable) with a one-sentence message and the fix.
    ``kernel_args`` (``kernelkit install TARGET -- ARGS``) go into argv after ``-f {connection_file}``;
    for a Kernel class they are first checked against its ``add_arguments``.
    """
    kernel_args = [str(a) for a in kernel_args]
    if interrupt_mode is not None and interrupt_mode not in kernelspec.INTERRUPT_MODES:
        raise KernelSpecError(f"--interrupt-mode must be 'signal' or 'message', not {interrupt_mode!r}")
    # Conflicting location options fail here, before the slow probe of the target.
    kernelspec.destination_dir(user=user, prefix=prefix, sys_prefix=sys_prefix)
    interpreter = _interpreter(python)
    files = _logo_files(logo)
    source_dir: Path | None = None
    if not isinstance(target, type) and Path(target).is_dir():
        source_dir = Path(target)
        kernel_json, default_name = _from_folder(source_dir, interpreter, python is not None, env)
        kernel_json["argv"] = [*kernel_json["argv"], *kernel_args]
    else:
        kernel_json, default_name = _from_class(_target_text(target), interpreter, env, kernel_args)
    final_name = kernelspec.check_name(name) if name else default_name
    if display_name:
        kernel_json["display_name"] = display_name
    if language:
        kernel_json["language"] = language
    if env:
        kernel_json["env"] = {**kernel_json.get("env", {}), **env}
    if interrupt_mode:
        kernel_json["interrupt_mode"] = interrupt_mode
    if metadata:
        kernel_json["metadata"] = {**kernel_json.get("metadata", {}), **metadata}
    return write(
        kernel_json,
        final_name,
        interpreter,
        user=user,
        prefix=prefix,
        sys_prefix=sys_prefix,
        files=files,
        source_dir=source_dir,
        replace=replace,
        dry_run=dry_run,
    )


def _interpreter(python: str | os.PathLike[str] | None) -> str:
    """The absolute interpreter to pin: ``python`` (a path, or a name looked up on PATH) or ours."""
    if python is None:
        return kernelspec.running_python()
    found = probe.resolve_program(str(python))
    if found is None:
        raise KernelSpecError(
            f"interpreter {python} not found or not executable; give the full path of a Python "
            f"with kernelkit installed (e.g. --python {kernelspec.running_python()})"
        )
    return os.path.abspath(found)


def _target_text(target: type | str | os.PathLike[str]) -> str:
    """A target string that means the same from any folder (absolute for files, importable name for classes)."""
    if isinstance(target, type):
        module = target.__module__
        if module == "__main__":  # `python -m mykernel install` or `python mykernel.py install`
            main = sys.modules["__main__"]
            main_spec = getattr(main, "__spec__", None)
            if main_spec is not None and main_spec.name:
                module = main_spec.name.removesuffix(".__main__")
            else:
                module = str(Path(inspect.getfile(main)).resolve())
        return f"{module}:{target.__qualname__}"
    text = os.fspath(target)
    module_part, sep, class_name = text.partition(":")
    if module_part.endswith(".py") or "/" in module_part or os.sep in module_part:
        return f"{Path(module_part).resolve()}{sep}{class_name}"
    return text


def _from_class(
    target: str, python: str, env: Mapping[str, str] | None, kernel_args: Sequence[str] = ()
) -> tuple[dict[str, Any], str]:
    """kernel.json for a kernelkit Kernel subclass, after checking ``python`` imports it from elsewhere
    and accepts ``kernel_args``."""
    try:
        info = probe.describe_target(python, target, env, kernel_args)
    except probe.ProbeError as exc:
        raise KernelSpecError(f"{exc}; choose a working interpreter with --python") from None
    except probe.TargetNotImportable as exc:
        raise KernelSpecError(_not_importable(exc, target, python)) from None
    if info.args_error:
        raise KernelSpecError(
            f"{target} does not accept the kernel arguments {' '.join(kernel_args)!r} ({info.args_error}); "
            f"see its options with: {python} -m kernelkit_launcher {info.spec} --help"
        )
    kernel_json: dict[str, Any] = {
        "argv": [python, "-m", "kernelkit_launcher", info.spec, "-f", "{connection_file}", *kernel_args],
        "display_name": info.implementation or info.qualname,
        "language": info.language or "text",
        "interrupt_mode": "signal",
        "env": {},
        # kernelkit kernels make every socket a Curve server when the connection file carries
        # keys; jupyter_client 8.10 only sends keys to kernelspecs that declare it.
        "metadata": {"kernelkit": {"target": info.spec, "python": python}, "supported_encryption": ["curve"]},
        "kernel_protocol_version": advertised_protocol_version(info.protocol_version),
    }
    return kernel_json, kernelspec.name_from(info.path or info.module.rpartition(".")[2])


def _not_importable(exc: probe.TargetNotImportable, target: str, python: str) -> str:
    """One sentence of what is wrong and one of what to do, for a target ``python`` cannot load."""
    if exc.kind in probe.SPECIFIC:
        return str(exc)
    module = target.partition(":")[0]
    if exc.kind == "not_found":
        here = Path.cwd() / f"{module.replace('.', os.sep)}.py"
        if here.is_file():  # the seed pitfall: importable from here only, because Python puts '' on sys.path
            return (
                f"{python} cannot import {module} from another folder (it is only in this one, {here.parent}); "
                f"give the path to its .py file instead: kernelkit install {here}"
            )
        return (
            f"{python} cannot import {module} from another folder (no module named {module!r}); install its "
            f"package into that interpreter ({python} -m pip install PACKAGE, or -e PROJECT_DIR for your own), "
            "give the path to its .py file, or choose another --python"
        )
    return (
        f"{exc}; install the kernel's package into that interpreter ({python} -m pip install -e PROJECT_DIR), "
        "give the path to its .py file, or choose another --python"
    )


def _from_folder(
    folder: Path, python: str, python_given: bool, env: Mapping[str, str] | None
) -> tuple[dict[str, Any], str]:
    """The folder's kernel.json, with a bare ``python`` pinned and its ``-m`` module checked.

    A bare interpreter name is exactly the seed article's pitfall, so it is replaced by the
    absolute interpreter (``--python`` or ours); an absolute one is kept unless ``--python`` is given.
    A ``-m MODULE`` the interpreter cannot import but whose ``MODULE.py`` is in the folder becomes
    ``{resource_dir}/MODULE.py`` (jupyter_client substitutes it), so it runs from any working directory.
    """
    spec = kernelspec.load(folder)
    if spec.error:
        raise InvalidKernelSpec(f"{folder / kernelspec.KERNEL_JSON}: {spec.error}; fix the file and retry")
    kernel_json = dict(spec.raw)
    argv = list(spec.argv)
    if probe.is_python(argv[0]) and (python_given or not os.path.isabs(argv[0])):
        argv[0] = python
    kernel_json["argv"] = argv
    if probe.resolve_program(argv[0]) is None:
        raise KernelSpecError(
            f"{argv[0]} (argv[0] in {folder / kernelspec.KERNEL_JSON}) is not found or not "
            "executable; fix argv or pass --python PATH"
        )
    module = probe.module_of(argv)
    if probe.is_python(argv[0]) and module:
        merged_env = {**spec.env, **(env or {})}
        try:
            missing = probe.missing_module(argv[0], module, kernelspec.expand_env(merged_env, probe.clean_env()))
        except probe.ProbeError as exc:
            raise KernelSpecError(f"{exc}; choose a working interpreter with --python") from None
        if missing and (folder / f"{module}.py").is_file():
            # the seed article's layout: the module sits next to kernel.json; run it from the installed folder
            at = argv.index("-m")
            argv[at : at + 2] = [f"{{resource_dir}}/{module}.py"]
        elif missing:
            raise KernelSpecError(
                f"{argv[0]} cannot import {module} (No module named {missing}) from another folder; install its "
                f"package there ({argv[0]} -m pip install {missing}), add --env PYTHONPATH=DIR, or choose --python"
            )
    return kernel_json, kernelspec.name_from(folder.resolve().name)


def _logo_files(logo: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None) -> dict[str, str]:
    """Map PNG or SVG logos (one, or several) to the file names Jupyter looks for (a PNG's size picks 32 or 64)."""
    if logo is None:
        return {}
    if not isinstance(logo, (str, os.PathLike)):
        return {k: v for one in logo for k, v in _logo_files(one).items()}
    path = Path(logo)
    if not path.is_file():
        raise KernelSpecError(f"logo {path} does not exist; give a PNG (32x32 or 64x64) or SVG file")
    if path.suffix.lower() == ".svg":
        return {"logo-svg.svg": str(path)}
    size = kernelspec.png_size(path)
    if size is None:
        raise KernelSpecError(f"logo {path} is neither a PNG nor an SVG file; convert it to one of those")
    if size == (32, 32):
        return {"logo-32x32.png": str(path)}
    if size == (64, 64):
        return {"logo-64x64.png": str(path)}
    raise KernelSpecError(f"logo {path} is {size[0]}x{size[1]}; Jupyter uses 32x32 and 64x64 PNGs, resize it")
