"""The kernel's sockets, each used by exactly one thread, and the threads that own iopub and heartbeat.

ZeroMQ sockets are not thread-safe. Who owns which socket, in one place:

- shell: the main thread, which runs the shell loop and user code; replies are sent by the
  handler, on that thread. For a kernel with subshells: the ``kernelkit-shell`` router thread
  (:mod:`kernelkit.transport.subshells`), which hands each message to its shell's thread;
- the inproc PAIRs between that router and the shells (subshells only): the router owns one end
  of each, the main thread or the subshell's ``kernelkit-subshell-<id>`` thread the other;
- control: the ``kernelkit-control`` thread;
- stdin: the main thread (``input()`` runs inside a cell);
- iopub: the ``kernelkit-iopub`` thread, which lends it to the main thread while that thread
  runs kernelkit's own code for a request; every other thread queues its messages, and the
  owner sends the queue first (:class:`Publisher`);
- hb: the ``kernelkit-hb`` thread (a C-level echo proxy); nothing else touches it.

:class:`OwnedSocket` checks the rule on every use and raises :class:`WrongThread` when broken.
Messages are frames to this module: it knows no JSON.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
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
_POLLIN = int(zmq.POLLIN)
_EVENTS = int(zmq.EVENTS)
QUEUE_LIMIT = 256  # messages queued for iopub before a publishing thread waits (at most 64 KiB each)
SHELL_GRACE = 0.002  # seconds into user code during which the shell thread's messages wait for it


def send_frames(socket: zmq.Socket, frames: Sequence[Frame], copy: bool = True, track: bool = False) -> Any:
    """``socket.send_multipart(frames)``, minus pyzmq's per-frame enum arithmetic."""
    for frame in frames:
        if type(frame) is not bytes:  # buffers: pyzmq type-checks them all first
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


