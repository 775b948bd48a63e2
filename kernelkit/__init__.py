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

from ._version import __version__
from .kernel import Kernel, StdinNotImplementedError
from .launch import launch

__all__ = ["Kernel", "StdinNotImplementedError", "__version__", "launch"]
