"""Benchmark installed kernels side by side, as a client sees them.

Kernels are started from their kernelspecs exactly as jupyter_client starts them
(:mod:`kernelkit.tools.process`) and driven by the tools' one client
(:class:`kernelkit.tools.client.KernelClient`), whose own cost stays small and identical for
every kernel. Every phase interleaves the kernels round-robin, so machine noise hits all of
them alike: compare the figures of one run as ratios.

Figures per kernel (see :func:`run`): start to first ``kernel_info_reply``; execute round
trip (send to having both the ``execute_reply`` and the ``idle`` status); stream throughput
(a large cell echoed back as ``stream``); messages per second with pipelined clients; idle
RSS and RSS after the load (whole process tree); installed footprint where known.

Modules: :mod:`.driving` (one kernel under load), :mod:`.metrics` (process tree, start-up,
footprint), :mod:`.runner` (the phases), :mod:`.report` (table, chart), :mod:`.floor` (the
bare pyzmq floor kernel). Needs the ``bench`` extra (psutil; matplotlib for the chart). This
package is not imported by ``import kernelkit``.
"""

from __future__ import annotations

from kernelkit.tools.bench.driving import (
    STREAM_CELL,
    STREAM_LINE,
    TRIVIAL_CELL,
    BenchError,
    BenchKernel,
    big_code,
    stream_cell,
)
from kernelkit.tools.bench.floor import FLOOR_KERNEL, FLOOR_SCRIPT, MB, write_floor_kernelspec
from kernelkit.tools.bench.metrics import installed_footprint, python_start_times
from kernelkit.tools.bench.report import FIGURES, chart, figure, format_table, machine_info
from kernelkit.tools.bench.runner import run

__all__ = [
    "FIGURES",
    "FLOOR_KERNEL",
    "FLOOR_SCRIPT",
    "MB",
    "STREAM_CELL",
    "STREAM_LINE",
    "TRIVIAL_CELL",
    "BenchError",
    "BenchKernel",
    "big_code",
    "chart",
    "figure",
    "format_table",
    "installed_footprint",
    "machine_info",
    "python_start_times",
    "run",
    "stream_cell",
    "write_floor_kernelspec",
]
