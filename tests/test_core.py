"""The protocol rules, driven in memory against the sans-I/O kernel core: no sockets, no processes."""

from __future__ import annotations

import pytest

from kernelkit.protocol.core import (
    SUBSHELL_REQUESTS,
    BadRequest,
    KernelCore,
    Outgoing,
    Request,
    reply_type,
    subshell_of,
    subshell_of_header,
)
from kernelkit.protocol.session import Session


@pytest.fixture
def core() -> KernelCore:
    return KernelCore(Session(b"key"))


def request(msg_type: str, content: dict | None = None, channel: str = "shell", ident: bytes = b"client-1") -> Request:
    client = Session(b"key")
    return Request(channel, [ident], client.msg(msg_type, content or {}))


def types(outs: list[Outgoing]) -> list[tuple[str, str]]:
    return [(o.channel, o.msg["msg_type"]) for o in outs]


def test_busy_and_idle_carry_the_request_as_parent(core: KernelCore) -> None:
    req = request("kernel_info_request")
    busy, idle = core.busy(req), core.idle(req)
    assert (busy.channel, busy.msg["content"]) == ("iopub", {"execution_state": "busy"})
    assert (idle.channel, idle.msg["content"]) == ("iopub", {"execution_state": "idle"})
    assert busy.msg["parent_header"] is req.msg["header"] is idle.msg["parent_header"]
    assert core.starting().msg["parent_header"] == {}


def test_reply_goes_back_on_the_request_channel_to_its_identities(core: KernelCore) -> None:
    req = request("kernel_info_request", channel="control", ident=b"abc")
    out = core.reply(req, {"status": "ok"})
    assert (out.channel, out.idents, out.msg["msg_type"]) == ("control", [b"abc"], "kernel_info_reply")
    assert out.msg["parent_header"]["msg_id"] == req.msg["header"]["msg_id"]
    assert reply_type("create_subshell_request") == "create_subshell_reply"


@pytest.mark.parametrize(("content", "counted", "published"), [
    ({"code": "x"}, True, True),
    ({"code": "x", "store_history": False}, False, True),
    ({"code": "x", "silent": True}, False, False),
    ({"code": "x", "silent": True, "store_history": True}, False, False),  # silent wins
])
def test_execution_count_and_execute_input(core: KernelCore, content: dict, counted: bool, published: bool) -> None:
    execute, execute_input = core.begin_execute(request("execute_request", content), 7)
    assert execute.execution_count == (8 if counted else 7)
    assert (execute_input is not None) is published
    if execute_input is not None:
        assert execute_input.msg["content"] == {"code": "x", "execution_count": execute.execution_count}


def test_execute_without_code_is_a_bad_request(core: KernelCore) -> None:
    with pytest.raises(BadRequest, match="code"):
        core.begin_execute(request("execute_request", {}), 0)


def test_reply_defaults_and_abort_decision(core: KernelCore) -> None:
    execute, _ = core.begin_execute(request("execute_request", {"code": "x"}), 0)
    reply, abort = core.finish_execute(execute, {})
    assert reply.msg["content"] == {"status": "ok", "execution_count": 1, "user_expressions": {}, "payload": []}
    assert reply.msg["metadata"]["status"] == "ok" and not abort
    _, abort = core.finish_execute(execute, {"status": "error", "ename": "E", "evalue": "", "traceback": []})
    assert abort
    quiet, _ = core.begin_execute(request("execute_request", {"code": "x", "stop_on_error": False}), 0)
    assert not core.finish_execute(quiet, {"status": "error"})[1]
    silent, _ = core.begin_execute(request("execute_request", {"code": "x", "silent": True}), 0)
    assert not core.finish_execute(silent, {"status": "error"})[1]


def test_held_executes_are_aborted_and_other_requests_run(core: KernelCore) -> None:
    held = [request("execute_request", {"code": "a"}), request("complete_request", {"code": "a"}),
            request("execute_request", {"code": "b"})]
    for req in held:
        core.hold(req)
    seen = []
    while (req := core.next_held()) is not None:
        if core.must_abort(req):
            outs = core.abort(req)
            assert types(outs) == [("iopub", "status"), ("shell", "execute_reply"), ("iopub", "status")]
            assert outs[1].msg["content"] == {"status": "aborted"}
            assert all(o.msg["parent_header"] is req.msg["header"] for o in outs)
            seen.append("aborted")
        else:
            seen.append(req.msg_type)
    assert seen == ["aborted", "complete_request", "aborted"] and not core.holding


@pytest.mark.parametrize(("channel", "msg_type", "served"), [
    ("shell", "execute_request", True), ("shell", "comm_msg", True), ("shell", "interrupt_request", False),
    ("control", "interrupt_request", True), ("control", "kernel_info_request", True),
    ("control", "execute_request", False), ("control", "create_subshell_request", True),
])
def test_channel_tables(channel: str, msg_type: str, served: bool) -> None:
    assert KernelCore.serves(channel, msg_type) is served


