"""``kernelkit test``: it passes correct kernels, fails broken ones with the named check, and says what is wrong.

The broken kernels are ``tests/conformance/spec_kernel.py`` (a kernel written on bare pyzmq
from the spec, no kernelkit) started with ``--break VIOLATION``: one protocol violation each,
at least one per check. Without ``--break`` it must pass every check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import (
    ASYNC,
    CALC,
    ECHO,
    JUPYTER_RUNTIME_DIR,
    REPO_DIR,
    SLEEPY_MESSAGE,
    SLEEPY_SIGNAL,
    TESTS_DIR,
    install_kernelspec,
)

from kernelkit.testing import check_kernel, conformance_tests
from kernelkit.tools.conformance import CHECKS, FAIL, NOT_SUPPORTED, PASS, SKIPPED

pytestmark = pytest.mark.slow

SPEC_KERNEL = TESTS_DIR / "conformance" / "spec_kernel.py"
SPEC = "kk-spec-kernel"
install_kernelspec(SPEC, argv=[sys.executable, str(SPEC_KERNEL), "-f", "{connection_file}"], language="python")
SQLITE = "kk-sqlite"
install_kernelspec(SQLITE, "kernelkit.kernels.sqlite", language="sql")
SEED_ECHO = "kk-seed-echo"
install_kernelspec(
    SEED_ECHO, argv=[sys.executable, str(REPO_DIR / "examples" / "echokernel.py"), "-f", "{connection_file}"]
)
SHOWCASE = "kk-ct-showcase"  # not the frontend tests' kk-showcase: specs of one name would overwrite each other
install_kernelspec(
    SHOWCASE,
    argv=[sys.executable, str(REPO_DIR / "examples" / "showcase.py"), "-f", "{connection_file}"],
    language="python",
)
TIMEOUT = "4"

#: violation -> (the check that must catch it, words its message must contain)
VIOLATIONS = {
    "kernel_info_no_language_name": ("kernel_info", "'name' must be a str"),
    "no_control_kernel_info": ("kernel_info_control", "no kernel_info_reply on control"),
    "execute_reply_without_parent": ("reply_routing", "parent_header.msg_id is None"),
    "double_reply": ("reply_routing", "2 replies, expected exactly one"),
    "no_idle": ("status_wrap", "no status idle"),
    "output_after_idle": ("status_wrap", "published stream after its status idle"),
    "no_execute_input": ("execute_order", "expected execute_input"),
    "count_store_history_false": ("execution_count", "store_history=false cell bumped execution_count"),
    "silent_outputs": ("silent", "a silent execute published execute_input, stream"),
    "error_not_on_iopub": ("error", "no 'error' message on iopub"),
    "no_abort": ("stop_on_error", "got status 'ok', expected 'aborted'"),
    "complete_cursor_past_end": ("complete", "cursor_end <= 15"),
    "inspect_found_not_bool": ("inspect", "'found' must be a bool"),
    "is_complete_maybe": ("is_complete", "status 'maybe' is not one of"),
    "history_not_list": ("history", "'history' must be a list"),
    "comm_info_list": ("comm_info", "'comms' must be a dict"),
    "input_request_without_parent": ("stdin", "input_request parent_header.msg_id is None"),
    "input_even_if_disallowed": ("stdin_disallowed", "sent input_request although allow_stdin was false"),
    "ignore_interrupt": ("interrupt", "not answered within 5 s of the interrupt"),
    "no_heartbeat": ("heartbeat", "no heartbeat echo"),
    "no_welcome": ("iopub_welcome", "got no iopub_welcome"),
    "accept_wrong_signature": ("signature_wrong", "a message with a wrong signature was processed"),
    "accept_unsigned": ("signature_missing", "a message with no signature was processed"),
    "accept_replay": ("signature_replayed", "a replayed message was processed again"),
    "crash_on_bad_json": ("malformed", "the kernel exited (code 3) after malformed messages"),
    "shutdown_no_exit": ("shutdown", "did not exit within 10 s of its shutdown_reply"),
    "restart_flag_false": ("restart", "restart is False, expected True"),
}


def kk_test(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kernelkit", "test", *args], capture_output=True, text=True, timeout=300
    )


def test_every_check_has_a_broken_kernel_and_the_kernel_knows_them_all() -> None:
    sys.path.insert(0, str(SPEC_KERNEL.parent))
    try:
        from spec_kernel import VIOLATIONS as in_kernel
    finally:
        sys.path.remove(str(SPEC_KERNEL.parent))
    assert {v: c for v, (c, _) in VIOLATIONS.items()} == in_kernel
    assert {check for check, _ in VIOLATIONS.values()} == set(CHECKS)


@pytest.fixture(scope="module")
def broken_reports():
    def one(violation: str):
        argv = [sys.executable, str(SPEC_KERNEL), "-f", "{connection_file}", "--break", violation]
        return violation, check_kernel(f"spec-{violation}", argv=argv, language="python", timeout=float(TIMEOUT))

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(one, VIOLATIONS))


@pytest.mark.parametrize("violation", list(VIOLATIONS))
def test_each_violation_is_caught_by_its_named_check_and_only_by_it(broken_reports, violation: str) -> None:
    check, words = VIOLATIONS[violation]
    report = broken_reports[violation]
    assert report.error is None, report.error
    results = {r.check: r for r in report.results}
    assert results[check].status == FAIL, (check, results[check])
    assert words in results[check].message
    others = {name: r.message for name, r in results.items() if r.status == FAIL and name != check}
    assert not others, f"{violation} also failed other checks: {others}"
    skipped = {name for name, r in results.items() if r.status == SKIPPED}
    for name in skipped:  # only what depends (transitively) on the failed check is skipped
        assert "depends on" in results[name].message, (name, results[name].message)


def test_the_spec_kernel_without_kernelkit_passes_every_check() -> None:
    proc = kk_test(SPEC, "--json", "--timeout", TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    results = {r["check"]: r["status"] for r in data["kernels"][0]["results"]}
    assert results == dict.fromkeys(CHECKS, PASS)
    assert data["ok"] is True and data["kernels"][0]["samples"] == "python"


# The spec kernel as a kernel author's own suite would run it: one line, one test per check.
test_conformance_helper = conformance_tests(
    argv=[sys.executable, str(SPEC_KERNEL), "-f", "{connection_file}"], language="python", timeout=float(TIMEOUT)
)


def test_assert_conformant_names_the_failure() -> None:
    from kernelkit.testing import assert_conformant

    argv = [sys.executable, str(SPEC_KERNEL), "-f", "{connection_file}", "--break", "no_abort"]
    with pytest.raises(AssertionError, match=r"stop_on_error\s+FAIL\s+the cell queued behind a failing one"):
        assert_conformant(
            argv=argv,
            language="python",
            only=["reply_routing", "status_wrap", "error", "stop_on_error"],
            timeout=float(TIMEOUT),
        )


#: kernelkit's own kernels, with samples where their language has none built in.
OWN = {
    ECHO: [],
    CALC: [],
    SHOWCASE: [],
    SEED_ECHO: [],  # examples/echokernel.py, the seed article's kernel ported
    SQLITE: [],  # the built-in sql samples, on a real SQL kernel
    SLEEPY_SIGNAL: [
        "--sample",
        f"{SLEEPY_SIGNAL}:print=0",
        "--sample",
        f"{SLEEPY_SIGNAL}:sleep=60",
        "--sample",
        f"{SLEEPY_SIGNAL}:error=not-a-number",
    ],
    SLEEPY_MESSAGE: [
        "--sample",
        f"{SLEEPY_MESSAGE}:print=0",
        "--sample",
        f"{SLEEPY_MESSAGE}:sleep=60",
        "--sample",
        f"{SLEEPY_MESSAGE}:error=not-a-number",
    ],
    ASYNC: ["--sample", f"{ASYNC}:print=hello", "--sample", f"{ASYNC}:sleep=block 60"],
}


@pytest.fixture(scope="module")
def own_results() -> dict:
    def one(item):
        name, extra = item
        proc = kk_test(name, "--json", "--timeout", TIMEOUT, *extra)
        return name, proc

    with ThreadPoolExecutor(3) as pool:
        return dict(pool.map(one, OWN.items()))


#: Real findings of `kernelkit test` on kernelkit's own kernels, listed exactly so the test fails the day one
#: appears or is fixed. The one it found (print() output of a silent cell was published) is fixed.
KNOWN: dict[str, dict[str, str]] = {}


@pytest.mark.parametrize("name", list(OWN))
def test_kernelkits_own_kernels_pass(own_results, name: str) -> None:
    proc = own_results[name]
    data = json.loads(proc.stdout)
    failed = {r["check"]: r["message"] for r in data["kernels"][0]["results"] if r["status"] == FAIL}
    assert failed == KNOWN.get(name, {}), failed
    assert proc.returncode == (1 if failed else 0)


def test_echo_kernel_reports_missing_samples_as_skipped_not_passed(own_results) -> None:
    kernel = json.loads(own_results[ECHO].stdout)["kernels"][0]
    assert kernel["samples"] == "echo"  # recognised by behaviour: it echoed the probe cell
    results = {r["check"]: r for r in kernel["results"]}
    assert results["error"]["status"] == SKIPPED and "no sample 'error'" in results["error"]["message"]
    assert results["stop_on_error"]["status"] == SKIPPED and "depends on error" in results["stop_on_error"]["message"]
    assert results["interrupt"]["status"] == SKIPPED and "--sample sleep=CODE" in results["interrupt"]["message"]
    assert results["status_wrap"]["status"] == PASS


def test_table_output_and_exit_code_for_a_broken_kernel() -> None:
    name = "kk-spec-broken-idle"
    install_kernelspec(
        name,
        argv=[sys.executable, str(SPEC_KERNEL), "-f", "{connection_file}", "--break", "no_idle"],
        language="python",
    )
    proc = kk_test(name, "--only", "kernel_info,reply_routing,status_wrap,execute_order", "--timeout", "2")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{name} (spec_kernel 1.0, protocol 5.5, samples: python)")
    assert any(line.split()[:2] == ["status_wrap", "FAIL"] and "no status idle" in line for line in lines)
    assert any(line.split()[:2] == ["execute_order", "skipped"] and "depends on status_wrap" in line for line in lines)
    assert "1 failed" in lines[-1] and f"failing: {name}" in lines[-1]


def test_sample_option_reaches_the_kernel_and_not_supported_is_not_a_failure() -> None:
    """A Python sample set overridden: `--sample complete=` removes it (skipped), a kernel-scoped one applies."""
    proc = kk_test(
        SPEC,
        "--json",
        "--only",
        "reply_routing,status_wrap,complete,execute_order",
        "--timeout",
        TIMEOUT,
        "--sample",
        "complete=",
        "--sample",
        f"{SPEC}:print=print('from the option')",
    )
    data = json.loads(proc.stdout)
    results = {r["check"]: r for r in data["kernels"][0]["results"]}
    assert results["complete"]["status"] == SKIPPED and "no sample 'complete'" in results["complete"]["message"]
    assert results["execute_order"]["status"] == PASS and "stream" in results["execute_order"]["message"]
    assert proc.returncode == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--only", "no_such_check"], "no check named 'no_such_check'"),
        (["--skip", "kernel_info,bogus"], "no check named 'bogus'"),
        (["--sample", "print"], "--sample takes [KERNEL:]KEY=CODE"),
        (["--sample", "printx=1"], "--sample key 'printx' is not one of"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    proc = kk_test(ECHO, *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1  # one line: what is wrong, and what to do


def test_unknown_kernel_and_help_and_list() -> None:
    missing = kk_test("no-such-kernel-xyz")
    assert missing.returncode == 1 and "no kernel named 'no-such-kernel-xyz'" in missing.stderr
    helped = kk_test("--help")
    assert helped.returncode == 0 and "--sample" in helped.stdout and "--only" in helped.stdout
    listed = kk_test("--list")
    assert listed.returncode == 0 and [line.split()[0] for line in listed.stdout.splitlines()] == list(CHECKS)


def test_checks_are_documented_with_their_spec_sentence() -> None:
    doc = (REPO_DIR / "docs" / "conformance.md").read_text(encoding="utf-8")
    for name, check in CHECKS.items():
        assert f"`{name}`" in doc, f"docs/conformance.md does not document {name}"
        assert check.spec, name
    assert NOT_SUPPORTED in doc


def test_a_kernel_that_cannot_start_is_one_failure_with_its_stderr() -> None:
    name = "kk-conformance-no-module"
    install_kernelspec(name, argv=[sys.executable, "-m", "no_such_kernel_module_xyz", "-f", "{connection_file}"])
    proc = kk_test(name, "--json", "--timeout", "5")
    assert proc.returncode == 1
    kernel = json.loads(proc.stdout)["kernels"][0]
    assert kernel["ok"] is False and kernel["results"] == []
    assert kernel["error"].startswith("the kernel did not start: the kernel exited with code 1")
    assert "No module named no_such_kernel_module_xyz" in kernel["error"]


def test_a_broken_kernelspec_fails_as_exec_says_and_the_others_are_still_tested(broken_kernelspecs) -> None:
    before = set(JUPYTER_RUNTIME_DIR.iterdir())
    named = kk_test(*broken_kernelspecs, ECHO, "--only", "kernel_info", "--json")
    assert named.returncode == 1 and "Traceback" not in named.stderr
    kernels = {k["kernel"]: k for k in json.loads(named.stdout)["kernels"]}
    assert kernels[ECHO]["ok"]
    for name in broken_kernelspecs:
        error = kernels[name]["error"]
        assert not kernels[name]["ok"] and error.startswith(f"kernel {name!r} in ") and " is broken (" in error
        assert f"kernelkit: error: {error}" in named.stderr and error.endswith(f"run `kernelkit doctor {name}`")
    every = kk_test("--only", "kernel_info", "--timeout", "5")  # no names: every kernelspec
    assert every.returncode == 1 and "Traceback" not in every.stderr
    assert all(f"{name}\n  FAIL  kernel {name!r} in " in every.stdout for name in broken_kernelspecs)
    assert f"{ECHO} (" in every.stdout and f"failing: {', '.join(sorted(broken_kernelspecs))}" in every.stdout
    assert set(JUPYTER_RUNTIME_DIR.iterdir()) == before  # no connection file (it holds the key) left behind


def test_sqlite_kernel_gets_the_sql_samples(own_results) -> None:
    kernel = json.loads(own_results[SQLITE].stdout)["kernels"][0]
    assert kernel["samples"] == "sql"
    results = {r["check"]: r["status"] for r in kernel["results"]}
    assert results["interrupt"] == results["stop_on_error"] == results["complete"] == PASS
