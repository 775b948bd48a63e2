"""``IPKernelApp.launch_instance(kernel_class=...)`` for kernels ported from ipykernel.

Only the launch call is provided: kernelkit has no traitlets application to configure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kernelkit.kernel.base import Kernel
from kernelkit.kernel.app import launch


class IPKernelApp:
    @classmethod
    def launch_instance(
        cls, argv: Sequence[str] | None = None, *, kernel_class: type[Kernel], **ignored: Any
    ) -> None:
        """Run ``kernel_class`` as ipykernel's ``IPKernelApp.launch_instance`` would."""
        launch(kernel_class, argv)


__all__ = ["IPKernelApp"]
