"""``sys.stdout``/``sys.stderr`` replacements that turn writes into ``stream`` messages.

Writes are batched: a short timer flushes them so a loop of prints becomes a few messages,
and the kernel flushes before every reply so output never trails its reply.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable

FLUSH_DELAY = 0.05  # seconds a write may wait to be batched with the next ones
FLUSH_SIZE = 1 << 16  # characters after which a write is sent at once; also the largest stream message


class OutStream(io.TextIOBase):
    def __init__(self, name: str, send: Callable[[str, str], None]) -> None:
        super().__init__()
        self.name = name
        self._send = send
        self._buffer: list[str] = []
        self._size = 0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

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
        with self._lock:
            self._buffer.append(text)
            self._size += len(text)
            flush_now = self._size >= FLUSH_SIZE
            if not flush_now and self._timer is None:
                self._timer = threading.Timer(FLUSH_DELAY, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if flush_now:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if not self._buffer:  # the common case, checked on every message the kernel sends
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            text = "".join(self._buffer)
            self._buffer.clear()
            self._size = 0
        # One message per FLUSH_SIZE characters at most: iopub's high-water mark counts
        # messages, not bytes, so bounded messages keep a stalled subscriber's queue (and the
        # kernel's memory) bounded too; one 1 GB print would otherwise be one 1 GB message.
        for start in range(0, len(text), FLUSH_SIZE):
            self._send(self.name, text[start : start + FLUSH_SIZE])
