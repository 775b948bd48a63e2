"""kernelkit install / list / remove as a user runs them, and interop with jupyter kernelspec and jupyter_client."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from helpers import running_kernel
from kernelspec_fixtures import ECHO_SOURCE, Jupyter, assert_clean_error, jupyter, kk  # noqa: F401  (fixture)


def jupyter_kernelspec(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jupyter", "kernelspec", *args],
                          capture_output=True, text=True, timeout=60)


def png(path: Path, width: int, height: int) -> Path:
    """A minimal valid PNG of the given size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_install_file_is_listed_and_started_by_jupyter_from_anywhere(jupyter: Jupyter) -> None:
    source = jupyter.echo_file()
    done = kk("install", str(source.relative_to(jupyter.work)), "--name", "Seed-Echo", cwd=jupyter.work)
    assert done.returncode == 0, done.stderr
    folder = jupyter.user_kernels / "seed-echo"
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["argv"] == [sys.executable, "-m", "kernelkit_launcher", f"{source}:EchoKernel", "-f", "{connection_file}"]
    assert (spec["display_name"], spec["language"]) == ("Echo", "echo")
    listed = json.loads(jupyter_kernelspec("list", "--json").stdout)["kernelspecs"]
    assert listed["seed-echo"]["resource_dir"] == str(folder)
    elsewhere = jupyter.work / "unrelated"
    elsewhere.mkdir()
    assert_echoes("SEED-ECHO", elsewhere)


def assert_echoes(name: str, cwd: Path) -> None:
    """jupyter_client starts the kernel from ``cwd`` and it echoes a cell."""
    texts: list[str] = []
    with running_kernel(name, cwd=str(cwd)) as (_km, kc):
        reply = kc.execute_interactive("hello", timeout=20, output_hook=lambda m: texts.append(m["content"].get("text", "")))
    assert reply["content"]["status"] == "ok" and "hello" in texts


