"""Diagnose any kernelspec (kernelkit's, ipykernel's, bash_kernel, xeus...): static checks, then a real start.

Each check yields a Finding (ok / warn / error, a message, a fix). The start check launches
``argv`` with a fresh connection file from an empty folder, as Jupyter would from a notebook's
folder, waits for ``kernel_info_reply`` and explains known failures in one sentence, chief
among them the seed article's ``No module named echokernel``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kernelkit.tools import kernelspecs as kernelspec
from kernelkit.tools import probe
from kernelkit.tools.kernelspecs import KernelSpec
from kernelkit.tools.process import KernelDiedError, KernelProcess

OK, WARN, ERROR = "ok", "warn", "error"
START_TIMEOUT = 30.0
_STDERR_TAIL = 20


@dataclass(frozen=True)
class Frontend:
    """The interpreter doctor assumes the frontend's jupyter_client runs on.

    It decides what a bare ``python`` in argv means: jupyter_client's
    ``KernelManager.format_kernel_cmd`` replaces an ``argv[0]`` of ``python``, ``pythonX`` or
    ``pythonX.Y`` (X.Y: *its own* version) with its own ``sys.executable``; any other bare name
    is looked up on the frontend's PATH. Doctor cannot know which Jupyter you will run, so it
    says which one it assumed and how it chose it.
    """

    python: str
    version: tuple[int, int]
    source: str  # how doctor chose it, e.g. "the Python running kernelkit doctor"

    def substitutes(self, program: str) -> bool:
        """Whether jupyter_client on this interpreter runs its own interpreter for ``argv[0] == program``."""
        major, minor = self.version
        return program in {"python", f"python{major}", f"python{major}.{minor}"}

    def describe(self) -> str:
        return f"{self.python} (Python {self.version[0]}.{self.version[1]}, {self.source})"

    def to_dict(self) -> dict[str, Any]:
        return {"python": self.python, "version": f"{self.version[0]}.{self.version[1]}", "source": self.source}


def frontend(python: str | None = None) -> Frontend:
    """The frontend interpreter to assume: ``python`` if given, else the one behind the ``jupyter``
    command on PATH (what ``jupyter lab`` / ``notebook`` / ``console`` run on), else the Python
    running doctor. Raises ProbeError if ``python`` cannot be run."""
    if python:
        path = probe.resolve_program(python)
        if path is None:
            raise probe.ProbeError(f"--frontend-python {python} is not found or not executable")
        return Frontend(path, _version_of(path), "given with --frontend-python")
    jupyter = shutil.which("jupyter")
    found = _script_interpreter(jupyter) if jupyter else None
    if found:
        try:
            return Frontend(found, _version_of(found), f"the interpreter of {jupyter}, the jupyter command on PATH")
        except probe.ProbeError:
            pass
    return Frontend(sys.executable, (sys.version_info[0], sys.version_info[1]), "the Python running kernelkit doctor")


def _version_of(python: str) -> tuple[int, int]:
    if os.path.abspath(python) == os.path.abspath(sys.executable):  # not realpath: a venv python is a symlink
        return sys.version_info[0], sys.version_info[1]
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=probe.PROBE_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        major, minor = done.stdout.split()
        return int(major), int(minor)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        raise probe.ProbeError(f"cannot run {python} to learn its version") from None


#: pip's launcher for interpreter paths too long for a ``#!`` line: ``#!/bin/sh`` then ``'''exec' "PY" "$0" "$@"``.
_PIP_SH_LAUNCHER = re.compile(r"""^'''exec' (?:"([^"]+)"|(\S+)) """)


def _script_interpreter(script: str) -> str | None:
    """The Python a console script runs on, from its ``#!`` line (or pip's ``/bin/sh`` launcher)."""
    try:
        with open(script, "rb") as file:
            lines = file.read(2048).decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    if not lines or not lines[0].startswith("#!"):
        return None
    words = lines[0][2:].split()
    if words == ["/bin/sh"] and len(lines) > 1 and (match := _PIP_SH_LAUNCHER.match(lines[1])):
        words = [match.group(1) or match.group(2)]
    if len(words) >= 2 and Path(words[0]).name == "env":
        words = [shutil.which(words[1]) or words[1]]
    if not words or not probe.is_python(words[0]):
        return None
    return probe.resolve_program(words[0])


@dataclass
class Finding:
    level: str  # ok | warn | error
    check: (
        str  # short id: json, schema, name, argv, interpreter, import, interrupt_mode, logo, shadowing, protocol, start
    )
    message: str
    fix: str = ""


@dataclass
class Report:
    """Everything doctor found about one kernelspec."""

    name: str
    resource_dir: str
    findings: list[Finding] = field(default_factory=list)
    start_seconds: float | None = None
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return all(f.level != ERROR for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "resource_dir": self.resource_dir,
            "ok": self.ok,
            "start_seconds": self.start_seconds,
            "stderr": self.stderr,
            "findings": [asdict(f) for f in self.findings],
        }


def diagnose(
    spec: KernelSpec, start: bool = True, timeout: float = START_TIMEOUT, front: Frontend | None = None
) -> Report:
    """All checks for one spec; starts the kernel only if the static checks leave it startable.

    ``front`` is the frontend interpreter to model (default: :func:`frontend`'s choice).
    """
    front = front or frontend()
    report = Report(spec.name, str(spec.resource_dir))
    report.findings.extend(static_checks(spec, front))
    if not start:
        return report
    if spec.error or not spec.argv:
        report.findings.append(Finding(WARN, "start", "not started: kernel.json is unusable"))
    else:
        _start_check(spec, report, timeout, front)
    return report


def static_checks(spec: KernelSpec, front: Frontend | None = None) -> Iterator[Finding]:
    """Checks that read files and ask the interpreter about imports, without starting the kernel."""
    if spec.error:
        yield Finding(
            ERROR,
            "json",
            f"kernel.json is broken: {spec.error}",
            f"fix {spec.kernel_file} or reinstall the kernel (kernelkit install ... --replace)",
        )
    else:
        yield Finding(OK, "json", "kernel.json is valid")
    yield from _name_check(spec)
    yield from _shadow_check(spec)
    if spec.argv:
        yield from _argv_checks(spec, front or frontend())
        yield from _wrap_checks(spec)
    yield from _interrupt_check(spec)
    yield from _protocol_check(spec)
    yield from _logo_checks(spec)


def _name_check(spec: KernelSpec) -> Iterator[Finding]:
    unreachable = kernelspec.unreachable_reason(spec.name)
    if not kernelspec.is_valid_name(spec.resource_dir.name):
        yield Finding(
            ERROR,
            "name",
            f"folder name {spec.resource_dir.name!r} breaks the rule: {kernelspec.NAME_RULE}",
            "rename the folder or reinstall with a valid --name",
        )
    elif unreachable is not None:
        yield Finding(
            ERROR,
            "name",
            f"frontends never start this kernel: {unreachable}",
            "reinstall it under another name with --name (kernelkit exec and doctor still reach it)",
        )
    else:
        yield Finding(OK, "name", f"name {spec.name!r} follows the kernelspec rules")


def _shadow_check(spec: KernelSpec) -> Iterator[Finding]:
    if spec.shadowed_by is not None:
        yield Finding(
            WARN,
            "shadowing",
            f"shadowed by {spec.shadowed_by}: Jupyter starts that one for {spec.name!r}",
            "remove one of them, or reinstall this one under another --name",
        )


def _is_bare(program: str) -> bool:
    return not (os.sep in program or (os.altsep and os.altsep in program))


def launched_program(argv0: str, front: Frontend) -> str | None:
    """What a frontend on ``front`` runs for ``argv0``: its own interpreter for a bare ``python``/
    ``pythonX``/``pythonX.Y`` of its version (jupyter_client's ``format_kernel_cmd``), else the
    program found on PATH; None if there is none."""
    if _is_bare(argv0) and front.substitutes(argv0):
        return front.python
    return probe.resolve_program(argv0)


def _other_python_importing(spec: KernelSpec, front: Frontend, module: str) -> str | None:
    """For a bare ``python`` that jupyter_client replaces: the one on PATH, if it differs from the
    frontend's and imports ``module`` (the interpreter the spec's author most likely meant)."""
    on_path = probe.resolve_program(spec.argv[0])
    if on_path is None or os.path.abspath(on_path) == os.path.abspath(front.python):
        return None
    try:
        env = kernelspec.expand_env(spec.env, probe.clean_env())
        return None if probe.missing_module(on_path, module, env) else on_path
    except probe.ProbeError:
        return None


def _pin_fix(spec: KernelSpec, python: str) -> str:
    return f'pin it: set argv[0] to "{python}" in {spec.kernel_file}'


def _argv_checks(spec: KernelSpec, front: Frontend) -> Iterator[Finding]:
    # jupyter_client substitutes {resource_dir} (the spec's folder) in argv: a wheel-shipped spec uses
    # it to find the interpreter of the environment it was installed into.
    raw_argv = spec.argv
    argv = [a.replace("{resource_dir}", str(spec.resource_dir)) for a in raw_argv]
    if not any("{connection_file}" in a for a in argv):
        yield Finding(
            ERROR,
            "argv",
            "argv has no {connection_file}, so the kernel cannot learn its ports",
            'add "-f", "{connection_file}" to argv',
        )
    relative = "{resource_dir}" in raw_argv[0]
    if "{prefix}" in argv[0]:
        yield Finding(
            WARN,
            "interpreter",
            f"argv[0] {argv[0]!r} uses {{prefix}}, which jupyter_client replaces with the prefix of whichever "
            "Jupyter starts the kernel, not of the environment the kernel was installed in",
            "use an absolute interpreter path, or {resource_dir}/../../../../bin/python in a spec "
            "shipped in share/jupyter/kernels",
        )
        argv[0] = argv[0].replace("{prefix}", os.path.dirname(os.path.dirname(front.python)))
    if relative:
        argv[0] = os.path.normpath(argv[0])
    substituted = _is_bare(argv[0]) and front.substitutes(argv[0])
    program = launched_program(argv[0], front)
    if program is None:
        if relative:
            yield Finding(
                ERROR,
                "interpreter",
                f"argv[0] {raw_argv[0]!r} names {argv[0]}, which does not exist: the package that shipped "
                "this kernelspec was installed where share/ and bin/ are not siblings (pip --user, Windows)",
                "register the kernel with its installer instead (e.g. python -m PACKAGE install --user), "
                "or kernelkit install MODULE:CLASS --replace",
            )
            return
        yield Finding(
            ERROR,
            "interpreter",
            f"argv[0] {argv[0]!r} is not found or not executable",
            "reinstall the kernel with an existing interpreter (kernelkit install ... --python PATH --replace)",
        )
        return
    module = probe.module_of(argv)
    env = kernelspec.expand_env(spec.env, probe.clean_env())
    missing: str | None = None
    probe_error: probe.ProbeError | None = None
    if probe.is_python(program) and module:
        try:
            missing = probe.missing_module(program, module, env)
        except probe.ProbeError as exc:
            probe_error = exc
    if relative:
        yield Finding(
            OK,
            "interpreter",
            f"argv[0] resolves from the kernel's folder to {argv[0]}, the interpreter "
            "of the environment it was installed into, whichever Jupyter starts it",
        )
    elif not _is_bare(argv[0]):
        yield Finding(OK, "interpreter", f"argv[0] {argv[0]} exists and is executable")
    elif substituted:
        other = _other_python_importing(spec, front, module) if (missing and module) else None
        yield Finding(
            WARN,
            "interpreter",
            f"argv[0] {argv[0]!r} is a bare name: jupyter_client replaces it with its own interpreter, so "
            f"the kernel runs on the frontend's Python (assumed: {front.python}), not on the kernel's "
            "environment nor on the first one on PATH",
            _pin_fix(spec, other)
            if other
            else "pin the interpreter that has the kernel: an absolute path in argv[0]"
            + (
                f", e.g. {program}, which imports {module} today"
                if module and not missing and not probe_error
                else " (kernelkit install ... --python PATH --replace)"
            ),
        )
    else:
        yield Finding(
            WARN,
            "interpreter",
            f"argv[0] {argv[0]!r} is a bare name: Jupyter runs whichever one is first on its own PATH (here {program})",
            f"use an absolute path in argv[0], e.g. {program}",
        )
    script = argv[1].replace("{resource_dir}", str(spec.resource_dir)) if len(argv) > 1 else ""
    if probe.is_python(program) and script.endswith(".py") and not Path(script).is_file():
        yield Finding(
            ERROR,
            "import",
            f"the script {script} that argv runs does not exist",
            "reinstall the kernel from where its file is now (kernelkit install FILE.py --replace)",
        )
    if not (probe.is_python(program) and module):
        return
    who = f"the frontend's interpreter {program}" if substituted else program
    if probe_error is not None:
        yield Finding(ERROR, "import", str(probe_error), "reinstall the kernel with a working --python")
        return
    if missing:
        other = _other_python_importing(spec, front, module) if substituted else None
        if other:
            yield Finding(
                ERROR,
                "import",
                f"{who} cannot import {module} (No module named {missing}); {other}, the {argv[0]} first "
                f"on PATH, can, but jupyter_client does not run it",
                _pin_fix(spec, other),
            )
        else:
            yield Finding(
                ERROR,
                "import",
                f"{who} cannot import {module} (No module named {missing})",
                _module_fix(spec, program, missing),
            )
        return
    yield Finding(OK, "import", f"{who} imports {module}")
    target = _kernelkit_target(argv)
    if target is not None:
        try:
            probe.describe_target(program, target, env)
            yield Finding(OK, "import", f"{program} loads the kernelkit target {target}")
        except probe.ProbeError as exc:
            yield Finding(ERROR, "import", str(exc), _module_fix(spec, program, target.partition(":")[0]))
        except probe.TargetNotImportable as exc:
            if exc.kind in probe.SPECIFIC:  # a syntax error, an ipykernel class...: its own fix, nothing else
                yield Finding(ERROR, "import", str(exc).removesuffix(f"; {exc.fix}"), exc.fix)
            else:
                yield Finding(ERROR, "import", str(exc), _module_fix(spec, program, target.partition(":")[0]))


def _wrap_checks(spec: KernelSpec) -> Iterator[Finding]:
    """A wrapped REPL (kernelkit wrap): its program must be on the PATH the kernel will see."""
    from kernelkit.tools import wrap

    profile = wrap.wrapped_profile(spec.argv)
    if profile is None:
        if wrap.TARGET in spec.argv:
            yield Finding(
                ERROR,
                "wrap",
                "the wrapped REPL's options in argv are not understood (unknown profile?)",
                "reinstall it: kernelkit wrap install PROFILE --replace",
            )
        return
    env = kernelspec.expand_env(spec.env)
    found = wrap.find_program(profile.command[0], env)
    if found is None:
        yield Finding(
            ERROR,
            "wrap",
            wrap.missing_program_message(profile.command[0]),
            f"install {profile.command[0]}, or reinstall with its full path: "
            f"kernelkit wrap install ... --replace -- /path/to/{profile.command[0]} ...",
        )
    else:
        yield Finding(OK, "wrap", f"wraps {' '.join([found, *profile.command[1:]])}")


def _kernelkit_target(argv: list[str]) -> str | None:
    """``TARGET`` in ``... -m kernelkit_launcher TARGET ...`` (or ``-m kernelkit run TARGET``, before 0.2)."""
    module = probe.module_of(argv)
    rest = argv[argv.index("-m") + 2 :] if module in ("kernelkit", "kernelkit_launcher") else []
    if module == "kernelkit_launcher":
        return rest[0] if rest and not rest[0].startswith("-") else None
    return rest[1] if len(rest) > 1 and rest[0] == "run" else None


def _module_fix(spec: KernelSpec, python: str, missing: str) -> str:
    """The exact command that fixes an unimportable kernel module."""
    if missing.endswith(".py") or os.sep in missing:
        return (
            f"kernelkit install {shlex.quote(missing)} --name {spec.name} --replace"
            if Path(missing).is_file()
            else f"{missing} is gone: reinstall the kernel from where its file is now (kernelkit install FILE.py "
            f"--name {spec.name} --replace)"
        )
    top = missing.split(".")[0]
    in_folder = spec.resource_dir / f"{top}.py"
    where = kernelspec.location_option(spec.kernels_dir)
    if in_folder.is_file() and where is not None:
        return (
            f"kernelkit install {shlex.quote(str(spec.resource_dir))} {where} --replace (pins {python} and runs "
            f'{top}.py from the kernel\'s folder), or add "env": {{"PYTHONPATH": "{spec.resource_dir}"}} to kernel.json'
        )
    if in_folder.is_file():
        return f'add "env": {{"PYTHONPATH": "{spec.resource_dir}"}} to {spec.kernel_file}'
    if (Path.cwd() / f"{top}.py").is_file():
        return (
            f"kernelkit install {shlex.quote(str(Path.cwd() / f'{top}.py'))} --name {spec.name} --replace "
            f"(pins {python} and checks the import from another folder)"
        )
    if top in ("kernelkit", "kernelkit_launcher"):
        return f"{python} -m pip install kernelkit"
    return (
        f"{python} -m pip install {top} (the package providing {top}), or reinstall the kernel with the interpreter "
        f"that has it: kernelkit install {top} --name {spec.name} --python PATH --replace"
    )


def _interrupt_check(spec: KernelSpec) -> Iterator[Finding]:
    raw = spec.raw if isinstance(spec.raw, dict) else {}
    mode = raw.get("interrupt_mode", "signal")
    if isinstance(mode, str) and mode.lower() in kernelspec.INTERRUPT_MODES:
        yield Finding(
            OK,
            "interrupt_mode",
            f"interrupt_mode is {mode.lower()}" + ("" if "interrupt_mode" in raw else " (default)"),
        )
    else:
        yield Finding(
            ERROR,
            "interrupt_mode",
            f"interrupt_mode {mode!r} is neither 'signal' nor 'message'",
            'set "interrupt_mode" to "signal" (SIGINT) or "message" (interrupt_request on control)',
        )


def _protocol_check(spec: KernelSpec) -> Iterator[Finding]:
    version = spec.kernel_protocol_version
    if not version:
        yield Finding(
            WARN,
            "protocol",
            "no kernel_protocol_version: clients assume 5.0 until kernel_info_reply",
            'add "kernel_protocol_version": "5.5" (or the version the kernel speaks)',
        )
    elif not re.fullmatch(r"\d+\.\d+(\.\d+)?", version):
        yield Finding(
            ERROR,
            "protocol",
            f"kernel_protocol_version {version!r} is not a version like 5.5",
            'set "kernel_protocol_version" to e.g. "5.5"',
        )
    else:
        yield Finding(OK, "protocol", f"kernel_protocol_version {version}")


def _logo_checks(spec: KernelSpec) -> Iterator[Finding]:
    for file_name, size in kernelspec.LOGO_FILES.items():
        path = spec.resource_dir / file_name
        if not path.exists() or size is None:
            continue
        actual = kernelspec.png_size(path)
        if actual == size:
            yield Finding(OK, "logo", f"{file_name} is {size[0]}x{size[1]}")
        else:
            what = "not a PNG" if actual is None else f"{actual[0]}x{actual[1]}"
            yield Finding(
                WARN,
                "logo",
                f"{file_name} is {what}, not {size[0]}x{size[1]}",
                f"replace it with a {size[0]}x{size[1]} PNG (kernelkit install ... --logo FILE --replace)",
            )


def _start_check(spec: KernelSpec, report: Report, timeout: float, front: Frontend) -> None:
    """Start the kernel from an empty folder, wait for kernel_info_reply, stop it."""
    with tempfile.TemporaryDirectory(prefix="kernelkit-doctor-") as cwd:
        try:
            # what jupyter_client on the frontend's interpreter runs: its own python for a bare python
            kernel = KernelProcess(spec, cwd=cwd, python=front.python, python_version=front.version)
        except KernelDiedError as exc:
            report.findings.append(Finding(ERROR, "start", str(exc), "fix argv[0] in kernel.json"))
            return
        try:
            info = kernel.wait_ready(timeout, iopub=False)  # doctor needs kernel_info only
            report.start_seconds = round(kernel.ready - kernel.started, 3)
            report.findings.append(
                Finding(
                    OK,
                    "start",
                    f"started and answered kernel_info in {report.start_seconds:.2f} s"
                    f" ({info.get('implementation', '?')}, protocol {info.get('protocol_version', '?')})",
                )
            )
            report.findings.extend(_reply_checks(spec, info))
        except KernelDiedError as exc:
            report.stderr = _tail(exc.stderr)
            cause, fix = explain(exc.stderr, spec, front)
            report.findings.append(Finding(ERROR, "start", f"{exc}: {cause}", fix))
        except TimeoutError as exc:
            report.stderr = _tail(kernel.stderr())
            report.findings.append(
                Finding(
                    ERROR,
                    "start",
                    str(exc),
                    "check the kernel's stderr below; raise the limit with --timeout if it is just slow",
                )
            )
        finally:
            kernel.stop()


def _reply_checks(spec: KernelSpec, info: dict[str, Any]) -> Iterator[Finding]:
    spoken = str(info.get("protocol_version", ""))
    # 5.6 adds only the start-up handshake (JEP 66), which kernel_info cannot show: a kernelspec
    # saying 5.6 for a kernel that speaks 5.5 (kernelkit install writes that) is consistent.
    said = spec.kernel_protocol_version.split(".")[:2]
    if said == ["5", "6"] and spoken.split(".")[:2] == ["5", "5"]:
        said = ["5", "5"]
    if spec.kernel_protocol_version and spoken and spoken.split(".")[:2] != said:
        yield Finding(
            WARN,
            "protocol",
            f"kernel.json says protocol {spec.kernel_protocol_version} but the kernel speaks {spoken}",
            f'set "kernel_protocol_version" to "{spoken}"',
        )
    wrapped = info.get("kernelkit_wrap")
    if isinstance(wrapped, dict):
        if wrapped.get("error"):
            yield Finding(
                ERROR,
                "wrap",
                f"the wrapped REPL did not start: {wrapped['error']}",
                "fix the command or its --prompt/--prompt-change and reinstall (kernelkit wrap install ... --replace)",
            )
        else:
            yield Finding(OK, "wrap", f"the wrapped REPL started (pid {wrapped.get('pid')}) and showed its prompt")
    language = str((info.get("language_info") or {}).get("name", ""))
    if spec.language and language and spec.language.lower() != language.lower():
        yield Finding(
            WARN,
            "language",
            f"kernel.json says language {spec.language!r} but the kernel reports {language!r}",
            f'set "language" to "{language}" so notebooks find this kernel by language',
        )


_NO_MODULE = re.compile(r"(?:(?P<python>\S*[/\\]\S*): )?No module named '?(?P<module>[\w.]+)'?")


_FILE_LINE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')
_SYNTAX_LINE = re.compile(r"^(?:SyntaxError|IndentationError|TabError): (?P<msg>.*)$", re.M)
_KERNELKIT_ERROR = re.compile(r"^kernelkit: error: (?P<problem>.+?); (?P<fix>.+)$", re.M)


def explain(stderr: str, spec: KernelSpec, front: Frontend | None = None) -> tuple[str, str]:
    """One sentence on why a kernel died, and the fix, for the failures people actually hit."""
    front = front or frontend()
    program = (launched_program(spec.argv[0], front) or spec.argv[0]) if spec.argv else "?"
    substituted = bool(spec.argv) and _is_bare(spec.argv[0]) and front.substitutes(spec.argv[0])
    match = _NO_MODULE.search(stderr)
    if match:
        module = match.group("module")
        ran = match.group("python") or program
        if substituted and os.path.abspath(ran) == os.path.abspath(front.python):
            other = _other_python_importing(spec, front, module)
            return (
                f"the frontend's interpreter {ran}, which jupyter_client runs for argv[0] {spec.argv[0]!r}, "
                f"cannot import {module}",
                _pin_fix(spec, other) if other else _module_fix(spec, ran, module),
            )
        return (f"{ran} (argv[0] {spec.argv[0]!r}) cannot import {module}", _module_fix(spec, ran, module))
    told = _KERNELKIT_ERROR.search(stderr)
    if told:  # the launcher already said what is wrong and what to do
        return (told.group("problem"), told.group("fix"))
    if "Address already in use" in stderr:
        return (
            "a port in the connection file is already taken",
            "retry; if it persists, stop stray kernels (jupyter kernel list)",
        )
    if re.search(r"Permission denied", stderr):
        return ("the kernel hit 'Permission denied'", "check the permissions of argv[0] and the Jupyter runtime dir")
    syntax = _SYNTAX_LINE.search(stderr)
    if syntax:
        where = [m for m in _FILE_LINE.finditer(stderr, 0, syntax.start())]  # the last frame is the file at fault
        at = f"{where[-1].group('file')} line {where[-1].group('line')}" if where else "the kernel's code"
        return (f"{at} has a syntax error ({syntax.group('msg')})", "fix that line, then run kernelkit doctor again")
    last = next((line for line in reversed(stderr.strip().splitlines()) if line.strip()), "")
    return (f"it printed: {last}" if last else "it printed nothing", "read the kernel's stderr below")


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-_STDERR_TAIL:])


def diagnose_all(
    names: Iterable[str] = (), start: bool = True, timeout: float = START_TIMEOUT, front: Frontend | None = None
) -> list[Report]:
    """Reports for the named specs (every match on the path, shadowed ones too), or for all specs."""
    front = front or frontend()
    specs = kernelspec.find_all()
    wanted = {n.lower() for n in names}
    chosen = [s for s in specs if not wanted or s.name in wanted]
    return [diagnose(s, start=start and s.shadowed_by is None, timeout=timeout, front=front) for s in chosen]
