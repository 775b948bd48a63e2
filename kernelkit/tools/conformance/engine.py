"""Running the checks on one kernel: start it, pick its samples, run each check in order with its dependencies."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kernelkit.tools.conformance.checks  # noqa: F401 - registers the checks
from kernelkit.tools.conformance._base import (
    CHECKS,
    FAIL,
    NOT_SUPPORTED,
    PASS,
    SKIPPED,
    CheckSpec,
    Context,
    NotSupported,
    Skip,
    Violation,
)
from kernelkit.tools.conformance.samples import BUILTIN, ECHO_PROBE, builtin_for, resolve
from kernelkit.tools.kernelspecs import KernelSpec
from kernelkit.tools.process import KernelDiedError

__all__ = ["CHECKS", "FAIL", "NOT_SUPPORTED", "PASS", "SKIPPED", "KernelReport", "Result", "run_kernel", "select"]


@dataclass
class Result:
    check: str
    status: str
    message: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "status": self.status, "message": self.message, "seconds": round(self.seconds, 3)}


@dataclass
class KernelReport:
    kernel: str
    results: list[Result] = field(default_factory=list)
    kernel_info: dict[str, Any] = field(default_factory=dict)
    samples: str | None = None  # which built-in sample set was used
    error: str | None = None  # the kernel could not be started at all

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.status == FAIL]

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel,
            "ok": self.ok,
            "error": self.error,
            "samples": self.samples,
            "implementation": self.kernel_info.get("implementation"),
            "protocol_version": self.kernel_info.get("protocol_version"),
            "results": [r.to_dict() for r in self.results],
        }


def select(only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[str]:
    """Check names to run, in registry order; unknown names raise ValueError naming the known ones."""
    only, skip = list(only), list(skip)
    for name in [*only, *skip]:
        if name not in CHECKS:
            raise ValueError(f"no check named {name!r}; the checks are: {', '.join(CHECKS)}")
    chosen = [n for n in CHECKS if (not only or n in only) and n not in skip]
    return chosen


def run_kernel(
    spec: KernelSpec,
    checks: Iterable[str] | None = None,
    *,
    samples: Mapping[str | None, Mapping[str, str]] | None = None,
    timeout: float = 10.0,
    progress: Callable[[str], None] | None = None,
) -> KernelReport:
    """Run ``checks`` (default: all) against the kernelspec ``spec``; never raises for a kernel's fault."""
    names = list(checks) if checks is not None else list(CHECKS)
    report = KernelReport(spec.name)
    say = progress or (lambda text: None)
    ctx = Context(spec, {}, timeout)
    try:
        try:
            ctx.kernel = ctx.start()
            info = ctx.kernel.client.request(ctx.kernel.client.shell, "kernel_info_request", {}, timeout=timeout)
            ctx.kernel_info = report.kernel_info = info["content"]
        except (KernelDiedError, TimeoutError) as exc:
            stderr = exc.stderr.strip().splitlines()[-3:] if isinstance(exc, KernelDiedError) else []
            report.error = f"the kernel did not start: {exc}" + (f" ({' | '.join(stderr)})" if stderr else "")
            return report
        language = str((ctx.kernel_info.get("language_info") or {}).get("name", "") or spec.language)
        report.samples, builtin = builtin_for(language)
        if report.samples is None and _echoes(ctx):
            report.samples, builtin = "echo", dict(BUILTIN["echo"])
        ctx.samples = resolve(spec.name, builtin, samples or {})
        status = ctx.status
        for name in names:
            result = _run_one(ctx, CHECKS[name], status)
            status[name] = result.status
            report.results.append(result)
            say(f"{spec.name}: {name}: {result.status}{' - ' + result.message if result.status == FAIL else ''}")
    finally:
        ctx.close()
    return report


def _echoes(ctx: Context) -> bool:
    ex = ctx.execute(ECHO_PROBE)
    return ex.text().strip() == ECHO_PROBE


def _unless_responsive_kill(ctx: Context) -> None:
    """After a failure, a kernel that no longer answers kernel_info is killed: the next check gets a fresh one."""
    kernel = ctx.kernel
    if kernel is None or not kernel.alive():
        return
    ex = ctx.exchange("shell", "kernel_info_request", idle=False, timeout=min(ctx.timeout, 3.0), settle=0.0)
    if not ex.replies:
        kernel.kill()


def _run_one(ctx: Context, spec: CheckSpec, status: Mapping[str, str]) -> Result:
    t0 = time.monotonic()
    for dep in spec.requires:
        check, _, request = dep.partition(":")
        if request:  # a dependency on one request type's replies being routed
            if request in ctx.unrouted:
                return Result(spec.name, SKIPPED, f"depends on {check}, which failed for {request}")
        elif status.get(dep) in (FAIL, SKIPPED):  # "not supported" is a valid answer, not a failure
            return Result(
                spec.name, SKIPPED, f"depends on {dep}, which {'failed' if status[dep] == FAIL else 'was skipped'}"
            )
    try:
        message = spec.func(ctx) or ""
        result = Result(spec.name, PASS, message)
    except Violation as exc:
        result = Result(spec.name, FAIL, str(exc))
        _unless_responsive_kill(ctx)
    except NotSupported as exc:
        result = Result(spec.name, NOT_SUPPORTED, str(exc))
    except Skip as exc:
        result = Result(spec.name, SKIPPED, str(exc))
    except (KernelDiedError, TimeoutError) as exc:
        result = Result(spec.name, FAIL, f"the kernel could not be (re)started for this check: {exc}")
    result.seconds = time.monotonic() - t0
    return result
