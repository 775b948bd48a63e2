"""A calc kernel that takes its comm manager from the ``comm`` package, as metakernel does."""

from __future__ import annotations

from typing import Any

import comm  # imported before any kernel exists, as a kernel module importing it at the top does
from calc_kernel import CalcKernel


class CommSubclassKernel(CalcKernel):
    implementation = "comm-subclass"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.comm_manager = comm.get_comm_manager()
        self.namespace["comm"] = comm


if __name__ == "__main__":
    CommSubclassKernel.launch()
