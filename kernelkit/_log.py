"""kernelkit's logger, imported on first use.

``logging`` (with the ``traceback``, ``string`` and ``tokenize`` modules it pulls in) costs a
kernel about 10 ms of its start-up, and a healthy kernel may never log a line. ``log`` stands in
for ``logging.getLogger("kernelkit")`` until something is logged.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

FORMAT = "[kernelkit %(levelname)s] %(message)s"
DROP_WINDOW = 10.0  # seconds
DROP_BURST = 100  # lines about dropped messages per window


class LazyLogger:
    def __init__(self, name: str) -> None:
        self.name = name
        self._level = "WARNING"
        self._logger: logging.Logger | None = None
        self._window_start = -DROP_WINDOW
        self._in_window = 0
        self._suppressed = 0

    def set_level(self, level: str) -> None:
        self._level = level
        if self._logger is not None:
            self._logger.setLevel(level)

    @property
    def logger(self) -> logging.Logger:
        """The real logger, writing to the real stderr (user code's stderr goes to the frontend)."""
        if self._logger is None:
            import logging

            logger = logging.getLogger(self.name)
            if not logger.handlers:
                handler = logging.StreamHandler(sys.__stderr__)
                handler.setFormatter(logging.Formatter(FORMAT))
                logger.addHandler(handler)
                logger.propagate = False
            logger.setLevel(self._level)
            self._logger = logger
        return self._logger

    def dropped(self, channel: str, reason: object) -> None:
        """One line for a message that was dropped (bad signature, malformed...), rate-limited.

        Under a flood of bad messages (a fuzzer, a misconfigured client) the log stays readable:
        at most ``DROP_BURST`` lines per ``DROP_WINDOW`` seconds, then one line saying how many
        more were dropped.
        """
        import time

        now = time.monotonic()
        if now - self._window_start > DROP_WINDOW:
            if self._suppressed:
                self.logger.warning("... and %d more messages dropped", self._suppressed)
            self._window_start, self._in_window, self._suppressed = now, 0, 0
        if self._in_window < DROP_BURST:
            self._in_window += 1
            self.logger.warning("dropped a message on %s: %s", channel, reason)
        else:
            self._suppressed += 1

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        # Below the level, return before importing logging: cheaper, and a SIGTERM whose handler
        # logs cannot land inside the first ``import logging`` (a re-entrant import fails).
        if self._logger is not None or self._level in ("DEBUG", "INFO"):
            self.logger.info(msg, *args, **kwargs)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if self._logger is not None or self._level == "DEBUG":
            self.logger.debug(msg, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.logger, name)


log = LazyLogger("kernelkit")
