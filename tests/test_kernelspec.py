"""The kernelspec library layer and the kernelkit.install() API: names, precedence, shadowing, broken specs, writes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from jupyter_core.paths import SYSTEM_JUPYTER_PATH

import kernelkit
from kernelkit.tools import kernelspecs as kernelspec
from kernelkit.kernels.echo import EchoKernel
from kernelkit.tools.kernelspecs import InvalidName, KernelSpecError, KernelSpecExists, NoSuchKernel, NotWritable
from kernelspec_fixtures import Jupyter, jupyter  # noqa: F401  (fixture)

GOOD = {"argv": [sys.executable, "-m", "kernelkit.kernels.echo", "-f", "{connection_file}"],
        "display_name": "Good", "language": "text"}


@pytest.mark.parametrize("name", ["echo", "Echo-2", "my.kernel_3", "A"])
def test_valid_names_are_lowercased(name: str) -> None:
    assert kernelspec.check_name(name) == name.lower()


@pytest.mark.parametrize("name", ["", "has space", "ünïcode", "a/b", "semi;colon", "tab\t"])
def test_invalid_names_state_the_rule(name: str) -> None:
    with pytest.raises(InvalidName, match="ASCII letters, digits"):
        kernelspec.check_name(name)


@pytest.mark.parametrize(("text", "name"), [("my_kernel", "my_kernel"), ("pkg.sub", "pkg.sub"),
                                            ("/x/My Kernel.py", "my-kernel"), ("mod:Class", "mod")])
def test_names_derived_from_targets_follow_the_rules(text: str, name: str) -> None:
    assert kernelspec.name_from(text) == name


def test_a_name_frontends_never_start_is_refused_and_never_derived() -> None:
    with pytest.raises(InvalidName, match="starts the kernel named 'python3'"):
        kernelspec.check_name("Python")
    assert kernelspec.name_from("python") == kernelspec.name_from("/x/python.py") == "python-kernel"


def _in_virtualenv() -> bool:
    """What jupyter_core checks, without its private helper: a venv (sys.prefix != sys.base_prefix) we own."""
    return sys.prefix != sys.base_prefix and Path(sys.prefix).stat().st_uid == os.geteuid()


@pytest.mark.parametrize(("prefer_env", "env_first"), [
    (None, _in_virtualenv()),  # the default: env before user inside a virtualenv, user first otherwise
    ("1", True),
    ("0", False),
])
def test_kernel_dirs_order_follows_jupyter_core(jupyter: Jupyter, monkeypatch: pytest.MonkeyPatch,
                                                prefer_env: str | None, env_first: bool) -> None:
    if prefer_env is None:
        monkeypatch.delenv("JUPYTER_PREFER_ENV_PATH", raising=False)
    else:
        monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", prefer_env)
    dirs = kernelspec.kernel_dirs()
    env = kernelspec.sys_prefix_kernels_dir()
    assert dirs[0] == jupyter.path_kernels
    user = dirs.index(jupyter.user_kernels)
    if env != kernelspec.system_kernels_dir():
        assert (dirs.index(env) < user) == env_first, dirs
        assert dirs[1] == (env if env_first else jupyter.user_kernels), dirs
    else:  # a Python installed in /usr/local: env is the system folder, always after user
        assert dirs.index(env) > user, dirs
    assert dirs[-1] == Path(SYSTEM_JUPYTER_PATH[-1]) / "kernels", dirs


def test_precedence_shadowing_and_case_insensitive_get(jupyter: Jupyter) -> None:
    first = jupyter.write_spec(jupyter.path_kernels, "Echo", {**GOOD, "display_name": "from JUPYTER_PATH"})
    second = jupyter.write_spec(jupyter.user_kernels, "echo", {**GOOD, "display_name": "from user"})
    specs = [s for s in kernelspec.find_all() if s.name == "echo"]
    assert [s.resource_dir for s in specs] == [first, second]
    assert specs[0].shadowed_by is None and specs[1].shadowed_by == first
    for typed in ("echo", "ECHO", "Echo"):
        got = kernelspec.get(typed)
        assert got.display_name == "from JUPYTER_PATH" and got.resource_dir == first
    dirs = kernelspec.kernel_dirs()  # whatever comes next (user or env: test_kernel_dirs_order_...), JUPYTER_PATH wins
    assert dirs[0] == jupyter.path_kernels and jupyter.user_kernels in dirs[1:]


def test_spec_attributes_for_exec(jupyter: Jupyter) -> None:
    jupyter.write_spec(jupyter.path_kernels, "full", {**GOOD, "env": {"A": "1"}, "interrupt_mode": "message",
                                                       "metadata": {"x": 1}, "kernel_protocol_version": "5.5"})
    spec = kernelspec.get("full")
    assert (spec.name, spec.argv, spec.env, spec.interrupt_mode, spec.metadata, spec.language) == (
        "full", GOOD["argv"], {"A": "1"}, "message", {"x": 1}, "text")
    assert isinstance(spec.resource_dir, Path) and spec.display_name == "Good"


def test_corrupt_kernel_json_is_flagged_not_fatal(jupyter: Jupyter) -> None:
    jupyter.write_spec(jupyter.path_kernels, "corrupt", None, raw="{not json")
    jupyter.write_spec(jupyter.path_kernels, "nolist", {"argv": "python", "display_name": "x"})
    jupyter.write_spec(jupyter.path_kernels, "noconn", {"argv": ["python"], "display_name": "x"})
    jupyter.write_spec(jupyter.path_kernels, "good", GOOD)
    by_name = {s.name: s for s in kernelspec.find_all()}
    assert "not valid JSON" in by_name["corrupt"].error
    assert "non-empty list" in by_name["nolist"].error
    assert "{connection_file}" in by_name["noconn"].error
    assert by_name["good"].error is None
    with pytest.raises(NoSuchKernel, match="broken") as info:
        kernelspec.get("corrupt")
    assert info.value.broken is not None


def test_no_such_kernel_suggests(jupyter: Jupyter) -> None:
    jupyter.write_spec(jupyter.path_kernels, "echo", GOOD)
    with pytest.raises(NoSuchKernel, match="did you mean 'echo'") as info:
        kernelspec.get("ecko")
    assert isinstance(info.value, LookupError) and info.value.suggestion == "echo"


def test_api_install_a_class_and_remove(jupyter: Jupyter) -> None:
    result = kernelkit.install(EchoKernel, user=True)
    assert result.name == "echo" and result.resource_dir == jupyter.user_kernels / "echo"
    spec = kernelspec.get("echo")
    assert spec.argv == [sys.executable, "-m", "kernelkit_launcher", "kernelkit.kernels.echo:EchoKernel",
                         "-f", "{connection_file}"]
    assert Path(spec.argv[0]).is_absolute()
    assert (spec.display_name, spec.language, spec.interrupt_mode, spec.kernel_protocol_version) == (
        "Echo", "Any text", "signal", "5.6")  # 5.6: the handshake (JEP 66)
    assert kernelkit.install(EchoKernel, user=True).unchanged  # the same spec again: nothing to write
    with pytest.raises(KernelSpecExists, match="--replace"):
        kernelkit.install(EchoKernel, display_name="Echo 2", user=True)
    assert kernelspec.get("echo").display_name == "Echo"
    assert not kernelkit.install(EchoKernel, display_name="Echo 2", user=True, replace=True).unchanged
    assert kernelspec.get("ECHO").display_name == "Echo 2"
    assert kernelspec.remove("Echo") == jupyter.user_kernels / "echo"
    with pytest.raises(NoSuchKernel):
        kernelspec.get("echo")


def test_default_location_is_user_and_prefix_layout(jupyter: Jupyter) -> None:
    assert kernelspec.destination_dir() == jupyter.user_kernels
    assert kernelspec.destination_dir(prefix=jupyter.work) == jupyter.work / "share" / "jupyter" / "kernels"
    assert kernelspec.destination_dir(sys_prefix=True) == Path(sys.prefix) / "share" / "jupyter" / "kernels"
    with pytest.raises(KernelSpecError, match="only one"):
        kernelspec.destination_dir(user=True, prefix=jupyter.work)


def test_unwritable_location_suggests_user(jupyter: Jupyter, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(kernelspec.tempfile, "mkdtemp", denied)
    with pytest.raises(NotWritable, match="Permission denied.*--user"):
        kernelspec.install(GOOD, "x", prefix=jupyter.work)


def test_failed_install_leaves_nothing(jupyter: Jupyter, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KernelSpecError):
        kernelspec.install(GOOD, "x", user=True, files={"logo-32x32.png": jupyter.work / "missing.png"})
    assert list(jupyter.user_kernels.iterdir()) == []


def test_remove_refuses_non_kernel_folders(jupyter: Jupyter, tmp_path: Path) -> None:
    odd = tmp_path / "elsewhere"
    jupyter.write_spec(odd, "x", GOOD)
    with pytest.raises(KernelSpecError, match="refusing"):
        kernelspec.remove("x", dirs=[odd])
    assert (odd / "x" / "kernel.json").exists()


def test_symlinked_spec_loses_only_its_link(jupyter: Jupyter) -> None:
    real = jupyter.write_spec(jupyter.work, "real", GOOD)
    jupyter.path_kernels.mkdir()
    (jupyter.path_kernels / "linked").symlink_to(real)
    kernelspec.remove("linked")
    assert (real / "kernel.json").exists() and not (jupyter.path_kernels / "linked").exists()


def test_install_validates_what_it_writes(jupyter: Jupyter) -> None:
    with pytest.raises(KernelSpecError, match="connection_file"):
        kernelspec.install({"argv": ["x"], "display_name": "x"}, "x", user=True)
    assert json.loads((kernelspec.install(GOOD, "ok", user=True) / "kernel.json").read_text()) == GOOD


def test_env_expansion_matches_jupyter_client() -> None:
    assert kernelspec.expand_env({"P": "${HOME}/x:${UNSET_VAR_X}"}, {"HOME": "/h"}) == {"P": "/h/x:${UNSET_VAR_X}"}


def test_matches_compares_every_file_an_install_would_write(tmp_path: Path) -> None:
    source = tmp_path / "spec-src"
    (source / "sub").mkdir(parents=True)
    (source / "kernel.js").write_text("// js")
    (source / "sub" / "data.txt").write_text("data")
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG fake")
    spec = {"argv": ["python", "-f", "{connection_file}"], "display_name": "M", "language": "text"}
    folder = kernelspec.install(spec, "m", prefix=tmp_path / "env", files={"logo-64x64.png": logo}, source_dir=source)
    assert kernelspec.matches(folder, spec, {"logo-64x64.png": logo}, source)
    assert not kernelspec.matches(folder, {**spec, "display_name": "N"}, {"logo-64x64.png": logo}, source)
    assert not kernelspec.matches(folder, spec, {}, source)  # the installed logo is not asked for
    logo.write_bytes(b"\x89PNG other")
    assert not kernelspec.matches(folder, spec, {"logo-64x64.png": logo}, source)
    assert not kernelspec.matches(tmp_path / "nowhere", spec)


def test_matches_follows_symlinked_folders_as_install_copies_them(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "data.txt").write_text("data")
    source = tmp_path / "spec-src"
    source.mkdir()
    (source / "linked").symlink_to(real, target_is_directory=True)
    spec = {"argv": ["python", "-f", "{connection_file}"], "display_name": "L", "language": "text"}
    folder = kernelspec.install(spec, "l", prefix=tmp_path / "env", source_dir=source)
    assert (folder / "linked" / "data.txt").read_text() == "data" and not (folder / "linked").is_symlink()
    assert kernelspec.matches(folder, spec, None, source)


def test_a_same_named_kernel_in_another_case_is_named_as_it_is(jupyter: Jupyter) -> None:
    spec = {"argv": ["python", "-f", "{connection_file}"], "display_name": "C", "language": "text"}
    folder = kernelspec.install(spec, "cased", user=True)
    folder.rename(folder.with_name("CASED"))
    with pytest.raises(KernelSpecExists, match=r"a kernel named 'CASED' \(kernel names ignore case\)"):
        kernelspec.install(spec, "cased", user=True)
