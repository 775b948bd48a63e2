"""kernelkit's echo kernel against the floor (bare pyzmq) and the seed's echo kernel on ipykernel.

    python benchmarks/compare.py [--quick] [--json FILE]

Runs in an isolated, temporary Jupyter path with three kernelspecs, through jupyter_client,
with the kernels interleaved round-robin (measuring code: :mod:`kernelkit.tools.bench`). Prints the
figures, their ratios to the floor (RSS: to ipykernel), and the targets, pass or fail.
Exits 1 when a target fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from isolation import temporary_jupyter

HERE = Path(__file__).resolve().parent
KERNELS = {
    "floor": [sys.executable, str(HERE / "floor_kernel.py"), "-f", "{connection_file}"],
    "echo-ipykernel": [sys.executable, str(HERE / "echo_ipykernel.py"), "-f", "{connection_file}"],
    "echo-kernelkit": [sys.executable, "-m", "kernelkit.kernels.echo", "-f", "{connection_file}"],
}
# (label, figure key path, comparison, limit, baseline kernel)
TARGETS = (
    ("start ≤ 1.3× floor", ("start_ms", "median"), "<=", 1.3, "floor"),
    ("round trip median ≤ 1.3× floor", ("roundtrip_us", "median"), "<=", 1.3, "floor"),
    ("10 MB throughput ≥ 0.8× floor", ("stream_mb_per_s",), ">=", 0.8, "floor"),
    ("idle RSS ≤ 0.5× ipykernel", ("rss_idle_mb",), "<=", 0.5, "echo-ipykernel"),
)
FORBIDDEN = ("IPython", "ipykernel", "tornado", "traitlets")


def isolate() -> Path:
    """Temporary Jupyter and IPython dirs, so no installed kernelspec or config leaks in."""
    root = temporary_jupyter("kernelkit-compare-")
    for name, argv in KERNELS.items():
        spec = root / "path" / "kernels" / name
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": name, "language": "text"}))
    return root


def imported_at_start() -> list[str]:
    """Top-level modules ``import kernelkit`` imports (from ``python -X importtime``)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import kernelkit"], capture_output=True, text=True, check=True
    ).stderr
    names = {line.split("|")[-1].strip() for line in out.splitlines() if line.startswith("import time:")}
    return sorted(names - {"package"})


def check_targets(results: dict) -> list[tuple[str, float | None, bool]]:
    from kernelkit.tools.bench import figure

    kernels = results["kernels"]
    checks = []
    for label, path, op, limit, baseline in TARGETS:
        ours, base = figure(kernels["echo-kernelkit"], path), figure(kernels[baseline], path)
        if ours is None or not base:
            checks.append((label, None, False))
            continue
        ratio = ours / base
        checks.append((label, ratio, ratio <= limit if op == "<=" else ratio >= limit))
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run; figures are noisier)")
    parser.add_argument("--json", metavar="FILE", help="write all figures and samples to FILE")
    args = parser.parse_args()
    root = isolate()
    # A wheel install compiles kernelkit's .pyc files; an editable one under
    # PYTHONDONTWRITEBYTECODE never does, and would pay compilation at every start.
    import kernelkit

    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.dirname(kernelkit.__file__)], check=True)
    from kernelkit.tools.bench import format_table, run

    counts = (
        dict(starts=3, cells=150, warmup=30, stream_reps=2, pipeline_requests=400)
        if args.quick
        else dict(starts=9, cells=1000, warmup=200, stream_reps=5, pipeline_requests=2000)
    )
    results = run(list(KERNELS), **counts, progress=lambda text: print(text, file=sys.stderr, flush=True))
    modules = imported_at_start()
    leaked = sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)
    results["import_kernelkit"] = {"modules": modules, "forbidden_imported": leaked}
    checks = check_targets(results)
    results["targets"] = [{"target": t, "ratio": r, "pass": ok} for t, r, ok in checks]

    rss_vs_ipykernel = {"rss_idle_mb": "echo-ipykernel", "rss_after_load_mb": "echo-ipykernel"}
    print(format_table(results, baseline="floor", baselines=rss_vs_ipykernel))
    print("\nTargets (echo-kernelkit):")
    for label, ratio, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label:<32} {'-' if ratio is None else f'{ratio:.2f}×'}")
    print(
        f"\n`import kernelkit` imports {len(modules)} modules; "
        f"IPython/ipykernel/tornado/traitlets: {', '.join(leaked) or 'none'}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    shutil.rmtree(root, ignore_errors=True)
    return 0 if all(ok for _, _, ok in checks) and not leaked else 1


if __name__ == "__main__":
    sys.exit(main())
