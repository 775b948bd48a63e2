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

``import kernelkit`` imports nothing but this file and ``_version``: the names below load on
first use, so ``python -m kernelkit.anything`` cannot be broken by a module of the user's
(``hmac.py``, ``json.py``) sitting in the current folder before the launcher removes it from
``sys.path``, and a kernel pays only for what it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kernelkit._version import __version__

if TYPE_CHECKING:
    from kernelkit.kernel.app import launch
    from kernelkit.kernel.base import Kernel, StdinNotImplementedError
    from kernelkit.kernel.display import format_display_data
    from kernelkit.tools.installer import InstallResult

__all__ = ["Kernel", "StdinNotImplementedError", "__version__", "format_display_data", "install", "launch"]

_LAZY = {
    "Kernel": "kernelkit.kernel.base",
    "StdinNotImplementedError": "kernelkit.kernel.base",
    "launch": "kernelkit.kernel.app",
    "format_display_data": "kernelkit.kernel.display",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kernelkit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def install(target: Any, name: str | None = None, display_name: str | None = None, **options: Any) -> InstallResult:
    """Install a kernelspec for a Kernel subclass (or target string); see ``kernelkit.tools.installer.install``.

    Lets a kernel package offer ``python -m mykernel install``.
    """
    from kernelkit.tools.installer import install as _install

    return _install(target, name, display_name, **options)
