"""``kernelkit wrap install|run [PROFILE] [options] [-- COMMAND ARGS...]``: a command-line REPL as a kernel.

Everything after ``--`` is the command, verbatim: ``main`` splits argv there before argparse
sees it (``args.passthrough``).
"""

from __future__ import annotations

import argparse
import os
import sys

from kernelkit.cli import EXIT_USAGE, env_item, fail
from kernelkit.cli.install import add_location_options, add_write_options, report

PROFILE_HELP = "built-in profile: bash, zsh, python, sqlite3, node or lua (omit it to wrap the COMMAND after --)"


def _profile_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profile", nargs="?", metavar="PROFILE", help=PROFILE_HELP)
    group = parser.add_argument_group(
        "profile options",
        "override the profile, or describe a REPL no profile knows; "
        "{token} in them is replaced by a random string chosen when the kernel starts",
    )
    group.add_argument("--prompt", metavar="REGEX", help="regex matching the main prompt at the end of the output")
    group.add_argument("--continuation-prompt", metavar="REGEX", help="regex matching the continuation prompt")
    group.add_argument(
        "--prompt-change",
        metavar="CMD",
        help="a line that sets a unique prompt, e.g. \"PS1='{token}>'\" (then --prompt '{token}>')",
    )
    group.add_argument(
        "--init", action="append", metavar="CODE", help="code run once after the REPL starts (repeatable)"
    )
    group.add_argument("--language", help="language name for Jupyter (default: the profile's)")
    group.add_argument("--file-extension", metavar="EXT", help="e.g. .sh")
    group.add_argument("--codemirror-mode", metavar="MODE", help="editor syntax mode, e.g. shell")
    group.add_argument("--pygments-lexer", metavar="LEXER", help="highlighting lexer, e.g. bash")
    group.add_argument(
        "--env",
        action="append",
        type=env_item,
        default=[],
        metavar="K=V",
        help="environment variable for the REPL (repeatable)",
    )
    group.add_argument(
        "--interrupt-mode", choices=("signal", "message"), help="how Jupyter interrupts the kernel (default signal)"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "wrap",
        help="make any command-line REPL a Jupyter kernel",
        description="Run a command-line REPL (bash, zsh, python, sqlite3, node, lua, or any COMMAND) in a "
        "pseudo-terminal and feed it each cell. Everything after -- is the command, verbatim.",
        epilog="examples:\n  kernelkit wrap install bash\n"
        "  kernelkit wrap install sqlite3 --name mydb -- sqlite3 /data/my.db\n"
        "  kernelkit wrap install --name irb --prompt '{token}>' "
        '--prompt-change "conf.prompt_mode = :SIMPLE" -- irb\n'
        "  kernelkit wrap run python",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=lambda args: (parser.print_help(sys.stderr), EXIT_USAGE)[1])
    sub = parser.add_subparsers(dest="wrap_command", metavar="ACTION")

    install = sub.add_parser(
        "install",
        help="write a kernelspec that runs the REPL",
        description="Write a kernelspec that runs the REPL in a pseudo-terminal. Everything after -- is the "
        "command, verbatim (default: the profile's). All settings are in the kernelspec's argv, so they survive "
        "restarts and work from any frontend; check it with `kernelkit doctor NAME`.",
        epilog="exit codes: 0 installed, 1 refused or failed (the message says how to fix it), 2 usage error",
    )
    _profile_options(install)
    install.add_argument("--name", help="kernel name (default: the profile's or the program's name)")
    install.add_argument("--display-name", help="name shown in Jupyter")
    add_location_options(install)
    add_write_options(install)
    install.set_defaults(run=run_install)

    run = sub.add_parser(
        "run",
        help="run the REPL as a kernel without installing it",
        description="Start the wrapped REPL as a kernel process (to try a REPL out). Without -f it writes a "
        "connection file in the Jupyter runtime dir and prints how to attach: jupyter console --existing FILE.",
    )
    _profile_options(run)
    run.add_argument("-f", "--connection-file", dest="connection_file", metavar="FILE", help="connection file to use")
    run.set_defaults(run=run_run)


def _options(args: argparse.Namespace) -> dict[str, object]:
    return {
        key: getattr(args, key)
        for key in (
            "prompt",
            "continuation_prompt",
            "prompt_change",
            "init",
            "file_extension",
            "codemirror_mode",
            "pygments_lexer",
        )
    }


def run_install(args: argparse.Namespace) -> int:
    from kernelkit.tools.kernelspecs import KernelSpecError
    from kernelkit.tools.wrap import install

    try:
        result = install(
            args.profile,
            (args.passthrough or None),
            name=args.name,
            display_name=args.display_name,
            language=args.language,
            user=args.user,
            prefix=args.prefix,
            sys_prefix=args.sys_prefix,
            env=dict(args.env),
            interrupt_mode=args.interrupt_mode,
            replace=args.replace,
            dry_run=args.dry_run,
            **_options(args),
        )
    except KernelSpecError as exc:
        return fail(str(exc))
    report(result, args.json, f"runs: {' '.join(result.kernel_json['metadata']['kernelkit']['wrap']['command'])}")
    return 0


def run_run(args: argparse.Namespace) -> int:
    from kernelkit.tools.kernelspecs import KernelSpecError
    from kernelkit.tools.wrap import find_program, kernel_options, missing_program_message, resolve_profile

    options = _options(args)
    if args.language:
        options["language"] = args.language
    try:
        os.environ.update(args.env)
        profile = resolve_profile(args.profile, (args.passthrough or None), options)
    except KernelSpecError as exc:
        return fail(str(exc))
    if find_program(profile.command[0]) is None:
        return fail(missing_program_message(profile.command[0]))
    from kernelkit.wrap.kernel import ReplKernel

    argv = ["-f", args.connection_file] if args.connection_file else []
    ReplKernel.launch(argv + kernel_options(args.profile, (args.passthrough or None), options))
    return 0
