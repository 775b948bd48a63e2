"""SIGINT handling that interrupts user code and never a half-sent message or a half-taken lock.

A KeyboardInterrupt raised between two frames of a multipart send would leave a partial
message on the socket and corrupt the next one; one raised inside ``threading``'s Python-level
code (a ``Condition``'s ``__enter__`` after it took its lock, a Timer being started or
cancelled) leaves a lock taken forever, and the kernel hangs at its next use. So SIGINT only
becomes KeyboardInterrupt while user code runs (``armed``), is held back inside ``critical``
sections (sends, and the output streams' and iopub queue's bookkeeping, which the main thread
runs on behalf of user code) and raised as they end, and is dropped once user code is ending.
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
        code = frame.f_code if frame is not None else None
        if code in _ENDING:
            log.info("SIGINT as user code ended: nothing left to interrupt")
            return
        if self._depth or code in _CRITICAL_EDGES:  # in a critical section, or entering or leaving one
            self._pending = True
            return
        raise KeyboardInterrupt

    def user_code(self, before: Callable[[], None], after: Callable[[], None]) -> UserCode:
        """The block user code runs in: ``before()``, then armed; disarmed, then ``after()``."""
        return UserCode(self, before, after)

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


class UserCode:
    """What :meth:`InterruptGate.user_code` returns: a class, not a generator, because it wraps the
    user code of every request (it keeps no state of its own, so one serves all)."""

    __slots__ = ("_after", "_before", "_gate")

    def __init__(self, gate: InterruptGate, before: Callable[[], None], after: Callable[[], None]) -> None:
        self._gate = gate
        self._before = before
        self._after = after

    def __enter__(self) -> None:
        self._before()
        self._gate.arm()

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._gate.disarm()
        finally:
            self._after()


#: The code that runs as user code ends, up to the disarm: a SIGINT handled there (Python runs
#: handlers at a function's entry too) comes too late to interrupt anything, and raising there
#: would skip the disarm and leave every later SIGINT raising in kernelkit's own code.
_ENDING = frozenset({UserCode.__exit__.__code__, InterruptGate.disarm.__code__})
#: A SIGINT handled as a critical section is entered or left (Python runs handlers at a
#: function's entry) is held back like one inside it: raising there would skip the depth count.
_CRITICAL_EDGES = frozenset({_Critical.__enter__.__code__, _Critical.__exit__.__code__})