_PUBLISHERS: weakref.WeakSet[Publisher] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked child has the parent's socket but not its iopub thread: what it publishes is
    dropped (queued, it would wait forever for room once the queue is full)."""
    for publisher in list(_PUBLISHERS):
        publisher._forked = True
        publisher._queue.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Publisher:
    """The iopub channel: an XPUB socket with exactly one owner thread at any moment.

    Ownership moves, under a lock, between two threads only: the ``kernelkit-iopub`` thread
    owns the socket by default, and the shell thread takes it over while it runs kernelkit's
    own code for a request (busy, ``execute_input``, the reply, idle) and hands it back before
    user code runs and when the request ends. The owner sends directly; every other thread's
    messages (control, output timers, user threads, the shell thread inside user code) join
    one queue, which the owner empties — in order, ahead of its own next message — before
    anything else. So output queued before a reply or an ``idle`` is always published before
    it, whichever thread wrote it, and the common path (a request with no concurrent output)
    costs no thread switch at all. Every socket operation checks :attr:`owner`.

    The iopub thread also reads subscriptions, greets each new subscriber with
    ``iopub_welcome`` (protocol 5.5, JEP 65) and counts the active ones, so the shell loop can wait for a
    frontend's subscription before it runs a request while nobody listens.
    """

    name = "iopub"
    #: Seconds between the iopub thread's checks for queued messages nobody woke it for, and for
    #: subscriptions whose wake-up a send consumed.
    RECHECK = 0.05

    def __init__(
        self,
        socket: zmq.Socket,
        welcome: Callable[[bytes], list[Frame]],
        critical: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        self.socket = socket
        self._welcome = welcome
        self._critical = critical
        self._queue: deque[tuple[Sequence[Frame], bool]] = deque()
        self._queued = 0  # messages ever queued
        self._drained = 0  # queued messages handed to ZeroMQ so far
        self._lock = threading.Lock()  # held to change owner, and by the iopub thread while it sends
        self._thread = threading.Thread(target=self._run, name="kernelkit-iopub", daemon=True)
        self._io_thread: int | None = None
        self._shell_thread: int | None = None
        self._lent = True  # the shell thread runs user code (or nothing): it does not take the socket
        self._lent_at = 0.0
        self.owner: int | None = None
        self._asleep = False
        self._bell_r, self._bell_w = os.pipe()
        os.set_blocking(self._bell_r, False)
        os.set_blocking(self._bell_w, False)
        self._stop = False
        self._changed = threading.Condition(threading.Lock())
        self._waiters = 0
        self.subscribers = 0  # active subscriptions (XPUB_VERBOSER reports unsubscriptions too)
        self._forked = False  # this is a child process forked from the kernel: publish nothing
        _PUBLISHERS.add(self)

    def start(self, shell_thread: int) -> None:
        """Start the iopub thread; ``shell_thread`` may take the socket over (see the class doc)."""
        self._shell_thread = shell_thread
        self._thread.start()
        while self._io_thread is None:
            time.sleep(0.0005)

    # ---- any thread --------------------------------------------------------------------------

    def send_multipart(self, frames: Sequence[Frame], copy: bool = True, track: bool = False) -> None:
        """Publish one message: directly by the owner, queued for it by anyone else (``track`` is ignored)."""
        if self._forked:
            return
        me = threading.get_ident()
        if self.owner != me and me == self._shell_thread and not self._lent:
            self._take()
        if self.owner == me:
            if self._queue:
                self._drain()
            with self._critical():
                send_frames(self.socket, frames, copy)
            return
        self._queue.append((frames, copy))
        self._queued += 1
        if len(self._queue) > QUEUE_LIMIT and self.owner == self._io_thread:
            self._wait_for_room()
        elif self._asleep and self.owner == self._io_thread:
            # A cell that publishes right after it starts usually ends at once, and then the
            # shell thread sends the queue itself; waking the iopub thread would only make the
            # two fight over the GIL. Later messages of a longer cell wake it at once; early
            # ones of a long cell go within RECHECK.
            if me != self._shell_thread or time.monotonic() - self._lent_at > SHELL_GRACE:
                self._ring()

    def _wait_for_room(self) -> None:
        """Backpressure: a thread that publishes faster than iopub sends waits, so the queue (and
        the kernel's memory) stays bounded. Only while the iopub thread owns the socket: the
        shell thread, when it owns it, empties the queue as soon as its current step ends, and
        may itself be waiting for a lock this producer holds."""
        with self._critical(), self._changed:  # Condition is Python code: an interrupt must not split it
            self._waiters += 1
            try:
                while len(self._queue) > QUEUE_LIMIT // 2 and self.owner == self._io_thread and not self._stop:
                    self._ring()
                    self._changed.wait(0.05)
            finally:
                self._waiters -= 1

    def flush(self, timeout: float = 5.0) -> bool:
        """Until everything queued so far is handed to ZeroMQ; False on timeout.

        The shell thread (outside user code) takes the socket and sends the queue itself: no wait.
        """
        me = threading.get_ident()
        if me == self._shell_thread and not self._lent:
            if self.owner != me:
                self._take()
            self._drain()
            return True
        if self.owner == me:
            self._drain()
            return True
        if self.owner != self._io_thread:
            # The shell thread owns the socket: it sends the queue before its own next message or
            # when it hands the socket back, and waiting for it could last as long as its request.
            return True
        target = self._queued
        if self._drained >= target:
            return True
        with self._critical(), self._changed:
            self._waiters += 1
            try:
                self._ring()
                return self._changed.wait_for(lambda: self._drained >= target or self._stop, timeout)
            finally:
                self._waiters -= 1

    def wait_for_subscriber(self, timeout: float) -> int:
        """Wait until a subscription is active; returns how many are.

        The iopub thread is rung first: a subscription whose wake-up a send consumed is then read
        now, not at the next :attr:`RECHECK`.
        """
        self._ring()
        with self._changed:
            self._waiters += 1
            try:
                self._changed.wait_for(lambda: self.subscribers > 0 or self._stop, timeout)
            finally:
                self._waiters -= 1
            return self.subscribers

    # ---- the shell thread --------------------------------------------------------------------

    def lend(self) -> None:
        """The shell thread is about to run user code, or to wait for the next request: the iopub
        thread owns the socket again."""
        if threading.get_ident() != self._shell_thread:
            return
        self._lent = True
        self._lent_at = time.monotonic()
        if self.owner == self._shell_thread:
            with self._lock:
                self.owner = self._io_thread
            if self._queue:
                self._ring()

    def reclaim(self) -> None:
        """The shell thread runs kernelkit's code again: it takes the socket on its next message."""
        if threading.get_ident() == self._shell_thread:
            self._lent = False

    def _take(self) -> None:
        with self._lock:  # waits while the iopub thread is sending
            self.owner = self._shell_thread

    def _drain(self) -> None:
        """Send the queued messages, in order; the caller owns the socket."""
        queue, socket = self._queue, self.socket
        sent = 0
        with self._critical():
            while queue:
                frames, copy = queue.popleft()
                try:
                    send_frames(socket, frames, copy)
                except Exception as exc:  # one bad message must not kill the iopub thread or lose the others
                    log.warning("an iopub message could not be sent: %s", exc)
                sent += 1
        if sent:
            self._drained += sent
            if self._waiters:
                with self._changed:
                    self._changed.notify_all()

    def _ring(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # full of rings (it will wake anyway), or closed
            os.write(self._bell_w, b"x")

    def stop(self) -> None:
        """Send what is queued, then end the iopub thread, which closes the socket."""
        self._lent = True
        with self._lock:
            self.owner = self._io_thread
        self._stop = True
        self._ring()
        self._thread.join(timeout=5)
        os.close(self._bell_r)
        os.close(self._bell_w)

    # ---- the iopub thread ----------------------------------------------------------------------

    def _run(self) -> None:
        me = threading.get_ident()
        with self._lock:
            self._io_thread = self.owner = me
        poller = zmq.Poller()
        poller.register(self.socket.getsockopt(zmq.FD), zmq.POLLIN)  # a plain fd: safe to poll unowned
        poller.register(self._bell_r, zmq.POLLIN)
        try:
            while True:
                self._asleep = True
                busy = self._queue and self.owner == me
                ready = dict(poller.poll(0 if busy or self._stop else int(self.RECHECK * 1000)))
                self._asleep = False
                if self._bell_r in ready:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self._bell_r, 4096):
                            pass
                with self._lock:
                    if self.owner == me:
                        self._drain()
                        self._greet_subscribers()
                if self._stop and not self._queue:
                    return
        except zmq.ZMQError as exc:  # the context was terminated under us
            log.debug("iopub thread stops: %s", exc)
        finally:
            with self._lock:
                # Nobody owns the socket any more: a thread started later may get this thread's
                # ident (the system reuses them) and would otherwise send on the closed socket.
                self.owner = None
            with self._changed:
                self._stop = True
                self._changed.notify_all()
            self.socket.close(linger=1000)

    def _greet_subscribers(self) -> None:
        """Read subscriptions and welcome each subscriber; the caller owns the socket."""
        change = 0
        while int(self.socket.getsockopt(_EVENTS)) & _POLLIN:
            event = self.socket.recv(_NOBLOCK)
            if event[:1] == b"\x01":
                send_frames(self.socket, self._welcome(event[1:]))
                change += 1
            elif event[:1] == b"\x00":
                change -= 1
        if change:
            with self._changed:
                self.subscribers = max(0, self.subscribers + change)
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
