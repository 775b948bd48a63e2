"""What each request means: ipykernel's per-message handler methods, which call the ``do_*`` hooks.

:class:`RequestHandlers` is a mixin of :class:`kernelkit.Kernel`. Its methods have ipykernel's
names and signature, ``execute_request(self, stream, ident, parent)``, and are what the
``shell_handlers`` / ``control_handlers`` tables hold, so a kernel that overrides one of them
or registers its own handler in those tables (as published ipykernel kernels do) is served
through it. Each handler sends its own reply on ``stream``. The protocol rules (execution
count, execute_input, reply defaults, aborts) come from the kernel core; busy/idle around each
request is the transport's job. Any exception from a hook becomes an ``error`` on iopub plus an
error reply, so a client is never left waiting and the kernel lives on.
"""

from __future__ import annotations

import builtins
import functools
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from types import FunctionType
from typing import TYPE_CHECKING, Any

from kernelkit._log import log
from kernelkit.protocol.core import (
    CONTROL_REQUESTS,
    SHELL_NOTIFICATIONS,
    SHELL_REQUESTS,
    SUBSHELL_REQUESTS,
    Execute,
    Request,
    require,
)
from kernelkit.protocol.wire import Message

if TYPE_CHECKING:
    from kernelkit.kernel.io import KernelIO

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def format_exception(exc: BaseException) -> list[str]:
    """The traceback of an exception raised in a hook, as the user's code made it.

    kernelkit's own frames (the handler that called the hook) are left out, and each entry is
    one line without its newline: frontends join the list with newlines.
    """
    import traceback  # only once something has failed: it costs start-up time

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb)
    return [line.rstrip("\n") for chunk in lines for line in chunk.splitlines()]


def error_content(exc: BaseException) -> dict[str, Any]:
    return {"status": "error", "ename": type(exc).__name__, "evalue": str(exc), "traceback": format_exception(exc)}


# ---- running hooks, plain or async ---------------------------------------------------------

_loops = threading.local()


def resolve(value: Any) -> Any:
    """Return ``value``, awaiting it first if a hook was ``async def``.

    The coroutine runs on the event loop running in this thread when there is one (a kernel
    launched from inside ``asyncio.run``, with nest_asyncio: its subprocesses and futures
    belong to that loop), otherwise on an event loop of kernelkit's own for this thread, which
    becomes the thread's current loop. An interrupt cancels the coroutine's task.
    """
    if type(value) is dict or value is None:  # what plain hooks return: never awaitable
        return value
    import inspect

    if not inspect.isawaitable(value):
        return value
    import asyncio  # only for async hooks: importing it costs a plain kernel's start-up ~20 ms

    loop: asyncio.AbstractEventLoop | None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = getattr(_loops, "loop", None)
        if loop is None or loop.is_closed():
            loop = _loops.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
    task = asyncio.ensure_future(value, loop=loop)
    try:
        return loop.run_until_complete(task)
    except KeyboardInterrupt:
        if not task.done():
            task.cancel()
            with suppress(BaseException):
                loop.run_until_complete(task)
        raise


_CO_VARARGS, _CO_VARKEYWORDS = 0x04, 0x08  # code flags, as in inspect


@functools.cache
def _accepts(function: Callable[..., Any], name: str) -> bool:
    if (
        type(function) is FunctionType
        and not hasattr(function, "__wrapped__")
        and not hasattr(function, "__signature__")
    ):
        # What inspect.signature reads for a plain function, without importing inspect.
        code = function.__code__
        count = code.co_argcount + code.co_kwonlyargcount + bool(code.co_flags & _CO_VARARGS)
        return name in code.co_varnames[:count] or bool(code.co_flags & _CO_VARKEYWORDS)
    import inspect

    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def accepts(method: Callable[..., Any], name: str) -> bool:
    """Whether a (possibly older-signature) hook takes keyword ``name``."""
    return _accepts(getattr(method, "__func__", method), name)


