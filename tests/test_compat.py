"""ipykernel's API as published kernels use it (issue 11's numbered items), one test each where
the published-kernel ports (tests/test_published_kernels.py) do not already show it in a real kernel.

Through jupyter_client: tests/kernels/compat_kernel.py, written as an ipykernel kernel after the
import swap (traits, the comm package's manager, an IPKernelApp subclass, extra_args, ...).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import uuid
import warnings

import pytest
from conftest import TEST_KERNELS_DIR, install_kernelspec
from helpers import execute, running_kernel, shell_reply, stdout_text

COMPAT = "kk-compat"
install_kernelspec(COMPAT, argv=[sys.executable, "-m", "compat_kernel", "-f", "{connection_file}", "first.txt",
                                 "second.txt"], env={"PYTHONPATH": str(TEST_KERNELS_DIR)})


def value(kc, code: str) -> str:
    reply, msgs = execute(kc, code, allow_stdin=False)
    assert reply["content"]["status"] == "ok", reply["content"]
    return stdout_text(msgs)


# ---- 1, 2: ipykernel's module paths ----------------------------------------------------------------


def test_kernelapp_and_kernelbase_have_ipykernels_names() -> None:
    from kernelkit import StdinNotImplementedError as top
    from kernelkit.kernel.base import Kernel as base_kernel
    from kernelkit.kernelapp import IPKernelApp, launch_new_instance
    from kernelkit.kernelbase import Kernel, StdinNotImplementedError

    assert Kernel is base_kernel and StdinNotImplementedError is top
    assert callable(launch_new_instance) and callable(IPKernelApp.launch_instance)


def test_launch_new_instance_runs_a_kernel(tmp_path) -> None:
    """``launch_new_instance(kernel_class=...)`` as zsh-jupyter-kernel's ``__main__`` calls it."""
    (tmp_path / "lni_kernel.py").write_text(
        "from kernelkit.kernelapp import launch_new_instance\n"
        "from kernelkit.kernelbase import Kernel\n"
        "class K(Kernel):\n"
        "    implementation = 'lni'\n"
        "if __name__ == '__main__':\n"
        "    launch_new_instance(kernel_class=K)\n"
    )
    install_kernelspec("kk-lni", "lni_kernel", env={"PYTHONPATH": str(tmp_path)})
    with running_kernel("kk-lni") as (_, kc):
        assert kc.kernel_info(reply=True, timeout=10)["content"]["implementation"] == "lni"


# ---- 3: kernelkit.ipkernel ----------------------------------------------------------------------


