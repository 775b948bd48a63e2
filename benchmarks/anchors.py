"""kernelkit's echo kernel against other kernels ("anchors"), installed in a throwaway venv.

    python benchmarks/anchors.py [--venv DIR] [--out DIR] [--quick] [--no-install] [-- BENCH OPTIONS...]

1. Creates a venv (default ``benchmarks/.venv-anchors``, git-ignored) and pip-installs there
   this checkout of kernelkit (not editable), jupyter_client, psutil, matplotlib, and each
   anchor's package on its own, so one that fails to install does not stop the others.
2. Writes a kernelspec for every kernel into a temporary, isolated Jupyter path, each pinned
   to the venv's absolute interpreter: the floor is added by ``kernelkit bench`` itself;
   ``echo-ipykernel`` (the seed's EchoKernel, verbatim), ``echo-kernelkit``, ``python3``
   (ipykernel), ``metakernel-echo`` (benchmarks/echo_metakernel.py), ``xpython``
   (xeus-python), ``akernel``, ``async-kernel`` and ``bash`` (bash_kernel). The specs the
   wheels install into the venv are copied with their interpreter made absolute.
3. Runs ``VENV/bin/python -m kernelkit bench`` on all of them, with a cell per kernel that
   is valid in its language (see CELLS), into ``--out`` (default ``benchmarks/results/anchors``,
   git-ignored): results.json (plus the anchors' versions and install errors), chart.png and
   table.md (the Markdown table for docs/benchmarks.md).

A kernel that cannot be installed or started is reported as failed; the others are measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from isolation import jupyter_folders

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# kernelspec name -> pip requirement that provides it (None: kernelkit itself)
PACKAGES = {
    "echo-ipykernel": "ipykernel",
    "echo-kernelkit": None,
    "python3": "ipykernel",
    "metakernel-echo": "metakernel",
    "xpython": "xeus-python",
    "akernel": "akernel[subprocess]",  # the extra brings the `akernel launch` command's dependencies
    "async-kernel": "async-kernel",
    "bash": "bash_kernel",
}
BASE = ["jupyter_client", "psutil", "matplotlib"]

# The trivial cell sends one short stdout stream in every kernel, as `x` does in an echo kernel:
# busy, execute_input, stream, execute_reply, idle. `x` alone would be a NameError in Python
# and "command not found" in bash (an error reply, and the bench requires ok).
PY_CELL = 'print("x")'
# The stream cell outputs the same 10 MB as an echo kernel echoes (kernelkit.tools.bench.stream_cell).
# A language kernel prints it from a short cell; the echo kernels also receive the 10 MB as input,
# so they do more work for the same figure. bash_kernel feeds a cell to bash line by line through
# a pty, waiting for a prompt after each line: a 10 MB heredoc would measure that, not the stream.
PY_STREAM = 'print(("{line}\\n" * ({size} // 80 + 1))[:{size}], end="")'
CELLS = {
    "python3": (PY_CELL, PY_STREAM),
    "xpython": (PY_CELL, PY_STREAM),
    "akernel": (PY_CELL, PY_STREAM),
    "async-kernel": (PY_CELL, PY_STREAM),
    "bash": ("echo x", 'yes "{line}" | head -c {size}'),
}
VERSIONS = [
    "kernelkit",
    "ipykernel",
    "ipython",
    "metakernel",
    "xeus-python",
    "xeus-python-shell",
    "akernel",
    "async-kernel",
    "bash_kernel",
    "pexpect",
    "anyio",
    "jupyter_client",
    "jupyter_core",
    "pyzmq",
    "orjson",
]
# About 8 minutes on 2 cores, most of it bash_kernel (0.1 s per cell, 40 s per 10 MB); the timeout
# (per kernel and step) covers its 1000 pipelined requests.
COUNTS = [
    "--starts",
    "5",
    "--cells",
    "300",
    "--warmup",
    "50",
    "--stream-reps",
    "3",
    "--requests",
    "1000",
    "--timeout",
    "300",
]
QUICK = [
    "--starts",
    "2",
    "--python-starts",
    "1",
    "--cells",
    "30",
    "--warmup",
    "5",
    "--stream-mb",
    "1",
    "--stream-reps",
    "1",
    "--requests",
    "100",
    "--timeout",
    "60",
]


def pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), "-m", "pip", "install", "-q", *args], capture_output=True, text=True)


def install(venv: Path) -> dict[str, str]:
    """Create the venv and install into it; returns {requirement: error} for anchors that failed."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print("installing kernelkit (this checkout), " + ", ".join(BASE), file=sys.stderr)
    # Not editable: a wheel with compiled .pyc files, as a user gets it. --force-reinstall of
    # kernelkit alone picks up the checkout's current state even when the version is unchanged.
    done = pip(python, "--force-reinstall", "--no-deps", str(REPO))
    base = pip(python, str(REPO), *BASE)
    if done.returncode or base.returncode:
        sys.exit(f"cannot install kernelkit into {venv}:\n{done.stderr}{base.stderr}")
    errors = {}
    for req in dict.fromkeys(r for r in PACKAGES.values() if r):
        print(f"installing {req}", file=sys.stderr)
        result = pip(python, req)
        if result.returncode:
            lines = [ln for ln in result.stderr.splitlines() if ln.startswith("ERROR")] or result.stderr.splitlines()
            errors[req] = "pip install failed: " + " ".join(lines[-2:])
            print(f"  FAILED: {errors[req]}", file=sys.stderr)
    return errors


