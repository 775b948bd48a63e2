"""kernelkit doctor on any kernel: the seed article's failure explained, real kernels started, bad specs flagged."""

from __future__ import annotations

import importlib.util
import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpec

import kernelkit
from kernelkit.tools import doctor, kernelspecs as kernelspec
from kernelspec_fixtures import ECHO_SOURCE, Jupyter, assert_clean_error, jupyter, kk  # noqa: F401  (fixture)

CONN = "{connection_file}"


def findings(report: doctor.Report, level: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in report.findings:
        if f.level == level:
            out.setdefault(f.check, []).append(f.message + " | " + f.fix)
    return out


@pytest.mark.slow
def test_seed_pitfall_is_explained_and_fixed(jupyter: Jupyter) -> None:
    """["python", "-m", "echokernel", ...] with the module only in the author's folder, as in the article."""
    source = jupyter.echo_file()
    jupyter.write_spec(jupyter.user_kernels, "echo", {"argv": ["python", "-m", "echokernel", "-f", CONN],
                                                      "display_name": "Echo"})
    done = kk("doctor", "echo", "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)["kernels"][0]
    errors = {f["check"]: f for f in report["findings"] if f["level"] == "error"}
    assert "cannot import echokernel" in errors["import"]["message"]
    assert "cannot import echokernel" in errors["start"]["message"]
    assert "No module named echokernel" in report["stderr"]
    assert "pip install echokernel" in errors["start"]["fix"] and "kernelkit install" in errors["start"]["fix"]
    warned = [f for f in report["findings"] if f["level"] == "warn" and f["check"] == "interpreter"]
    assert "bare name" in warned[0]["message"]
    # from the author's folder, doctor names the exact kernelkit install command for that file
    here = kk("doctor", "echo", cwd=source.parent)
    assert here.returncode == 1 and f"kernelkit install {source} --name echo --replace" in here.stdout
    # which, run from there, installs a kernel that starts from anywhere
    assert kk("install", str(source), "--name", "echo", "--replace").returncode == 0
    fixed = kk("doctor", "echo", cwd=jupyter.work)
    assert fixed.returncode == 0, fixed.stdout
    assert "answered kernel_info" in fixed.stdout


def test_seed_folder_installed_by_jupyter_gets_the_folder_fix(jupyter: Jupyter) -> None:
    folder = jupyter.echo_file(folder="echo").parent
    (folder / "kernel.json").write_text(json.dumps({"argv": ["python", "-m", "echokernel", "-f", CONN],
                                                    "display_name": "Echo"}))
    kernelspec.install(json.loads((folder / "kernel.json").read_text()), "echo", user=True, source_dir=folder)
    report = doctor.diagnose(kernelspec.get("echo"), start=False)
    fix = findings(report, "error")["import"][0]
    assert f"kernelkit install {jupyter.user_kernels / 'echo'} --user --replace" in fix
    assert kk("install", str(jupyter.user_kernels / "echo"), "--user", "--replace").returncode == 0
    assert doctor.diagnose(kernelspec.get("echo")).ok


@pytest.mark.slow
def test_ipykernel_python3_and_bash_kernel_pass(jupyter: Jupyter) -> None:
    """Both are in the test extra: a missing one is a failure, not a skip."""
    import bash_kernel  # noqa: F401
    import ipykernel  # noqa: F401

    jupyter.write_spec(jupyter.path_kernels, "python3", {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", CONN], "display_name": "Python 3",
        "language": "python", "metadata": {"debugger": True}, "kernel_protocol_version": "5.5"})
    jupyter.write_spec(jupyter.path_kernels, "bash", {
        "argv": [sys.executable, "-m", "bash_kernel", "-f", CONN], "display_name": "Bash", "language": "bash"})
    names = ["python3", "bash"]
    reports = [r for r in doctor.diagnose_all(names, timeout=60) if r.resource_dir.startswith(str(jupyter.path))]
    assert sorted(r.name for r in reports) == sorted(names)
    for report in reports:  # the env's own python3 is shadowed by ours, so only checked, not started
        assert report.ok, report.to_dict()
        assert report.start_seconds is not None and report.start_seconds > 0


@pytest.mark.parametrize(("spec", "check", "phrase"), [
    (None, "json", "not valid JSON"),
    ({"argv": ["/nonexistent/python", "-m", "x", "-f", CONN], "display_name": "x"}, "interpreter", "not found"),
    ({"argv": [sys.executable, "-m", "kernelkit.kernels.echo"], "display_name": "x"}, "json", "{connection_file}"),
    ({"argv": [sys.executable, "-m", "x", "-f", CONN], "display_name": "x", "interrupt_mode": "never"},
     "interrupt_mode", "never"),
    ({"argv": [sys.executable, "-m", "x", "-f", CONN], "display_name": "x", "kernel_protocol_version": "five"},
     "protocol", "five"),
])
def test_static_errors(jupyter: Jupyter, spec: dict | None, check: str, phrase: str) -> None:
    jupyter.write_spec(jupyter.path_kernels, "k", spec, raw="{" if spec is None else None)
    report = doctor.diagnose(kernelspec.find_all()[0], start=False)
    assert not report.ok
    assert any(phrase in m for m in findings(report, "error")[check]), report.to_dict()


def test_shadowing_bad_name_and_logo_sizes(jupyter: Jupyter) -> None:
    good = {"argv": [sys.executable, "-m", "kernelkit.kernels.echo", "-f", CONN], "display_name": "x",
            "kernel_protocol_version": "5.5"}
    jupyter.write_spec(jupyter.path_kernels, "dup", good)
    shadowed = jupyter.write_spec(jupyter.user_kernels, "DUP", good)
    (shadowed / "logo-64x64.png").write_bytes(b"not a png")
    jupyter.write_spec(jupyter.path_kernels, "bad name", good)
    by_dir = {str(r.resource_dir): r for r in doctor.diagnose_all(start=False)}
    shadow_report = by_dir[str(shadowed)]
    assert "shadowed by" in findings(shadow_report, "warn")["shadowing"][0]
    assert "not a PNG" in findings(shadow_report, "warn")["logo"][0]
    assert "ASCII letters" in findings(by_dir[str(jupyter.path_kernels / "bad name")], "error")["name"][0]
    jupyter.write_spec(jupyter.path_kernels, "python", good)
    report = doctor.diagnose(kernelspec.get("python"), start=False)
    assert "frontends never start this kernel" in findings(report, "error")["name"][0]


def test_crashing_kernel_shows_stderr(jupyter: Jupyter) -> None:
    jupyter.write_spec(jupyter.path_kernels, "crash", {
        "argv": [sys.executable, "-c", "import sys; sys.exit('boom: bad config')", CONN], "display_name": "x"})
    done = kk("doctor", "crash")
    assert done.returncode == 1
    assert "boom: bad config" in done.stdout and "BROKEN" in done.stdout


@pytest.mark.slow
def test_silent_kernel_times_out_and_is_stopped(jupyter: Jupyter) -> None:
    jupyter.write_spec(jupyter.path_kernels, "mute", {
        "argv": [sys.executable, "-c", "import time; time.sleep(60)", CONN], "display_name": "x"})
    done = kk("doctor", "mute", "--timeout", "1", "--json")
    assert done.returncode == 1
    start = [f for f in json.loads(done.stdout)["kernels"][0]["findings"] if f["check"] == "start"][0]
    assert start["level"] == "error" and "within 1 s" in start["message"]


def test_doctor_all_and_unknown_names(jupyter: Jupyter) -> None:
    jupyter.write_spec(jupyter.path_kernels, "echo", {
        "argv": [sys.executable, "-m", "kernelkit.kernels.echo", "-f", CONN], "display_name": "x",
        "kernel_protocol_version": "5.5"})
    assert_clean_error(kk("doctor", "ecko"), 1, "did you mean 'echo'")
    done = kk("doctor", "--json", "--no-start")
    data = json.loads(done.stdout)
    assert "echo" in [k["name"] for k in data["kernels"]]


# ---- a bare `python` means the frontend's interpreter (jupyter_client's format_kernel_cmd) -------


def make_venv_with_kernel(root: Path, module: str) -> Path:
    """A real virtualenv whose site-packages alone holds ``module`` (an echo kernel); returns its python.

    kernelkit and its dependencies reach it through a .pth file naming this checkout and the test
    interpreter's site-packages, so nothing is installed anywhere; the test interpreter itself
    cannot import ``module``.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120,
                   capture_output=True)
    python = root / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    repo = Path(kernelkit.__file__).resolve().parents[1]
    (Path(purelib) / "kernelkit-tests.pth").write_text("\n".join([str(repo), *site.getsitepackages()]) + "\n")
    (Path(purelib) / f"{module}.py").write_text(ECHO_SOURCE)
    assert importlib.util.find_spec(module) is None, "the test interpreter must not import the venv's kernel"
    return python


@pytest.fixture
def venv_kernel(jupyter: Jupyter, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The venv's python, and an environment whose PATH finds that venv's `python` first (an activated venv)."""
    python = make_venv_with_kernel(tmp_path / "venv", "venvonly_kernel")
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"}
    jupyter.write_spec(jupyter.path_kernels, "venvonly", {
        "argv": ["python", "-m", "venvonly_kernel", "-f", CONN], "display_name": "Venv only", "language": "echo",
        "kernel_protocol_version": "5.5"})
    return python, env


def test_bare_python_is_the_frontends_interpreter_as_jupyter_client_runs_it(
        jupyter: Jupyter, venv_kernel: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """With the venv activated, `python` on PATH imports the kernel, but jupyter_client runs its own interpreter."""
    venv_python, env = venv_kernel
    # what really happens: jupyter_client (on this interpreter) starts the spec and the kernel dies
    monkeypatch.setenv("PATH", env["PATH"])
    km = KernelManager(kernel_name="venvonly")
    km.start_kernel(stderr=subprocess.PIPE, cwd=str(jupyter.work))
    try:
        process = km.provisioner.process  # type: ignore[union-attr]
        assert process.wait(timeout=60) != 0
        assert "No module named venvonly_kernel" in process.stderr.read().decode()
        assert process.args[0] == sys.executable
    finally:
        km.cleanup_resources()
    # doctor, told which interpreter the frontend runs on, says exactly that and pins the venv's python
    done = kk("doctor", "venvonly", "--json", "--frontend-python", sys.executable, env=env)
    assert done.returncode == 1, done.stdout
    data = json.loads(done.stdout)
    assert data["frontend"] == {"python": sys.executable, "version": f"{sys.version_info[0]}.{sys.version_info[1]}",
                                "source": "given with --frontend-python"}
    report = data["kernels"][0]
    errors = {f["check"]: f for f in report["findings"] if f["level"] == "error"}
    warned = {f["check"]: f for f in report["findings"] if f["level"] == "warn"}
    assert "jupyter_client replaces it with its own interpreter" in warned["interpreter"]["message"]
    assert f"the frontend's interpreter {sys.executable} cannot import venvonly_kernel" in errors["import"]["message"]
    assert f"{venv_python}, the python first on PATH, can" in errors["import"]["message"]
    pin = f'set argv[0] to "{venv_python}"'
    assert pin in errors["import"]["fix"] and pin in warned["interpreter"]["fix"]
    assert "which jupyter_client runs for argv[0] 'python'" in errors["start"]["message"]
    assert pin in errors["start"]["fix"]
    assert "No module named venvonly_kernel" in report["stderr"]
    # a frontend running on the venv's python would start it: doctor agrees
    on_venv = kk("doctor", "venvonly", "--frontend-python", str(venv_python), env=env)
    assert on_venv.returncode == 0, on_venv.stdout
    assert f"jupyter_client on {venv_python}" in on_venv.stdout and "answered kernel_info" in on_venv.stdout
    # and the fix doctor gave works for every frontend
    spec_file = jupyter.path_kernels / "venvonly" / "kernel.json"
    spec = json.loads(spec_file.read_text())
    spec_file.write_text(json.dumps({**spec, "argv": [str(venv_python), *spec["argv"][1:]]}))
    fixed = kk("doctor", "venvonly", "--frontend-python", sys.executable, env=env)
    assert fixed.returncode == 0, fixed.stdout


def test_default_frontend_is_the_interpreter_of_jupyter_on_path(
        jupyter: Jupyter, venv_kernel: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    venv_python, env = venv_kernel
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    jupyter_script = bin_dir / "jupyter"
    jupyter_script.write_text(f"#!{venv_python}\nimport sys\nsys.exit('a stand-in for jupyter')\n")
    jupyter_script.chmod(0o755)
    with_jupyter = {**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}"}
    done = kk("doctor", "venvonly", "--json", env=with_jupyter)
    data = json.loads(done.stdout)
    assert data["frontend"]["python"] == str(venv_python), data["frontend"]
    assert data["frontend"]["source"] == f"the interpreter of {jupyter_script}, the jupyter command on PATH"
    assert done.returncode == 0, done.stdout
    # pip's launcher for long interpreter paths is understood too
    jupyter_script.write_text(f"#!/bin/sh\n'''exec' \"{venv_python}\" \"$0\" \"$@\"\n' '''\nimport sys\n")
    assert doctor._script_interpreter(str(jupyter_script)) == str(venv_python)
    # without a jupyter command that names a Python, doctor assumes its own interpreter, and says so
    jupyter_script.write_text("#!/bin/sh\nexit 1\n")
    data = json.loads(kk("doctor", "venvonly", "--json", "--no-start", env=with_jupyter).stdout)
    assert data["frontend"] == {"python": sys.executable, "version": f"{sys.version_info[0]}.{sys.version_info[1]}",
                                "source": "the Python running kernelkit doctor"}


@pytest.mark.parametrize(("argv0", "substituted"), [
    ("python", True), (f"python{sys.version_info[0]}", True),
    (f"python{sys.version_info[0]}.{sys.version_info[1]}", True),
    (f"python{sys.version_info[0]}.{sys.version_info[1] + 1}", False),  # another version: looked up on PATH
    ("/usr/bin/python", False), ("bash", False),
])
def test_which_argv0_jupyter_client_replaces(argv0: str, substituted: bool) -> None:
    """The rule doctor models, checked against jupyter_client's own format_kernel_cmd."""
    km = KernelManager()
    km._kernel_spec = KernelSpec(argv=[argv0, "-f", CONN], display_name="x", resource_dir="/tmp")
    cmd = km.format_kernel_cmd()
    assert (cmd[0] == sys.executable) == substituted, cmd
    assert doctor.frontend(sys.executable).substitutes(argv0) == substituted


def test_syntax_error_gets_one_fix_from_every_check(jupyter: Jupyter) -> None:
    """An installed kernel whose file now has a syntax error: the import and start checks agree on the fix."""
    path = jupyter.work / "later.py"
    path.write_text(ECHO_SOURCE)
    assert kk("install", str(path), "--name", "later").returncode == 0
    path.write_text(ECHO_SOURCE.replace("class EchoKernel(Kernel):", "class EchoKernel(Kernel)"))
    done = kk("doctor", "later", "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)["kernels"][0]
    errors = [f for f in report["findings"] if f["level"] == "error"]
    assert {f["check"] for f in errors} == {"import", "start"}, errors
    line = ECHO_SOURCE.splitlines().index("class EchoKernel(Kernel):") + 1
    for finding in errors:
        assert f"{path} line {line} has a syntax error" in finding["message"], finding
        assert finding["fix"].startswith("fix that line"), finding
        assert "pip install" not in finding["fix"] and "reinstall" not in finding["fix"], finding