def test_unknown_request_gets_busy_error_reply_idle_and_other_messages_nothing(core: KernelCore) -> None:
    outs = core.unknown(request("frobnicate_request"))
    assert types(outs) == [("iopub", "status"), ("shell", "frobnicate_reply"), ("iopub", "status")]
    assert outs[1].msg["content"]["status"] == "error"
    assert core.unknown(request("frobnicate")) == []


def test_while_nobody_subscribes_a_shell_request_waits_once_per_client(core: KernelCore) -> None:
    first = request("kernel_info_request", ident=b"console")
    assert core.needs_subscriber(first) == KernelCore.SUBSCRIBER_WAIT
    core.subscribers = 1  # the console's subscription arrived
    assert core.needs_subscriber(first) == 0
    assert core.needs_subscriber(request("execute_request", {"code": ""}, ident=b"console")) == 0


def test_a_client_that_never_subscribes_waits_once(core: KernelCore) -> None:
    lonely = request("kernel_info_request", ident=b"shell-only")
    assert core.needs_subscriber(lonely) > 0
    core.waited(lonely)  # the time ran out
    assert core.needs_subscriber(lonely) == 0
    assert core.needs_subscriber(request("kernel_info_request", ident=b"another")) == KernelCore.SUBSCRIBER_WAIT


def test_clients_arriving_while_someone_is_subscribed_do_not_wait(core: KernelCore) -> None:
    core.subscribers = 1
    for ident in (b"second-shell-socket", b"console-existing"):
        assert core.needs_subscriber(request("kernel_info_request", ident=ident)) == 0
    core.subscribers = 0  # everyone left: the next frontend to attach is held again
    assert core.needs_subscriber(request("kernel_info_request", ident=b"later")) == KernelCore.SUBSCRIBER_WAIT


def test_control_requests_never_wait_for_subscribers(core: KernelCore) -> None:
    assert core.needs_subscriber(request("kernel_info_request", channel="control")) == 0


# ---- kernel subshells (JEP 91) -------------------------------------------------------------


def test_subshell_requests_are_served_on_control_only() -> None:
    for msg_type in SUBSHELL_REQUESTS:
        assert KernelCore.serves("control", msg_type) and not KernelCore.serves("shell", msg_type)


def test_which_shell_a_request_is_for() -> None:
    client = Session(b"key")
    msg = client.msg("execute_request", {"code": ""})
    assert subshell_of(msg["header"]) is None
    msg["header"]["subshell_id"] = "abc"
    assert subshell_of(msg["header"]) == "abc"
    msg["header"]["subshell_id"] = None
    assert subshell_of(msg["header"]) is None


@pytest.mark.parametrize("frame, expected", [
    (b'{"msg_id": "1", "msg_type": "execute_request"}', None),
    (b'{"msg_id": "1", "subshell_id": "abc"}', "abc"),
    (b'{"msg_id": "1", "subshell_id": null}', None),
    (b'{"msg_id": "1", "subshell_id": 7}', "7"),  # not a string: answered as an unknown subshell
    (b'{"subshell_id": "abc"', None),  # unreadable: the main shell decodes it and drops it
    (b'["subshell_id"]', None),
    (memoryview(b'{"subshell_id": "x"}'), "x"),
    (b'{"subshell_id": "x", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", None),  # the router must not die on it
])
def test_the_subshell_of_an_encoded_header(frame: bytes, expected: str | None) -> None:
    assert subshell_of_header(frame) == expected


def test_subshell_replies_have_ipykernels_shape(core: KernelCore) -> None:
    create = core.subshell_reply(request("create_subshell_request", channel="control"), "id-1")
    assert (create.channel, create.msg["msg_type"]) == ("control", "create_subshell_reply")
    assert create.msg["content"] == {"status": "ok", "subshell_id": "id-1"}
    listed = core.subshell_reply(request("list_subshell_request", channel="control"), ["a", "b"])
    assert listed.msg["content"] == {"status": "ok", "subshell_id": ["a", "b"]}
    deleted = core.subshell_reply(request("delete_subshell_request", {"subshell_id": "a"}, channel="control"), None)
    assert deleted.msg["content"] == {"status": "ok"}
    missing = core.no_such_subshell(request("delete_subshell_request", channel="control"), "zz")
    assert missing.msg["content"]["status"] == "error" and "zz" in missing.msg["content"]["evalue"]


def test_a_request_for_an_unknown_subshell_gets_busy_error_idle(core: KernelCore) -> None:
    req = request("execute_request", {"code": "1"})
    outs = core.unknown_subshell(req, "nope")
    assert types(outs) == [("iopub", "status"), ("shell", "execute_reply"), ("iopub", "status")]
    assert outs[1].msg["content"]["ename"] == "UnknownSubshellError"
    assert all(o.msg["parent_header"] is req.msg["header"] for o in outs)
    # a comm message is no request: busy and idle, no reply
    assert types(core.unknown_subshell(request("comm_msg", {"comm_id": "c"}), "nope")) == [
        ("iopub", "status"), ("iopub", "status")]
