"""``kernelkit test``: a conformance check of any Jupyter kernel against the messaging protocol.

Each installed kernelspec is started exactly as jupyter_client starts it
(:mod:`kernelkit.tools.process`) and driven by the tools' one client; the checks
(:mod:`.checks`, documented in docs/conformance.md) report pass / FAIL / not supported /
skipped, a failure with the message that shows it.

    from kernelkit.tools.conformance import run_kernel
    report = run_kernel(kernelspecs.get("python3"))
"""

from __future__ import annotations

from kernelkit.tools.conformance.engine import (
    CHECKS,
    FAIL,
    NOT_SUPPORTED,
    PASS,
    SKIPPED,
    KernelReport,
    Result,
    run_kernel,
    select,
)
from kernelkit.tools.conformance.report import format_report, summary

__all__ = [
    "CHECKS",
    "FAIL",
    "NOT_SUPPORTED",
    "PASS",
    "SKIPPED",
    "KernelReport",
    "Result",
    "format_report",
    "run_kernel",
    "select",
    "summary",
]
