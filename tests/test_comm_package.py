"""The ``comm`` package and ipywidgets through a kernelkit kernel, driven by jupyter_client.

kernelkit becomes the ``comm`` package's provider when the kernel imports ``comm``: comms made by
``comm.create_comm`` (what ipywidgets uses) publish through the kernel, and
``comm.get_comm_manager()`` is the kernel's ``comm_manager``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

from conftest import CALC, TEST_KERNEL_ENV, install_kernelspec
from helpers import execute, iopub_for, outputs, shell_reply, start_kernel, stop_kernel

COMM_SUBCLASS = "kk-comm-subclass"
NO_COMM = "kk-calc-without-comm"
install_kernelspec(COMM_SUBCLASS, "comm_subclass_kernel", env=TEST_KERNEL_ENV, language="python")
# The calc kernel in a process where `import comm` fails, as when the package is not installed.
install_kernelspec(
    NO_COMM,
    argv=[sys.executable, "-c", "import sys, runpy; sys.modules['comm'] = None; runpy.run_module('calc_kernel', run_name='__main__')",
          "-f", "{connection_file}"],
    env=TEST_KERNEL_ENV,
    language="python",
)


@pytest.fixture(scope="module")
def calc():
    km, kc = start_kernel(CALC)
    yield kc
    stop_kernel(km, kc)


def ok(kc, code: str) -> list[dict[str, Any]]:
    """Run ``code``; its iopub outputs (the cell must succeed)."""
    reply, msgs = execute(kc, textwrap.dedent(code))
    assert reply["content"]["status"] == "ok", reply["content"]
    return outputs(msgs)


def value(kc, expr: str) -> str:
    [result] = [m["content"]["data"]["text/plain"] for m in ok(kc, expr) if m["msg_type"] == "execute_result"]
    return result


def send(kc, msg_type: str, content: dict[str, Any], buffers: list[bytes] | None = None,
         metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Send a comm message on shell as a frontend does; the iopub outputs it caused."""
    msg = kc.session.msg(msg_type, content, metadata=metadata)
    kc.session.send(kc.shell_channel.socket, msg, buffers=buffers or [])
    return outputs(iopub_for(kc, msg["header"]["msg_id"]))


def comm_info(kc, target_name: str | None = None) -> dict[str, Any]:
    return shell_reply(kc, kc.comm_info(target_name))["content"]["comms"]


def test_the_comm_package_is_not_imported_until_the_kernel_imports_it(calc) -> None:
    assert value(calc, "import sys\n'comm' in sys.modules") == "False"
    assert value(calc, "import comm\ncomm.get_comm_manager() is kernel.comm_manager") == "True"


def test_comm_opened_by_the_kernel(calc) -> None:
    out = ok(calc, """
        import comm
        from comm.base_comm import BaseComm
        received = []
        c = comm.create_comm(target_name='kernel.side', data={'hello': 1}, metadata={'m': 2}, buffers=[b'open-buf'])
        c.on_msg(lambda msg: (received.append(msg), c.send({'echo': msg['content']['data']},
                                                           buffers=[bytes(b)[::-1] for b in msg['buffers']])))
        c.on_close(lambda msg: print('closed by frontend', msg['content']['data']))
        assert isinstance(c, BaseComm)
    """)
    [opened] = [m for m in out if m["msg_type"] == "comm_open"]
    comm_id = opened["content"]["comm_id"]
    assert opened["content"]["target_name"] == "kernel.side"
    assert opened["content"]["data"] == {"hello": 1}
    assert opened["metadata"] == {"m": 2}
    assert opened["buffers"] == [b"open-buf"]
    assert comm_info(calc) == {comm_id: {"target_name": "kernel.side"}}
    assert comm_info(calc, "kernel.side") == {comm_id: {"target_name": "kernel.side"}}
    assert comm_info(calc, "other") == {}

    got = send(calc, "comm_msg", {"comm_id": comm_id, "data": {"n": 42}}, buffers=[b"abc", b"xyz"])
    [echo] = [m for m in got if m["msg_type"] == "comm_msg"]
    assert echo["content"] == {"comm_id": comm_id, "data": {"echo": {"n": 42}}}
    assert echo["buffers"] == [b"cba", b"zyx"]
    assert value(calc, "[bytes(b) for b in received[0]['buffers']]") == "[b'abc', b'xyz']"

    ok(calc, "c.send({'from': 'kernel'}, buffers=[memoryview(b'mv')])")
    got = send(calc, "comm_close", {"comm_id": comm_id, "data": {"bye": True}})
    assert [m["content"]["text"] for m in got if m["msg_type"] == "stream"] == ["closed by frontend {'bye': True}\n"]
    assert comm_info(calc) == {}
    assert value(calc, "c._closed") == "True"


def test_comm_closed_by_the_kernel(calc) -> None:
    out = ok(calc, "import comm\nc2 = comm.create_comm(target_name='short.lived')\nc2.close({'done': 1})")
    assert [m["msg_type"] for m in out] == ["comm_open", "comm_close"]
    assert out[1]["content"] == {"comm_id": out[0]["content"]["comm_id"], "data": {"done": 1}}
    assert comm_info(calc) == {}


