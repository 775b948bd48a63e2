"""SIGINT handling that interrupts user code and never a half-sent message.

A KeyboardInterrupt raised between two frames of a multipart send would leave a partial
message on the socket and corrupt the next one. So SIGINT only becomes KeyboardInterrupt
while a request is being handled (``armed``), and is held back inside ``critical``
sections (sends) until they end.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from kernelkit._log import log


class InterruptGate:
    def __init__(self) -> None:
        self.armed = False
        self._depth = 0
        self._pending = False
        self._main = threading.main_thread().ident
        self._critical = _Critical(self)
        #: Called for a SIGINT that finds no user code running, which otherwise ignores it (a
        #: kernel started from a terminal says there how to stop it).
        self.on_idle: Callable[[], None] | None = None

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if not self.armed:
            log.info("SIGINT while idle: nothing to interrupt")
            if self.on_idle is not None:
                self.on_idle()
            return
        if self._depth:
            self._pending = True
            return
        raise KeyboardInterrupt

    def critical(self) -> _Critical:
        """Defer SIGINT (on the main thread, where Python runs signal handlers) until the block ends."""
        return self._critical

    def arm(self) -> None:
        """From now on SIGINT interrupts (user code on the main thread; other threads: no effect).

        Plain calls, not a context manager: they run around every request's user code.
        """
        if threading.get_ident() == self._main:
            self.armed = True
            self._pending = False

    def disarm(self) -> None:
        """SIGINT no longer interrupts: the main thread is back in kernelkit's code."""
        if threading.get_ident() == self._main:
            self.armed = False

    def interrupt_main(self) -> None:
        """Deliver SIGINT to the main thread, so a blocking sleep or poll there wakes too."""
        assert self._main is not None
        signal.pthread_kill(self._main, signal.SIGINT)


class _Critical:
    """The context manager :meth:`InterruptGate.critical` returns: a class, not a generator,
    because it wraps every message sent (it keeps no state of its own, so one serves all)."""

    __slots__ = ("_gate",)

    def __init__(self, gate: InterruptGate) -> None:
        self._gate = gate

    def __enter__(self) -> None:
        if threading.get_ident() == self._gate._main:
            self._gate._depth += 1

    def __exit__(self, *exc_info: object) -> None:
        gate = self._gate
        if threading.get_ident() != gate._main:
            return
        gate._depth -= 1
        if not gate._depth and gate._pending:
            gate._pending = False
            if gate.armed:
                raise KeyboardInterrupt
