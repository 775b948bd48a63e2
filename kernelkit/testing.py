"""Run ``kernelkit test``'s conformance checks from a kernel's own pytest suite, in one line.

    # test_conformance.py in your kernel's repository
    from kernelkit.testing import conformance_tests

    test_conformance = conformance_tests("mykernel")              # an installed kernelspec
    # or, without installing: conformance_tests(argv=[sys.executable, "-m", "mykernel", "-f", "{connection_file}"])

gives one pytest test per check (``test_conformance[status_wrap]`` ...): a failing check
fails with the message that shows the violation; "not supported" passes; "skipped" (no
sample) is a pytest skip. The kernel is started and checked once per module. Or assert
everything at once with :func:`assert_conformant`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kernelkit.tools.conformance import CHECKS, FAIL, SKIPPED, KernelReport, format_report, run_kernel, select
from kernelkit.tools.kernelspecs import KernelSpec, get

__all__ = ["assert_conformant", "check_kernel", "conformance_tests"]


def _spec(
    name: str | None, argv: Sequence[str] | None, language: str, interrupt_mode: str, env: Mapping[str, str] | None
) -> KernelSpec:
    if argv is None:
        if name is None:
            raise TypeError("give a kernelspec name or an argv")
        return get(name)
    return KernelSpec(
        name=name or "kernel-under-test",
        resource_dir=Path(tempfile.gettempdir()),
        argv=list(argv),
        language=language,
        interrupt_mode=interrupt_mode,
        env=dict(env or {}),
    )


def check_kernel(
    name: str | None = None,
    *,
    argv: Sequence[str] | None = None,
    language: str = "",
    interrupt_mode: str = "signal",
    env: Mapping[str, str] | None = None,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    samples: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> KernelReport:
    """Run the checks on a kernelspec (by ``name``) or a kernel command line (``argv``); returns the report."""
    spec = _spec(name, argv, language, interrupt_mode, env)
    return run_kernel(spec, select(only, skip), samples={None: dict(samples or {})}, timeout=timeout)


def assert_conformant(name: str | None = None, **options: Any) -> KernelReport:
    """:func:`check_kernel`, raising AssertionError with the report when a check failed."""
    report = check_kernel(name, **options)
    if not report.ok:
        raise AssertionError("kernel conformance failed:\n" + format_report(report))
    return report


def conformance_tests(name: str | None = None, **options: Any) -> Callable[..., None]:
    """A pytest test function parametrized over the checks; assign it to a ``test_*`` name in a test module."""
    import pytest

    names = select(options.get("only", ()), options.get("skip", ()))
    cache: dict[str, KernelReport] = {}

    def report() -> KernelReport:
        if "report" not in cache:
            cache["report"] = check_kernel(name, **options)
        return cache["report"]

    @pytest.mark.parametrize("check", names)
    def test_conformance(check: str) -> None:
        result = report()
        if result.error:
            pytest.fail(result.error)
        outcome = next(r for r in result.results if r.check == check)
        if outcome.status == FAIL:
            pytest.fail(f"{check}: {outcome.message}\n(spec: {CHECKS[check].spec})", pytrace=False)
        if outcome.status == SKIPPED:
            pytest.skip(outcome.message)

    return test_conformance
