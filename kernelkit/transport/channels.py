"""The kernel's sockets, each used by exactly one thread, and the threads that own iopub and heartbeat.

ZeroMQ sockets are not thread-safe. Who owns which socket, in one place:

======== ====================================== =================================================
socket   owner thread                           how other threads send on it
======== ====================================== =================================================
shell    main (runs the shell loop, user code)  they don't: replies come from the handler's thread
control  ``kernelkit-control``                  they don't
stdin    main (``input()`` runs inside a cell)  they don't
iopub    ``kernelkit-iopub`` (:class:`Publisher`) through its queue: one order for every thread
hb       ``kernelkit-hb`` (a C-level echo proxy) nobody else touches it
======== ====================================== =================================================

:class:`OwnedSocket` checks the rule on every use and raises :class:`WrongThread` when broken.
Messages are frames to this module: it knows no JSON.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import zmq

from kernelkit._log import log
from kernelkit.protocol.wire import Frame

# Plain ints: pyzmq's constants are enum members, and ``SNDMORE | flags`` on them costs
# microseconds per frame in Python 3.11's enum module.
_SNDMORE = int(zmq.SNDMORE)
_NOBLOCK = int(zmq.NOBLOCK)


def send_frames(socket: zmq.Socket, frames: Sequence[Frame], copy: bool = True, track: bool = False) -> Any:
    """``socket.send_multipart(frames)``, minus pyzmq's per-frame enum arithmetic."""
    if not all(type(frame) is bytes for frame in frames):  # buffers: pyzmq type-checks them all first
        return socket.send_multipart(frames, copy=copy, track=track)
    send = socket.send
    for frame in frames[:-1]:
        send(frame, _SNDMORE, copy=copy, track=track)
    return send(frames[-1], 0, copy=copy, track=track)


class WrongThread(RuntimeError):
    """A socket was used from a thread that does not own it (a kernelkit bug, or a kernel's)."""


class OwnedSocket:
    """A socket and the one thread that may use it (the first to :meth:`claim` it)."""

    def __init__(
        self, socket: zmq.Socket, name: str, critical: Callable[[], AbstractContextManager[Any]] = nullcontext
    ) -> None:
        self.socket = socket
        self.name = name
        self.owner: int | None = None
        #: Wraps every send, so a signal cannot cut a multipart message in two.
        self.critical = critical

    def claim(self) -> None:
        """Make the calling thread the owner; from then on only it may use the socket."""
        self.owner = threading.get_ident()

    def check(self) -> None:
        if self.owner != threading.get_ident():
            owner = next((t.name for t in threading.enumerate() if t.ident == self.owner), self.owner)
            raise WrongThread(
                f"the {self.name} socket is owned by thread {owner!r} and was used from "
                f"{threading.current_thread().name!r}"
            )

    def send_multipart(self, frames: Sequence[Frame], copy: bool = True, track: bool = False) -> Any:
        if self.owner != threading.get_ident():
            self.check()
        with self.critical():
            return send_frames(self.socket, frames, copy, track)

    def recv_frames(self, flags: int = 0) -> list[memoryview]:
        """One multipart message as buffers, without copying large frames."""
        if self.owner != threading.get_ident():
            self.check()
        return [frame.buffer for frame in self.socket.recv_multipart(flags, copy=False)]

    def __repr__(self) -> str:
        return f"<OwnedSocket {self.name}>"


