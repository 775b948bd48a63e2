"""Kernelspecs on disk: find, validate, write and remove them, with jupyter_client's folders and JSON.

This layer only reads and writes files. It starts no process (asking an interpreter what it
can import lives in ``probe``) and prints nothing; errors carry a one-sentence message that
says what to do. Folders come from ``jupyter_core.paths`` so kernelkit and Jupyter always
agree on where kernels live and which one wins.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_core.paths import ENV_JUPYTER_PATH, SYSTEM_JUPYTER_PATH, jupyter_data_dir, jupyter_path

NAME_RULE = "kernel names may contain only ASCII letters, digits, '-', '.' and '_' (matched case-insensitively)"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
#: Names a frontend never starts: jupyter_client's KernelManager turns ``python`` into ``python3``.
_SHADOWED_NAMES = {"python": "python3"}
INTERRUPT_MODES = ("signal", "message")
LOGO_FILES = {"logo-32x32.png": (32, 32), "logo-64x64.png": (64, 64), "logo-svg.svg": None}
KERNEL_JSON = "kernel.json"


class KernelSpecError(Exception):
    """Something about a kernelspec is wrong; the message is one sentence with the fix."""


class InvalidName(KernelSpecError, ValueError):
    """A kernel name outside the kernelspec rules."""


class InvalidKernelSpec(KernelSpecError, ValueError):
    """A kernel.json that Jupyter could not use (bad JSON, wrong types, no ``{connection_file}``)."""


class NoSuchKernel(KernelSpecError, LookupError):
    """No usable kernelspec has this name; ``suggestion`` is the closest installed name, if any.

    ``broken`` is set when a spec of that name exists but its kernel.json is unusable: for a
    caller that wants to start the kernel, both mean "cannot", so one exception covers them.
    """

    def __init__(self, name: str, known: Iterable[str] = (), broken: KernelSpec | None = None) -> None:
        self.name = name
        self.broken = broken
        self.suggestion = None if broken else suggest(name, known)
        if broken is not None:
            message = (
                f"kernel {broken.name!r} in {broken.resource_dir} is broken ({broken.error}); "
                f"run `kernelkit doctor {broken.name}`"
            )
        elif self.suggestion:
            message = f"no kernel named {name!r}; did you mean {self.suggestion!r}?"
        else:
            message = f"no kernel named {name!r}; `kernelkit list` shows the installed kernels"
        super().__init__(message)

    def __str__(self) -> str:  # LookupError would quote the message
        return str(self.args[0])


class KernelSpecExists(KernelSpecError, FileExistsError):
    """The destination already holds a kernelspec and ``replace`` was not given."""


class NotWritable(KernelSpecError, PermissionError):
    """The chosen kernels folder cannot be written (typically the system prefix without root)."""


@dataclass
class KernelSpec:
    """One ``kernels/NAME/kernel.json``, as found on disk; broken ones keep the reason in ``error``."""

    name: str
    resource_dir: Path
    argv: list[str] = field(default_factory=list)
    display_name: str = ""
    language: str = ""
    env: dict[str, str] = field(default_factory=dict)
    interrupt_mode: str = "signal"
    metadata: dict[str, Any] = field(default_factory=dict)
    kernel_protocol_version: str = ""
    raw: Any = None  # the parsed kernel.json, whatever it holds
    error: str | None = None  # why Jupyter cannot use it (unreadable, invalid JSON, wrong schema)
    shadowed_by: Path | None = None  # the resource_dir of the same-named spec that wins

    @property
    def kernel_file(self) -> Path:
        return self.resource_dir / KERNEL_JSON

    @property
    def kernels_dir(self) -> Path:
        return self.resource_dir.parent

    def to_dict(self) -> dict[str, Any]:
        """The ``spec`` object of ``jupyter kernelspec list --json`` (jupyter_client's KernelSpec.to_dict)."""
        return {
            "argv": self.argv,
            "env": self.env,
            "display_name": self.display_name,
            "language": self.language,
            "interrupt_mode": self.interrupt_mode,
            "metadata": self.metadata,
            "kernel_protocol_version": self.kernel_protocol_version,
        }


# --- names -------------------------------------------------------------------------------------


def is_valid_name(name: str) -> bool:
    return bool(_NAME_PATTERN.match(name))


def unreachable_reason(name: str) -> str | None:
    """Why frontends would never start a kernelspec named ``name`` although it is valid, or None."""
    started = _SHADOWED_NAMES.get(name.lower())
    if started is None:
        return None
    return f"jupyter_client starts the kernel named {started!r} whenever {name.lower()!r} is asked for"


def check_name(name: str) -> str:
    """The name, lowercased as Jupyter stores it; InvalidName with the rule otherwise."""
    if not is_valid_name(name):
        raise InvalidName(f"invalid kernel name {name!r}: {NAME_RULE}; choose another with --name")
    reason = unreachable_reason(name)
    if reason is not None:
        raise InvalidName(f"kernel name {name!r} cannot be used: {reason}; choose another with --name")
    return name.lower()


def name_from(text: str) -> str:
    """A usable lowercase name derived from a module or file name (``my_kernel.py`` → ``my_kernel``;
    ``python`` → ``python-kernel``, see :func:`unreachable_reason`)."""
    stem = text.rsplit(":", 1)[0]
    stem = Path(stem).stem if stem.endswith(".py") or "/" in stem else stem
    name = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-.") or "kernel"
    return f"{name}-kernel" if unreachable_reason(name) else name


def suggest(name: str, known: Iterable[str]) -> str | None:
    """The installed name closest to ``name`` (for "did you mean" messages)."""
    names = sorted(set(known))
    lowered = name.lower()
    close = difflib.get_close_matches(lowered, names, n=1, cutoff=0.6)
    if close:
        return close[0]
    contains = [n for n in names if lowered in n or n in lowered]
    return contains[0] if contains else None


# --- folders -----------------------------------------------------------------------------------


def kernel_dirs() -> list[Path]:
    """The kernels folders Jupyter searches, first wins (``jupyter_core.paths.jupyter_path``).

    JUPYTER_PATH entries, then user and env (``{sys.prefix}/share/jupyter``) — user first, except
    inside a virtualenv or a non-base conda env this user owns, or with ``JUPYTER_PREFER_ENV_PATH``
    set, where env comes first (``JUPYTER_PREFER_ENV_PATH=0`` forces user first) — then system.
    """
    return [Path(p) for p in jupyter_path("kernels")]


def user_kernels_dir() -> Path:
    return Path(jupyter_data_dir()) / "kernels"


def sys_prefix_kernels_dir() -> Path:
    return Path(ENV_JUPYTER_PATH[0]) / "kernels"


def system_kernels_dir() -> Path:
    return Path(SYSTEM_JUPYTER_PATH[0]) / "kernels"


def destination_dir(user: bool = False, prefix: str | os.PathLike[str] | None = None, sys_prefix: bool = False) -> Path:
    """The kernels folder for an install, with ``jupyter kernelspec install``'s meanings.

    No choice at all means ``user``: always writable, and found by every Jupyter this user runs,
    whatever environment Jupyter itself lives in (the interpreter is pinned in ``argv`` anyway).
    """
    if sum(bool(x) for x in (user, prefix, sys_prefix)) > 1:
        raise KernelSpecError("choose only one of --user, --sys-prefix and --prefix")
    if prefix:
        return Path(prefix).expanduser().absolute() / "share" / "jupyter" / "kernels"
    if sys_prefix:
        return sys_prefix_kernels_dir()
    return user_kernels_dir()


def location_label(kernels_dir: Path) -> str:
    """Which part of the Jupyter path a kernels folder is: JUPYTER_PATH, user, env, system or other."""
    env_path = [Path(p) / "kernels" for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    for label, dirs in (
        ("JUPYTER_PATH", env_path),
        ("user", [user_kernels_dir()]),
        ("env", [Path(p) / "kernels" for p in ENV_JUPYTER_PATH]),
        ("system", [Path(p) / "kernels" for p in SYSTEM_JUPYTER_PATH]),
    ):
        if any(_same(kernels_dir, d) for d in dirs):
            return label
    return "other"


def location_option(kernels_dir: Path) -> str | None:
    """The ``kernelkit install`` option that writes into ``kernels_dir``, or None if none does."""
    if _same(kernels_dir, user_kernels_dir()):
        return "--user"
    if _same(kernels_dir, sys_prefix_kernels_dir()):
        return "--sys-prefix"
    if kernels_dir.parent.name == "jupyter" and kernels_dir.parent.parent.name == "share":
        return f"--prefix {kernels_dir.parent.parent.parent}"
    return None


def _same(a: Path, b: Path) -> bool:
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


# --- reading -----------------------------------------------------------------------------------


def validate(data: Any) -> list[str]:
    """Schema problems in a parsed kernel.json, each a short phrase; empty when Jupyter can use it."""
    if not isinstance(data, dict):
        return ["kernel.json must hold a JSON object"]
    problems = []
    argv = data.get("argv")
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        problems.append('"argv" must be a non-empty list of strings')
    elif not any("{connection_file}" in a for a in argv):
        problems.append('"argv" must contain "{connection_file}"')
    if not isinstance(data.get("display_name"), str):
        problems.append('"display_name" must be a string')
    for key, kind in (("language", str), ("kernel_protocol_version", str), ("env", dict), ("metadata", dict)):
        if key in data and not isinstance(data[key], kind):
            problems.append(f'"{key}" must be a {"string" if kind is str else "JSON object"}')
    env = data.get("env")
    if isinstance(env, dict) and not all(isinstance(v, str) for v in env.values()):
        problems.append('"env" values must be strings')
    mode = data.get("interrupt_mode", "signal")
    if not (isinstance(mode, str) and mode.lower() in INTERRUPT_MODES):
        problems.append('"interrupt_mode" must be "signal" or "message"')
    return problems


def load(resource_dir: str | os.PathLike[str], name: str | None = None) -> KernelSpec:
    """Read one kernelspec folder; never raises for a bad file, it records ``error`` instead."""
    folder = Path(resource_dir)
    spec = KernelSpec(name=(name or folder.name).lower(), resource_dir=folder)
    try:
        spec.raw = json.loads((folder / KERNEL_JSON).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        spec.error = f"cannot read kernel.json: {getattr(exc, 'strerror', None) or exc}"
        return spec
    except json.JSONDecodeError as exc:
        spec.error = f"kernel.json is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        return spec
    problems = validate(spec.raw)
    if problems:
        spec.error = "; ".join(problems)
    if isinstance(spec.raw, dict):
        raw = spec.raw
        spec.argv = [str(a) for a in raw["argv"]] if isinstance(raw.get("argv"), list) else []
        display_name, language = raw.get("display_name"), raw.get("language")
        spec.display_name = display_name if isinstance(display_name, str) else ""
        spec.language = language if isinstance(language, str) else ""
        spec.env = {str(k): str(v) for k, v in raw["env"].items()} if isinstance(raw.get("env"), dict) else {}
        mode = raw.get("interrupt_mode", "signal")
        spec.interrupt_mode = mode.lower() if isinstance(mode, str) and mode.lower() in INTERRUPT_MODES else "signal"
        spec.metadata = raw["metadata"] if isinstance(raw.get("metadata"), dict) else {}
        version = raw.get("kernel_protocol_version")
        spec.kernel_protocol_version = version if isinstance(version, str) else ""
    return spec


def _is_kernel_dir(path: Path) -> bool:
    return path.is_dir() and (path / KERNEL_JSON).is_file()


def find_all(dirs: Iterable[Path] | None = None) -> list[KernelSpec]:
    """Every kernelspec on the Jupyter path in precedence order, shadowed and broken ones included.

    A spec is shadowed when a same-named one (case-insensitively) comes earlier; ``get``
    returns that earlier one, as jupyter_client does.
    """
    found: list[KernelSpec] = []
    winners: dict[str, Path] = {}
    seen_dirs: list[Path] = []
    for kernels_dir in kernel_dirs() if dirs is None else dirs:
        if any(_same(kernels_dir, d) for d in seen_dirs):
            continue
        seen_dirs.append(kernels_dir)
        try:
            entries = sorted(kernels_dir.iterdir(), key=lambda p: p.name.lower())
        except OSError:
            continue
        for folder in entries:
            if not _is_kernel_dir(folder):
                continue
            spec = load(folder)
            if spec.name in winners:
                spec.shadowed_by = winners[spec.name]
            else:
                winners[spec.name] = folder
            found.append(spec)
    return found


def find(dirs: Iterable[Path] | None = None) -> dict[str, KernelSpec]:
    """The specs Jupyter would use, by lowercase name (the first of each name on the path)."""
    return {s.name: s for s in find_all(dirs) if s.shadowed_by is None}


def get(name: str, specs: Mapping[str, KernelSpec] | None = None) -> KernelSpec:
    """The kernelspec Jupyter starts for ``name`` (case-insensitive, first on the path wins).

    ``specs``: the specs to choose from, as :func:`find` returns them (default: ``find()``).
    Raises NoSuchKernel, with a "did you mean", or with ``broken`` set when its kernel.json is unusable.
    """
    specs = find() if specs is None else specs
    spec = specs.get(name.lower())
    if spec is None or spec.error:
        raise NoSuchKernel(name, specs, broken=spec)
    return spec


# --- writing -----------------------------------------------------------------------------------


def install(
    kernel_json: Mapping[str, Any],
    name: str,
    *,
    user: bool = False,
    prefix: str | os.PathLike[str] | None = None,
    sys_prefix: bool = False,
    files: Mapping[str, str | os.PathLike[str]] | None = None,
    source_dir: str | os.PathLike[str] | None = None,
    replace: bool = False,
) -> Path:
    """Write ``kernels/NAME/`` with ``kernel_json`` and returns the folder.

    ``source_dir`` (a kernelspec folder being installed) is copied first, then ``files``
    (destination name → source path, e.g. logos) and kernel.json. The folder is assembled in a
    temporary sibling and renamed into place, so a failure never leaves half a kernelspec.
    """
    name = check_name(name)
    problems = validate(dict(kernel_json))
    if problems:
        raise InvalidKernelSpec(f"the kernel.json to install is invalid: {'; '.join(problems)}")
    kernels_dir = destination_dir(user=user, prefix=prefix, sys_prefix=sys_prefix)
    target = kernels_dir / name
    existing = [p for p in _listdir(kernels_dir) if p.name.lower() == name]
    if existing and not replace:
        what = (
            f"a different kernel named {name!r}"
            if existing[0].name == name
            else f"a kernel named {existing[0].name!r} (kernel names ignore case)"
        )
        raise KernelSpecExists(
            f"{what} already exists in {existing[0]}; add --replace to overwrite it or choose another --name"
        )
    try:
        kernels_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=kernels_dir))
    except OSError as exc:
        raise NotWritable(_not_writable(kernels_dir, exc, user)) from None
    try:
        if source_dir is not None:
            shutil.copytree(source_dir, staging, dirs_exist_ok=True)
        for dest_name, source in (files or {}).items():
            shutil.copyfile(source, staging / dest_name)
        (staging / KERNEL_JSON).write_bytes(_kernel_json_bytes(kernel_json))
        staging.chmod(0o755)
        for old in existing:
            _rmtree(old)
        staging.rename(target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise NotWritable(_not_writable(kernels_dir, exc, user)) from None
    return target


def _kernel_json_bytes(kernel_json: Mapping[str, Any]) -> bytes:
    return (json.dumps(dict(kernel_json), indent=1) + "\n").encode("utf-8")


def matches(
    folder: Path,
    kernel_json: Mapping[str, Any],
    files: Mapping[str, str | os.PathLike[str]] | None = None,
    source_dir: str | os.PathLike[str] | None = None,
) -> bool:
    """Whether ``folder`` holds exactly what :func:`install` would write there, file for file.

    Installing the same kernel again is then nothing to do, not a name clash (as re-running a
    README's install command must succeed).
    """
    try:
        if not folder.is_dir():
            return False
        expected = _file_contents(Path(source_dir)) if source_dir is not None else {}
        for dest_name, source in (files or {}).items():
            expected[dest_name] = Path(source).read_bytes()
        expected[KERNEL_JSON] = _kernel_json_bytes(kernel_json)
        return _file_contents(folder) == expected
    except OSError:
        return False


def _file_contents(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` by relative path, through symlinked folders as install's copy goes
    (``Path.rglob`` does not follow them before Python 3.13)."""
    contents = {}
    for dirpath, _, names in os.walk(root, followlinks=True):
        for name in names:
            path = Path(dirpath, name)
            contents[path.relative_to(root).as_posix()] = path.read_bytes()
    return contents


def _listdir(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _not_writable(kernels_dir: Path, exc: OSError, user: bool) -> str:
    reason = exc.strerror or str(exc)
    fix = (
        "check that folder's permissions"
        if user
        else "use --user to install for yourself only, or run with permission to write there"
    )
    return f"cannot write to {kernels_dir} ({reason}); {fix}"


def remove(name: str, dirs: Iterable[Path] | None = None) -> Path:
    """Delete the kernelspec Jupyter would use for ``name``; returns the folder it removed.

    Only ever deletes a ``NAME`` folder directly inside a ``kernels`` folder on the search
    path (a symlinked spec loses only its link).
    """
    specs = find(dirs)
    spec = specs.get(name.lower())
    if spec is None:
        raise NoSuchKernel(name, specs)
    folder = spec.resource_dir
    if folder.parent.name != "kernels" or not _is_kernel_dir(folder):
        raise KernelSpecError(f"refusing to delete {folder}: it is not a kernelspec folder inside a kernels folder")
    try:
        _rmtree(folder)
    except OSError as exc:
        raise NotWritable(
            f"cannot delete {folder} ({exc.strerror or exc}); run with permission to write there"
        ) from None
    return folder


def _rmtree(folder: Path) -> None:
    if folder.is_symlink():
        folder.unlink()
    else:
        shutil.rmtree(folder)


# --- small helpers other layers share ------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG header, or None when the file is not a PNG."""
    try:
        with path.open("rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def expand_env(env: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``${VAR}`` expansion of kernel.json ``env`` values from ``base`` (default ``os.environ``), as jupyter_client
    does when it starts a kernel (``string.Template.safe_substitute``: unknown names stay as they are)."""
    from string import Template

    values = dict(os.environ if base is None else base)
    return {key: Template(value).safe_substitute(values) for key, value in env.items()}


def running_python() -> str:
    """The absolute path of the running interpreter (what ``--python`` defaults to)."""
    return os.path.abspath(sys.executable)
