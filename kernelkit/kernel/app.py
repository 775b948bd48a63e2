"""Start a kernel process: parse the kernel's command line, prepare the connection file, serve.

``-f FILE`` may also be a registration file (the kernel handshake, JEP 66): the kernel then binds
free ports itself, reports them to the launcher, waits for its acknowledgement, and writes its
own connection file in the Jupyter runtime dir for other clients.

Accepts what kernelspecs pass (``-f {connection_file}``), ipykernel's ``--ip``/``--transport``
and ``--parent``, and ignores traitlets-style ``--Class.trait=value`` options with a warning,
so ipykernel-era kernel.json files keep working.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kernelkit._log import log
from kernelkit.transport import connection, handshake
from kernelkit.transport.connection import ConnectionFileError, ConnectionInfo, RegistrationInfo
from kernelkit.transport.interrupts import InterruptGate
from kernelkit.transport.server import KernelServer, KernelStartError

if TYPE_CHECKING:
    import argparse


def kernel_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options every kernelkit kernel process understands."""
    parser.add_argument(
        "-f",
        "--connection-file",
        dest="connection_file",
        metavar="CONNECTION_FILE",
        help="connection file to use (created with free ports if it does not exist; "
        "default: a new one in the Jupyter runtime dir)",
    )
    parser.add_argument("--ip", help="address to bind to when creating a connection file (default 127.0.0.1)")
    parser.add_argument("--transport", choices=("tcp", "ipc"), help="transport when creating a connection file")
    parser.add_argument(
        "--parent",
        type=int,
        metavar="PID",
        help="exit when this process dies (default: $JPY_PARENT_PID, as set by jupyter_client)",
    )
    parser.add_argument(
        "--handshake-timeout",
        type=float,
        default=handshake.DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="with a registration file: how long to wait for the launcher's acknowledgement "
        f"before exiting (default {handshake.DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="how much the kernel logs to stderr",
    )
    parser.add_argument(
        "--debug", action="store_const", const="DEBUG", dest="log_level", help="same as --log-level DEBUG"
    )
    return parser


def _usual_argv(argv: Sequence[str], kernel_class: type[Any] | None) -> argparse.Namespace | None:
    """What jupyter_client runs almost always, ``-f FILE``, read without argparse, whose import and
    parser cost a kernel's start about 3 ms; None for anything else."""
    if len(argv) != 2 or argv[0] not in ("-f", "--connection-file") or argv[1].startswith("-"):
        return None
    own_options = getattr(getattr(kernel_class, "add_arguments", None), "__func__", None)
    if kernel_class is not None and getattr(own_options, "__qualname__", "") != "Kernel.add_arguments":
        return None  # the kernel declares options of its own: their defaults come from argparse
    from types import SimpleNamespace

    namespace: Any = SimpleNamespace(
        connection_file=argv[1],
        ip=None,
        transport=None,
        parent=None,
        handshake_timeout=handshake.DEFAULT_TIMEOUT,
        log_level="WARNING",
        extra_args=[],
    )
    return namespace


def parse_kernel_args(argv: Sequence[str], kernel_class: type[Any] | None = None) -> argparse.Namespace:
    """The kernel options, plus the kernel class's own (``Kernel.add_arguments``)."""
    usual = _usual_argv(argv, kernel_class)
    if usual is not None:
        return usual
    import argparse

    prog, epilog = _program()
    parser = kernel_arguments(argparse.ArgumentParser(prog=prog, description="Run a Jupyter kernel.", epilog=epilog))
    if kernel_class is not None:
        kernel_class.add_arguments(parser.add_argument_group(f"{kernel_class.__name__} options"))
    args, unknown = parser.parse_known_args(argv)
    ignored = [a for a in unknown if a.startswith("--") and "." in a.split("=", 1)[0]]
    # Positional arguments are the application's ``extra_args`` (ipykernel's too: ``jupyter run
    # --kernel K FILE`` passes FILE); an unknown option is a mistake worth stopping for.
    args.extra_args = [a for a in unknown if not a.startswith("-")]
    bad = [a for a in unknown if a not in ignored and a not in args.extra_args]
    if bad:
        parser.error(f"unrecognized arguments: {' '.join(bad)}")
    if ignored:
        log.warning("ignoring ipykernel configuration options: %s", " ".join(ignored))
    return args


def _program() -> tuple[str, str | None]:
    """The kernel's program name for its help, and an epilog naming its ``install`` subcommand if it has one.

    Run as ``python -m PACKAGE``, the program is that command, not ``__main__.py``; a package with an
    ``install`` module (as ``kernelkit new`` writes, which ``PACKAGE/__main__.py`` runs for
    ``python -m PACKAGE install``) registers the kernel with Jupyter.
    """
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    package, _, main = (main_spec.name if main_spec else "").rpartition(".")
    if main != "__main__" or not package:  # a script, or a zip file or folder run as one
        return os.path.basename(sys.argv[0]), None
    prog = f"python -m {package}"
    import importlib.util

    if importlib.util.find_spec(f"{package}.install") is None:
        return prog, None
    return prog, (
        f"{prog} install [--user|--sys-prefix|--prefix PATH] registers this kernel with Jupyter "
        f"(see {prog} install --help)"
    )


def configure_logging(level: str) -> None:
    """Set kernelkit's log level; the logger itself is created when first used."""
    log.set_level(level)


def _parent_pid(args: argparse.Namespace) -> int | None:
    if args.parent:
        return args.parent
    try:
        return int(os.environ.get("JPY_PARENT_PID", "")) or None
    except ValueError:
        return None


