"""What each request means: call the kernel's ``do_*`` hook and send the reply.

One function per request type. Sockets, threads and busy/idle status belong to the server;
this module turns a parsed request into hook calls, iopub side effects and one reply.
Any exception from a hook becomes an ``error`` on iopub plus an error reply, so a client
is never left waiting and the kernel lives on.
"""

from __future__ import annotations

import builtins
import functools
import getpass
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FunctionType
from typing import TYPE_CHECKING, Any

from kernelkit._log import log
from kernelkit.protocol.wire import Message

if TYPE_CHECKING:
    from kernelkit.transport.channels import Channel
    from kernelkit.kernel.base import Kernel


class Request:
    """A parsed request and the channel and identities to answer on (a plain class: importing
    ``dataclasses``, and through it ``inspect``, costs a kernel's start-up milliseconds)."""

    __slots__ = ("channel", "idents", "msg")

    def __init__(self, channel: Channel, idents: list[bytes], msg: Message) -> None:
        self.channel = channel
        self.idents = idents
        self.msg = msg

    @property
    def msg_type(self) -> str:
        return self.msg["msg_type"]

    @property
    def content(self) -> dict[str, Any]:
        return self.msg["content"]


class BadRequest(ValueError):
    """The request's content lacks a field the protocol requires."""


def reply_type(msg_type: str) -> str:
    return msg_type.rsplit("_", 1)[0] + "_reply"


