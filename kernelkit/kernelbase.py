"""``from kernelkit.kernelbase import Kernel``: the module path ipykernel users already type.

With this and :mod:`kernelkit.kernelapp`, porting an ipykernel wrapper kernel is
``sed -i 's/ipykernel/kernelkit/'`` on its import lines.
"""

from kernelkit.kernel.base import Kernel, StdinNotImplementedError

__all__ = ["Kernel", "StdinNotImplementedError"]