def test_comm_opened_by_the_frontend(calc) -> None:
    ok(calc, """
        import comm
        opened = []
        def target(c, msg):
            opened.append(c)
            c.send({'opened with': msg['content']['data'], 'buffers': len(msg['buffers'])})
            c.on_msg(lambda m: c.send({'echo': m['content']['data']}, buffers=m['buffers']))
        comm.get_comm_manager().register_target('front.side', target)
    """)
    got = send(calc, "comm_open", {"comm_id": "f1", "target_name": "front.side", "data": {"a": 1}}, buffers=[b"b0"])
    assert [(m["msg_type"], m["content"]) for m in got] == [
        ("comm_msg", {"comm_id": "f1", "data": {"opened with": {"a": 1}, "buffers": 1}})
    ]
    assert value(calc, "from comm.base_comm import BaseComm\nisinstance(opened[0], BaseComm), opened[0].primary") == "(True, False)"
    assert comm_info(calc) == {"f1": {"target_name": "front.side"}}
    got = send(calc, "comm_msg", {"comm_id": "f1", "data": {"b": 2}}, buffers=[b"\x00\x01binary"])
    assert [(m["content"]["data"], m["buffers"]) for m in got] == [({"echo": {"b": 2}}, [b"\x00\x01binary"])]
    # Closed by the kernel this time.
    out = ok(calc, "opened[0].close()")
    assert [(m["msg_type"], m["content"]["comm_id"]) for m in out] == [("comm_close", "f1")]
    assert comm_info(calc) == {}
    # An unknown target is answered with comm_close, as before.
    got = send(calc, "comm_open", {"comm_id": "f2", "target_name": "no.such.target", "data": {}})
    assert [(m["msg_type"], m["content"]["comm_id"]) for m in got] == [("comm_close", "f2")]


def test_a_kernel_that_sets_comm_manager_from_the_comm_package() -> None:
    """metakernel's ``self.comm_manager = comm.get_comm_manager()`` keeps comm requests working."""
    km, kc = start_kernel(COMM_SUBCLASS)
    try:
        assert value(kc, "comm.get_comm_manager() is kernel.comm_manager") == "True"
        assert comm_info(kc) == {}
        ok(kc, """
            def target(c, msg):
                c.on_msg(lambda m: c.send({'echo': m['content']['data']}))
            kernel.comm_manager.register_target('meta.target', target)
            k = comm.create_comm(target_name='kernel.made')
        """)
        got = send(kc, "comm_open", {"comm_id": "m1", "target_name": "meta.target", "data": {}})
        assert got == []
        infos = comm_info(kc)
        assert infos["m1"] == {"target_name": "meta.target"} and len(infos) == 2
        got = send(kc, "comm_msg", {"comm_id": "m1", "data": {"x": 1}})
        assert [m["content"]["data"] for m in got] == [{"echo": {"x": 1}}]
        # comm's BaseComm.handle_msg imports IPython; kernelkit's comms never do.
        assert value(kc, "import sys\nsorted(m for m in ('IPython', 'ipykernel', 'traitlets', 'tornado') if m in sys.modules)") == "[]"
        send(kc, "comm_close", {"comm_id": "m1", "data": {}})
        assert list(comm_info(kc).values()) == [{"target_name": "kernel.made"}]
    finally:
        stop_kernel(km, kc)


def test_without_the_comm_package_kernelkit_comms_still_work() -> None:
    km, kc = start_kernel(NO_COMM)
    try:
        reply, _ = execute(kc, "import comm")
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "ModuleNotFoundError"
        out = ok(kc, "c = kernel.comm_manager.open('plain.target', {'x': 1})\ntype(c).__module__")
        assert [m["msg_type"] for m in out] == ["comm_open", "execute_result"]
        assert out[1]["content"]["data"]["text/plain"] == "'kernelkit.kernel.comms'"
        comm_id = out[0]["content"]["comm_id"]
        assert comm_info(kc) == {comm_id: {"target_name": "plain.target"}}
        ok(kc, "c.on_msg(lambda m: c.send({'got': m['content']['data']}, buffers=m['buffers']))")
        got = send(kc, "comm_msg", {"comm_id": comm_id, "data": {"y": 2}}, buffers=[b"raw"])
        assert [(m["content"]["data"], m["buffers"]) for m in got] == [({"got": {"y": 2}}, [b"raw"])]
    finally:
        stop_kernel(km, kc)


# ---- ipywidgets -----------------------------------------------------------------------------------


