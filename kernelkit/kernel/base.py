"""The ``Kernel`` base class: the API of ipykernel's wrapper kernels, without IPython.

Subclass it, set the class attributes, override ``do_execute`` (and any other ``do_*``
hook, plain or ``async def``), then start it with ``MyKernel.launch()``. Kernels written for
``ipykernel.kernelbase.Kernel`` run unchanged apart from their import and launch lines.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kernelkit._log import log as kernelkit_log
from kernelkit._version import __version__
from kernelkit.kernel.app import launch
from kernelkit.kernel.comms import CommManager, provide_comm_package
from kernelkit.kernel.compat import Config, TraitsOnDemand, set_traits
from kernelkit.kernel.handlers import RequestHandlers, error_content, resolve
from kernelkit.protocol.core import INPUT_EOF, SUBSHELLS_FEATURE, Request
from kernelkit.protocol.wire import PROTOCOL_VERSION, Frame, Message
from kernelkit.transport.streams import SILENT

if TYPE_CHECKING:
    import argparse
    import logging

    from kernelkit.kernel.io import KernelIO
    from kernelkit.protocol.session import Session


class StdinNotImplementedError(NotImplementedError):
    """``input()`` was called but the frontend did not offer stdin for this request."""


MimeBundle = dict[str, Any]

_CONSTRUCTOR_NAMES = frozenset(("session", "iopub_socket", "stdin_socket", "parent", "log"))


class Kernel(RequestHandlers, metaclass=TraitsOnDemand):
    """The base class of a kernel (ipykernel's ``Kernel`` API). A subclass that declares traitlets
    traits (``x = Dict({...})``) is made a ``traitlets.HasTraits`` class, as ipykernel's kernels are."""

    # What kernel_info_reply tells frontends; override in subclasses.
    implementation: str = "kernelkit"
    implementation_version: str = __version__
    banner: str = ""
    language: str = ""  # ipykernel's older spelling of language_info["name"]
    language_version: str = ""  # and of language_info["version"]
    language_info: dict[str, Any] = {}
    help_links: list[dict[str, str]] = []
    #: JEP 92 feature names, e.g. "kernel subshells"; only what the kernel really supports.
    supported_features: Sequence[str] = ()
    protocol_version: str = PROTOCOL_VERSION
    #: Route ``print()`` and ``sys.stderr`` writes to the frontend as ``stream`` messages,
    #: as ipykernel does for every kernel it runs.
    redirect_stdio: bool = True
    #: Kernel subshells (JEP 91): shell requests carrying a ``subshell_id`` run on that
    #: subshell's own thread, concurrently with the main shell, and ``kernel_info`` advertises
    #: ``"kernel subshells"``. Opt in only if every hook is thread-safe (docs/kernel-api.md).
    subshells: bool = False

    # What the process gives the kernel; set before __init__ runs when a server starts the
    # kernel (so subclass constructors can use them), None for a Kernel() built without one.
    session: Session | None = None
    iopub_socket: Any = None
    stdin_socket: Any = None
    shell_stream: Any = None
    control_stream: Any = None
    #: The application object (ipykernel: the IPKernelApp); kernelkit's has ``extra_args``.
    parent: Any = None
    _io: KernelIO | None = None
    #: This kernel's own command-line options (see :meth:`add_arguments`), parsed.
    arguments: argparse.Namespace | None = None

    def __init__(self, **kwargs: Any) -> None:
        """Takes ipykernel's keyword arguments ``session``, ``iopub_socket``, ``stdin_socket``,
        ``log`` and ``parent`` (how kernels are built in their own unit tests), and the names of
        traits a subclass declares (traitlets); others are ignored."""
        for name in ("session", "iopub_socket", "stdin_socket", "parent", "log"):
            if kwargs.get(name) is not None:
                setattr(self, name, kwargs[name])
        set_traits(self, {k: v for k, v in kwargs.items() if k not in _CONSTRUCTOR_NAMES})
        self._execution_count = 0
        self._thread_counts: dict[int, int] = {}  # subshells: thread id -> the count of the cell it runs
        self.comm_manager = CommManager(self)
        provide_comm_package(self)  # the `comm` package (ipywidgets...) talks through comm_manager
        self._allow_stdin = False
        self._serving: dict[int, Request] = {}  # thread id -> the request it is handling
        self._silent_threads: set[int] = set()  # threads running a silent execute request
        self._last: dict[str, Request] = {}  # channel -> the request handled last
        # The parent set by set_thread_parent, per thread: thread-local, so it ends with its
        # thread (thread idents are reused: a dict by ident pinned later, unrelated threads).
        self._pins = threading.local()
        self._count_lock = threading.Lock()  # execution_count is shared by the main shell and subshells
        self.shell_handlers, self.control_handlers = self._handler_tables()

    @classmethod
    def launch(cls, argv: Sequence[str] | None = None) -> None:
        """Run this kernel as a process (``-f CONNECTION_FILE`` as in kernel.json ``argv``)."""
        launch(cls, argv)

    @classmethod
    def add_arguments(cls, parser: argparse._ArgumentGroup) -> None:
        """Declare this kernel's own command-line options (``parser.add_argument(...)``).

        They follow the kernel options in the kernelspec's ``argv`` (``kernelkit install TARGET
        -- --database FILE``); the parsed values are ``self.arguments`` when ``__init__`` runs.
        """

    @property
    def execution_count(self) -> int:
        """The kernel's execution count (one for the whole kernel, main shell and subshells alike).

        With subshells, read in ``do_execute`` it is the count *of the cell being run on the
        calling thread*, even when a cell on another shell has counted since.
        """
        if self._thread_counts:
            count = self._thread_counts.get(threading.get_ident())
            if count is not None:
                return count
        return self._execution_count

    @execution_count.setter
    def execution_count(self, value: int) -> None:
        self._execution_count = value

    @property
    def log(self) -> logging.Logger:
        """A ``logging.Logger``, as ipykernel's ``self.log`` (created on first use: logging is slow to import)."""
        return self.__dict__.get("_log") or kernelkit_log.logger

    @log.setter
    def log(self, logger: logging.Logger) -> None:
        self.__dict__["_log"] = logger

    @property
    def config(self) -> Config:
        """traitlets-style configuration, as ipykernel kernels read it (kernelkit itself reads none):
        ``self.config["IPKernelApp"]["connection_file"]`` is this kernel's connection file."""
        config = self.__dict__.get("_config")
        if config is None:
            config = self.__dict__["_config"] = Config()
            connection_file = getattr(self.parent, "connection_file", None)
            if connection_file:
                config["IPKernelApp"]["connection_file"] = connection_file
        return config

    @config.setter
    def config(self, config: dict[str, Any]) -> None:
        self.__dict__["_config"] = config if isinstance(config, Config) else Config(config)

    # ---- hooks -------------------------------------------------------------------------

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, str] | None = None,
        allow_stdin: bool = False,
    ) -> dict[str, Any]:
        """Run ``code``; return the execute_reply content. Must be overridden."""
        raise NotImplementedError(f"{type(self).__name__} does not implement do_execute")

    def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        return {"status": "ok", "matches": [], "cursor_start": cursor_pos, "cursor_end": cursor_pos, "metadata": {}}

    def do_inspect(
        self, code: str, cursor_pos: int, detail_level: int = 0, omit_sections: Sequence[str] = ()
    ) -> dict[str, Any]:
        return {"status": "ok", "found": False, "data": {}, "metadata": {}}

    def do_history(
        self,
        hist_access_type: str,
        output: bool,
        raw: bool,
        session: int | None = None,
        start: int | None = None,
        stop: int | None = None,
        n: int | None = None,
        pattern: str | None = None,
        unique: bool = False,
    ) -> dict[str, Any]:
        return {"status": "ok", "history": []}

    def do_is_complete(self, code: str) -> dict[str, Any]:
        return {"status": "unknown"}

    def do_kernel_info(self) -> dict[str, Any]:
        return self.kernel_info

    def do_shutdown(self, restart: bool) -> dict[str, Any]:
        """Release resources before the process exits; return the shutdown_reply content."""
        return {"status": "ok", "restart": restart}

    def do_interrupt(self) -> dict[str, Any] | None:
        """Called on ``interrupt_request`` (message mode) before the running cell is interrupted."""
        return None

    # ---- what kernel_info_reply says ---------------------------------------------------

    @property
    def kernel_info(self) -> dict[str, Any]:
        language_info = {"name": self.language, "version": self.language_version}
        language_info.update(self.language_info)
        return {
            "status": "ok",
            "protocol_version": self.protocol_version,
            "implementation": self.implementation,
            "implementation_version": self.implementation_version,
            "language_info": language_info,
            "banner": self.banner,
            "help_links": list(self.help_links),
            "supported_features": self._features(),
            "debugger": False,
        }

    def _features(self) -> list[str]:
        """``supported_features``: "kernel subshells" exactly when the class opted in (``subshells = True``)."""
        features = [f for f in self.supported_features if f != SUBSHELLS_FEATURE]
        if self.subshells:
            features.append(SUBSHELLS_FEATURE)
        return features

    # ---- serving: the transport's Application interface -----------------------------------

    def handle_request(self, request: Request) -> None:
        """Run one request through ``shell_handlers`` / ``control_handlers``; never raises.

        The handler (ipykernel's signature: ``handler(stream, ident, parent)``, plain or
        ``async``) sends its own reply; an exception becomes an ``error`` on iopub and an error
        reply, so the client is never left waiting.
        """
        table = self.control_handlers if request.channel == "control" else self.shell_handlers
        handler = table.get(request.msg_type)
        thread = threading.get_ident()
        self._serving[thread] = request
        self._last[request.channel] = request
        io = self._io
        stream = io.socket(request.channel) if io is not None else None
        try:
            if handler is None:
                raise NotImplementedError(f"{request.msg_type} is not supported by this kernel")
            resolve(handler(stream, request.idents, request.msg))
        except (Exception, KeyboardInterrupt) as exc:  # KeyboardInterrupt: a hook run as user code was interrupted
            kernelkit_log.error("%s failed", request.msg_type, exc_info=True)
            content = error_content(exc)
            self._publish_error(content)
            if request.msg_type.endswith("_request"):
                self._reply(stream, request.idents, request.msg, content)
        finally:
            del self._serving[thread]

    def parent_of_thread(self) -> Message | None:
        """The request the calling thread's ``print`` output belongs to, or ``SILENT`` while it runs a
        silent execute request, whose output the spec says is not broadcast."""
        if threading.get_ident() in self._silent_threads:
            return SILENT
        return self._thread_parent()

    def _thread_parent(self) -> Message | None:
        """The request whose output the calling thread writes (see :meth:`set_thread_parent`)."""
        pinned = getattr(self._pins, "parent", None)
        if pinned is not None:
            return pinned
        request = self._serving.get(threading.get_ident()) or self._last.get("shell")
        return request.msg if request is not None else None

    # ---- parents: which request the output belongs to ------------------------------------

    def set_parent(self, ident: list[bytes], parent: Message, channel: str = "shell") -> None:
        """Make ``parent`` the current request of ``channel`` (as ipykernel's ``set_parent``)."""
        self._last[channel] = Request(channel, list(ident), parent)

    def get_parent(self, channel: str | None = None) -> Message:
        """The request being handled on ``channel``; ``None``: the calling thread's (as ipykernel 7)."""
        if channel is None:
            return self._thread_parent() or {}
        request = self._last.get(channel)
        return request.msg if request is not None else {}

    @property
    def _parent_header(self) -> Message:
        return self.get_parent()

    @functools.cached_property
    def ident(self) -> str:
        """This kernel's unique id, as ipykernel's ``Kernel.ident`` (published kernels build iopub topics on it)."""
        import uuid  # here: start-up does not need it

        return str(uuid.uuid4())

    def _topic(self, topic: str) -> bytes:
        """An iopub topic of this kernel (``kernel.IDENT.TOPIC``), as ipykernel's ``Kernel._topic``."""
        return f"kernel.{self.ident}.{topic}".encode()

    def set_thread_parent(self, parent: Message) -> tuple[int, Message | None]:
        """Attribute the calling thread's output (print, display, send_response) to ``parent``.

        A background thread's output goes by default to whichever cell is running when it
        writes (as in ipykernel 7). A thread started by a cell can pin its output to that cell:
        ``parent = self.get_parent()`` in the cell, then ``token = kernel.set_thread_parent(parent)``
        in the thread, and ``kernel.reset_thread_parent(token)`` when done. The pin belongs to
        the thread that sets it: threads it starts, and tasks sharing its context, are not pinned.
        """
        token = (threading.get_ident(), getattr(self._pins, "parent", None))
        self._pins.parent = parent
        return token

    def reset_thread_parent(self, token: tuple[int, Message | None]) -> None:
        """Undo the :meth:`set_thread_parent` that returned ``token``."""
        thread, previous = token
        if thread != threading.get_ident():
            raise ValueError("reset_thread_parent must be called by the thread that called set_thread_parent")
        self._pins.parent = previous

    def _current_request(self) -> Request | None:
        return self._serving.get(threading.get_ident()) or self._last.get("shell")

    # ---- sending -------------------------------------------------------------------------

    def send_response(
        self,
        stream: Any,
        msg_or_type: Message | str,
        content: dict[str, Any] | None = None,
        ident: bytes | Sequence[bytes] | None = None,
        buffers: Sequence[Frame] | None = None,
        track: bool = False,
        header: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        channel: str | None = None,
    ) -> Message | None:
        """Send a message whose parent is the current request (of ``channel``; ``None``: this thread's).

        Without a session (a ``Kernel()`` built without a server) nothing is sent, as in ipykernel.
        """
        if self.session is None:
            return None
        if stream is self.iopub_socket:
            self._flush_output()
        return self.session.send(
            stream, msg_or_type, content, self.get_parent(channel), ident, buffers, track, header, metadata
        )

    def print(self, *objects: Any, sep: str = " ", end: str = "\n", stream: str = "stdout") -> None:
        """Show text in the output area (a ``stream`` message on ``stdout`` or ``stderr``)."""
        if self._muted():
            return
        text = sep.join(str(o) for o in objects) + end
        self.send_response(self.iopub_socket, "stream", {"name": stream, "text": text})

    def display(self, data: Any, metadata: dict[str, Any] | None = None, *, display_id: str | None = None) -> None:
        """Show rich output: a MIME bundle such as ``{"text/html": "<b>hi</b>"}``, a str (text/plain),
        or any object with IPython's ``_repr_*_`` methods (see :mod:`kernelkit.kernel.display`)."""
        if self._muted():
            return
        from kernelkit.kernel.display import display_data  # on first use: start-up pays nothing

        bundle, md = display_data(data)
        content: dict[str, Any] = {"data": bundle, "metadata": {**md, **(metadata or {})}, "transient": {}}
        if display_id is not None:
            content["transient"]["display_id"] = display_id
        self.send_response(self.iopub_socket, "display_data", content)

    def update_display(self, data: Any, *, display_id: str, metadata: dict[str, Any] | None = None) -> None:
        """Replace what an earlier ``display(..., display_id=...)`` showed, wherever it is shown."""
        if self._muted():
            return
        from kernelkit.kernel.display import display_data

        bundle, md = display_data(data)
        content = {"data": bundle, "metadata": {**md, **(metadata or {})}, "transient": {"display_id": display_id}}
        self.send_response(self.iopub_socket, "update_display_data", content)

    def clear_output(self, wait: bool = False) -> None:
        """Clear the output area (``wait``: only when the next output arrives, to avoid flicker)."""
        if self._muted():
            return
        self.send_response(self.iopub_socket, "clear_output", {"wait": wait})

    def _muted(self) -> bool:
        """The calling thread runs a ``silent`` execute request: the spec says it broadcasts no output,
        so kernelkit's output helpers (print, display, ...) send nothing (``send_response`` still does)."""
        return threading.get_ident() in getattr(self, "_silent_threads", ())

    def _flush_output(self) -> None:
        if self._io is not None:
            self._io.flush_output(wait=False)

    # ---- stdin -----------------------------------------------------------------------------

    def raw_input(self, prompt: str = "") -> str:
        """Ask the frontend for a line of input (only while executing with ``allow_stdin``)."""
        return self._input_request(prompt, password=False)

    def getpass(self, prompt: str = "Password: ", stream: Any = None) -> str:
        """Like ``raw_input`` but the frontend hides what is typed."""
        return self._input_request(prompt, password=True)

    def _input_request(self, prompt: str, password: bool) -> str:
        if threading.current_thread() is not threading.main_thread():
            raise StdinNotImplementedError(
                "input was requested from a thread other than the main shell (a subshell or a thread of "
                "the kernel's); only cells on the main shell can ask the frontend for input"
            )
        request = self._serving.get(threading.get_ident())
        if not self._allow_stdin or self._io is None or request is None:
            raise StdinNotImplementedError(
                "input was requested, but this frontend does not support input requests (allow_stdin is false)"
            )
        value = self._io.request_input(str(prompt), password, request.idents, request.msg)
        if value == INPUT_EOF:  # the frontend's end-of-file (Ctrl-D), as ipykernel reads it
            raise EOFError("end of input (the frontend sent end-of-file)")
        return value
