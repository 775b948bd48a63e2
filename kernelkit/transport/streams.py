"""``sys.stdout``/``sys.stderr`` replacements that turn writes into ``stream`` messages.

Each write is attributed to a parent request *when it is written* (``parent_of_thread``: the
request the writing thread serves, or the one it was pinned to), so text written during one
request can never go out under the next. Writes are batched: a short timer flushes them, so a
loop of prints becomes a few messages, and text for a different parent flushes what came
before. A flush hands the text to the iopub queue while holding the stream's lock: when
``flush()`` returns, everything written before it is queued ahead of whatever the caller
queues next (the reply's ``idle``), whichever thread was flushing at the time.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

_STREAMS: weakref.WeakSet[OutStream] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A child forked from the kernel (multiprocessing's default on Linux) cannot use the
    parent's iopub, and the parent's timer thread may have held a stream's lock at the fork:
    the child writes to the process's original stdout/stderr instead, with a fresh lock."""
    for stream in list(_STREAMS):
        stream._lock = threading.Lock()
        stream._timer = None
        stream._buffer.clear()
        stream._size = 0
        stream._forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)

FLUSH_DELAY = 0.05  # seconds a write may wait to be batched with the next ones
FLUSH_SIZE = 1 << 16  # characters after which a write is sent at once; also the largest stream message

Parent = Any  # a request message (dict) or None: opaque to this module

#: What ``parent_of_thread`` returns while the thread runs a ``silent`` execute request: the
#: messaging spec says such a request broadcasts no output, so its writes are dropped.
SILENT: Parent = object()


class OutStream(io.TextIOBase):
    def __init__(
        self,
        name: str,
        send: Callable[[str, str, Parent], None],
        parent_of_thread: Callable[[], Parent],
        critical: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        super().__init__()
        self.name = name
        #: Wraps the stream's bookkeeping (its lock, the flush timer): an interrupt of the cell
        #: that prints must not stop it half-way and leave a lock taken.
        self._critical = critical
        self._send = send
        self._parent_of_thread = parent_of_thread
        self._buffer: list[str] = []
        self._parent: Parent = None
        self._size = 0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._forked = False
        _STREAMS.add(self)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not text:
            return 0
        if self._forked:
            original = sys.__stdout__ if self.name == "stdout" else sys.__stderr__
            if original is not None:
                original.write(text)
            return len(text)
        parent = self._parent_of_thread()
        if parent is SILENT:
            return len(text)
        with self._critical(), self._lock:
            if self._buffer and parent is not self._parent:
                self._send_buffer()
            self._parent = parent
            self._buffer.append(text)
            self._size += len(text)
            if self._size >= FLUSH_SIZE:
                self._send_buffer()
            elif self._timer is None:
                self._timer = threading.Timer(FLUSH_DELAY, self.flush)
                self._timer.daemon = True
                self._timer.start()
        return len(text)

    def flush(self) -> None:
        # An empty buffer alone does not mean all is queued: the timer thread may be between
        # taking the text and queuing it, and a flush that returned then would let the caller's
        # next message (the reply, the idle) overtake it. It holds the lock meanwhile, so: the
        # buffer was empty, *then* the lock was free (in that order) means the caller's earlier
        # writes are all queued, and flush has nothing to do (the common case: flushed already).
        if not self._buffer and not self._lock.locked():
            return
        with self._critical(), self._lock:
            self._send_buffer()

    def _send_buffer(self) -> None:
        """Hand the buffered text to the iopub queue; the caller holds the lock."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer:
            return
        text = "".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        # One message per FLUSH_SIZE characters at most: iopub's high-water mark counts
        # messages, not bytes, so bounded messages keep a stalled subscriber's queue (and the
        # kernel's memory) bounded too; one 1 GB print would otherwise be one 1 GB message.
        for start in range(0, len(text), FLUSH_SIZE):
            self._send(self.name, text[start : start + FLUSH_SIZE], self._parent)
