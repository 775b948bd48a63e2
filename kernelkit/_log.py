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


class LazyLogger:
    def __init__(self, name: str) -> None:
        self.name = name
        self._level = "WARNING"
        self._logger: logging.Logger | None = None

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

    def __getattr__(self, name: str) -> Any:
        return getattr(self.logger, name)


log = LazyLogger("kernelkit")