class Publisher:
    """The iopub channel: an XPUB socket owned by its own thread, fed through one ordered queue.

    Any thread may call :meth:`send_multipart`: the frames join a queue the iopub thread sends
    in order, so whatever one thread queued before another (a flush of buffered output before
    the ``idle`` that ends a request) is published in that order. The thread also reads
    subscriptions from the XPUB socket, greets each new subscriber with ``iopub_welcome``
    (protocol 5.5, JEP 65) and counts them, so the shell loop can wait for a frontend's
    subscription before it runs that frontend's first request (see ``KernelCore.needs_subscriber``).
    """

    name = "iopub"

    def __init__(self, socket: zmq.Socket, welcome: Callable[[bytes], list[Frame]]) -> None:
        self.socket = socket
        self._welcome = welcome
        self._queue: deque[tuple[Sequence[Frame], bool]] = deque()
        self._queued = 0  # messages ever queued
        self._sent = 0  # messages ever sent (or dropped at shutdown)
        self._asleep = False
        self._bell_r, self._bell_w = os.pipe()
        os.set_blocking(self._bell_r, False)
        os.set_blocking(self._bell_w, False)
        self._stop = False
        self._changed = threading.Condition(threading.Lock())
        self._waiters = 0
        self.subscriptions = 0
        self._thread = threading.Thread(target=self._run, name="kernelkit-iopub", daemon=True)
        self.owner: int | None = None

    # ---- any thread --------------------------------------------------------------------------

    def send_multipart(self, frames: Sequence[Frame], copy: bool = True, track: bool = False) -> None:
        """Queue one message for publication (``track`` is not supported on iopub and ignored)."""
        self._queue.append((frames, copy))
        self._queued += 1
        if self._asleep:
            self._ring()

    def _ring(self) -> None:
        with contextlib.suppress(BlockingIOError):  # the pipe is full of rings: it will wake anyway
            os.write(self._bell_w, b"x")

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far has been handed to ZeroMQ; False on timeout."""
        target = self._queued
        if self._sent >= target or threading.get_ident() == self.owner:
            return True
        with self._changed:
            self._waiters += 1
            try:
                self._ring()
                return self._changed.wait_for(lambda: self._sent >= target or self._stop, timeout)
            finally:
                self._waiters -= 1

    def wait_for_subscriptions(self, count: int, timeout: float) -> int:
        """Wait until at least ``count`` subscriptions have arrived in all; returns how many have."""
        with self._changed:
            self._waiters += 1
            try:
                self._changed.wait_for(lambda: self.subscriptions >= count or self._stop, timeout)
            finally:
                self._waiters -= 1
            return self.subscriptions

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Send what is queued, then end the thread (the socket is closed by its owner)."""
        self._stop = True
        self._ring()
        self._thread.join(timeout=5)
        os.close(self._bell_r)
        os.close(self._bell_w)

    # ---- the iopub thread ----------------------------------------------------------------------

    def _run(self) -> None:
        self.owner = threading.get_ident()
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self._bell_r, zmq.POLLIN)
        try:
            while True:
                self._asleep = True
                if not self._queue and not self._stop:
                    ready = dict(poller.poll())
                else:
                    ready = dict(poller.poll(0))
                self._asleep = False
                if self._bell_r in ready:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self._bell_r, 4096):
                            pass
                if self.socket in ready:
                    self._greet_subscribers()
                self._send_queued()
                if self._stop:
                    return
        except zmq.ZMQError as exc:  # the context was terminated under us
            log.debug("iopub thread stops: %s", exc)
        finally:
            with self._changed:
                self._stop = True
                self._changed.notify_all()
            self.socket.close(linger=1000)

    def _send_queued(self) -> None:
        queue, socket = self._queue, self.socket
        sent = 0
        while queue:
            frames, copy = queue.popleft()
            try:
                send_frames(socket, frames, copy)
            except zmq.ZMQError as exc:
                log.warning("an iopub message could not be sent: %s", exc)
            sent += 1
        if sent:
            self._sent += sent
            if self._waiters:
                with self._changed:
                    self._changed.notify_all()

    def _greet_subscribers(self) -> None:
        greeted = 0
        while True:
            try:
                event = self.socket.recv(_NOBLOCK)
            except zmq.Again:
                break
            if event[:1] == b"\x01":
                send_frames(self.socket, self._welcome(event[1:]))
                greeted += 1
        if greeted:
            with self._changed:
                self.subscriptions += greeted
                self._changed.notify_all()


class Heartbeat:
    """Echoes every ping straight back from a C-level proxy, so it answers while Python is busy."""

    def __init__(self, context: zmq.Context, socket: zmq.Socket) -> None:
        self.socket = socket
        self._control_addr = f"inproc://kernelkit-hb-{id(self)}"
        self._control = context.socket(zmq.PAIR)
        self._control.bind(self._control_addr)
        self._context = context
        self._thread = threading.Thread(target=self._run, name="kernelkit-hb", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        steer = self._context.socket(zmq.PAIR)
        steer.connect(self._control_addr)
        try:
            zmq.proxy_steerable(self.socket, self.socket, None, steer)
        except zmq.ZMQError as exc:
            log.debug("heartbeat stops: %s", exc)
        finally:
            steer.close(linger=0)
            self.socket.close(linger=0)

    def stop(self) -> None:
        self._control.send(b"TERMINATE")
        self._thread.join(timeout=2)
        self._control.close(linger=0)
