"""``kernelkit bench``: a short run produces every figure, valid JSON and a chart, and survives a broken kernel.

No timing is asserted here (benchmarks/compare.py and docs/benchmarks.md hold the figures):
only that the command measures what it promises and reports failures instead of aborting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CALC, ECHO, TEST_KERNEL_ENV, install_kernelspec


pytestmark = pytest.mark.slow  # more than ~3 s a test: real benchmark runs

BROKEN = "kk-bench-broken"
SHORT = ["--starts", "2", "--python-starts", "1", "--cells", "10", "--warmup", "2", "--stream-mb", "0.2",
         "--stream-reps", "1", "--clients", "2", "--requests", "20", "--timeout", "30"]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    # The classic failure: an interpreter that cannot import the kernel's module.
    install_kernelspec(BROKEN, argv=[sys.executable, "-m", "no_such_kernel_module_xyz", "-f", "{connection_file}"])
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "kernelkit", "bench", ECHO, BROKEN, *SHORT, "--json", "--out", str(out)],
        capture_output=True, text=True, timeout=240,
    )
    return proc, out


def test_json_on_stdout_has_every_figure(bench_run) -> None:
    proc, out = bench_run
    results = json.loads(proc.stdout)  # stdout is only the JSON; progress went to stderr
    assert json.loads((out / "results.json").read_text()) == results
    kernels = results["kernels"]
    assert list(kernels) == ["kernelkit-floor", ECHO, BROKEN]  # the floor is measured in the same run
    for name in ("kernelkit-floor", ECHO):
        entry = kernels[name]
        assert entry["ok"] and entry["error"] is None
        assert entry["start_ms"]["n"] == 2 and entry["start_ms"]["median"] > 0
        assert entry["roundtrip_us"]["n"] == 10 and entry["roundtrip_us"]["p99"] >= entry["roundtrip_us"]["median"] > 0
        assert entry["cpu_us_per_cell"] >= 0
        assert entry["stream_mb_per_s"] > 0
        assert entry["pipelined"]["messages_per_s"] > 0 and entry["pipelined"]["messages"] >= 20 * 5
        assert entry["rss_idle_mb"] > 1 and entry["rss_after_load_mb"] > 1
        assert "footprint" in entry
    assert kernels[ECHO]["footprint"]["bytes"] > 0  # `python -m kernelkit.kernels.echo`: a known distribution
    assert set(results["python_start_ms"]) == {"python -c pass", "python -c 'import zmq'"}
    assert all(ms > 0 for ms in results["python_start_ms"].values())
    assert results["meta"]["versions"]["pyzmq"] and results["meta"]["nproc"]


def test_broken_kernel_is_reported_without_aborting_the_others(bench_run) -> None:
    proc, _ = bench_run
    assert proc.returncode == 1  # a kernel failed
    broken = json.loads(proc.stdout)["kernels"][BROKEN]
    assert broken["ok"] is False and broken["error"].startswith("start:")
    assert f"{BROKEN}: FAILED at start" in proc.stderr


def test_chart_is_a_png(bench_run) -> None:
    _, out = bench_run
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_without_json(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kernelkit", "bench", ECHO, *SHORT, "--no-floor", "--no-footprint", "--quiet",
         "--clients", "0"],
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    assert "execute round trip, median" in proc.stdout and ECHO in proc.stdout
    assert proc.stderr == ""


def test_help_and_bad_counts() -> None:
    helped = subprocess.run([sys.executable, "-m", "kernelkit", "bench", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "--starts" in helped.stdout and "--json" in helped.stdout
    bad = subprocess.run([sys.executable, "-m", "kernelkit", "bench", ECHO, "--cells", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--cells must be at least 1" in bad.stderr


def test_a_broken_or_unknown_kernel_stops_the_run_before_anything_is_measured(broken_kernelspecs) -> None:
    for name in [*broken_kernelspecs, "no-such-kernel-xyz"]:
        proc = subprocess.run([sys.executable, "-m", "kernelkit", "bench", ECHO, name, *SHORT],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and proc.stdout == "" and "Traceback" not in proc.stderr
        expected = f"kernel {name!r} in " if name in broken_kernelspecs else f"no kernel named {name!r}"
        assert proc.stderr.startswith(f"kernelkit: error: {expected}") and proc.stderr.count("\n") == 1


@pytest.mark.slow
def test_without_names_broken_kernelspecs_are_left_out_with_a_note(broken_kernelspecs, tmp_path) -> None:
    env = {**os.environ, "JUPYTER_DATA_DIR": str(tmp_path / "no-user-kernels")}  # only the fixture's path (+ env's)
    proc = subprocess.run([sys.executable, "-m", "kernelkit", "bench", "--json", "--no-footprint", *SHORT],
                          capture_output=True, text=True, timeout=300, env=env)
    for name in broken_kernelspecs:
        assert f"kernelkit: leaving out kernel {name!r}: its kernelspec is broken" in proc.stderr
    results = json.loads(proc.stdout)["kernels"]
    assert results[ECHO]["ok"] and not set(broken_kernelspecs) & set(results)


PRINT_CELL = 'print("x")'
PRINT_STREAM = 'print(("{line}\\n" * ({size} // 80 + 1))[:{size}], end="")'


def test_cells_per_kernel_for_language_kernels() -> None:
    """`x` is a NameError in a Python kernel: --cell and --stream-cell give it cells valid in its language."""
    plain = "kk-bench-calc-default-cells"  # the same kernel without the options: it fails at warm-up
    install_kernelspec(plain, "calc_kernel", env=TEST_KERNEL_ENV, language="python")
    proc = subprocess.run(
        [sys.executable, "-m", "kernelkit", "bench", CALC, plain, *SHORT, "--no-floor", "--no-footprint", "--json",
         "--cell", f"{CALC}={PRINT_CELL}", "--stream-cell", f"{CALC}={PRINT_STREAM}"],
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 1, proc.stderr  # the plain one failed
    kernels = json.loads(proc.stdout)["kernels"]
    calc = kernels[CALC]
    assert calc["ok"], calc["error"]
    assert calc["cells"] == {"trivial": PRINT_CELL, "stream": PRINT_STREAM}
    assert calc["iopub_per_cell"] == ["status", "execute_input", "stream", "status"]  # as an echo kernel's `x`
    assert calc["roundtrip_us"]["n"] == 10 and calc["stream_mb_per_s"] > 0  # 0.2 MB of exactly the echoed text
    assert calc["pipelined"]["messages"] >= 20 * 5
    assert kernels[plain]["ok"] is False
    assert kernels[plain]["error"] == "warm-up: BenchError: execute_reply status 'error'"
    assert kernels[plain]["cells"] == {"trivial": "x", "stream": "{payload}"}


def test_stream_cell_must_send_the_echoed_text() -> None:
    from kernelkit.tools.bench import big_code, stream_cell

    assert stream_cell("{payload}", 1000) == big_code(1000)
    assert stream_cell('yes "{line}" | head -c {size}', 1000) == (
        "yes \"print('the quick brown fox jumps over the lazy dog', 1234567890, 'abcdefghijk')\" | head -c 1000")
    # An echo kernel given a template echoes the template, not the text: reported, not counted.
    proc = subprocess.run(
        [sys.executable, "-m", "kernelkit", "bench", ECHO, *SHORT, "--no-floor", "--no-footprint", "--json",
         "--clients", "0", "--stream-cell", f"{ECHO}=print({{size}})"],
        capture_output=True, text=True, timeout=240,
    )
    echo = json.loads(proc.stdout)["kernels"][ECHO]
    assert proc.returncode == 1 and echo["ok"] is False
    assert echo["error"] == "stream: BenchError: stream sent 13 of 200000 characters"


@pytest.mark.parametrize("option, value, message", [
    ("--cell", "no-equals-sign", "--cell takes KERNEL=CODE, not 'no-equals-sign'"),
    ("--cell", f"{ECHO}=", f"--cell takes KERNEL=CODE, not '{ECHO}='"),
    ("--stream-cell", "other-kernel={payload}", "--stream-cell other-kernel=...: other-kernel is not among"),
])
def test_bad_cell_options(option: str, value: str, message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "kernelkit", "bench", ECHO, option, value],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr


BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("script", ["anchors", "compare", "cpu_by_thread", "enterprise_gateway", "subshells", "wrap"])
def test_benchmark_scripts_import_and_explain_themselves(script: str) -> None:
    """The scripts behind docs/benchmarks.md must keep up with the API they drive (one went stale once)."""
    proc = subprocess.run([sys.executable, str(BENCHMARKS / f"{script}.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("usage:"), proc.stderr


def test_cpu_by_thread_prints_a_row_per_kernel() -> None:
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "cpu_by_thread.py"), ECHO, CALC, "--rounds", "2",
                           "--cells", "5", "--cell", "1"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()[1:]}
    assert set(rows) == {ECHO, CALC}, proc.stdout
    assert "(1.00×)" in rows[ECHO]  # the first kernel is the reference
    failed = subprocess.run([sys.executable, str(BENCHMARKS / "cpu_by_thread.py"), ECHO, "no-such-kernel-xyz"],
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1 and "no-such-kernel-xyz" in failed.stderr and "Traceback" not in failed.stderr