def isolate(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    jupyter_folders(root, env)
    return env


def write_spec(kernels: Path, name: str, spec: dict, resources: Path | None = None) -> None:
    folder = kernels / name
    if resources is not None and resources.is_dir():
        shutil.copytree(resources, folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")


def write_specs(venv: Path, kernels: Path, env: dict[str, str]) -> dict[str, str]:
    """Kernelspecs for every anchor, pinned to the venv; returns {name: why not} for those missing."""
    python = str(venv / "bin" / "python")
    missing = {}
    cf = "{connection_file}"
    write_spec(
        kernels,
        "echo-ipykernel",
        {
            "argv": [python, str(HERE / "echo_ipykernel.py"), "-f", cf],
            "display_name": "EchoKernel (ipykernel)",
            "language": "text",
        },
    )
    write_spec(
        kernels,
        "echo-kernelkit",
        {
            "argv": [python, "-m", "kernelkit.kernels.echo", "-f", cf],
            "display_name": "EchoKernel (kernelkit)",
            "language": "text",
        },
    )
    write_spec(
        kernels,
        "metakernel-echo",
        {
            "argv": [python, str(HERE / "echo_metakernel.py"), "-f", cf],
            "display_name": "EchoKernel (MetaKernel)",
            "language": "text",
        },
    )
    # The specs the wheels install into VENV/share/jupyter/kernels: their argv starts with a bare
    # "python", "python3.11" or "akernel"; pin it to the venv.
    for name, source in (
        ("python3", "python3"),
        ("xpython", "xpython"),
        ("akernel", "akernel"),
        ("async-kernel", "async"),
    ):
        installed = venv / "share" / "jupyter" / "kernels" / source
        if not (installed / "kernel.json").is_file():
            missing[name] = f"no kernelspec at {installed} (package not installed?)"
            continue
        spec = json.loads((installed / "kernel.json").read_text(encoding="utf-8"))
        exe = spec["argv"][0]
        if not os.path.isabs(exe):
            spec["argv"][0] = python if exe.startswith("python") else str(venv / "bin" / exe)
        write_spec(kernels, name, spec, installed)
    # bash_kernel's own installer, into a prefix on the temporary JUPYTER_PATH (argv: sys.executable).
    prefix = kernels.parent / "bash-prefix"
    done = subprocess.run(
        [python, "-m", "bash_kernel.install", "--prefix", str(prefix)], env=env, capture_output=True, text=True
    )
    spec_dir = prefix / "share" / "jupyter" / "kernels" / "bash"
    if done.returncode or not spec_dir.is_dir():
        missing["bash"] = f"bash_kernel.install failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}"
    else:
        shutil.copytree(spec_dir, kernels / "bash")
    return missing


def versions(python: Path) -> dict[str, str | None]:
    code = (
        "import importlib.metadata as m, json, sys, zmq\n"
        "def v(n):\n try: return m.version(n)\n except m.PackageNotFoundError: return None\n"
        f"d = {{n: v(n) for n in {VERSIONS!r}}}\n"
        "d['libzmq'] = zmq.zmq_version(); d['python'] = sys.version.split()[0]\n"
        "print(json.dumps(d))"
    )
    out = json.loads(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout)
    bash = subprocess.run(["bash", "--version"], capture_output=True, text=True).stdout.splitlines()
    out["bash"] = bash[0] if bash else None
    return out


def ratio(value: float | None, base: float | None) -> str:
    return f" ({value / base:.2f}×)" if value is not None and base else ""


def table(results: dict) -> str:
    """Markdown: one row per kernel, ratios against the floor (RSS: against echo-ipykernel).

    A kernel that failed at a step shows the figures measured before it.
    """
    from kernelkit.tools.bench import FLOOR_KERNEL, figure

    kernels = results["kernels"]
    floor, ipk = kernels.get(FLOOR_KERNEL, {}), kernels.get("echo-ipykernel", {})
    cols = (
        ("start (ms)", ("start_ms", "median"), floor, "{:.0f}"),
        ("round trip median (µs)", ("roundtrip_us", "median"), floor, "{:.0f}"),
        ("round trip p99 (µs)", ("roundtrip_us", "p99"), floor, "{:.0f}"),
        ("kernel CPU per cell (µs)", ("cpu_us_per_cell",), floor, "{:.0f}"),
        ("10 MB stream (MB/s)", ("stream_mb_per_s",), floor, "{:.1f}"),
        ("pipelined msg/s", ("pipelined", "messages_per_s"), floor, "{:.0f}"),
        ("idle RSS (MB)", ("rss_idle_mb",), ipk, "{:.1f}"),
        ("RSS after load (MB)", ("rss_after_load_mb",), ipk, "{:.1f}"),
        ("footprint (MB)", ("footprint", "bytes"), None, "{:.1f}"),
    )
    lines = ["| kernel | " + " | ".join(c[0] for c in cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, entry in kernels.items():
        label = name if entry["ok"] else f"{name} (failed at {(entry['error'] or '?').split(':')[0]})"
        cells = []
        for _, path, base, fmt in cols:
            value = figure(entry, path)
            ref = figure(base, path) if base and base is not entry else None
            cells.append("-" if value is None else fmt.format(value) + ratio(value, ref))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    py = results.get("python_start_ms", {})
    if py:
        lines.append("")
        lines.append("Interpreter start, same venv: " + ", ".join(f"`{k}` {v:.0f} ms" for k, v in py.items()) + ".")
    failed = [f"- **{n}**: {e['error']}" for n, e in kernels.items() if not e["ok"]]
    if failed:
        lines += ["", "Failed:", *failed]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--venv",
        metavar="DIR",
        default=str(HERE / ".venv-anchors"),
        help="the venv to create or reuse (default benchmarks/.venv-anchors)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=str(HERE / "results" / "anchors"),
        help="results.json, chart.png, table.md (default benchmarks/results/anchors)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: few iterations, 1 MB stream")
    parser.add_argument("--no-install", action="store_true", help="use the venv as it is")
    parser.add_argument(
        "--conformance",
        action="store_true",
        help="run `kernelkit test` on the anchors instead of the benchmark (docs/conformance.md); "
        "writes conformance.json into --out",
    )
    parser.add_argument(
        "bench_args",
        nargs="*",
        metavar="BENCH OPTIONS",
        help="after --: more options for kernelkit bench (they override the counts)",
    )
    args = parser.parse_args()
    venv, out = Path(args.venv).resolve(), Path(args.out).resolve()
    python = venv / "bin" / "python"
    install_errors = {} if args.no_install else install(venv)
    root = Path(tempfile.mkdtemp(prefix="kernelkit-anchors-"))
    try:
        env = isolate(root)
        missing = write_specs(venv, Path(env["JUPYTER_PATH"]) / "kernels", env)
        for name, why in missing.items():
            print(f"{name}: {why}", file=sys.stderr)
        names = list(PACKAGES)
        if args.conformance:
            out.mkdir(parents=True, exist_ok=True)
            command = [str(python), "-m", "kernelkit", "test", *names, "--timeout", "10", *args.bench_args]
            print("$ " + " ".join(command[1:]), file=sys.stderr)
            done = subprocess.run(command, env=env, cwd=root)
            subprocess.run(
                [*command, "--json"], env=env, cwd=root, stdout=(out / "conformance.json").open("w", encoding="utf-8")
            )
            return done.returncode
        cells = []
        for name, (trivial, stream) in CELLS.items():
            cells += ["--cell", f"{name}={trivial}", "--stream-cell", f"{name}={stream}"]
        command = [
            str(python),
            "-m",
            "kernelkit",
            "bench",
            *names,
            "--out",
            str(out),
            *cells,
            *(QUICK if args.quick else COUNTS),
            *args.bench_args,
        ]
        print("$ " + " ".join([*command[1:3], "bench", *names, "..."]), file=sys.stderr)
        status = subprocess.run(command, env=env, cwd=root).returncode
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results_file = out / "results.json"
    if not results_file.exists():
        print("kernelkit bench wrote no results", file=sys.stderr)
        return status or 1
    results = json.loads(results_file.read_text(encoding="utf-8"))
    for name, entry in results["kernels"].items():
        req = PACKAGES.get(name)
        if not entry["ok"] and req in install_errors:
            entry["error"] = f"{install_errors[req]} (then {entry['error']})"
        elif not entry["ok"] and name in missing:
            entry["error"] = f"{missing[name]} (then {entry['error']})"
    results["anchors"] = {
        "versions": versions(python),
        "install_errors": install_errors,
        "missing_kernelspecs": missing,
        "command": " ".join(["python", *sys.argv]),
    }
    results_file.write_text(json.dumps(results, indent=1), encoding="utf-8")
    sys.path.insert(0, str(REPO))
    markdown = table(results)
    (out / "table.md").write_text(markdown + "\n", encoding="utf-8")
    print("\n" + markdown)
    print(f"\nversions: {json.dumps(results['anchors']['versions'])}\nwrote {out}/results.json, chart.png, table.md")
    return status


if __name__ == "__main__":
    sys.exit(main())
