"""Reports: a readable table per kernel and a summary line."""

from __future__ import annotations

from collections.abc import Sequence

from kernelkit.tools.conformance._base import FAIL, NOT_SUPPORTED, PASS, SKIPPED
from kernelkit.tools.conformance.engine import KernelReport


def format_report(report: KernelReport) -> str:
    """One kernel: a header line, then one row per check (result, and the message for failures)."""
    info = report.kernel_info
    head = f"{report.kernel}"
    if info:
        head += (
            f" ({info.get('implementation', '?')} {info.get('implementation_version', '')}, protocol "
            f"{info.get('protocol_version', '?')}, samples: {report.samples or 'none'})"
        )
    if report.error:
        return f"{head}\n  FAIL  {report.error}"
    width = max((len(r.check) for r in report.results), default=10)
    lines = [head]
    for r in report.results:
        label = {PASS: "pass", FAIL: "FAIL", NOT_SUPPORTED: "not supported", SKIPPED: "skipped"}[r.status]
        detail = r.message if r.status != PASS else ""
        lines.append(f"  {r.check:<{width}}  {label:<13}  {detail}".rstrip())
    return "\n".join(lines)


def summary(reports: Sequence[KernelReport]) -> str:
    counts = {PASS: 0, FAIL: 0, NOT_SUPPORTED: 0, SKIPPED: 0}
    for report in reports:
        for r in report.results:
            counts[r.status] += 1
    broken = sum(1 for r in reports if r.error)
    failed = [r.kernel for r in reports if not r.ok]
    text = (
        f"{len(reports)} kernel{'s' if len(reports) != 1 else ''}: {counts[PASS]} passed, {counts[FAIL]} failed, "
        f"{counts[NOT_SUPPORTED]} not supported, {counts[SKIPPED]} skipped"
    )
    if broken:
        text += f", {broken} did not start"
    return text + (f" (failing: {', '.join(failed)})" if failed else "")