def test_ipywidgets_slider_both_ways(calc) -> None:
    out = ok(calc, "import ipywidgets as w\ns = w.IntSlider(value=3, min=0, max=10, description='n')\ndisplay(s)")
    opens = [m for m in out if m["msg_type"] == "comm_open"]
    [slider] = [m for m in opens if m["content"]["data"]["state"]["_model_name"] == "IntSliderModel"]
    assert slider["content"]["target_name"] == "jupyter.widget"
    state = slider["content"]["data"]["state"]
    assert (state["value"], state["max"], state["description"]) == (3, 10, "n")
    model_id = slider["content"]["comm_id"]
    [shown] = [m["content"]["data"] for m in out if m["msg_type"] == "display_data"]
    assert shown["application/vnd.jupyter.widget-view+json"]["model_id"] == model_id
    assert shown["text/plain"].startswith("IntSlider(")
    assert model_id in comm_info(calc, "jupyter.widget")

    # The frontend moves the slider: the kernel's value changes (and the kernel echoes the update).
    got = send(calc, "comm_msg", {"comm_id": model_id, "data": {"method": "update", "state": {"value": 7}, "buffer_paths": []}})
    echoes = [m["content"]["data"] for m in got if m["msg_type"] == "comm_msg"]
    assert echoes == [{"method": "echo_update", "state": {"value": 7}, "buffer_paths": []}]
    assert value(calc, "s.value") == "7"

    # The kernel sets the value: the frontend gets an update.
    out = ok(calc, "s.value = 9")
    assert [m["content"]["data"] for m in out if m["msg_type"] == "comm_msg"] == [
        {"method": "update", "state": {"value": 9}, "buffer_paths": []}
    ]
    # An observer in the kernel sees frontend changes.
    ok(calc, "seen = []\ns.observe(lambda change: seen.append(change['new']), 'value')")
    send(calc, "comm_msg", {"comm_id": model_id, "data": {"method": "update", "state": {"value": 1}, "buffer_paths": []}})
    assert value(calc, "seen") == "[1]"


def test_ipywidgets_control_comm_restores_widget_states(calc) -> None:
    """What JupyterLab does when a notebook is reopened: ask the control comm for every widget's state."""
    ok(calc, "import ipywidgets as w\nt = w.Text(value='restored')")
    model_id = value(calc, "t.model_id").strip("'")
    got = send(calc, "comm_open", {"comm_id": "ctl", "target_name": "jupyter.widget.control", "data": {}},
               metadata={"version": "1.0.0"})
    assert got == []
    got = send(calc, "comm_msg", {"comm_id": "ctl", "data": {"method": "request_states"}})
    [states] = [m["content"]["data"] for m in got if m["msg_type"] == "comm_msg"]
    assert states["method"] == "update_states"
    assert states["states"][model_id]["state"]["value"] == "restored"


def test_errors_in_comm_callbacks_are_reported_and_the_kernel_lives_on(calc) -> None:
    ok(calc, """
        import comm
        def bad_target(c, msg):
            raise RuntimeError('target refuses')
        def target(c, msg):
            c.on_msg(lambda m: 1 / 0)
        comm.get_comm_manager().register_target('bad.target', bad_target)
        comm.get_comm_manager().register_target('fragile.target', target)
    """)
    got = send(calc, "comm_open", {"comm_id": "e1", "target_name": "bad.target", "data": {}})
    assert [m["msg_type"] for m in got] == ["comm_close", "error"]
    assert got[1]["content"]["ename"] == "RuntimeError"
    assert "e1" not in comm_info(calc)
    send(calc, "comm_open", {"comm_id": "e2", "target_name": "fragile.target", "data": {}})
    got = send(calc, "comm_msg", {"comm_id": "e2", "data": {}})
    assert [(m["msg_type"], m["content"]["ename"]) for m in got] == [("error", "ZeroDivisionError")]
    assert value(calc, "1 + 1") == "2"
    assert "e2" in comm_info(calc)


def test_the_comm_package_is_patched_on_first_import_in_memory() -> None:
    """A Kernel() without a server: no comm import at construction, patched when imported later."""
    code = textwrap.dedent(
        """
        import sys
        from kernelkit import Kernel
        k = Kernel()
        assert 'comm' not in sys.modules
        import comm
        from comm.base_comm import BaseComm
        assert comm.get_comm_manager() is k.comm_manager
        c = comm.create_comm(target_name='t', data={'a': 1})
        assert isinstance(c, BaseComm) and c.kernel is k and not c._closed
        assert k.comm_manager.comm_info() == {c.comm_id: {'target_name': 't'}}
        c.close()
        assert k.comm_manager.comm_info() == {}
        # A second kernel in the process becomes the provider; its own opens are BaseComms too.
        k2 = Kernel()
        assert comm.get_comm_manager() is k2.comm_manager
        assert isinstance(k2.comm_manager.open('u'), BaseComm)
        assert not [m for m in ('IPython', 'ipykernel') if m in sys.modules]
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(TEST_KERNEL_ENV["PYTHONPATH"]))


@pytest.mark.slow
def test_nbclient_saves_widget_state_in_the_notebook() -> None:
    """nbclient follows the widget comms and stores their state, so exported HTML shows the widget."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import ipywidgets as w\ns = w.IntSlider(value=5)\ndisplay(s)"),
                nbformat.v4.new_code_cell("s.value = 6")]
    NotebookClient(nb, kernel_name=CALC, timeout=60, store_widget_state=True).execute()
    [view] = [o["data"]["application/vnd.jupyter.widget-view+json"] for o in nb.cells[0].outputs
              if o["output_type"] == "display_data"]
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert state[view["model_id"]]["model_name"] == "IntSliderModel"
    assert state[view["model_id"]]["state"]["value"] == 6
