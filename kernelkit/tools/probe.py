"""Ask a Python interpreter, in a fresh process and an empty working directory, what it can import.

A kernelspec is started by Jupyter from wherever the notebook lives, with whatever
interpreter ``argv[0]`` names, so "it imports here" proves nothing: the seed article's
``No module named echokernel`` is exactly that. Both ``install`` (before writing) and
``doctor`` ask the real interpreter, from a temporary folder, with the spec's ``env``.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROBE_TIMEOUT = 60.0

_PYTHON_NAME = re.compile(r"^(python|pypy)(\d+(\.\d+)?)?[mtd]?(\.exe)?$", re.IGNORECASE)

_DESCRIBE = r"""
import json, sys
try:
    from kernelkit.tools.targets import TargetError, resolve_target
except ImportError as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "missing": getattr(exc, "name", None)}))
    raise SystemExit(0)
try:
    t = resolve_target(sys.argv[1])
except TargetError as exc:
    print(json.dumps({"error": str(exc), "kind": getattr(exc, "kind", "other"), "fix": getattr(exc, "fix", "")}))
    raise SystemExit(0)
k = t.kernel_class
info = dict(getattr(k, "language_info", {}) or {})
args_error = None
if sys.argv[2:]:  # the kernel's own arguments (install TARGET -- ARGS): parse them as the kernel will
    import argparse
    try:
        from kernelkit.kernel.app import kernel_arguments
    except ImportError:  # a kernelkit too old to say: the kernel itself will complain at start
        kernel_arguments = None
    if kernel_arguments is not None:
        class _Parser(argparse.ArgumentParser):
            def error(self, message):
                raise ValueError(message)
        parser = kernel_arguments(_Parser(prog=sys.argv[1], add_help=False))
        k.add_arguments(parser.add_argument_group("kernel options"))
        try:
            ns, unknown = parser.parse_known_args(["-f", "{connection_file}", *sys.argv[2:]])
            unknown = [a for a in unknown if not (a.startswith("--") and "." in a.split("=", 1)[0])]
            if unknown:
                raise ValueError("unrecognized arguments: " + " ".join(unknown))
            if ns.connection_file != "{connection_file}":
                raise ValueError("-f/--connection-file is set by Jupyter, not by the kernelspec")
        except (ValueError, SystemExit) as exc:
            args_error = str(exc)
print(json.dumps({
    "args_error": args_error,
    "module": t.module, "qualname": k.__qualname__, "path": str(t.path) if t.path else None,
    "implementation": getattr(k, "implementation", "") or "",
    "language": info.get("name") or getattr(k, "language", "") or "",
    "protocol_version": getattr(k, "protocol_version", ""),
}))
"""

_FIND = r"""
import importlib.util, json, sys
try:
    found = importlib.util.find_spec(sys.argv[1]) is not None
    print(json.dumps({"found": found, "missing": None if found else sys.argv[1]}))
except ImportError as exc:
    print(json.dumps({"found": False, "missing": getattr(exc, "name", None) or sys.argv[1], "error": str(exc)}))
"""


class ProbeError(RuntimeError):
    """The interpreter could not be run at all (missing, not executable, crashed, timed out)."""


@dataclass(frozen=True)
class TargetInfo:
    """What an interpreter found for a ``module:Class`` / ``module`` / ``file.py`` target."""

    module: str
    qualname: str
    path: str | None
    implementation: str
    language: str
    protocol_version: str
    args_error: str | None = None

    @property
    def spec(self) -> str:
        """The target as ``kernelkit run`` takes it, valid from any working directory."""
        return f"{self.path or self.module}:{self.qualname}"


def is_python(program: str) -> bool:
    """Whether an ``argv[0]`` looks like a Python interpreter (``python``, ``/x/bin/python3.11``...)."""
    return bool(_PYTHON_NAME.match(Path(program).name))


def module_of(argv: Sequence[str]) -> str | None:
    """The module a Python kernel runs with ``-m``, if its argv has one."""
    for flag, value in itertools.pairwise(argv):
        if flag == "-m":
            return value
    return None


def resolve_program(program: str) -> str | None:
    """The absolute path ``argv[0]`` runs, found like a launcher does (PATH for bare names)."""
    if os.sep in program or (os.altsep and os.altsep in program):
        path = Path(program).expanduser()
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(program)


def clean_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a kernel would get: ours without PYTHONPATH (a shell habit Jupyter may not
    share), plus ``env``."""
    base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**base, **(env or {})}


def _run(python: str, code: str, arg: str, env: Mapping[str, str] | None, extra: Sequence[str] = ()) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kernelkit-probe-") as cwd:
        try:
            done = subprocess.run(
                [python, "-c", code, arg, *extra],
                cwd=cwd,
                env=clean_env(env),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT,
            )
        except OSError as exc:
            raise ProbeError(f"cannot run {python}: {exc.strerror or exc}") from None
        except subprocess.TimeoutExpired:
            raise ProbeError(f"{python} did not finish importing within {PROBE_TIMEOUT:g} s") from None
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise ProbeError(f"{python} failed while importing: {tail[0]}") from None


def describe_target(
    python: str, target: str, env: Mapping[str, str] | None = None, kernel_args: Sequence[str] = ()
) -> TargetInfo:
    """Resolve ``target`` inside ``python`` from an empty folder; ImportError-like ValueError if it cannot.

    ``kernel_args`` are parsed there as the kernel will parse them; a refusal is ``args_error``.
    """
    result = _run(python, _DESCRIBE, target, env, kernel_args)
    if "error" in result:
        if result.get("missing") == "kernelkit" or str(result.get("error", "")).endswith("'kernelkit'"):
            raise TargetNotImportable(
                f"{python} cannot import kernelkit, which the kernel needs to start; "
                f"install it there ({python} -m pip install kernelkit) or choose another --python",
                "dependency",
                f"{python} -m pip install kernelkit",
            )
        kind = result.get("kind") or "other"
        if kind in SPECIFIC:  # the message already says what is wrong where, and what to do
            raise TargetNotImportable(result["error"], kind, result.get("fix") or "")
        raise TargetNotImportable(f"{python} cannot load {target} from another folder: {result['error']}", kind)
    return TargetInfo(**result)


def missing_module(python: str, module: str, env: Mapping[str, str] | None = None) -> str | None:
    """None when ``python`` finds ``module`` from an empty folder, else the name it could not find."""
    result = _run(python, _FIND, module, env)
    return None if result.get("found") else (result.get("missing") or module)


class TargetNotImportable(ValueError):
    """The interpreter runs but cannot import the kernel; the message names both and the fix.

    ``kind`` is the launcher's ``TargetError.kind`` (``not_found``, ``syntax``, ``ipykernel``...);
    for the kinds in ``SPECIFIC`` the message already ends with the fix, which ``fix`` repeats.
    """

    def __init__(self, message: str, kind: str = "other", fix: str = "") -> None:
        super().__init__(message)
        self.kind, self.fix = kind, fix


#: Target errors whose message is specific to the case: tools add no generic advice to them.
SPECIFIC = frozenset({"syntax", "ipykernel", "no_class", "ambiguous", "dependency", "import", "missing_file"})
