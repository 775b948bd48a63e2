"""The kernel core: the rules of the messaging protocol, as a state machine with no I/O.

Given decoded requests, it says what a kernel must send, and when:

- ``status: busy`` before and ``status: idle`` after every request, both with the request as
  parent (:meth:`KernelCore.busy`, :meth:`KernelCore.idle`);
- each reply on the request's own channel, to the identities that sent it, typed
  ``<name>_reply`` (:meth:`KernelCore.reply`);
- for ``execute_request``: the arguments of the hook, ``execution_count`` (which grows only for
  ``store_history`` non-``silent`` executions), ``execute_input`` (unless silent), the defaults
  of the reply (:meth:`KernelCore.begin_execute`, :meth:`KernelCore.finish_execute`);
- after an error with ``stop_on_error``: the execute requests that were already queued are
  answered ``aborted`` (busy, reply, idle) instead of run; requests sent after the error reply
  run normally (:meth:`KernelCore.hold`, :meth:`KernelCore.next_held`);
- which request types each channel serves, and what an unknown one gets;
- when a shell request may run: not before an iopub subscriber can see its output
  (:meth:`KernelCore.needs_subscriber`);
- kernel subshells (JEP 91): which shell requests belong to a subshell (:func:`subshell_of`,
  :func:`subshell_of_header`), the replies to the subshell requests on control
  (:meth:`KernelCore.subshell_reply`), what a request for an unknown subshell gets
  (:meth:`KernelCore.unknown_subshell`).

Like h11's ``Connection``, it never touches a socket, thread, clock or signal: the transport
feeds it and sends what it returns, and the tests drive it in memory. Messages are built with a
:class:`~kernelkit.protocol.session.Session` (pure: it only stamps ids and dates).
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

from kernelkit.protocol.session import Session
from kernelkit.protocol.wire import Message

#: Requests a kernel answers on shell. ``shutdown_request`` there is deprecated (5.4), still honoured.
SHELL_REQUESTS = frozenset(
    {
        "execute_request",
        "complete_request",
        "inspect_request",
        "history_request",
        "is_complete_request",
        "kernel_info_request",
        "comm_info_request",
        "shutdown_request",
    }
)
#: Requests a kernel answers on control (its own thread: they answer while a cell runs).
CONTROL_REQUESTS = frozenset(
    {
        "shutdown_request",
        "interrupt_request",
        "kernel_info_request",
        "debug_request",
        "create_subshell_request",
        "delete_subshell_request",
        "list_subshell_request",
    }
)
#: The ``value`` of an ``input_reply`` that means end-of-file (Ctrl-D), as jupyter_console sends it.
INPUT_EOF = "\x04"
#: Shell messages that are not requests: no reply is due (comms).
SHELL_NOTIFICATIONS = frozenset({"comm_open", "comm_msg", "comm_close"})
#: The control requests that manage kernel subshells (JEP 91, protocol 5.5).
SUBSHELL_REQUESTS = frozenset({"create_subshell_request", "delete_subshell_request", "list_subshell_request"})
#: The ``supported_features`` name of kernel subshells (JEP 92).
SUBSHELLS_FEATURE = "kernel subshells"
_SUBSHELL_KEY = b'"subshell_id"'


def subshell_of(header: dict[str, Any]) -> str | None:
    """The subshell a shell request is for (its header's ``subshell_id``); None: the main shell."""
    subshell_id = header.get("subshell_id")
    return subshell_id if subshell_id is not None else None


def subshell_of_header(frame: bytes | memoryview) -> str | None:
    """:func:`subshell_of` for a still-encoded header frame, so a router need not decode the message.

    A header without the key (every message of a client that does not use subshells) costs one
    substring search. Anything that cannot be read goes to the main shell, whose full decoding
    drops it with a log line. A ``subshell_id`` that is not a string is returned as its text, so
    it is answered as an unknown subshell.
    """
    data = bytes(frame)
    if _SUBSHELL_KEY not in data:
        return None
    import json

    try:
        header = json.loads(data)
    except (ValueError, RecursionError):  # unauthenticated yet: anything unreadable goes to the main shell
        return None
    if not isinstance(header, dict):
        return None
    subshell_id = header.get("subshell_id")
    if subshell_id is None:
        return None
    return subshell_id if isinstance(subshell_id, str) else json.dumps(subshell_id)


class Outgoing(NamedTuple):
    """One message to send: on which channel, to which routing identities."""

    channel: str
    idents: list[bytes]
    msg: Message


class Request:
    """A decoded request and where it came from (a plain class: kernels create one per message)."""

    __slots__ = ("channel", "idents", "msg")

    def __init__(self, channel: str, idents: list[bytes], msg: Message) -> None:
        self.channel = channel
        self.idents = idents
        self.msg = msg

    @property
    def msg_type(self) -> str:
        return self.msg["msg_type"]

    @property
    def content(self) -> dict[str, Any]:
        return self.msg["content"]

    @property
    def header(self) -> dict[str, Any]:
        return self.msg["header"]

    def __repr__(self) -> str:
        return f"<Request {self.msg_type} on {self.channel}>"


class BadRequest(ValueError):
    """The request's content lacks a field the protocol requires."""


def reply_type(msg_type: str) -> str:
    """``execute_request`` -> ``execute_reply``."""
    return msg_type.rsplit("_", 1)[0] + "_reply"


def is_request(msg_type: str) -> bool:
    return msg_type.endswith("_request")


def require(content: dict[str, Any], field: str, kind: type) -> Any:
    value = content.get(field)
    if not isinstance(value, kind):
        raise BadRequest(f"the request needs a {kind.__name__} {field!r}")
    return value


class Execute:
    """An execute_request as the core read it: the hook's arguments and what goes with it."""

    __slots__ = (
        "allow_stdin",
        "code",
        "execution_count",
        "request",
        "silent",
        "started",
        "stop_on_error",
        "store_history",
        "user_expressions",
    )

    def __init__(self, request: Request, execution_count: int, started: str) -> None:
        content = request.content
        self.request = request
        self.code: str = require(content, "code", str)
        self.silent = bool(content.get("silent", False))
        self.store_history = bool(content.get("store_history", not self.silent)) and not self.silent
        self.stop_on_error = bool(content.get("stop_on_error", True))
        self.allow_stdin = bool(content.get("allow_stdin", False))
        self.user_expressions: dict[str, Any] = content.get("user_expressions") or {}
        self.execution_count = execution_count
        self.started = started

    @property
    def cell_meta(self) -> dict[str, Any]:
        return self.request.msg.get("metadata") or {}


class KernelCore:
    """The protocol state of one kernel: the abort queue and the iopub subscribers.

    Used by the shell thread; the control thread only builds messages with it (stateless).
    """

    #: Seconds a shell request waits for an iopub subscriber when there is none.
    SUBSCRIBER_WAIT = 2.0

    def __init__(self, session: Session) -> None:
        self.session = session
        self._held: deque[Request] = deque()
        #: Active iopub subscriptions (the transport keeps it up to date).
        self.subscribers = 0
        self._waited: set[bytes] = set()  # clients whose request already waited for a subscriber

    # ---- status and replies ------------------------------------------------------------------

    def status(self, state: str, parent: Message | None) -> Outgoing:
        return Outgoing("iopub", [], self.session.msg("status", {"execution_state": state}, parent))

    def starting(self) -> Outgoing:
        """Sent once, when the kernel's sockets are up."""
        return self.status("starting", None)

    def busy(self, request: Request) -> Outgoing:
        return self.status("busy", request.msg)

    def idle(self, request: Request) -> Outgoing:
        return self.status("idle", request.msg)

    def reply(self, request: Request, content: dict[str, Any], metadata: dict[str, Any] | None = None) -> Outgoing:
        msg = self.session.msg(reply_type(request.msg_type), content, request.msg, metadata=metadata)
        return Outgoing(request.channel, request.idents, msg)

    def error_reply(self, request: Request, ename: str, evalue: str, traceback: list[str] | None = None) -> Outgoing:
        content = {"status": "error", "ename": ename, "evalue": evalue, "traceback": traceback or []}
        return self.reply(request, content)

    def subshell_reply(self, request: Request, result: str | list[str] | None) -> Outgoing:
        """The reply to a subshell request on control, shaped as ipykernel 7's.

        ``create_subshell_reply``: ``{"status": "ok", "subshell_id": ID}``;
        ``list_subshell_reply``: ``{"status": "ok", "subshell_id": [IDS]}``;
        ``delete_subshell_reply``: ``{"status": "ok"}``.
        """
        content: dict[str, Any] = {"status": "ok"}
        if request.msg_type == "create_subshell_request":
            content["subshell_id"] = result
        elif request.msg_type == "list_subshell_request":
            content["subshell_id"] = list(result or [])
        return self.reply(request, content)

    def no_such_subshell(self, request: Request, subshell_id: Any) -> Outgoing:
        """The error reply for a request naming a subshell this kernel does not have."""
        return self.error_reply(request, "UnknownSubshellError", f"no subshell with id {subshell_id!r}")

    def unknown_subshell(self, request: Request, subshell_id: Any) -> list[Outgoing]:
        """What a shell message for an unknown subshell gets: busy, an error reply (for a request), idle."""
        out = [self.busy(request)]
        if is_request(request.msg_type):
            out.append(self.no_such_subshell(request, subshell_id))
        out.append(self.idle(request))
        return out

    def publish(self, request: Request | None, msg_type: str, content: dict[str, Any]) -> Outgoing:
        return Outgoing("iopub", [], self.session.msg(msg_type, content, request.msg if request else None))

    # ---- which channel serves what -----------------------------------------------------------

    @staticmethod
    def serves(channel: str, msg_type: str) -> bool:
        """Whether ``msg_type`` is a request (or comm message) this channel answers."""
        if channel == "control":
            return msg_type in CONTROL_REQUESTS
        return msg_type in SHELL_REQUESTS or msg_type in SHELL_NOTIFICATIONS

    def unknown(self, request: Request) -> list[Outgoing]:
        """What an unknown message type gets: an error reply for a request, nothing otherwise."""
        if not is_request(request.msg_type):
            return []
        return [
            self.busy(request),
            self.error_reply(
                request,
                "UnknownMessageType",
                f"{request.msg_type} is not a {request.channel} request this kernel knows",
            ),
            self.idle(request),
        ]

    # ---- execute -------------------------------------------------------------------------------

    def begin_execute(self, request: Request, execution_count: int) -> tuple[Execute, Outgoing | None]:
        """Read the request, count it, and say what to publish first (``execute_input``, unless silent).

        ``execution_count`` is the kernel's count before this request; ``Execute.execution_count``
        is the count after it (one more for ``store_history`` non-``silent`` executions).
        Raises :class:`BadRequest` when ``code`` is missing (nothing is counted then).
        """
        execute = Execute(request, execution_count, self.session.now())
        if execute.store_history:
            execute.execution_count += 1
        if execute.silent:
            return execute, None
        content = {"code": execute.code, "execution_count": execute.execution_count}
        return execute, self.publish(request, "execute_input", content)

    def finish_execute(self, execute: Execute, result: dict[str, Any]) -> tuple[Outgoing, bool]:
        """The execute_reply for the hook's ``result``, and whether queued executes must now be aborted.

        When the second value is true, the transport must :meth:`hold` the requests already
        queued *before* it sends this reply, so that only requests sent before the client saw
        the error are aborted.
        """
        content = dict(result)
        content.setdefault("status", "ok")
        content.setdefault("execution_count", execute.execution_count)
        if content["status"] == "ok":
            content.setdefault("user_expressions", {})
            content.setdefault("payload", [])
        abort = content["status"] == "error" and execute.stop_on_error and not execute.silent
        metadata = {"started": execute.started, "status": content["status"]}
        return self.reply(execute.request, content, metadata), abort

    # ---- aborting queued executes after an error ------------------------------------------

    def hold(self, request: Request) -> None:
        """Queue a request that arrived before an error reply went out (see :meth:`finish_execute`)."""
        self._held.append(request)

    def next_held(self) -> Request | None:
        """The next held request that must run; held execute requests are answered by :meth:`abort`."""
        return self._held.popleft() if self._held else None

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def must_abort(self, request: Request) -> bool:
        """A held request is aborted if it is an execute request (ipykernel's rule, which nbclient relies on)."""
        return request.msg_type == "execute_request"

    def abort(self, request: Request) -> list[Outgoing]:
        aborted = {"status": "aborted"}
        return [self.busy(request), self.reply(request, aborted, aborted), self.idle(request)]

    # ---- iopub subscribers -----------------------------------------------------------------

    def needs_subscriber(self, request: Request) -> float:
        """Seconds the request may wait for an iopub subscriber before it runs (0: run now).

        ``subscribers`` is set by the transport: how many iopub subscriptions are active.
        A frontend such as ``jupyter console`` sends ``kernel_info_request`` and then its first
        cell without waiting for its iopub subscription; a kernel that answers at once would
        publish that cell's output before anyone listens, and the frontend would wait forever
        for an ``idle``. So while nobody is subscribed, a shell request waits, boundedly, for a
        subscriber. Each client (told apart by its routing identity; jupyter_client: the
        session id) waits at most once, so a client that never subscribes is slowed once.

        A frontend attaching while another is subscribed (``jupyter console --existing`` beside
        a notebook) is not held: the kernel cannot tell whether that frontend's subscription is
        still on its way, and holding every new shell client would stall clients that share one
        subscription between several shell sockets. jupyter_client's ``wait_for_ready`` (used by
        nbclient, papermill, Jupyter Server) does not race this way.
        """
        if request.channel != "shell" or self.subscribers > 0 or not request.idents:
            return 0.0
        if request.idents[0] in self._waited:
            return 0.0
        return self.SUBSCRIBER_WAIT

    def waited(self, request: Request) -> None:
        """The wait for a subscriber ended (one came, or the time ran out): this client never waits again."""
        if request.idents:
            if len(self._waited) >= 4096:  # bounded: forget old clients
                self._waited.clear()
            self._waited.add(request.idents[0])
