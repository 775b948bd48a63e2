"""docs/tutorial.md is run as written, then its environments serve the cross-environment tests.

Rules for the tutorial: every fenced block tagged ``sh`` runs, in order, in one bash session started
in an empty folder; a ``python`` block whose first line is ``# PATH`` is written to PATH at that
point; ``console`` blocks are shown only. ``pip install kernelkit`` installs this checkout instead
of PyPI's. Jupyter's folders are temporary, so nothing reaches the real home.

Then, with the tutorial's clean environment (``clean``: kernelkit and the built wheel, no
jupyter_client) as the *kernel* environment and this test process (jupyter_client, and no
``wordcount``) as the *frontend*, jupyter_client starts:
- the kernelspec the wheel shipped into ``clean/share/jupyter`` (found through JUPYTER_PATH),
- the one ``python -m wordcount install --user`` wrote (found in the user data dir),
- a ``kernelkit install`` run with clean's kernelkit (the sqlite kernel, with kernel arguments).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from conftest import REPO_DIR
from helpers import drain, execute, kernel_pid, running_kernel, shell_reply

pytestmark = pytest.mark.slow

TUTORIAL = REPO_DIR / "docs" / "tutorial.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


@dataclass
class Tutorial:
    work: Path  # the folder the tutorial starts in
    data_dir: Path  # JUPYTER_DATA_DIR it ran with (the "user" kernelspecs)
    output: str

    @property
    def clean(self) -> Path:
        return self.work / "clean"


def tutorial_script(markdown: str) -> str:
    """The tutorial as one bash script (see the module docstring for the rules)."""
    lines = ["set -eo pipefail"]
    for number, (tag, body) in enumerate(_FENCE.findall(markdown), start=1):
        if tag == "sh":
            body = re.sub(r"(pip install(?: -\S+)*) kernelkit\b(?![-\w.])", rf"\1 {REPO_DIR}", body)
            lines += [f"echo '### block {number}'", body.rstrip("\n")]
        elif tag == "python" and body.startswith("# "):
            path = body.splitlines()[0][2:].strip()
            lines += [f"echo '### block {number}: {path}'", f"cat > {path} <<'KERNELKIT_TUTORIAL_EOF'",
                      body.rstrip("\n"), "KERNELKIT_TUTORIAL_EOF"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tutorial]:
    root = tmp_path_factory.mktemp("tutorial")
    work, data_dir, path_dir = root / "work", root / "jupyter-data", root / "jupyter-path"
    for folder in (work, data_dir, path_dir):
        folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    # `python` and `jupyter` are this test environment's until the tutorial activates its own
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(JUPYTER_DATA_DIR=str(data_dir), JUPYTER_PATH=str(path_dir), PIP_DISABLE_PIP_VERSION_CHECK="1")
    done = subprocess.run(["bash", "-c", tutorial_script(TUTORIAL.read_text(encoding="utf-8"))], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    (root / "tutorial.log").write_text(done.stdout + "\n--- stderr ---\n" + done.stderr, encoding="utf-8")
    assert done.returncode == 0, f"the tutorial failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    yield Tutorial(work, data_dir, done.stdout)


def block(output: str, number: int) -> str:
    """What one sh block printed."""
    return output.split(f"### block {number}\n", 1)[1].split("### block ", 1)[0]


def test_tutorial_runs_from_new_to_wheel(tutorial: Tutorial) -> None:
    out = tutorial.output
    assert "to be or not to be\n6 words\n" in out
    assert "wordcount  (" in out and "OK" in out  # kernelkit doctor
    assert re.search(r"\b(2 passed|1 passed, 1 skipped)\b", out), out
    from kernelkit.cli import COMMANDS

    if "test" in COMMANDS:  # once `kernelkit test` exists, the generated test really runs it
        assert "2 passed" in out
    assert "it works\n2 words\n" in out
    wheel = tutorial.work / "wordcount" / "dist" / "wordcount-0.1.0-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    shipped = "wordcount-0.1.0.data/data/share/jupyter/kernels/wordcount/"
    assert {shipped + f for f in ("kernel.json", "logo-32x32.png", "logo-64x64.png", "logo-svg.svg")} <= set(names)
    # both kernelspec listings: the wheel's (JUPYTER_PATH into clean) and the registered one (user dir)
    assert f"  wordcount    {tutorial.work}/wordcount/../clean/share/jupyter/kernels/wordcount\n" in out
    assert str(tutorial.data_dir / "kernels" / "wordcount") in out


def _use(monkeypatch: pytest.MonkeyPatch, jupyter_path: Path | None, data_dir: Path) -> None:
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path) if jupyter_path else "")
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data_dir))


def _kernel_python(km) -> str:  # noqa: ANN001
    return psutil.Process(kernel_pid(km)).cmdline()[0]


def test_wheel_kernel_starts_in_its_env_from_a_frontend_in_another(
    tutorial: Tutorial, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert importlib.util.find_spec("wordcount") is None  # the frontend's environment lacks the kernel
    _use(monkeypatch, tutorial.clean / "share" / "jupyter", tmp_path)
    with running_kernel("wordcount", cwd=str(tmp_path)) as (km, kc):
        drain(kc)  # a first start in a fresh env compiles its .pyc: wait_for_ready may have asked twice
        assert os.path.normpath(_kernel_python(km)) == str(tutorial.clean / "bin" / "python")
        reply, msgs = execute(kc, "one two three")
        assert reply["content"]["status"] == "ok"
        assert [m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "display_data"] == ["3 words"]
        assert shell_reply(kc, kc.kernel_info())["content"]["implementation"] == "wordcount"


def test_registered_kernel_starts_from_a_frontend_that_does_not_look_into_its_env(
    tutorial: Tutorial, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec = json.loads((tutorial.data_dir / "kernels" / "wordcount" / "kernel.json").read_text())
    assert spec["argv"][0] == str(tutorial.clean / "bin" / "python")
    assert {"logo-32x32.png", "logo-64x64.png", "logo-svg.svg"} <= {
        p.name for p in (tutorial.data_dir / "kernels" / "wordcount").iterdir()}
    _use(monkeypatch, None, tutorial.data_dir)
    with running_kernel("wordcount", cwd=str(tmp_path)) as (km, kc):
        drain(kc)  # a first start in a fresh env compiles its .pyc: wait_for_ready may have asked twice
        assert _kernel_python(km) == str(tutorial.clean / "bin" / "python")
        reply, msgs = execute(kc, "registered")
        assert reply["content"]["status"] == "ok"
        assert "1 words" in [m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "display_data"]


def test_kernelkit_install_in_one_env_runs_from_a_frontend_in_another(
    tutorial: Tutorial, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = {**os.environ, "JUPYTER_DATA_DIR": str(data_dir), "JUPYTER_PATH": ""}
    done = subprocess.run([str(tutorial.clean / "bin" / "kernelkit"), "install", "kernelkit.kernels.sqlite", "--name",
                           "sql-clean", "--", "--max-rows", "2"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    _use(monkeypatch, None, data_dir)
    with running_kernel("sql-clean", cwd=str(tmp_path)) as (km, kc):
        drain(kc)  # a first start in a fresh env compiles its .pyc: wait_for_ready may have asked twice
        assert Path(_kernel_python(km)).parent == tutorial.clean / "bin"  # python or python3.11: clean's own
        reply, msgs = execute(kc, "SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT 3;")
        assert reply["content"]["status"] == "ok"
        (table,) = [m["content"]["data"] for m in msgs if m["msg_type"] == "display_data"]
        assert "first 2 rows shown" in table["text/plain"] and "<table>" in table["text/html"]