class RequestHandlers:
    """ipykernel's handler methods, on top of the ``do_*`` hooks (mixed into ``Kernel``)."""

    # Provided by Kernel (declared for the type checker).
    _io: KernelIO | None
    _execution_count: int
    _thread_counts: dict[int, int]
    comm_manager: Any
    _allow_stdin: bool
    _silent_threads: set[int]
    _count_lock: threading.Lock
    subshells: bool

    if TYPE_CHECKING:

        def send_response(
            self,
            stream: Any,
            msg_or_type: Any,
            content: Any = None,
            ident: Any = None,
            buffers: Any = None,
            track: bool = False,
            header: Any = None,
            metadata: Any = None,
            channel: str | None = None,
        ) -> Any: ...
        def do_execute(
            self,
            code: str,
            silent: bool,
            store_history: bool = True,
            user_expressions: Any = None,
            allow_stdin: bool = False,
        ) -> Any: ...
        def do_complete(self, code: str, cursor_pos: int) -> Any: ...
        def do_inspect(self, code: str, cursor_pos: int, detail_level: int = 0, omit_sections: Any = ()) -> Any: ...
        def do_history(self, *args: Any) -> Any: ...
        def do_is_complete(self, code: str) -> Any: ...
        def do_kernel_info(self) -> Any: ...
        def do_shutdown(self, restart: bool) -> Any: ...
        def do_interrupt(self) -> Any: ...
        def raw_input(self, prompt: str = "") -> str: ...
        def getpass(self, prompt: str = "Password: ", stream: Any = None) -> str: ...
        @property
        def iopub_socket(self) -> Any: ...
        def _current_request(self) -> Request | None: ...

    # ---- helpers ---------------------------------------------------------------------------

    def _reply(
        self,
        stream: Any,
        ident: list[bytes],
        parent: Message,
        content: dict[str, Any],
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Send the reply to ``parent`` on ``stream``, after the output it caused."""
        io = self._io
        if io is None:
            return
        io.flush_output()
        out = io.core.reply(Request(getattr(stream, "name", "shell"), ident, parent), content, metadata)
        io.session.send(stream, out.msg, ident=out.idents)

    def _publish_error(self, content: dict[str, Any]) -> None:
        iopub = {k: content[k] for k in ("ename", "evalue", "traceback")}
        self.send_response(self.iopub_socket, "error", iopub)

    def _user_code(self) -> AbstractContextManager[Any]:
        """A hook other than ``do_execute`` runs user code (a comm callback, a completer): as in
        ipykernel, an interrupt may end it, and output written meanwhile by any thread (the
        output timer's included) is published while it runs, not when it ends."""
        io = self._io
        return io.interruptible() if io is not None else nullcontext()

    # ---- shell -----------------------------------------------------------------------------

    def execute_request(self, stream: Any, ident: list[bytes], parent: Message) -> None:
        io = self._io
        if io is None:
            return
        request = Request(getattr(stream, "name", "shell"), ident, parent)
        with self._count_lock:  # one count for the kernel, whichever (sub)shell executes
            execute, execute_input = io.core.begin_execute(request, self._execution_count)
            self._execution_count = execute.execution_count
        if execute_input is not None:
            io.send(execute_input)
        if self.subshells:  # self.execution_count in this thread: this cell's count
            thread = threading.get_ident()
            self._thread_counts[thread] = execute.execution_count
            try:
                result = self._run_execute(execute)
            finally:
                del self._thread_counts[thread]
        else:
            result = self._run_execute(execute)
        reply, abort = io.core.finish_execute(execute, result)
        io.flush_output()
        if abort:
            io.hold_queued()  # before the reply, so only requests sent before it are aborted
        io.session.send(stream, reply.msg, ident=reply.idents)

    def _run_execute(self, execute: Execute) -> dict[str, Any]:
        args: dict[str, Any] = {
            "code": execute.code,
            "silent": execute.silent,
            "store_history": execute.store_history,
            "user_expressions": execute.user_expressions,
            "allow_stdin": execute.allow_stdin,
        }
        if accepts(self.do_execute, "cell_meta"):
            args["cell_meta"] = execute.cell_meta
        if accepts(self.do_execute, "cell_id"):
            args["cell_id"] = execute.cell_meta.get("cellId")
        io = self._io
        on_main = threading.current_thread() is threading.main_thread()
        if on_main:
            # input() is for the main shell only: a subshell must not change what it allows.
            # input() and getpass.getpass() in the cell ask the frontend.
            import getpass  # here, not at start-up: it imports termios

            self._allow_stdin = execute.allow_stdin
            saved = builtins.input, getpass.getpass
            builtins.input, getpass.getpass = self.raw_input, self.getpass  # type: ignore[assignment]
        if execute.silent:  # no output broadcast (the spec): print() in it is dropped
            self._silent_threads.add(threading.get_ident())
        try:
            with io.interruptible() if io is not None else nullcontext():
                result = resolve(self.do_execute(**args))
            if not isinstance(result, dict):
                raise TypeError(f"do_execute must return a dict, not {type(result).__name__}")
            return result
        except (Exception, KeyboardInterrupt, SystemExit) as exc:
            # sys.exit() in user code is an error like any other: without a reply the client would
            # wait forever. Only the SystemExit that SIGTERM raises (the server is stopping) ends the kernel.
            if isinstance(exc, SystemExit) and (io is None or io.stopping):
                raise
            content = error_content(exc)
            if isinstance(exc, KeyboardInterrupt):
                content["traceback"] = ["KeyboardInterrupt: the cell was interrupted"]
            self._publish_error(content)
            return content
        finally:
            if execute.silent:
                self._silent_threads.discard(threading.get_ident())
            if on_main:
                builtins.input, getpass.getpass = saved
                self._allow_stdin = False

    def complete_request(self, stream: Any, ident: list[bytes], parent: Message) -> None:
        content = parent["content"]
        code = require(content, "code", str)
        cursor_pos = content.get("cursor_pos")
        if not isinstance(cursor_pos, int):
            cursor_pos = len(code)
        with self._user_code():
            result = resolve(self.do_complete(code, cursor_pos))
        self._reply(stream, ident, parent, {"status": "ok", **result})

    def inspect_request(self, stream: Any, ident: list[bytes], parent: Message) -> None:
        content = parent["content"]
        code = require(content, "code", str)
        cursor_pos = content.get("cursor_pos", len(code))
        args: dict[str, Any] = {"detail_level": content.get("detail_level", 0)}
        if accepts(self.do_inspect, "omit_sections"):
            args["omit_sections"] = content.get("omit_sections", ())
        with self._user_code():
            result = resolve(self.do_inspect(code, cursor_pos, **args))
        self._reply(stream, ident, parent, {"status": "ok", **result})

    def history_request(self, stream: Any, ident: list[bytes], parent: Message) -> None:
        content = parent["content"]
        with self._user_code():
            result = resolve(
                self.do_history(
                    content.get("hist_access_type", "tail"),
                    bool(content.get("output", False)),
                    bool(content.get("raw", True)),
                    content.get("session"),
                    content.get("start"),
                    content.get("stop"),
                    content.get("n"),
                    content.get("pattern"),
                    bool(content.get("unique", False)),
                )
            )
        self._reply(stream, ident, parent, {"status": "ok", **result})

    def is_complete_request(self, stream: Any, ident: list[bytes], parent: Message) -> None:
        code = require(parent["content"], "code", str)
        with self._user_code():
            result = resolve(self.do_is_complete(code))
        self._reply(stream, ident, parent, result)

    def kernel_info_request(self, stream: Any, ident: list[bytes], parent: Message) -> None:
        self._reply(stream, ident, parent, resolve(self.do_kernel_info()))

    def comm_info_request(self, stream: Any, ident: list[bytes], parent: Message) -> None:
        content = parent["content"]
        target_name = content.get("target_name")
        # .comms, as ipykernel reads it: kernelkit's manager and the comm package's both have it
        comms = {
            comm_id: {"target_name": comm.target_name}
            for comm_id, comm in list(self.comm_manager.comms.items())
            if target_name is None or comm.target_name == target_name
        }
        self._reply(stream, ident, parent, {"status": "ok", "comms": comms})

    def comm_open(self, stream: Any, ident: list[bytes], parent: Message) -> None:
        with self._user_code():
            self.comm_manager.comm_open(stream, ident, parent)

    def comm_msg(self, stream: Any, ident: list[bytes], parent: Message) -> None:
        with self._user_code():
            self.comm_manager.comm_msg(stream, ident, parent)

    def comm_close(self, stream: Any, ident: list[bytes], parent: Message) -> None:
        with self._user_code():
            self.comm_manager.comm_close(stream, ident, parent)

    # ---- control -----------------------------------------------------------------------------

    def shutdown_request(self, stream: Any, ident: list[bytes], parent: Message) -> None:
        """Reply, then stop the server, even when ``do_shutdown`` raises."""
        restart = bool(parent["content"].get("restart", False))
        try:
            result = {"status": "ok", "restart": restart, **(resolve(self.do_shutdown(restart)) or {})}
        except Exception as exc:
            log.error("do_shutdown raised; shutting down anyway", exc_info=True)
            result = {**error_content(exc), "restart": restart}
        try:
            self._reply(stream, ident, parent, result)
        finally:
            if self._io is not None:
                self._io.stop(f"shutdown_request (restart={restart})")

    def interrupt_request(self, stream: Any, ident: list[bytes], parent: Message) -> None:
        try:
            resolve(self.do_interrupt())
        finally:
            if self._io is not None:
                self._io.interrupt()
        self._reply(stream, ident, parent, {"status": "ok"})

    # ---- subshells (JEP 91; only for kernels with ``subshells = True``) -------------------------

    def _send_out(self, stream: Any, out: Any) -> None:
        assert self._io is not None
        self._io.session.send(stream, out.msg, ident=out.idents)

    def create_subshell_request(self, stream: Any, ident: list[bytes], parent: Message) -> None:
        io = self._io
        if io is None:
            return
        subshell_id = io.create_subshell()
        self._send_out(stream, io.core.subshell_reply(Request("control", ident, parent), subshell_id))

    def delete_subshell_request(self, stream: Any, ident: list[bytes], parent: Message) -> None:
        io = self._io
        if io is None:
            return
        request = Request("control", ident, parent)
        subshell_id = require(parent["content"], "subshell_id", str)
        if io.delete_subshell(subshell_id):
            self._send_out(stream, io.core.subshell_reply(request, None))
        else:
            self._send_out(stream, io.core.no_such_subshell(request, subshell_id))

    def list_subshell_request(self, stream: Any, ident: list[bytes], parent: Message) -> None:
        io = self._io
        if io is None:
            return
        self._send_out(stream, io.core.subshell_reply(Request("control", ident, parent), io.list_subshells()))

    def unsupported_request(self, stream: Any, ident: list[bytes], parent: Message) -> None:
        """The reply to a request this kernel does not implement (debug, subshells)."""
        raise NotImplementedError(f"{parent['msg_type']} is not supported by this kernel")

    # ---- the tables --------------------------------------------------------------------------

    #: Message types by table, from the protocol core's channel tables so that the two agree.
    SHELL_MESSAGES = tuple(sorted(SHELL_REQUESTS | SHELL_NOTIFICATIONS))
    SUBSHELL_CONTROL = tuple(sorted(SUBSHELL_REQUESTS))
    UNSUPPORTED_CONTROL = ("debug_request", *SUBSHELL_CONTROL)
    CONTROL_MESSAGES = tuple(sorted(CONTROL_REQUESTS.difference(UNSUPPORTED_CONTROL)))

    def _handler_tables(self) -> tuple[dict[str, Callable[..., Any]], dict[str, Callable[..., Any]]]:
        """``shell_handlers`` and ``control_handlers`` as ipykernel builds them: bound methods by msg type."""
        shell = {name: getattr(self, name) for name in self.SHELL_MESSAGES}
        control = {name: getattr(self, name) for name in self.CONTROL_MESSAGES}
        control.update(dict.fromkeys(self.UNSUPPORTED_CONTROL, self.unsupported_request))
        if self.subshells:
            for name in self.SUBSHELL_CONTROL:
                control[name] = getattr(self, name)
        return shell, control
