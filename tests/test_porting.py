"""Kernels written for ipykernel run on kernelkit after replacing ``ipykernel`` by ``kernelkit`` in their imports.

Two real ports, run through jupyter_client: the seed article's EchoKernel (launched with
``IPKernelApp.launch_instance``), and the published bash_kernel package (a pexpect-driven
wrapper kernel that streams with ``send_response`` and handles interrupts itself).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_client.manager import KernelManager, start_new_kernel

from helpers import seed_echokernel_source

SEED_ECHO = seed_echokernel_source()


def port(source: str) -> str:
    """The whole porting recipe: swap the package name on import lines, nothing else."""
    return re.sub(r"^(\s*from )ipykernel(\.)", r"\1kernelkit\2", source, flags=re.M)


def poison(root: Path) -> Path:
    """A folder whose ``ipykernel`` and ``IPython`` fail on import: put it first on PYTHONPATH
    and any use of them by a ported kernel kills it."""
    for name in ("ipykernel", "IPython", "traitlets", "tornado"):
        package = root / "poison" / name
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text(f"raise ImportError('{name} was imported by a ported kernel')\n")
    return root / "poison"


def write_spec(name: str, argv: list[str], pythonpath: list[Path]) -> None:
    kernels = Path(json_path_root()) / "kernels" / name
    kernels.mkdir(parents=True, exist_ok=True)
    env = {"PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    spec = {"argv": argv, "display_name": name, "language": "text", "env": env}
    (kernels / "kernel.json").write_text(json.dumps(spec))


def json_path_root() -> str:
    return os.environ["JUPYTER_PATH"].split(os.pathsep)[0]


def run_cell(kc, code: str, timeout: float = 20) -> tuple[dict, list[dict]]:
    outputs: list[dict] = []
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=outputs.append)
    return reply["content"], outputs


def stdout_of(outputs: list[dict]) -> str:
    return "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream")


def test_port_changes_only_import_lines() -> None:
    ported = port(SEED_ECHO)
    changed = [(a, b) for a, b in zip(SEED_ECHO.splitlines(), ported.splitlines()) if a != b]
    assert [b.strip() for _, b in changed] == [
        "from kernelkit.kernelbase import Kernel",
        "from kernelkit.kernelapp import IPKernelApp",
    ]


def test_seed_echokernel_ported_by_imports_only(tmp_path: Path) -> None:
    source = tmp_path / "echokernel.py"
    source.write_text(port(SEED_ECHO))
    write_spec("seed-ported", [sys.executable, str(source), "-f", "{connection_file}"], [poison(tmp_path)])
    km, kc = start_new_kernel(kernel_name="seed-ported")
    try:
        info = kc.kernel_info(reply=True, timeout=10)["content"]
        assert info["implementation"] == "Echo"
        assert info["language_info"]["name"] == "Any text"
        reply, outputs = run_cell(kc, "hello, ported world")
        assert reply["status"] == "ok" and reply["execution_count"] == 1
        assert stdout_of(outputs) == "hello, ported world"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def bash_kernel_kk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KernelManager, object]]:
    """bash_kernel's own source, copied and ported, installed as a kernelspec and started."""
    import bash_kernel

    root = tmp_path_factory.mktemp("bashport")
    package = root / "bash_kernel_kk"
    shutil.copytree(Path(bash_kernel.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    for module in package.glob("*.py"):
        module.write_text(port(module.read_text()))
    write_spec("bash-kk", [sys.executable, "-m", "bash_kernel_kk", "-f", "{connection_file}"], [poison(root), root])
    km, kc = start_new_kernel(kernel_name="bash-kk")
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def test_poison_really_blocks_ipykernel(tmp_path: Path) -> None:
    """The guard the ports run under: importing ipykernel through it fails."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(poison(tmp_path))}
    result = subprocess.run([sys.executable, "-c", "import ipykernel"], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "was imported by a ported kernel" in result.stderr


def test_bash_kernel_port_runs_cells_and_keeps_state(bash_kernel_kk) -> None:
    km, kc = bash_kernel_kk
    reply, outputs = run_cell(kc, "echo hello from bash; x=41")
    assert reply["status"] == "ok"
    assert stdout_of(outputs) == "hello from bash\n"
    reply, outputs = run_cell(kc, "echo $((x+1))")
    assert stdout_of(outputs) == "42\n"


def test_bash_kernel_port_reports_failures(bash_kernel_kk) -> None:
    km, kc = bash_kernel_kk
    reply, outputs = run_cell(kc, "ls /nonexistent-kernelkit-path")
    assert reply["status"] == "error"
    assert "No such file or directory" in stdout_of(outputs)
    assert any(m["msg_type"] == "error" for m in outputs)


def test_bash_kernel_port_is_interruptible(bash_kernel_kk) -> None:
    km, kc = bash_kernel_kk
    timer = threading.Timer(1.0, km.interrupt_kernel)
    timer.start()
    reply, _ = run_cell(kc, "sleep 30", timeout=15)
    timer.join()
    assert reply["status"] == "abort"  # bash_kernel's own answer to KeyboardInterrupt
    reply, outputs = run_cell(kc, "echo still here")
    assert stdout_of(outputs) == "still here\n"
