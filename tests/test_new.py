"""``kernelkit new``: the project it writes, and what it refuses (fast: nothing is installed here;
tests/test_tutorial.py installs generated projects into fresh virtual environments)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kernelkit.tools import kernelspecs
from kernelkit.tools.scaffold import ENV_PYTHON
from kernelspec_fixtures import Jupyter, assert_clean_error, jupyter, kk  # noqa: F401  (fixture)


def test_new_writes_a_complete_project(tmp_path: Path) -> None:
    done = kk("new", "Lua-Kit", "--language", "lua", "--display-name", "Lua (kit)", "--dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "pip install ." in done.stdout and "jupyter console --kernel lua-kit" in done.stdout
    root = tmp_path / "Lua-Kit"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    spec_dir = "share/jupyter/kernels/lua-kit"
    assert files == sorted([
        ".github/workflows/ci.yml", ".gitignore", "README.md", "pyproject.toml",
        f"{spec_dir}/kernel.json", f"{spec_dir}/logo-32x32.png", f"{spec_dir}/logo-64x64.png", f"{spec_dir}/logo-svg.svg",
        "src/lua_kit/__init__.py", "src/lua_kit/__main__.py", "src/lua_kit/install.py", "src/lua_kit/kernel.py",
        "src/lua_kit/resources/logo-32x32.png", "src/lua_kit/resources/logo-64x64.png",
        "src/lua_kit/resources/logo-svg.svg", "tests/test_kernel.py",
    ])
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "Lua-Kit"
    assert pyproject["project"]["dependencies"] == ["kernelkit>=0.2.0"]
    assert pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-data"] == {spec_dir: spec_dir}
    spec = json.loads((root / spec_dir / "kernel.json").read_text())
    assert spec["argv"] == [ENV_PYTHON, "-m", "kernelkit_launcher", "lua_kit.kernel:LuaKitKernel", "-f", "{connection_file}"]
    assert (spec["display_name"], spec["language"]) == ("Lua (kit)", "lua")
    loaded = kernelspecs.load(root / spec_dir)
    assert not loaded.error, loaded.error
    assert kernelspecs.png_size(root / spec_dir / "logo-32x32.png") == (32, 32)
    assert kernelspecs.png_size(root / spec_dir / "logo-64x64.png") == (64, 64)
    assert (root / spec_dir / "logo-svg.svg").read_text().startswith("<svg ")
    for source in root.rglob("*.py"):
        ast.parse(source.read_text(), str(source))
    kernel_source = (root / "src/lua_kit/kernel.py").read_text()
    assert "from kernelkit import Kernel" in kernel_source and "class LuaKitKernel(Kernel):" in kernel_source
    assert '"name": "lua"' in kernel_source
    assert '"-m", "kernelkit", *args' in (root / "tests/test_kernel.py").read_text()  # the CLI, by subprocess
    assert "python -m pytest" in (root / ".github/workflows/ci.yml").read_text()
    assert "python -m lua_kit install --user" in (root / "README.md").read_text()


def test_new_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep me")
    assert_clean_error(kk("new", "taken", "--dir", str(tmp_path)), 1, "already exists", "never overwrites")
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no staging folder left behind


@pytest.mark.parametrize("name, phrase", [
    ("9lives", "starts with a letter"), ("my kernel", "starts with a letter"), ("a.b", "starts with a letter"),
    ("x" * 41, "at most 40"), ("json", "clashes with the standard library module 'json'"), ("Test", "clashes"),
    ("kernelkit", "clashes"), ("class", "clashes with a Python keyword"), ("", "starts with a letter"),
    # the generated project's test runner and build backend, whether installed here or not
    ("pytest", "clashes with 'pytest'"), ("Hatchling", "clashes with 'hatchling'"),
    ("pluggy", "clashes with the module 'pluggy' importable from "),  # installed here (pytest needs it)
    # kernel names jupyter_client maps to ipykernel's kernel
    ("python", "kernel name that jupyter_client keeps"), ("Python3", "kernel name that jupyter_client keeps"),
])
def test_new_validates_names(tmp_path: Path, name: str, phrase: str) -> None:
    assert_clean_error(kk("new", name, "--dir", str(tmp_path)), 1, phrase)
    assert not list(tmp_path.iterdir())


def test_new_refuses_a_name_importable_here(tmp_path: Path) -> None:
    """A package that would shadow an installed module once installed (`python -m pytest` ran the project)."""
    lib = tmp_path / "lib"
    (lib / "installed_pkg").mkdir(parents=True)
    (lib / "installed_pkg" / "__init__.py").write_text("")
    (lib / "installed_mod.py").write_text("")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(lib), os.environ.get("PYTHONPATH", "")])}
    work = tmp_path / "work"
    work.mkdir()
    done = kk("new", "installed-pkg", "--dir", str(work), env=env)
    assert_clean_error(done, 1, f"clashes with the module 'installed_pkg' importable from {lib / 'installed_pkg'};",
                       "choose another name, e.g. installed_pkg_kernel")
    assert_clean_error(kk("new", "installed_mod", "--dir", str(work), env=env), 1,
                       f"importable from {lib / 'installed_mod.py'};")
    assert not list(work.iterdir())
    # The current folder is no installed module: a project already there is the "already exists" refusal,
    # and a module file of that name there does not stop a new project.
    (work / "taken").mkdir()
    assert_clean_error(kk("new", "taken", cwd=work), 1, "already exists")
    (work / "loose.py").write_text("")
    assert kk("new", "loose", cwd=work).returncode == 0
    assert (work / "loose" / "src" / "loose" / "__main__.py").is_file()


def test_new_projects_help_names_the_command_and_install(tmp_path: Path) -> None:
    """`python -m PACKAGE --help` of a generated project: that command, not __main__.py, and its install."""
    assert kk("new", "Help-Me", "--dir", str(tmp_path)).returncode == 0
    src = tmp_path / "Help-Me" / "src"  # `python -m` imports from the current folder
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "help_me", *args], cwd=src, capture_output=True, text=True, timeout=60
    )
    done = run("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m help_me [-h] [-f CONNECTION_FILE]"), done.stdout
    assert "__main__.py" not in done.stdout
    help_text = " ".join(done.stdout.split())  # as wrapped for any terminal width
    assert "python -m help_me install [--user|--sys-prefix|--prefix PATH] registers this kernel" in help_text
    done = run("install", "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m help_me install") and "--sys-prefix" in done.stdout


def test_new_other_refusals(tmp_path: Path) -> None:
    assert_clean_error(kk("new", "ok", "--dir", str(tmp_path / "missing")), 1, "not an existing folder")
    assert_clean_error(kk("new", "ok", "--language", "two words", "--dir", str(tmp_path)), 1, "invalid --language")
    assert_clean_error(kk("new", "ok", "--wrap", "bc -q", "--dir", str(tmp_path)), 1, "kernelkit wrap install", "not to bc")
    assert not list(tmp_path.iterdir())
    assert kk("new").returncode == 2
    help_text = kk("new", "--help").stdout
    assert "--wrap" in help_text and "--dir" in help_text and "never overwrites" in help_text.lower()


# ---- doctor on the packaging pitfalls ------------------------------------------------------------


def test_doctor_explains_the_bare_python_of_ipykernels_wheel_spec() -> None:
    """ipykernel's wheel ships share/jupyter/kernels/python3 with argv[0] "python" (this environment has it)."""
    done = kk("doctor", "python3", "--no-start")
    assert "argv[0] 'python' is a bare name" in done.stdout, done.stdout
    assert "jupyter_client replaces it with its own interpreter" in done.stdout
    assert "pin the interpreter that has the kernel" in done.stdout


