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
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kernelkit.tools import kernelspecs as kernelspec, probe
from kernelkit.tools.process import KernelDiedError, KernelProcess
from kernelkit.tools.kernelspecs import KernelSpec

OK, WARN, ERROR = "ok", "warn", "error"
START_TIMEOUT = 30.0
_STDERR_TAIL = 20


@dataclass
class Finding:
    level: str  # ok | warn | error
    check: str  # short id: json, schema, name, argv, interpreter, import, interrupt_mode, logo, shadowing, protocol, start
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
        return {"name": self.name, "resource_dir": self.resource_dir, "ok": self.ok,
                "start_seconds": self.start_seconds, "stderr": self.stderr,
                "findings": [asdict(f) for f in self.findings]}


def diagnose(spec: KernelSpec, start: bool = True, timeout: float = START_TIMEOUT) -> Report:
    """All checks for one spec; starts the kernel only if the static checks leave it startable."""
    report = Report(spec.name, str(spec.resource_dir))
    report.findings.extend(static_checks(spec))
    if not start:
        return report
    if spec.error or not spec.argv:
        report.findings.append(Finding(WARN, "start", "not started: kernel.json is unusable"))
    else:
        _start_check(spec, report, timeout)
    return report


def static_checks(spec: KernelSpec) -> Iterator[Finding]:
    """Checks that read files and ask the interpreter about imports, without starting the kernel."""
    if spec.error:
        yield Finding(ERROR, "json", f"kernel.json is broken: {spec.error}",
                      f"fix {spec.kernel_file} or reinstall the kernel (kernelkit install ... --replace)")
    else:
        yield Finding(OK, "json", "kernel.json is valid")
    yield from _name_check(spec)
    yield from _shadow_check(spec)
    if spec.argv:
        yield from _argv_checks(spec)
    yield from _interrupt_check(spec)
    yield from _protocol_check(spec)
    yield from _logo_checks(spec)


def _name_check(spec: KernelSpec) -> Iterator[Finding]:
    if kernelspec.is_valid_name(spec.resource_dir.name):
        yield Finding(OK, "name", f"name {spec.name!r} follows the kernelspec rules")
    else:
        yield Finding(ERROR, "name", f"folder name {spec.resource_dir.name!r} breaks the rule: {kernelspec.NAME_RULE}",
                      "rename the folder or reinstall with a valid --name")


def _shadow_check(spec: KernelSpec) -> Iterator[Finding]:
    if spec.shadowed_by is not None:
        yield Finding(WARN, "shadowing", f"shadowed by {spec.shadowed_by}: Jupyter starts that one for {spec.name!r}",
                      "remove one of them, or reinstall this one under another --name")


def _argv_checks(spec: KernelSpec) -> Iterator[Finding]:
    argv = spec.argv
    if not any("{connection_file}" in a for a in argv):
        yield Finding(ERROR, "argv", "argv has no {connection_file}, so the kernel cannot learn its ports",
                      'add "-f", "{connection_file}" to argv')
    program = probe.resolve_program(argv[0])
    if program is None:
        yield Finding(ERROR, "interpreter", f"argv[0] {argv[0]!r} is not found or not executable",
                      "reinstall the kernel with an existing interpreter (kernelkit install ... --python PATH --replace)")
        return
    if os.path.isabs(argv[0]):
        yield Finding(OK, "interpreter", f"argv[0] {argv[0]} exists and is executable")
    else:
        yield Finding(WARN, "interpreter",
                      f"argv[0] {argv[0]!r} is a bare name: Jupyter runs whichever one is first on its own PATH "
                      f"(here {program})", f"use an absolute path in argv[0], e.g. {program}")
    script = argv[1].replace("{resource_dir}", str(spec.resource_dir)) if len(argv) > 1 else ""
    if probe.is_python(program) and script.endswith(".py") and not Path(script).is_file():
        yield Finding(ERROR, "import", f"the script {script} that argv runs does not exist",
                      "reinstall the kernel from where its file is now (kernelkit install FILE.py --replace)")
    module = probe.module_of(argv)
    if not (probe.is_python(program) and module):
        return
    env = kernelspec.expand_env(spec.env, probe.clean_env())
    try:
        missing = probe.missing_module(program, module, env)
    except probe.ProbeError as exc:
        yield Finding(ERROR, "import", str(exc), "reinstall the kernel with a working --python")
        return
    if missing:
        yield Finding(ERROR, "import", f"{program} cannot import {module} (No module named {missing})",
                      _module_fix(spec, program, missing))
        return
    yield Finding(OK, "import", f"{program} imports {module}")
    target = _kernelkit_target(argv)
    if target is not None:
        try:
            probe.describe_target(program, target, env)
            yield Finding(OK, "import", f"{program} loads the kernelkit target {target}")
        except (probe.ProbeError, probe.TargetNotImportable) as exc:
            yield Finding(ERROR, "import", str(exc), _module_fix(spec, program, target.partition(":")[0]))


