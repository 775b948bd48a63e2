"""The ``kernelkit`` command: an argparse front end over the library.

Each subcommand lives in its own module here and exposes ``register(subparsers)``;
the function it sets as ``run`` returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence

from kernelkit._version import __version__

#: Subcommand modules of this package, in the order ``--help`` lists them.
COMMANDS = ("run", "exec", "install", "listing", "remove", "doctor", "test", "bench", "new", "wrap")
#: Subcommands that take ``-- ARGS`` and get ARGS untouched as ``args.passthrough``.
PASSTHROUGH = ("install", "wrap")

EXIT_OK = 0
EXIT_FAILURE = 1  # the command ran and found something broken, or failed
EXIT_USAGE = 2  # bad arguments (argparse's convention)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kernelkit",
        description="Make, install, check and run Jupyter kernels.",
    )
    parser.add_argument("--version", action="version", version=f"kernelkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


# ---- argument types: a bad value is a usage error (exit 2) that names the option ----------------


def seconds(text: str) -> float:
    """A positive number of seconds (``--timeout``)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds; give e.g. 10")
    return value


def env_item(text: str) -> tuple[str, str]:
    """One ``KEY=VALUE`` of ``--env``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE; give e.g. --env LANG=C.UTF-8")
    return key, value


def json_object(text: str) -> dict[str, object]:
    """A JSON object (``--metadata``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}); pass an object like '{{\"key\": 1}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("not a JSON object; pass one like '{\"key\": 1}'")
    return value


def fail(message: str, code: int = EXIT_FAILURE) -> int:
    """Print one clear error line on stderr and return the exit code."""
    print(f"kernelkit: error: {message}", file=sys.stderr)
    return code


def _innermost(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub)subcommand ``args`` chose, whose usage line an error about its arguments shows."""
    while True:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        chosen = getattr(args, subparsers[0].dest, None) if subparsers else None
        if chosen is None:
            return parser
        parser = subparsers[0].choices[chosen]


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if argv and argv[0] in PASSTHROUGH and "--" in argv:
        at = argv.index("--")
        argv, passthrough = argv[:at], argv[at + 1 :]
    args, extra = parser.parse_known_args(argv)
    args.passthrough = passthrough
    if extra and not getattr(args, "accepts_extra", False):
        _innermost(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help(sys.stderr)
        sys.exit(EXIT_USAGE)
    args.extra = extra
    try:
        sys.exit(args.run(args))
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:  # `kernelkit list --json | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_FAILURE)
