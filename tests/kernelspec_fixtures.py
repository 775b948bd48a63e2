"""Shared by the kernelspec/install/doctor tests: fresh Jupyter folders per test and a CLI runner.

conftest.py isolates the whole session; these tests also need *empty* folders per test
(precedence, shadowing, user vs prefix), set with monkeypatch so nothing leaks between tests.
Only JUPYTER_PATH and the user data dir are written; the env and system dirs are only read.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ECHO_SOURCE = '''
from kernelkit import Kernel


class EchoKernel(Kernel):
    implementation = "Echo"
    language_info = {"name": "echo", "mimetype": "text/plain", "file_extension": ".txt"}

    def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
        if not silent:
            self.send_response(self.iopub_socket, "stream", {"name": "stdout", "text": code})
        return {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}


if __name__ == "__main__":
    EchoKernel.launch()
'''


@dataclass
class Jupyter:
    """The per-test folders: ``path`` is JUPYTER_PATH, ``data`` the user data dir, ``work`` a scratch dir."""

    path: Path
    data: Path
    work: Path

    @property
    def path_kernels(self) -> Path:
        return self.path / "kernels"

    @property
    def user_kernels(self) -> Path:
        return self.data / "kernels"

    def write_spec(self, kernels_dir: Path, name: str, spec: Any, raw: str | None = None) -> Path:
        """A kernelspec folder with ``spec`` as kernel.json (or ``raw`` text, for corrupt files)."""
        folder = kernels_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "kernel.json").write_text(raw if raw is not None else json.dumps(spec), encoding="utf-8")
        return folder

    def echo_file(self, folder: str = "src", name: str = "echokernel.py") -> Path:
        """The seed's EchoKernel (kernelkit flavour) in a folder no interpreter has on its path."""
        path = self.work / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ECHO_SOURCE, encoding="utf-8")
        return path


@pytest.fixture
def jupyter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Jupyter:
    dirs = Jupyter(tmp_path / "jupyter-path", tmp_path / "data", tmp_path / "work")
    for folder in (dirs.path, dirs.data, dirs.work):
        folder.mkdir()
    monkeypatch.setenv("JUPYTER_PATH", str(dirs.path))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(dirs.data))
    monkeypatch.delenv("PYTHONPATH", raising=False)
    return dirs


def kk(*args: str, cwd: Path | None = None, input: str | None = None,
       env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kernelkit ARGS`` as a user would (a subprocess, in ``cwd``, with ``env`` if given)."""
    return subprocess.run([sys.executable, "-m", "kernelkit", *args], cwd=cwd, input=input, env=env,
                          capture_output=True, text=True, timeout=120)


def assert_clean_error(done: subprocess.CompletedProcess[str], code: int = 1, *phrases: str) -> None:
    """A user-facing failure: the exit code, one ``kernelkit: error:`` line, no traceback, the phrases."""
    assert done.returncode == code, done
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("kernelkit: error:")]
    assert errors, done.stderr
    for phrase in phrases:
        assert phrase in done.stderr, (phrase, done.stderr)