def _kernelkit_target(argv: list[str]) -> str | None:
    """``TARGET`` in ``... -m kernelkit_launcher TARGET ...`` (or ``-m kernelkit run TARGET``, before 0.2)."""
    module = probe.module_of(argv)
    rest = argv[argv.index("-m") + 2:] if module in ("kernelkit", "kernelkit_launcher") else []
    if module == "kernelkit_launcher":
        return rest[0] if rest else None
    return rest[1] if len(rest) > 1 and rest[0] == "run" else None


def _module_fix(spec: KernelSpec, python: str, missing: str) -> str:
    """The exact command that fixes an unimportable kernel module."""
    if missing.endswith(".py") or os.sep in missing:
        return (f"kernelkit install {shlex.quote(missing)} --name {spec.name} --replace" if Path(missing).is_file()
                else f"{missing} is gone: reinstall the kernel from where its file is now (kernelkit install FILE.py "
                f"--name {spec.name} --replace)")
    top = missing.split(".")[0]
    in_folder = spec.resource_dir / f"{top}.py"
    where = kernelspec.location_option(spec.kernels_dir)
    if in_folder.is_file() and where is not None:
        return (f"kernelkit install {shlex.quote(str(spec.resource_dir))} {where} --replace (pins {python} and runs "
                f"{top}.py from the kernel's folder), or add \"env\": {{\"PYTHONPATH\": \"{spec.resource_dir}\"}} to kernel.json")
    if in_folder.is_file():
        return f'add "env": {{"PYTHONPATH": "{spec.resource_dir}"}} to {spec.kernel_file}'
    if (Path.cwd() / f"{top}.py").is_file():
        return (f"kernelkit install {shlex.quote(str(Path.cwd() / f'{top}.py'))} --name {spec.name} --replace "
                f"(pins {python} and checks the import from another folder)")
    if top in ("kernelkit", "kernelkit_launcher"):
        return f"{python} -m pip install kernelkit"
    return (f"{python} -m pip install {top} (the package providing {top}), or reinstall the kernel with the interpreter "
            f"that has it: kernelkit install {top} --name {spec.name} --python PATH --replace")


def _interrupt_check(spec: KernelSpec) -> Iterator[Finding]:
    raw = spec.raw if isinstance(spec.raw, dict) else {}
    mode = raw.get("interrupt_mode", "signal")
    if isinstance(mode, str) and mode.lower() in kernelspec.INTERRUPT_MODES:
        yield Finding(OK, "interrupt_mode", f"interrupt_mode is {mode.lower()}"
                      + ("" if "interrupt_mode" in raw else " (default)"))
    else:
        yield Finding(ERROR, "interrupt_mode", f"interrupt_mode {mode!r} is neither 'signal' nor 'message'",
                      'set "interrupt_mode" to "signal" (SIGINT) or "message" (interrupt_request on control)')


def _protocol_check(spec: KernelSpec) -> Iterator[Finding]:
    version = spec.kernel_protocol_version
    if not version:
        yield Finding(WARN, "protocol", "no kernel_protocol_version: clients assume 5.0 until kernel_info_reply",
                      'add "kernel_protocol_version": "5.5" (or the version the kernel speaks)')
    elif not re.fullmatch(r"\d+\.\d+(\.\d+)?", version):
        yield Finding(ERROR, "protocol", f"kernel_protocol_version {version!r} is not a version like 5.5",
                      'set "kernel_protocol_version" to e.g. "5.5"')
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
            yield Finding(WARN, "logo", f"{file_name} is {what}, not {size[0]}x{size[1]}",
                          f"replace it with a {size[0]}x{size[1]} PNG (kernelkit install ... --logo FILE --replace)")


