"""What the Kernel API needs from the transport, stated as an interface.

The ``Kernel`` base class reaches its process's sockets only through these methods (the
transport's ``KernelServer`` provides them), never through private attributes: the way xeus's
interpreter is given a publisher and a stdin sender. A ``Kernel()`` built without a server
(as kernels' own unit tests do) has none, and its sends are no-ops, as in ipykernel.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from kernelkit.protocol.core import KernelCore, Outgoing
from kernelkit.protocol.session import Session
from kernelkit.protocol.wire import Message


class KernelIO(Protocol):
    session: Session
    core: KernelCore

    def send(self, out: Outgoing) -> None:
        """Send a message on its channel (shell/control/stdin: from the thread serving that channel)."""

    def socket(self, channel: str) -> Any:
        """The stream object ipykernel code passes to ``session.send`` for ``channel``."""

    def flush_output(self, wait: bool = True) -> None:
        """Queue buffered ``print`` output; with ``wait``, until it has been published."""

    def hold_queued(self) -> None:
        """Before an error reply: set aside the shell requests already queued, to be aborted."""

    def request_input(self, prompt: str, password: bool, ident: list[bytes], parent: Message) -> str:
        """Ask the frontend that sent ``parent`` for a line of input and wait for it."""

    def interruptible(self) -> AbstractContextManager[None]:
        """A block an interrupt may end with KeyboardInterrupt (user code on the main thread)."""

    def interrupt(self) -> None:
        """Interrupt the running request on the main thread (message-mode interrupts)."""

    def stop(self, reason: str) -> None:
        """End the process's serving loop (after the current reply)."""

    def enable_subshells(self) -> None:
        """Serve kernel subshells (before the server starts): shell requests with a ``subshell_id``
        run on their subshell's thread."""

    def create_subshell(self) -> str:
        """Start a subshell; its id (control thread)."""

    def delete_subshell(self, subshell_id: str) -> bool:
        """End a subshell once its queued requests are served; False when there is no such subshell."""

    def list_subshells(self) -> list[str]:
        """The ids of the live subshells."""

    @property
    def stopping(self) -> bool:
        """True once shutdown, SIGTERM or the parent's death has asked the kernel to stop."""