def test_importing_ipythonkernel_warns_naming_the_line_and_using_it_raises(tmp_path) -> None:
    (tmp_path / "uses_ipkernel.py").write_text(
        "import warnings\nwarnings.simplefilter('always')\n"
        "from kernelkit.ipkernel import IPythonKernel\n"
        "try:\n    IPythonKernel()\nexcept NotImplementedError as e:\n    print('CALL', e)\n"
        "try:\n    class Sub(IPythonKernel):\n        pass\nexcept NotImplementedError as e:\n    print('SUB', e)\n"
    )
    run = subprocess.run([sys.executable, str(tmp_path / "uses_ipkernel.py")], capture_output=True, text=True,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    where = f"{tmp_path / 'uses_ipkernel.py'}:3"
    assert "IPythonKernelNotAvailableWarning" in run.stderr and where in run.stderr
    call, sub = run.stdout.splitlines()
    assert call.startswith("CALL IPythonKernel() cannot be made") and where in call and "ipykernel" in call
    assert sub.startswith("SUB class Sub(IPythonKernel) cannot be defined") and where in sub


# ---- 5, 6, 8, 11, 12 in one ported-style kernel -----------------------------------------------------


@pytest.fixture(scope="module")
def compat():
    with running_kernel(COMPAT) as (km, kc):
        yield km, kc


def test_parent_is_the_ipkernelapp_subclass_with_extra_args(compat) -> None:
    _, kc = compat
    assert value(kc, "type(kernel.parent).__name__, type(kernel.parent).name") == "('CompatApp', 'compat-kernel')"
    assert value(kc, "kernel.files") == "['first.txt', 'second.txt']"
    assert value(kc, "kernel.parent.kernel_class is type(kernel), kernel.parent.kernel is kernel") == "(True, True)"
    assert value(kc, "kernel.parent.config_dir") == "'the-config-dir'"  # a traitlets trait on the app subclass
    assert value(kc, "kernel.config['IPKernelApp']['connection_file'] == kernel.parent.connection_file") == "True"


def test_an_ipkernelapp_subclass_runs_its_subcommands() -> None:
    run = subprocess.run([sys.executable, "-m", "compat_kernel", "hello", "world"], capture_output=True, text=True,
                         env={"PYTHONPATH": str(TEST_KERNELS_DIR), "PATH": "/usr/bin:/bin"}, timeout=30)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "hello world\n"


def test_send_response_with_channel_none_carries_the_request_as_parent(compat) -> None:
    _, kc = compat
    msg_id = kc.execute("1 + 1")
    shell_reply(kc, msg_id)
    from helpers import iopub_for

    msgs = iopub_for(kc, msg_id)
    streams = [m for m in msgs if m["msg_type"] == "stream"]
    assert streams and all(m["parent_header"]["msg_id"] == msg_id for m in streams)


def test_ident_and_topic_as_published_kernels_use_them(compat) -> None:
    """``send_response(..., ident=self._topic("stream"))``: the topic goes out as iopub's first frame."""
    _, kc = compat
    ident, stable = ast.literal_eval(value(kc, "kernel.ident, kernel.ident == kernel.ident"))
    assert str(uuid.UUID(ident)) == ident and stable
    code = "kernel.send_response(kernel.iopub_socket, 'stream', {'name': 'stdout', 'text': kernel._topic('x').decode()}, ident=kernel._topic('stream'))"
    assert value(kc, code).startswith(f"kernel.{ident}.x{{")  # the stream, then the message's repr


def test_traitlets_traits_on_a_kernel_subclass(compat) -> None:
    _, kc = compat
    assert value(kc, "kernel.settings") == "{'backend': 'inline'}"
    assert value(kc, "setattr(kernel, 'settings', {'backend': 'svg'}) or kernel.changes") == "[{'backend': 'svg'}]"
    assert value(kc, "kernel.has_trait('settings'), kernel.trait_names()") == "(True, ['settings'])"
    assert value(kc, "type(kernel).__mro__[-3].__name__") == "'HasTraits'"


def test_comms_through_the_comm_packages_manager(compat) -> None:
    _, kc = compat
    comm_id = uuid.uuid4().hex
    kc.shell_channel.send(kc.session.msg("comm_open", {"comm_id": comm_id, "target_name": "compat", "data": {"n": 1}}))
    msg_id = kc.comm_info(target_name="compat")
    comms = shell_reply(kc, msg_id)["content"]["comms"]
    assert comms == {comm_id: {"target_name": "compat"}}
    request = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {"n": 2}})
    kc.shell_channel.send(request)
    while True:  # the kernel's answer, sent with comm.send() on a comm of the comm package
        msg = kc.get_iopub_msg(timeout=10)
        if msg["msg_type"] == "comm_msg":
            break
    assert msg["content"] == {"comm_id": comm_id, "data": {"echo": {"n": 2}}}
    assert msg["parent_header"]["msg_id"] == request["header"]["msg_id"]
    assert value(kc, "kernel.comm_log") == "[{'n': 1}, {'n': 2}]"
    assert value(kc, "kernel.comm_manager is __import__('comm').get_comm_manager()") == "True"
    kc.shell_channel.send(kc.session.msg("comm_close", {"comm_id": comm_id, "data": {}}))
    assert shell_reply(kc, kc.comm_info(target_name="compat"))["content"]["comms"] == {}


def test_raw_input_without_stdin_raises_stdinnotimplementederror(compat) -> None:
    _, kc = compat
    assert value(kc, "kernel.raw_input('x')").startswith("'StdinNotImplementedError")


def test_do_shutdown_returning_none_gets_an_ok_reply() -> None:
    with running_kernel(COMPAT) as (_, kc):
        msg_id = kc.shutdown()
        reply = kc.get_control_msg(timeout=10)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "ok" and reply["content"]["restart"] is False


# ---- 11: traits in process, and nothing imported for kernels without them ------------------------


def test_a_kernel_class_with_traits_is_hastraits_and_one_without_is_not() -> None:
    import traitlets

    from kernelkit import Kernel

    class Plain(Kernel):
        pass

    class Traited(Kernel):
        size = traitlets.Int(3)

        @traitlets.validate("size")
        def _positive(self, proposal):
            if proposal["value"] < 0:
                raise traitlets.TraitError("negative")
            return proposal["value"]

    class Sub(Traited):
        name = traitlets.Unicode("x")

    assert not issubclass(Plain, traitlets.HasTraits) and type(Plain) is type(Kernel)
    kernel = Sub(size=5)  # constructor keywords set traits, as Configurable(size=5) does
    assert kernel.size == 5 and kernel.name == "x" and kernel.session is None
    with pytest.raises(traitlets.TraitError):
        kernel.size = -1
    assert Sub.class_trait_names() == ["name", "size"] or set(Sub.class_trait_names()) == {"name", "size"}


def test_the_echo_kernel_imports_no_ipython_traitlets_tornado_or_comm() -> None:
    code = "import kernelkit.launcher, kernelkit.kernels.echo, kernelkit.kernelapp, kernelkit.kernelbase"
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, cwd="/")
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in run.stderr.splitlines() if "|" in line}
    assert run.returncode == 0 and "kernelkit" in imported
    assert imported.isdisjoint({"IPython", "traitlets", "tornado", "ipykernel", "comm", "asyncio"}), imported


def test_no_warning_from_kernelkit_in_a_kernel_built_without_a_server() -> None:
    """metakernel's suite turns warnings into errors; a bare kernel must make none."""
    from kernelkit import Kernel

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Kernel().send_response(None, "stream", {"name": "stdout", "text": ""})