def test_doctor_on_resource_dir_and_prefix_interpreters(jupyter: Jupyter, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = jupyter.write_spec(jupyter.path_kernels, "shipped", {
        "argv": [ENV_PYTHON, "-m", "kernelkit_launcher", "kernelkit.kernels.echo", "-f", "{connection_file}"],
        "display_name": "shipped", "language": "text"})
    done = kk("doctor", "shipped", "--no-start")
    # JUPYTER_PATH/kernels/shipped/../../../../bin/python does not exist: what pip --user or Windows would give
    assert done.returncode == 1 and "does not exist" in done.stdout and "python -m PACKAGE install --user" in done.stdout
    # laid out like a wheel install into an environment: share/jupyter/kernels/NAME beside bin/python
    prefix = jupyter.work / "env"
    (prefix / "bin").mkdir(parents=True)
    # A wrapper, not a symlink: a symlink to a virtualenv's python elsewhere loses the virtualenv.
    (prefix / "bin" / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (prefix / "bin" / "python").chmod(0o755)
    spec_dir = prefix / "share" / "jupyter" / "kernels" / "shipped"
    shutil.copytree(folder, spec_dir)
    shutil.rmtree(folder)
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    done = kk("doctor", "shipped")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"resolves from the kernel's folder to {prefix / 'bin' / 'python'}" in done.stdout
    assert "loads the kernelkit target kernelkit.kernels.echo" in done.stdout and "started and answered" in done.stdout
    jupyter.write_spec(prefix / "share" / "jupyter" / "kernels", "pfx", {
        "argv": ["{prefix}/bin/python", "-m", "kernelkit_launcher", "kernelkit.kernels.echo", "-f", "{connection_file}"],
        "display_name": "pfx", "language": "text"})
    done = kk("doctor", "pfx", "--no-start")
    assert "uses {prefix}, which jupyter_client replaces with the prefix of whichever Jupyter" in done.stdout


def test_doctor_on_an_async_kernel_style_spec(jupyter: Jupyter) -> None:
    """async-kernel writes argv ["python", "-m", "async_kernel", "-f", ...]: the same bare-python pitfall."""
    jupyter.write_spec(jupyter.user_kernels, "async", {
        "argv": ["python", "-m", "async_kernel", "-f", "{connection_file}", "--backend=asyncio"],
        "display_name": "Async", "language": "python"})
    done = kk("doctor", "async", "--no-start", "--json")
    findings = json.loads(done.stdout)["kernels"][0]["findings"]
    warned = [f for f in findings if f["level"] == "warn" and f["check"] == "interpreter"]
    assert "'python' is a bare name" in warned[0]["message"] and "not on the kernel's environment" in warned[0]["message"]
    assert "pin the interpreter" in warned[0]["fix"]
    errors = [f for f in findings if f["level"] == "error" and f["check"] == "import"]
    assert "No module named async_kernel" in errors[0]["message"] and done.returncode == 1


def test_new_wrap_makes_a_repl_kernel_project_that_runs(tmp_path: Path) -> None:
    """`kernelkit new NAME --wrap COMMAND`: the project's kernel is kernelkit's REPL wrapper on that program."""
    from conftest import install_kernelspec
    from helpers import execute, running_kernel, stdout_text

    done = kk("new", "mysh", "--wrap", "bash", "--dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    source = (tmp_path / "mysh" / "src" / "mysh" / "kernel.py").read_text()
    assert "class MyshKernel(ReplKernel):" in source and 'profiles.get("bash")' in source
    spec = json.loads((tmp_path / "mysh" / "share" / "jupyter" / "kernels" / "mysh" / "kernel.json").read_text())
    assert spec["language"] == "bash"
    install_kernelspec("kk-new-mysh", argv=[sys.executable, "-m", "kernelkit_launcher", "mysh.kernel:MyshKernel",
                                             "-f", "{connection_file}"], env={"PYTHONPATH": str(tmp_path / "mysh" / "src")})
    with running_kernel("kk-new-mysh") as (_, kc):
        reply, msgs = execute(kc, "x=21; echo $((x * 2))")
    assert reply["content"]["status"] == "ok" and stdout_text(msgs) == "42\n"
    assert_clean_error(kk("new", "other", "--wrap", "irb", "--dir", str(tmp_path)), 1, "kernelkit wrap install")