@pytest.mark.slow
def test_install_options_dry_run_and_json(jupyter: Jupyter) -> None:
    logo = png(jupyter.work / "logo.png", 64, 64)
    args = ["install", "kernelkit.kernels.echo", "--name", "e2", "--display-name", "Echo Two", "--language", "txt",
            "--env", "A=1", "--env", "B=x=y", "--interrupt-mode", "message", "--metadata", '{"debugger": false}',
            "--logo", str(logo)]
    dry = kk(*args, "--dry-run")
    assert dry.returncode == 0 and not (jupyter.user_kernels / "e2").exists()
    shown = json.loads(dry.stdout.split("\n", 1)[1])
    assert shown["env"] == {"A": "1", "B": "x=y"} and shown["interrupt_mode"] == "message"
    done = kk(*args, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    folder = Path(result["resource_dir"])
    assert folder == jupyter.user_kernels / "e2" and result["spec"] == shown
    assert (folder / "logo-64x64.png").read_bytes() == logo.read_bytes()
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["metadata"]["debugger"] is False and spec["metadata"]["kernelkit"]["python"] == sys.executable
    assert (spec["display_name"], spec["language"]) == ("Echo Two", "txt")


@pytest.mark.slow
def test_prefix_and_replace(jupyter: Jupyter) -> None:
    prefix = jupyter.work / "env"
    assert kk("install", "kernelkit.kernels.echo", "--prefix", str(prefix)).returncode == 0
    assert (prefix / "share/jupyter/kernels/echo/kernel.json").exists()
    # The same install again (a README's command run twice) is nothing to do, and says so.
    again = kk("install", "kernelkit.kernels.echo", "--prefix", str(prefix))
    assert again.returncode == 0 and "already installed" in again.stdout and "unchanged" in again.stdout, again
    spec_file = prefix / "share/jupyter/kernels/echo/kernel.json"
    spec_file.write_text(spec_file.read_text().replace('"Echo"', '"Edited by hand"'))
    different = kk("install", "kernelkit.kernels.echo", "--prefix", str(prefix))
    assert_clean_error(different, 1, "a different kernel named 'echo' already exists", "--replace")
    assert "Edited by hand" in spec_file.read_text(), "a different kernelspec must not be overwritten"
    replaced = kk("install", "kernelkit.kernels.echo", "--prefix", str(prefix), "--replace", "--json")
    assert replaced.returncode == 0 and json.loads(replaced.stdout)["unchanged"] is False
    assert '"Echo"' in spec_file.read_text()
    assert kk("install", "x", "--user", "--prefix", str(prefix)).returncode == 2


@pytest.mark.slow
def test_jupyter_installed_spec_is_listed_diagnosed_and_removed(jupyter: Jupyter) -> None:
    source = jupyter.work / "bash-like"
    jupyter.write_spec(jupyter.work, "bash-like", {
        "argv": [sys.executable, "-m", "kernelkit.kernels.echo", "-f", "{connection_file}"],
        "display_name": "Made by jupyter", "language": "text"})
    assert jupyter_kernelspec("install", "--user", str(source)).returncode == 0
    listed = json.loads(kk("list", "--json").stdout)["kernelspecs"]
    assert listed["bash-like"]["spec"]["display_name"] == "Made by jupyter"
    doctor = kk("doctor", "BASH-LIKE")
    assert doctor.returncode == 0, doctor.stdout
    assert "answered kernel_info" in doctor.stdout
    removed = kk("remove", "Bash-Like", "-y")
    assert removed.returncode == 0 and not (jupyter.user_kernels / "bash-like").exists()
    assert "bash-like" not in json.loads(jupyter_kernelspec("list", "--json").stdout)["kernelspecs"]


def test_list_json_matches_jupyter_and_flags_problems(jupyter: Jupyter) -> None:
    good = {"argv": [sys.executable, "-m", "kernelkit.kernels.echo", "-f", "{connection_file}"], "display_name": "G"}
    jupyter.write_spec(jupyter.path_kernels, "good", good)
    jupyter.write_spec(jupyter.user_kernels, "GOOD", good)
    jupyter.write_spec(jupyter.path_kernels, "corrupt", None, raw="{")
    jupyter.write_spec(jupyter.path_kernels, "gone", {**good, "argv": ["/nonexistent/python", "-f", "{connection_file}"]})
    # argv[0] as jupyter_client reads it: {resource_dir} (a wheel-shipped spec), a bare python
    shipped = os.path.relpath(sys.executable, jupyter.path_kernels / "shipped")
    jupyter.write_spec(jupyter.path_kernels, "shipped", {**good, "argv": ["{resource_dir}/" + shipped, *good["argv"][1:]]})
    jupyter.write_spec(jupyter.path_kernels, "bare", {**good, "argv": ["python", *good["argv"][1:]]})
    jupyter.write_spec(jupyter.path_kernels, "python", good)  # a name jupyter_client maps to python3
    ours = json.loads(kk("list", "--json").stdout)
    theirs = json.loads(jupyter_kernelspec("list", "--json").stdout)["kernelspecs"]
    theirs.pop("python3", None)  # jupyter_client adds ipykernel's native spec even when not installed
    ours["kernelspecs"].pop("python3", None)
    assert ours["kernelspecs"] == theirs
    assert [s["name"] for s in ours["shadowed"]] == ["good"]
    assert {b["name"]: b["problem"] for b in ours["broken"]}.keys() == {"corrupt", "gone", "python"}
    table = kk("list")
    assert table.returncode == 0 and "Traceback" not in table.stderr
    rows = {line.split()[0]: line for line in table.stdout.splitlines()[1:]}
    assert "broken: kernel.json is not valid JSON" in rows["corrupt"]
    assert "interpreter /nonexistent/python not found" in rows["gone"]
    lines = [line for line in table.stdout.splitlines() if line.startswith("good ")]
    assert "ok" in lines[0] and "shadowed by" in lines[1] and "JUPYTER_PATH" in lines[0] and "user" in lines[1]


@pytest.mark.parametrize("name", ["bad name", "ünï", "a/b"])
def test_invalid_name_is_rejected_with_the_rule(jupyter: Jupyter, name: str) -> None:
    assert_clean_error(kk("install", "kernelkit.kernels.echo", "--name", name), 1, "ASCII letters, digits")
    assert not jupyter.user_kernels.exists() or not list(jupyter.user_kernels.iterdir())


def test_missing_module_is_refused_with_the_fix(jupyter: Jupyter) -> None:
    assert_clean_error(kk("install", "no_such_module_xyz"), 1, "no_such_module_xyz", "pip install")


def test_module_importable_only_from_here_is_refused(jupyter: Jupyter) -> None:
    """The seed pitfall at install time: the module imports from its own folder, not from the kernel's."""
    jupyter.echo_file(folder=".")
    done = kk("install", "echokernel", cwd=jupyter.work)
    assert_clean_error(done, 1, "cannot import echokernel from another folder",
                       f"give the path to its .py file instead: kernelkit install {jupyter.work / 'echokernel.py'}")


def test_nonexistent_interpreter(jupyter: Jupyter) -> None:
    assert_clean_error(kk("install", "kernelkit.kernels.echo", "--python", "/nonexistent/python3"), 1,
                       "/nonexistent/python3 not found")


def test_interpreter_without_kernelkit(jupyter: Jupyter, tmp_path: Path) -> None:
    fake = tmp_path / "python3"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")  # -S: no site-packages, so no kernelkit
    fake.chmod(0o755)
    done = kk("install", "kernelkit.kernels.echo", "--python", str(fake))
    assert_clean_error(done, 1, "cannot import kernelkit", "pip install kernelkit")


def test_unwritable_prefix_suggests_user(jupyter: Jupyter) -> None:
    blocker = jupyter.work / "file"
    blocker.write_text("not a folder")
    assert_clean_error(kk("install", "kernelkit.kernels.echo", "--prefix", str(blocker)), 1, "cannot write", "--user")


@pytest.mark.slow
def test_bad_options(jupyter: Jupyter) -> None:
    for option, value, phrase in (("--env", "NOEQUALS", "'NOEQUALS' is not KEY=VALUE"),
                                  ("--metadata", "[1]", "not a JSON object"),
                                  ("--metadata", "{bad", "not valid JSON")):
        done = kk("install", "kernelkit.kernels.echo", option, value)  # a usage error, naming the option
        assert done.returncode == 2 and f"kernelkit install: error: argument {option}: {phrase}" in done.stderr, done
    assert_clean_error(kk("install", "kernelkit.kernels.echo", "--logo", "/nonexistent.png"), 1, "does not exist")
    small = png(jupyter.work / "l.png", 10, 10)
    assert_clean_error(kk("install", "kernelkit.kernels.echo", "--logo", str(small)), 1, "10x10")
    assert kk("install", "kernelkit.kernels.echo", "--interrupt-mode", "never").returncode == 2


def test_folder_with_bare_python_is_pinned_and_runs_from_its_folder(jupyter: Jupyter) -> None:
    """`kernelkit install DIR` on the seed article's folder fixes its argv instead of copying the pitfall."""
    folder = jupyter.echo_file(folder="echo").parent
    (folder / "kernel.json").write_text(json.dumps(
        {"argv": ["python", "-m", "echokernel", "-f", "{connection_file}"], "display_name": "Echo"}))
    done = kk("install", str(folder))
    assert done.returncode == 0, done.stderr
    spec = json.loads((jupyter.user_kernels / "echo" / "kernel.json").read_text())
    assert spec["argv"] == [sys.executable, "{resource_dir}/echokernel.py", "-f", "{connection_file}"]
    assert (jupyter.user_kernels / "echo" / "echokernel.py").exists()
    assert_echoes("echo", jupyter.work)


def test_folder_with_unimportable_module_is_refused(jupyter: Jupyter) -> None:
    folder = jupyter.work / "broken"
    jupyter.write_spec(jupyter.work, "broken", {"argv": ["python", "-m", "nowhere_mod", "-f", "{connection_file}"],
                                                 "display_name": "x"})
    assert_clean_error(kk("install", str(folder)), 1, "cannot import nowhere_mod", "pip install nowhere_mod")


def test_remove_unknown_name_suggests_and_fails(jupyter: Jupyter) -> None:
    jupyter.write_spec(jupyter.user_kernels, "echo", {"argv": ["x", "{connection_file}"], "display_name": "x"})
    assert_clean_error(kk("remove", "ecko", "-y"), 1, "did you mean 'echo'")
    assert (jupyter.user_kernels / "echo").exists()
    assert kk("uninstall", "echo", "-y").returncode == 0
    assert not (jupyter.user_kernels / "echo").exists()


@pytest.mark.parametrize("command", ["install", "list", "remove", "uninstall", "doctor"])
def test_help(command: str) -> None:
    done = kk(command, "--help")
    assert done.returncode == 0 and "usage: kernelkit" in done.stdout and "exit codes" in done.stdout


# ---- errors specific to the case: one sentence of what is wrong, one of what to do ----------

GENERIC = "install the kernel's package into that interpreter"  # the advice these cases must not get

BAD_KERNELS = {
    "syntax": ("from kernelkit import Kernel\n\nclass K(Kernel)\n    pass\n",
               ["line 3 has a syntax error", "class K(Kernel)", "fix that line"]),
    "empty": ("import os\nVALUE = 1\n",
              ["defines no Kernel subclass", "class MyKernel(kernelkit.Kernel)"]),
    "ported": ("from ipykernel.kernelbase import Kernel\n\nclass EchoKernel(Kernel):\n    implementation = 'Echo'\n",
               ["EchoKernel in", "is based on ipykernel's Kernel, not kernelkit's",
                "change its import to `from kernelkit import Kernel`"]),
    "two": ("from kernelkit import Kernel\n\nclass A(Kernel):\n    pass\n\nclass B(Kernel):\n    pass\n",
            ["defines 2 Kernel subclasses (A, B)", "two.py:A"]),
    "needs": ("import no_such_dependency_xyz\n",
              ["imports 'no_such_dependency_xyz'", "pip install no_such_dependency_xyz"]),
    "raises": ("from kernelkit import Kernel\n\nraise RuntimeError('config missing')\n",
               ["line 3: RuntimeError: config missing", "fix that error"]),
}


@pytest.mark.parametrize("case", sorted(BAD_KERNELS))
def test_install_errors_are_specific_to_the_case(jupyter: Jupyter, case: str) -> None:
    source, phrases = BAD_KERNELS[case]
    path = jupyter.work / f"{case}.py"
    path.write_text(source, encoding="utf-8")
    done = kk("install", str(path))
    assert_clean_error(done, 1, *phrases)
    assert GENERIC not in done.stderr, done.stderr
    assert done.stderr.count("kernelkit: error:") == 1
    assert not jupyter.user_kernels.exists() or not list(jupyter.user_kernels.iterdir())


def test_ipykernel_kernel_on_an_interpreter_without_ipykernel_gets_the_port_hint(jupyter: Jupyter, tmp_path: Path) -> None:
    """The seed's EchoKernel as written, on an interpreter that has kernelkit but no ipykernel."""
    blocker = tmp_path / "blocked"
    (blocker / "ipykernel").mkdir(parents=True)
    (blocker / "ipykernel" / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'ipykernel'\", "
                                                       "name='ipykernel')\n")
    python = tmp_path / "python3"
    python.write_text(f"#!/bin/sh\nPYTHONPATH={blocker} exec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    path = jupyter.work / "echokernel.py"
    path.write_text(BAD_KERNELS["ported"][0], encoding="utf-8")
    done = kk("install", str(path), "--python", str(python))
    assert_clean_error(done, 1, "imports ipykernel", "written for ipykernel",
                       "change its import to `from kernelkit import Kernel`")
    assert GENERIC not in done.stderr


@pytest.mark.parametrize("case", ["syntax", "ported"])
def test_installed_kernel_that_breaks_later_says_why_at_start(jupyter: Jupyter, case: str) -> None:
    """Installed fine, then edited: the kernel process itself prints the same one-line error, not a traceback."""
    path = jupyter.work / "later.py"
    path.write_text(ECHO_SOURCE, encoding="utf-8")
    assert kk("install", str(path), "--name", "later").returncode == 0
    path.write_text(BAD_KERNELS[case][0], encoding="utf-8")
    argv = json.loads((jupyter.user_kernels / "later" / "kernel.json").read_text())["argv"]
    done = subprocess.run([a.replace("{connection_file}", str(jupyter.work / "c.json")) for a in argv],
                          capture_output=True, text=True, timeout=60, cwd=jupyter.work)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert BAD_KERNELS[case][1][-1] in done.stderr, done.stderr