class KernelApp:
    """What ``Kernel.parent`` is in a running kernel: ipykernel's application object, reduced to
    what kernels read from it (``kernel_class``, ``connection_file``, ``extra_args``, ``kernel``)."""

    kernel_class: type[Any] | None = None

    def __init__(
        self, kernel_class: type[Any] | None = None, connection_file: str = "", extra_args: list[str] | None = None
    ) -> None:
        if kernel_class is not None:
            self.kernel_class = kernel_class
        self.connection_file = connection_file
        self.extra_args = list(extra_args or [])
        self.kernel: Any = None


def launch(kernel_class: type[Any], argv: Sequence[str] | None = None, app: KernelApp | None = None) -> None:
    """Run ``kernel_class`` until it is shut down; exits the process with a clear error on failure.

    ``app`` is the application object the kernel gets as ``self.parent`` (a new ``KernelApp``
    by default; ``kernelkit.kernelapp.IPKernelApp`` passes itself)."""
    args = parse_kernel_args(sys.argv[1:] if argv is None else argv, kernel_class)
    configure_logging(args.log_level)
    try:
        serve(kernel_class, args, app)
    except (ConnectionFileError, KernelStartError, ValueError, OSError) as exc:
        print(f"{kernel_class.__name__}: error: {exc}", file=sys.stderr)
        sys.exit(1)


def serve(kernel_class: type[Any], args: argparse.Namespace, app: KernelApp | None = None) -> None:
    path: str | os.PathLike[str] | None = args.connection_file
    registration: RegistrationInfo | None = None
    if path is not None and os.path.exists(path):
        loaded = connection.load_startup_file(path)
        if isinstance(loaded, RegistrationInfo):
            # The launcher owns the registration file; the kernel writes its own connection file.
            registration, info, created = loaded, loaded.connection_info(), True
            path = connection.runtime_path(f"kernel-{_file_safe(registration.kernel_id)}-{os.getpid()}.json")
        else:
            info, created = loaded, False
    else:
        info, created = ConnectionInfo(), True
        if path is None:
            import uuid  # only here: it is slow to import

            path = connection.runtime_path(f"kernel-{uuid.uuid4()}.json")
    if args.ip:
        info.ip = args.ip
    if args.transport:
        info.transport = args.transport
    if not info.key:
        log.warning(
            "this kernel's connection has no key: messages are not signed, so anyone who can "
            "reach its ports can run code in it"
        )
    unbound = any(info.port(c) == 0 for c in connection.CHANNELS)
    server = KernelServer(info, parent_pid=_parent_pid(args))
    if app is None:
        app = KernelApp(kernel_class)
    app.kernel_class = kernel_class
    app.connection_file = os.fspath(path)
    app.extra_args = list(getattr(args, "extra_args", []))
    kernel = attach(kernel_class, server, app, args)
    app.kernel = kernel
    server.start()
    if created:
        _terminal_signals(path, not args.connection_file, server.interrupts)
    try:
        if created or unbound:
            connection.write(info, path)
        if registration is not None:
            stopping = lambda: server.stopping  # noqa: E731
            handshake.register(registration, info, server.session, args.handshake_timeout, stopping)
        elif created and not args.connection_file:
            print(f"To connect a client to this kernel, use:\n    jupyter console --existing {path}", file=sys.stderr)
        server.serve_forever(kernel)
    finally:
        if created:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _file_safe(text: str) -> str:
    """``text`` reduced to characters safe in a file name (a kernel_id is the launcher's choice)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:64]
    return safe.lstrip(".") or "kernel"


def attach(
    kernel_class: type[Any], io: KernelServer, parent: Any = None, arguments: argparse.Namespace | None = None
) -> Any:
    """Build ``kernel_class`` served by ``io``: its session and sockets are set before ``__init__``
    runs, so subclass constructors can use them."""
    kernel = kernel_class.__new__(kernel_class)  # type: ignore[call-overload]  # a subclass may define __new__ (traitlets)
    if getattr(kernel_class, "subshells", False):
        io.enable_subshells()  # before shell_stream is read: replies then go through the router
    kernel._io = io
    kernel.session = io.session
    kernel.iopub_socket = io.socket("iopub")
    kernel.stdin_socket = io.socket("stdin")
    kernel.shell_stream = io.socket("shell")
    kernel.control_stream = io.socket("control")
    kernel.parent = parent
    kernel.arguments = arguments
    kernel.__init__()
    return kernel


STOP_HINT = (
    "kernelkit: Ctrl-C interrupts a running cell but does not stop this kernel; to stop it, quit from a "
    "client (`exit` in jupyter console), press Ctrl-\\ or run `kill {pid}`"
)


def _terminal_signals(path: str | os.PathLike[str], standalone: bool, gate: InterruptGate) -> None:
    """For a kernel that wrote its own connection file (call after the server installed its handlers).

    SIGQUIT (Ctrl-\\) removes that file and then stops the kernel as SIGTERM does; the
    default action would kill the process and leave the file behind. A kernel started from a
    terminal (no ``-f``) also says once, at the first Ctrl-C that finds no cell running, how to
    stop it: Ctrl-C only interrupts user code, so an idle kernel otherwise ignores it without a
    word (a Ctrl-C during a cell interrupts the cell, and says nothing).
    """
    on_sigterm = signal.getsignal(signal.SIGTERM)

    def on_sigquit(signum: int, frame: Any) -> None:
        with contextlib.suppress(OSError):
            os.unlink(path)
        if callable(on_sigterm):
            on_sigterm(signal.SIGTERM, frame)
        else:
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGQUIT, on_sigquit)
    if not standalone:
        return

    def hint_once() -> None:
        gate.on_idle = None
        print(STOP_HINT.format(pid=os.getpid()), file=sys.__stderr__, flush=True)

    gate.on_idle = hint_once
