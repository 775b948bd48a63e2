"""kernelkit doctor on any kernel: the seed article's failure explained, real kernels started, bad specs flagged."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kernelkit.tools import doctor, kernelspecs as kernelspec
from kernelspec_fixtures import Jupyter, assert_clean_error, jupyter, kk  # noqa: F401  (fixture)

CONN = "{connection_file}"


def findings(report: doctor.Report, level: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in report.findings:
        if f.level == level:
            out.setdefault(f.check, []).append(f.message + " | " + f.fix)
    return out


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


def test_ipykernel_python3_and_bash_kernel_pass(jupyter: Jupyter) -> None:
    pytest.importorskip("ipykernel")
    jupyter.write_spec(jupyter.path_kernels, "python3", {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", CONN], "display_name": "Python 3",
        "language": "python", "metadata": {"debugger": True}, "kernel_protocol_version": "5.5"})
    names = ["python3"]
    try:
        import bash_kernel  # noqa: F401
        jupyter.write_spec(jupyter.path_kernels, "bash", {
            "argv": [sys.executable, "-m", "bash_kernel", "-f", CONN], "display_name": "Bash", "language": "bash"})
        names.append("bash")
    except ImportError:
        pass
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


def test_crashing_kernel_shows_stderr(jupyter: Jupyter) -> None:
    jupyter.write_spec(jupyter.path_kernels, "crash", {
        "argv": [sys.executable, "-c", "import sys; sys.exit('boom: bad config')", CONN], "display_name": "x"})
    done = kk("doctor", "crash")
    assert done.returncode == 1
    assert "boom: bad config" in done.stdout and "BROKEN" in done.stdout


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
