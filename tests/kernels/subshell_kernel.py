"""calc with kernel subshells (JEP 91) switched on: ``subshells = True``, for the test suite and the benchmark.

calc's hooks are thread-safe enough for that: each cell runs in one shared namespace (as
ipykernel's subshells share the user namespace), and nothing else is shared between requests.
"""

from __future__ import annotations

from calc_kernel import CalcKernel


class SubshellKernel(CalcKernel):
    implementation = "calc-subshells"
    subshells = True


if __name__ == "__main__":
    SubshellKernel.launch()
