"""Test isolation for kernelkit's suite: temporary Jupyter folders, test kernelspecs, no leftover kernels.

The environment is set at import time, before jupyter_client or jupyter_core read any
path, so nothing here ever touches the real home folder: the Jupyter folders and HOME itself (with
the XDG folders and npm's cache, for the browser and node tools) are temporary.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import settings

# CI draws the same examples on every run (seeded from each test), so a run's verdict is the
# commit's, not the draw's; local runs keep exploring new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent
TEST_KERNELS_DIR = TESTS_DIR / "kernels"

_TMP_ROOT = Path(tempfile.mkdtemp(prefix="kernelkit-tests-"))
JUPYTER_PATH = _TMP_ROOT / "jupyter-path"
JUPYTER_DATA_DIR = _TMP_ROOT / "data"
JUPYTER_RUNTIME_DIR = _TMP_ROOT / "runtime"
JUPYTER_CONFIG_DIR = _TMP_ROOT / "config"
IPYTHONDIR = _TMP_ROOT / "ipython"

for _name, _path in {
    "JUPYTER_PATH": JUPYTER_PATH,
    "JUPYTER_DATA_DIR": JUPYTER_DATA_DIR,
    "JUPYTER_RUNTIME_DIR": JUPYTER_RUNTIME_DIR,
    "JUPYTER_CONFIG_DIR": JUPYTER_CONFIG_DIR,
    "IPYTHONDIR": IPYTHONDIR,
}.items():
    _path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ[_name] = str(_path)
os.environ.pop("JPY_PARENT_PID", None)  # our kernels must see this test process as their parent

#: A home folder for every process the tests start. Without it the browser and node tools write to
#: the real one: chromium ~/.config/chromium (crash reports), dconf ~/.cache/dconf, npm (run by
#: JupyterLab) ~/.npm/_logs. HOME, the XDG folders and npm's cache all point into the temporary root.
HOME_DIR = _TMP_ROOT / "home"
for _name, _path in {
    "HOME": HOME_DIR,
    "XDG_CONFIG_HOME": HOME_DIR / ".config",
    "XDG_CACHE_HOME": HOME_DIR / ".cache",
    "XDG_DATA_HOME": HOME_DIR / ".local" / "share",
    "XDG_STATE_HOME": HOME_DIR / ".local" / "state",
    "npm_config_cache": HOME_DIR / ".npm",
}.items():
    _path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ[_name] = str(_path)


def install_kernelspec(
    name: str,
    module: str | None = None,
    *,
    argv: list[str] | None = None,
    interrupt_mode: str | None = None,
    env: dict[str, str] | None = None,
    display_name: str | None = None,
    language: str = "text",
) -> Path:
    """Write ``kernels/NAME/kernel.json`` into the temporary JUPYTER_PATH; returns the folder."""
    if argv is None:
        assert module, "give a module or a full argv"
        argv = [sys.executable, "-m", module, "-f", "{connection_file}"]
    spec: dict[str, Any] = {"argv": argv, "display_name": display_name or name, "language": language}
    if interrupt_mode:
        spec["interrupt_mode"] = interrupt_mode
    if env:
        spec["env"] = env
    folder = JUPYTER_PATH / "kernels" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return folder


#: Test kernels in tests/kernels/ are importable through PYTHONPATH, not through the test's sys.path.
TEST_KERNEL_ENV = {"PYTHONPATH": str(TEST_KERNELS_DIR)}

ECHO = "kk-echo"
CALC = "kk-calc"
SLEEPY_SIGNAL = "kk-sleepy-signal"
SLEEPY_MESSAGE = "kk-sleepy-message"
ASYNC = "kk-async"

install_kernelspec(ECHO, "kernelkit.kernels.echo")
install_kernelspec(CALC, "calc_kernel", env=TEST_KERNEL_ENV, language="python")
install_kernelspec(SLEEPY_SIGNAL, "sleepy_kernel", env=TEST_KERNEL_ENV, interrupt_mode="signal")
install_kernelspec(SLEEPY_MESSAGE, "sleepy_kernel", env=TEST_KERNEL_ENV, interrupt_mode="message")
install_kernelspec(ASYNC, "async_kernel", env=TEST_KERNEL_ENV)


@pytest.fixture
def broken_kernelspecs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A Jupyter path of its own for one test: ECHO and two broken kernelspecs (invalid JSON, no argv)."""
    broken = {"kk-bad-json": '{"argv": [', "kk-no-argv": '{"display_name": "x", "language": "x"}'}
    shutil.copytree(JUPYTER_PATH / "kernels" / ECHO, tmp_path / "kernels" / ECHO)
    for name, text in broken.items():
        (tmp_path / "kernels" / name).mkdir()
        (tmp_path / "kernels" / name / "kernel.json").write_text(text, encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    return list(broken)


def _our_kernel_processes() -> list[psutil.Process]:
    """Children of this test process, and any process whose command line names our runtime dir.

    Kernels started through tests/helpers.py (and the conformance classes) keep their connection
    files in JUPYTER_RUNTIME_DIR, so even one re-parented away from us is found.
    """
    me = os.getpid()
    found: dict[int, psutil.Process] = {}
    try:
        for child in psutil.Process(me).children(recursive=True):
            found[child.pid] = child
    except psutil.Error:
        pass
    runtime = str(JUPYTER_RUNTIME_DIR)
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = proc.info["cmdline"] or []
        except psutil.Error:
            continue
        if proc.pid != me and any(runtime in part for part in cmdline):
            found[proc.pid] = proc
    alive = []
    for proc in found.values():
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.Error:
            pass
    return alive


@pytest.fixture(scope="session", autouse=True)
def no_leftover_kernels():
    """Fail the session loudly if a test left a kernel process running (and kill it)."""
    yield
    deadline = time.monotonic() + 5
    left = _our_kernel_processes()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _our_kernel_processes()
    described = []
    for proc in left:
        try:
            described.append(f"pid {proc.pid}: {' '.join(proc.cmdline())}")
            proc.kill()
        except psutil.Error:
            pass
    shutil.rmtree(_TMP_ROOT, ignore_errors=True)
    if described:
        pytest.fail("kernel processes left running after the tests (now killed):\n" + "\n".join(described))
