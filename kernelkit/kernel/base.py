"""The ``Kernel`` base class: the API of ipykernel's wrapper kernels, without IPython.

Subclass it, set the class attributes, override ``do_execute`` (and any other ``do_*``
hook, plain or ``async def``), then start it with ``MyKernel.launch()``. Kernels written for
``ipykernel.kernelbase.Kernel`` run unchanged apart from their import and launch lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kernelkit._version import __version__
from kernelkit.kernel.comms import CommManager, provide_comm_package
from kernelkit._log import log as kernelkit_log
from kernelkit.protocol.wire import PROTOCOL_VERSION, Frame, Message

if TYPE_CHECKING:
    import argparse
    import logging

    from kernelkit.transport.channels import Channel
    from kernelkit.transport.server import KernelServer
    from kernelkit.protocol.session import Session


class StdinNotImplementedError(NotImplementedError):
    """``input()`` was called but the frontend did not offer stdin for this request."""


MimeBundle = dict[str, Any]


class Kernel:
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

    # Set by the server before __init__ runs, so subclass constructors can use them.
    session: Session
    iopub_socket: Channel
    stdin_socket: Channel
    shell_stream: Channel
    control_stream: Channel
    _server: KernelServer | None = None
    #: This kernel's own command-line options (see :meth:`add_arguments`), parsed.
    arguments: argparse.Namespace | None = None

    def __init__(self, **kwargs: Any) -> None:
        """Accepts and ignores ipykernel's traitlets keyword arguments (``parent``, ``log``...)."""
        self.execution_count = 0
        self.comm_manager = CommManager(self)
        provide_comm_package(self)  # the `comm` package (ipywidgets...) talks through comm_manager
        self._parents: dict[str, tuple[list[bytes], Message]] = {}
        self._allow_stdin = False

    @classmethod
    def launch(cls, argv: Sequence[str] | None = None) -> None:
        """Run this kernel as a process (``-f CONNECTION_FILE`` as in kernel.json ``argv``)."""
        from kernelkit.kernel.app import launch

        launch(cls, argv)

    @classmethod
    def add_arguments(cls, parser: argparse._ArgumentGroup) -> None:
        """Declare this kernel's own command-line options (``parser.add_argument(...)``).

        They follow the kernel options in the kernelspec's ``argv`` (``kernelkit install TARGET
        -- --database FILE``); the parsed values are ``self.arguments`` when ``__init__`` runs.
        """

    @property
    def log(self) -> logging.Logger:
        """A ``logging.Logger``, as ipykernel's ``self.log`` (created on first use: logging is slow to import)."""
        return self.__dict__.get("_log") or kernelkit_log.logger

    @log.setter
    def log(self, logger: logging.Logger) -> None:
        self.__dict__["_log"] = logger

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

    def do_inspect(self, code: str, cursor_pos: int, detail_level: int = 0, omit_sections: Sequence[str] = ()) -> dict[str, Any]:
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
            "supported_features": list(self.supported_features),
            "debugger": False,
        }

    # ---- parents: which request the output belongs to ------------------------------------

    def set_parent(self, ident: list[bytes], parent: Message, channel: str = "shell") -> None:
        self._parents[channel] = (ident, parent)

    def get_parent(self, channel: str = "shell") -> Message:
        return self._parents.get(channel, ([], {}))[1]

    @property
    def _parent_header(self) -> Message:
        return self.get_parent()

    # ---- sending -------------------------------------------------------------------------

    def send_response(
        self,
        stream: Channel | None,
        msg_or_type: Message | str,
        content: dict[str, Any] | None = None,
        ident: bytes | Sequence[bytes] | None = None,
        buffers: Sequence[Frame] | None = None,
        track: bool = False,
        header: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        channel: str = "shell",
    ) -> Message:
        """Send a message whose parent is the request being handled (on ``channel``)."""
        if stream is self.iopub_socket:
            self._flush_output()
        return self.session.send(
            stream, msg_or_type, content, self.get_parent(channel), ident, buffers, track, header, metadata
        )

    def print(self, *objects: Any, sep: str = " ", end: str = "\n", stream: str = "stdout") -> None:
        """Show text in the output area (a ``stream`` message on ``stdout`` or ``stderr``)."""
        text = sep.join(str(o) for o in objects) + end
        self.send_response(self.iopub_socket, "stream", {"name": stream, "text": text})

    def display(
        self, data: Any, metadata: dict[str, Any] | None = None, *, display_id: str | None = None
    ) -> None:
        """Show rich output: a MIME bundle such as ``{"text/html": "<b>hi</b>"}``, a str (text/plain),
        or any object with IPython's ``_repr_*_`` methods (see :mod:`kernelkit.kernel.display`)."""
        from kernelkit.kernel.display import display_data  # on first use: start-up pays nothing

        bundle, md = display_data(data)
        content: dict[str, Any] = {"data": bundle, "metadata": {**md, **(metadata or {})}, "transient": {}}
        if display_id is not None:
            content["transient"]["display_id"] = display_id
        self.send_response(self.iopub_socket, "display_data", content)

    def update_display(self, data: Any, *, display_id: str, metadata: dict[str, Any] | None = None) -> None:
        """Replace what an earlier ``display(..., display_id=...)`` showed, wherever it is shown."""
        from kernelkit.kernel.display import display_data

        bundle, md = display_data(data)
        content = {"data": bundle, "metadata": {**md, **(metadata or {})}, "transient": {"display_id": display_id}}
        self.send_response(self.iopub_socket, "update_display_data", content)

    def clear_output(self, wait: bool = False) -> None:
        """Clear the output area (``wait``: only when the next output arrives, to avoid flicker)."""
        self.send_response(self.iopub_socket, "clear_output", {"wait": wait})

    def _flush_output(self) -> None:
        if self._server is not None:
            self._server.flush_stdio()

    # ---- stdin -----------------------------------------------------------------------------

    def raw_input(self, prompt: str = "") -> str:
        """Ask the frontend for a line of input (only while executing with ``allow_stdin``)."""
        return self._input_request(prompt, password=False)

    def getpass(self, prompt: str = "Password: ", stream: Any = None) -> str:
        """Like ``raw_input`` but the frontend hides what is typed."""
        return self._input_request(prompt, password=True)

    def _input_request(self, prompt: str, password: bool) -> str:
        if not self._allow_stdin or self._server is None:
            raise StdinNotImplementedError(
                "input was requested, but this frontend does not support input requests (allow_stdin is false)"
            )
        self._flush_output()
        return self._server.request_input(str(prompt), password, *self._parents["shell"])
