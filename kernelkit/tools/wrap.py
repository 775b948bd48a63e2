"""Kernelspecs for wrapped REPLs (``kernelkit wrap install``): everything in the kernel.json argv.

The written argv is::

    [ABS_PYTHON, "-m", "kernelkit_launcher", "kernelkit.wrap.kernel:ReplKernel", "-f", "{connection_file}",
     "--profile", "bash", <only the options given>, "--", COMMAND, ARGS...]

The profile's defaults stay in kernelkit (so fixes reach installed kernels); what the user
gave is pinned in argv, so it survives restarts and works from any frontend.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from kernelkit.protocol.wire import PROTOCOL_VERSION
from kernelkit.tools import kernelspecs as kernelspec
from kernelkit.tools.installer import InstallResult, advertised_protocol_version, write
from kernelkit.tools.kernelspecs import KernelSpecError
from kernelkit.wrap import profiles

TARGET = "kernelkit.wrap.kernel:ReplKernel"
#: Debian packages for the built-in profiles' programs, for the "not found" message.
PACKAGES = {
    "bash": "bash",
    "zsh": "zsh",
    "python3": "python3",
    "sqlite3": "sqlite3",
    "node": "nodejs",
    "lua5.4": "lua5.4",
}


def kernel_options(
    profile: str | None, command: Sequence[str] | None, options: Mapping[str, Any] | None = None
) -> list[str]:
    """The kernel's own argv options for a profile, its overrides and a command."""
    argv: list[str] = []
    if profile:
        argv += ["--profile", profile]
    for key in profiles.OPTIONS:
        value = (options or {}).get(key)
        if value is not None:
            argv += [f"--{key.replace('_', '-')}", value]
    for code in (options or {}).get("init") or []:
        argv += ["--init", code]
    if command:
        argv += ["--", *command]
    return argv


def resolve_profile(
    profile: str | None, command: Sequence[str] | None, options: Mapping[str, Any] | None = None
) -> profiles.Profile:
    """The effective profile, as the kernel will build it; KernelSpecError when it cannot work."""
    from kernelkit.wrap.kernel import ReplKernel

    if profile is not None and profile not in profiles.PROFILES:
        raise KernelSpecError(
            f"no built-in profile {profile!r}; choose one of {', '.join(profiles.PROFILES)} "
            "or give the program after -- with --prompt REGEX"
        )
    if profile is None and not command:
        raise KernelSpecError(
            "nothing to wrap: name a profile ("
            + ", ".join(profiles.PROFILES)
            + ") or give the program after --, e.g. kernelkit wrap install -- irb --prompt '>> $'"
        )
    namespace = argparse.Namespace(
        profile=profile,
        repl_command=list(command or []),
        init=(options or {}).get("init"),
        **{k: (options or {}).get(k) for k in profiles.OPTIONS},
    )
    result = ReplKernel.profile_from_arguments(namespace)
    if not result.prompt:
        raise KernelSpecError(
            f"kernelkit does not know the prompt of {result.command[0]}; give --prompt REGEX "
            "(and --prompt-change CMD to make it unique), see docs/wrap.md"
        )
    return result


def find_program(program: str, env: Mapping[str, str] | None = None) -> str | None:
    """Where ``program`` is on PATH (the kernelspec's env PATH if it sets one)."""
    path = (env or {}).get("PATH") or os.environ.get("PATH", "")
    return shutil.which(program, path=path)


def missing_program_message(program: str) -> str:
    package = PACKAGES.get(os.path.basename(program))
    hint = f" (Debian: apt-get install {package})" if package else ""
    return f"the wrapped program {program!r} is not on PATH; install it{hint} or give its full path after --"


def install(
    profile: str | None = None,
    command: Sequence[str] | None = None,
    *,
    name: str | None = None,
    display_name: str | None = None,
    language: str | None = None,
    user: bool = False,
    prefix: str | os.PathLike[str] | None = None,
    sys_prefix: bool = False,
    env: Mapping[str, str] | None = None,
    interrupt_mode: str | None = None,
    replace: bool = False,
    dry_run: bool = False,
    **options: Any,
) -> InstallResult:
    """Write the kernelspec of a wrapped REPL (``options``: prompt, continuation_prompt, prompt_change,
    init (a list), file_extension, codemirror_mode, pygments_lexer)."""
    if interrupt_mode is not None and interrupt_mode not in kernelspec.INTERRUPT_MODES:
        raise KernelSpecError(f"--interrupt-mode must be 'signal' or 'message', not {interrupt_mode!r}")
    if language:
        options["language"] = language
    effective = resolve_profile(profile, command, options)
    if find_program(effective.command[0], env) is None:
        raise KernelSpecError(missing_program_message(effective.command[0]))
    python = kernelspec.running_python()
    kernel_name = kernelspec.check_name(name) if name else kernelspec.name_from(profile or effective.name)
    argv = [
        python,
        "-m",
        "kernelkit_launcher",
        TARGET,
        "-f",
        "{connection_file}",
        *kernel_options(profile, command, options),
    ]
    kernel_json: dict[str, Any] = {
        "argv": argv,
        "display_name": display_name or f"{effective.name} (kernelkit wrap)",
        "language": effective.language,
        "interrupt_mode": interrupt_mode or "signal",
        "env": dict(env or {}),
        "metadata": {
            "kernelkit": {
                "target": TARGET,
                "python": python,
                "wrap": {"profile": profile, "command": effective.command},
            },
            "supported_encryption": ["curve"],
        },
        "kernel_protocol_version": advertised_protocol_version(PROTOCOL_VERSION),
    }
    return write(
        kernel_json,
        kernel_name,
        python,
        user=user,
        prefix=prefix,
        sys_prefix=sys_prefix,
        replace=replace,
        dry_run=dry_run,
    )


def wrapped_profile(argv: Sequence[str]) -> profiles.Profile | None:
    """The profile a kernelspec argv runs, if it is a wrapped REPL (for doctor); None otherwise."""
    argv = list(argv)
    if TARGET not in argv:
        return None
    from kernelkit.wrap.kernel import ReplKernel

    rest = argv[argv.index(TARGET) + 1 :]
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-f")
    ReplKernel.add_arguments(parser)
    try:
        args, _ = parser.parse_known_args(rest)
        return ReplKernel.profile_from_arguments(args)
    except (SystemExit, KeyError):
        return None