def reply(kernel: Kernel, request: Request, content: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
    kernel._flush_output()
    kernel.session.send(
        request.channel, reply_type(request.msg_type), content, request.msg, request.idents, metadata=metadata
    )


def _format_exception(exc: BaseException) -> list[str]:
    import traceback  # only once something has failed: it costs start-up time

    return traceback.format_exception(exc)


def error_content(exc: BaseException) -> dict[str, Any]:
    return {
        "status": "error",
        "ename": type(exc).__name__,
        "evalue": str(exc),
        "traceback": _format_exception(exc),
    }


def publish_error(kernel: Kernel, content: dict[str, Any], channel: str) -> None:
    iopub = {k: content[k] for k in ("ename", "evalue", "traceback")}
    kernel.send_response(kernel.iopub_socket, "error", iopub, channel=channel)


# ---- running hooks, plain or async ---------------------------------------------------------

_loops = threading.local()


def resolve(value: Any) -> Any:
    """Return ``value``, awaiting it first on this thread's event loop if a hook was ``async``."""
    if type(value) is dict or value is None:  # what plain hooks return: never awaitable
        return value
    import inspect

    if not inspect.isawaitable(value):
        return value
    import asyncio  # only for async hooks: importing it costs a plain kernel's start-up ~20 ms

    loop = getattr(_loops, "loop", None)
    if loop is None:
        loop = _loops.loop = asyncio.new_event_loop()
    task = asyncio.ensure_future(value, loop=loop)
    try:
        return loop.run_until_complete(task)
    except KeyboardInterrupt:
        task.cancel()
        with suppress(BaseException):
            loop.run_until_complete(task)
        raise


_CO_VARARGS, _CO_VARKEYWORDS = 0x04, 0x08  # code flags, as in inspect


@functools.lru_cache(maxsize=None)
def _accepts(function: Callable[..., Any], name: str) -> bool:
    if type(function) is FunctionType and not hasattr(function, "__wrapped__") and not hasattr(function, "__signature__"):
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


def require(content: dict[str, Any], field: str, kind: type) -> Any:
    value = content.get(field)
    if not isinstance(value, kind):
        raise BadRequest(f"the request needs a {kind.__name__} {field!r}")
    return value


@contextmanager
def stdin_builtins(kernel: Kernel) -> Iterator[None]:
    """Route ``input()`` and ``getpass.getpass()`` in user code to the frontend while executing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = builtins.input, getpass.getpass
    builtins.input, getpass.getpass = kernel.raw_input, kernel.getpass  # type: ignore[assignment]
    try:
        yield
    finally:
        builtins.input, getpass.getpass = saved


# ---- shell requests -----------------------------------------------------------------------


def execute_request(kernel: Kernel, request: Request) -> bool:
    """Returns True when queued execute requests must be aborted (an error with stop_on_error)."""
    content = request.content
    code = require(content, "code", str)
    silent = bool(content.get("silent", False))
    store_history = bool(content.get("store_history", not silent)) and not silent
    stop_on_error = bool(content.get("stop_on_error", True))
    if store_history:
        kernel.execution_count += 1
    if not silent:
        kernel.send_response(
            kernel.iopub_socket, "execute_input", {"code": code, "execution_count": kernel.execution_count}
        )
    args: dict[str, Any] = {
        "code": code,
        "silent": silent,
        "store_history": store_history,
        "user_expressions": content.get("user_expressions") or {},
        "allow_stdin": bool(content.get("allow_stdin", False)),
    }
    cell_meta = request.msg.get("metadata") or {}
    if accepts(kernel.do_execute, "cell_meta"):
        args["cell_meta"] = cell_meta
    if accepts(kernel.do_execute, "cell_id"):
        args["cell_id"] = cell_meta.get("cellId")
    started = kernel.session.now()
    kernel._allow_stdin = args["allow_stdin"]
    try:
        with kernel._server.interrupts.arm() if kernel._server else suppress(), stdin_builtins(kernel):
            result = resolve(kernel.do_execute(**args))
        if not isinstance(result, dict):
            raise TypeError(f"do_execute must return a dict, not {type(result).__name__}")
        result = dict(result)
    except (Exception, KeyboardInterrupt, SystemExit) as exc:
        # sys.exit() in user code is an error like any other: without a reply the client would
        # wait forever. Only the SystemExit that SIGTERM raises (the server is stopping) ends the kernel.
        if isinstance(exc, SystemExit) and (kernel._server is None or kernel._server.stopping):
            raise
        result = error_content(exc)
        if isinstance(exc, KeyboardInterrupt):
            result["traceback"] = ["KeyboardInterrupt: the cell was interrupted"]
        publish_error(kernel, result, "shell")
    finally:
        kernel._allow_stdin = False
    result.setdefault("status", "ok")
    result.setdefault("execution_count", kernel.execution_count)
    if result["status"] == "ok":
        result.setdefault("user_expressions", {})
        result.setdefault("payload", [])
    abort = result["status"] == "error" and stop_on_error and not silent
    if abort and kernel._server is not None:
        kernel._server.hold_queued()  # before the reply, so only requests sent before it are aborted
    reply(kernel, request, result, {"started": started, "status": result["status"]})
    return abort


def complete_request(kernel: Kernel, request: Request) -> None:
    code = require(request.content, "code", str)
    cursor_pos = request.content.get("cursor_pos")
    if not isinstance(cursor_pos, int):
        cursor_pos = len(code)
    result = {"status": "ok", **resolve(kernel.do_complete(code, cursor_pos))}
    reply(kernel, request, result)


def inspect_request(kernel: Kernel, request: Request) -> None:
    content = request.content
    code = require(content, "code", str)
    cursor_pos = content.get("cursor_pos", len(code))
    args: dict[str, Any] = {"detail_level": content.get("detail_level", 0)}
    if accepts(kernel.do_inspect, "omit_sections"):
        args["omit_sections"] = content.get("omit_sections", ())
    result = {"status": "ok", **resolve(kernel.do_inspect(code, cursor_pos, **args))}
    reply(kernel, request, result)


def history_request(kernel: Kernel, request: Request) -> None:
    content = request.content
    result = resolve(
        kernel.do_history(
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
    reply(kernel, request, {"status": "ok", **result})


def is_complete_request(kernel: Kernel, request: Request) -> None:
    code = require(request.content, "code", str)
    reply(kernel, request, resolve(kernel.do_is_complete(code)))


def kernel_info_request(kernel: Kernel, request: Request) -> None:
    reply(kernel, request, resolve(kernel.do_kernel_info()))


def comm_info_request(kernel: Kernel, request: Request) -> None:
    comms = kernel.comm_manager.comm_info(request.content.get("target_name"))
    reply(kernel, request, {"status": "ok", "comms": comms})


def comm_open(kernel: Kernel, request: Request) -> None:
    kernel.comm_manager.comm_open(request.msg)


def comm_msg(kernel: Kernel, request: Request) -> None:
    kernel.comm_manager.comm_msg(request.msg)


def comm_close(kernel: Kernel, request: Request) -> None:
    kernel.comm_manager.comm_close(request.msg)


# ---- control requests ---------------------------------------------------------------------


def shutdown_request(kernel: Kernel, request: Request) -> None:
    """Reply, then stop the server, even when ``do_shutdown`` raises."""
    restart = bool(request.content.get("restart", False))
    try:
        result = {"status": "ok", "restart": restart, **resolve(kernel.do_shutdown(restart))}
    except Exception as exc:
        log.error("do_shutdown raised; shutting down anyway", exc_info=True)
        result = {**error_content(exc), "restart": restart}
    try:
        reply(kernel, request, result)
    finally:
        if kernel._server is not None:
            kernel._server.stop(f"shutdown_request (restart={restart})")


def interrupt_request(kernel: Kernel, request: Request) -> None:
    try:
        resolve(kernel.do_interrupt())
    finally:
        if kernel._server is not None:
            kernel._server.interrupt()
    reply(kernel, request, {"status": "ok"})


def unsupported(kernel: Kernel, request: Request) -> None:
    raise NotImplementedError(f"{request.msg_type} is not supported by this kernel")


SHELL: dict[str, Callable[[Kernel, Request], Any]] = {
    "execute_request": execute_request,
    "complete_request": complete_request,
    "inspect_request": inspect_request,
    "history_request": history_request,
    "is_complete_request": is_complete_request,
    "kernel_info_request": kernel_info_request,
    "comm_info_request": comm_info_request,
    "comm_open": comm_open,
    "comm_msg": comm_msg,
    "comm_close": comm_close,
    "shutdown_request": shutdown_request,  # deprecated on shell since protocol 5.4, still honoured
}

CONTROL: dict[str, Callable[[Kernel, Request], Any]] = {
    "shutdown_request": shutdown_request,
    "interrupt_request": interrupt_request,
    "kernel_info_request": kernel_info_request,
    "debug_request": unsupported,
    "create_subshell_request": unsupported,
    "delete_subshell_request": unsupported,
    "list_subshell_request": unsupported,
}


def handle(kernel: Kernel, request: Request, table: dict[str, Callable[[Kernel, Request], Any]]) -> bool:
    """Run the handler for ``request``; True means: abort the queued execute requests."""
    handler = table.get(request.msg_type)
    if handler is None:
        log.warning("unknown message type %r on %s: ignored", request.msg_type, request.channel.name)
        if not request.msg_type.endswith("_request"):
            return False
        handler = unsupported
    try:
        return bool(handler(kernel, request))
    except Exception as exc:
        log.error("%s failed", request.msg_type, exc_info=True)
        content = error_content(exc)
        publish_error(kernel, content, request.channel.name)
        if request.msg_type.endswith("_request"):
            reply(kernel, request, content)
        return False
