"""Sockets shared between threads, and the two channels that run on their own: heartbeat and iopub welcome.

ZeroMQ sockets are not thread-safe; every use of a shared socket here happens under
that socket's lock. Messages are frames to this module: it knows no JSON.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import zmq

from kernelkit._log import log
from kernelkit.protocol.wire import Frame


# Plain ints: pyzmq's constants are enum members, and ``SNDMORE | flags`` or
# ``EVENTS & POLLIN`` on them costs microseconds per frame in Python 3.11's enum module.
_SNDMORE = int(zmq.SNDMORE)
_POLLIN = int(zmq.POLLIN)
_EVENTS = int(zmq.EVENTS)


def send_frames(socket: zmq.Socket, frames: Sequence[Frame], copy: bool = True, track: bool = False) -> Any:
    """``socket.send_multipart(frames)``, minus pyzmq's per-frame enum arithmetic."""
    if not all(type(frame) is bytes for frame in frames):  # buffers: pyzmq type-checks them all first
        return socket.send_multipart(frames, copy=copy, track=track)
    send = socket.send
    for frame in frames[:-1]:
        send(frame, _SNDMORE, copy=copy, track=track)
    return send(frames[-1], 0, copy=copy, track=track)


class Channel:
    """A socket that any thread may send on; receiving stays with the thread that owns it."""

    def __init__(
        self,
        socket: zmq.Socket,
        name: str,
        critical: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        self.socket = socket
        self.name = name
        self.lock = threading.Lock()
        #: Wraps every send, so a signal cannot cut a multipart message in two.
        self.critical = critical

    def send_multipart(self, frames: Sequence[Frame], copy: bool = True, track: bool = False) -> Any:
        with self.critical(), self.lock:
            return send_frames(self.socket, frames, copy, track)

    def recv_frames(self, flags: int = 0) -> list[memoryview]:
        """One multipart message as buffers, without copying large frames."""
        return [frame.buffer for frame in self.socket.recv_multipart(flags, copy=False)]

    def __repr__(self) -> str:
        return f"<Channel {self.name}>"


class IOPubChannel(Channel):
    """An XPUB socket that greets every new subscriber with the frames from ``welcome``.

    Subscriptions arrive as readable messages on the XPUB socket. A watcher thread waits on
    the socket's file descriptor (safe without the lock) and drains them under the lock. A send
    from another thread may consume the descriptor's wake-up, so the watcher also looks every
    ``RECHECK`` seconds: a subscriber is greeted at once, or at worst that much later. Checking
    after every send instead would cost each message a ``getsockopt`` (about 10 µs).
    """

    RECHECK = 0.1

    def __init__(
        self,
        socket: zmq.Socket,
        welcome: Callable[[bytes], list[Frame]],
        critical: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        super().__init__(socket, "iopub", critical)
        self._welcome = welcome
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._watch, name="kernelkit-iopub", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _greet_subscribers(self) -> None:
        while self.socket.getsockopt(_EVENTS) & _POLLIN:
            event = self.socket.recv(zmq.NOBLOCK)
            if event[:1] == b"\x01":
                topic = event[1:]
                self.socket.send_multipart(self._welcome(topic))

    def _watch(self) -> None:
        poller = zmq.Poller()
        poller.register(self.socket.getsockopt(zmq.FD), zmq.POLLIN)
        poller.register(self._stop_r, zmq.POLLIN)
        while True:
            ready = dict(poller.poll(int(self.RECHECK * 1000)))
            if self._stop_r in ready:
                return
            with self.lock:
                try:
                    self._greet_subscribers()
                except zmq.ZMQError as exc:  # closed under us at shutdown
                    log.debug("iopub watcher stops: %s", exc)
                    return

    def stop(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=2)
        os.close(self._stop_r)
        os.close(self._stop_w)


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
