"""kernelkit: make Jupyter kernels on a small, fast protocol engine.

    from kernelkit import Kernel

    class EchoKernel(Kernel):
        implementation = "echo"
        language_info = {"name": "text", "mimetype": "text/plain", "file_extension": ".txt"}

        def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
            if not silent:
                self.print(code)
            return {"status": "ok", "execution_count": self.execution_count}

    if __name__ == "__main__":
        EchoKernel.launch()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .kernel import Kernel, StdinNotImplementedError
from .launch import launch

if TYPE_CHECKING:
    from .installer import InstallResult

__all__ = ["Kernel", "StdinNotImplementedError", "__version__", "install", "launch"]


def install(target: Any, name: str | None = None, display_name: str | None = None, **options: Any) -> InstallResult:
    """Install a kernelspec for a Kernel subclass (or target string); see ``kernelkit.installer.install``.

    Lets a kernel package offer ``python -m mykernel install``. Imported lazily so that
    ``import kernelkit`` in every kernel process stays light.
    """
    from .installer import install as _install

    return _install(target, name, display_name, **options)