def _start_check(spec: KernelSpec, report: Report, timeout: float) -> None:
    """Start the kernel from an empty folder, wait for kernel_info_reply, stop it."""
    with tempfile.TemporaryDirectory(prefix="kernelkit-doctor-") as cwd:
        try:
            kernel = KernelProcess(spec, cwd=cwd)
        except KernelDiedError as exc:
            report.findings.append(Finding(ERROR, "start", str(exc), "fix argv[0] in kernel.json"))
            return
        try:
            info = kernel.wait_ready(timeout)
            report.start_seconds = round(kernel.ready - kernel.started, 3)
            report.findings.append(Finding(OK, "start", f"started and answered kernel_info in {report.start_seconds:.2f} s"
                                           f" ({info.get('implementation', '?')}, protocol {info.get('protocol_version', '?')})"))
            report.findings.extend(_reply_checks(spec, info))
        except KernelDiedError as exc:
            report.stderr = _tail(exc.stderr)
            cause, fix = explain(exc.stderr, spec)
            report.findings.append(Finding(ERROR, "start", f"{exc}: {cause}", fix))
        except TimeoutError as exc:
            report.stderr = _tail(kernel.stderr())
            report.findings.append(Finding(ERROR, "start", str(exc),
                                           "check the kernel's stderr below; raise the limit with --timeout if it is just slow"))
        finally:
            kernel.stop()


def _reply_checks(spec: KernelSpec, info: dict[str, Any]) -> Iterator[Finding]:
    spoken = str(info.get("protocol_version", ""))
    if spec.kernel_protocol_version and spoken and spoken.split(".")[:2] != spec.kernel_protocol_version.split(".")[:2]:
        yield Finding(WARN, "protocol", f"kernel.json says protocol {spec.kernel_protocol_version} but the kernel speaks {spoken}",
                      f'set "kernel_protocol_version" to "{spoken}"')
    language = str((info.get("language_info") or {}).get("name", ""))
    if spec.language and language and spec.language.lower() != language.lower():
        yield Finding(WARN, "language", f"kernel.json says language {spec.language!r} but the kernel reports {language!r}",
                      f'set "language" to "{language}" so notebooks find this kernel by language')


_NO_MODULE = re.compile(r"(?:(?P<python>\S*[/\\]\S*): )?No module named '?(?P<module>[\w.]+)'?")


def explain(stderr: str, spec: KernelSpec) -> tuple[str, str]:
    """One sentence on why a kernel died, and the fix, for the failures people actually hit."""
    program = (probe.resolve_program(spec.argv[0]) or spec.argv[0]) if spec.argv else "?"
    match = _NO_MODULE.search(stderr)
    if match:
        module = match.group("module")
        ran = match.group("python") or program
        return (f"{ran} (argv[0] {spec.argv[0]!r}) cannot import {module}", _module_fix(spec, ran, module))
    if "Address already in use" in stderr:
        return ("a port in the connection file is already taken", "retry; if it persists, stop stray kernels (jupyter kernel list)")
    if re.search(r"Permission denied", stderr):
        return ("the kernel hit 'Permission denied'", "check the permissions of argv[0] and the Jupyter runtime dir")
    if "SyntaxError" in stderr:
        return ("the kernel's code has a syntax error (or runs on a too old Python)", "fix the error shown below")
    last = next((line for line in reversed(stderr.strip().splitlines()) if line.strip()), "")
    return (f"it printed: {last}" if last else "it printed nothing", "read the kernel's stderr below")


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-_STDERR_TAIL:])


def diagnose_all(names: Iterable[str] = (), start: bool = True, timeout: float = START_TIMEOUT) -> list[Report]:
    """Reports for the named specs (every match on the path, shadowed ones too), or for all specs."""
    specs = kernelspec.find_all()
    wanted = {n.lower() for n in names}
    chosen = [s for s in specs if not wanted or s.name in wanted]
    return [diagnose(s, start=start and s.shadowed_by is None, timeout=timeout) for s in chosen]
