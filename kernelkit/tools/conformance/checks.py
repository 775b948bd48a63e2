"""The checks, in the order they run. Each is documented in docs/conformance.md with the spec sentence it enforces.

Names are stable: ``--only`` / ``--skip``, ``--json`` and :mod:`kernelkit.testing` use them.
"""

from __future__ import annotations

import os
import re
import signal
import time
from typing import Any

import zmq

from kernelkit.protocol.wire import DELIMITER
from kernelkit.tools.client import KernelClient, Msg
from kernelkit.tools.conformance._base import PASS, Context, Exchange, NotSupported, Skip, Violation, check
from kernelkit.tools.conformance.samples import INPUT_VALUE

REPLY_STATUSES = ("ok", "error", "aborted")
IS_COMPLETE_STATUSES = ("complete", "incomplete", "invalid", "unknown")
_VERSION = re.compile(r"\d+\.\d+(\.\d+)?")


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise Violation(message)


def _types(value: Any) -> str:
    return type(value).__name__ if value is not None else "nothing"


def _field(content: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = content.get(key)
    names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
    _expect(
        (isinstance(value, kind) and not isinstance(value, bool)) or (kind is bool and isinstance(value, bool)),
        f"{where}: {key!r} must be a {names}, got {_types(value)} {value!r}"[:300],
    )
    return value


def _simple_cell(ctx: Context) -> str:
    """A cell that is valid in the kernel's language: the print sample, else an empty cell."""
    return ctx.samples.get("print", "")


def _answered_or_unsupported(ex: Exchange, what: str) -> dict[str, Any]:
    """The reply content when status is ok; NotSupported when the kernel answers with an error."""
    content = ex.content
    _expect(
        ex.reply["msg_type"] == what.replace("_request", "_reply"),
        f"reply to {what} has msg_type {ex.reply['msg_type']!r}, expected {what.replace('_request', '_reply')!r}",
    )
    status = content.get("status")
    if status == "error":
        raise NotSupported(f"answered {what} with an error ({content.get('ename', '')}: {content.get('evalue', '')})")
    _expect(status == "ok", f"{what.replace('_request', '_reply')} status {status!r}, expected 'ok' or 'error'")
    return content


# ---- kernel_info ----------------------------------------------------------------------------------------------


def _kernel_info_fields(content: dict[str, Any], where: str) -> str:
    _expect(content.get("status") == "ok", f"{where}: status {content.get('status')!r}, expected 'ok'")
    version = _field(content, "protocol_version", str, where)
    _expect(bool(_VERSION.fullmatch(version)), f"{where}: protocol_version {version!r} is not like '5.3'")
    _field(content, "implementation", str, where)
    _field(content, "implementation_version", str, where)
    _field(content, "banner", str, where)
    info = _field(content, "language_info", dict, where)
    name = _field(info, "name", str, f"{where} language_info")
    _expect(bool(name), f"{where}: language_info.name is empty")
    for key in ("version", "mimetype", "file_extension", "pygments_lexer", "nbconvert_exporter"):
        if key in info:
            _field(info, key, str, f"{where} language_info")
    if "help_links" in content:
        links = _field(content, "help_links", list, where)
        for link in links:
            _expect(
                isinstance(link, dict) and isinstance(link.get("text"), str) and isinstance(link.get("url"), str),
                f"{where}: help_links entries must be {{'text': str, 'url': str}}, got {link!r}"[:300],
            )
    if "supported_features" in content:
        features = _field(content, "supported_features", list, where)
        _expect(all(isinstance(f, str) for f in features), f"{where}: supported_features must be strings: {features!r}")
    return f"protocol {version}, {content['implementation']} {content['implementation_version']}, language {name}"


@check(
    "kernel_info",
    spec="kernel_info_reply: protocol_version, implementation, implementation_version, "
    "language_info (name, ...), banner, help_links; every reply has a status.",
)
def kernel_info(ctx: Context) -> str:
    ex = ctx.exchange("shell", "kernel_info_request", idle=False)
    _expect(
        ex.reply["msg_type"] == "kernel_info_reply",
        f"reply to kernel_info_request has msg_type {ex.reply['msg_type']!r}, expected 'kernel_info_reply'",
    )
    return _kernel_info_fields(ex.content, "kernel_info_reply on shell")


@check(
    "kernel_info_control",
    requires=["kernel_info"],
    spec="Protocol 5.5: kernel_info_request may also be sent on the control channel.",
)
def kernel_info_control(ctx: Context) -> str:
    ex = ctx.exchange("control", "kernel_info_request", idle=False)
    if not ex.replies:
        if ctx.protocol < (5, 5):
            raise NotSupported(
                f"no answer on control; kernel_info on control is protocol 5.5, the kernel speaks "
                f"{ctx.kernel_info.get('protocol_version')}"
            )
        raise Violation(
            f"no kernel_info_reply on control within {ctx.timeout:g} s (protocol "
            f"{ctx.kernel_info.get('protocol_version')} >= 5.5 answers it there)"
        )
    message = _kernel_info_fields(ex.content, "kernel_info_reply on control")
    for key in ("protocol_version", "implementation"):
        _expect(
            ex.content.get(key) == ctx.kernel_info.get(key),
            f"{key} on control {ex.content.get(key)!r} differs from shell's {ctx.kernel_info.get(key)!r}",
        )
    return message


# ---- the message flow -----------------------------------------------------------------------------------------


def _requests(ctx: Context) -> list[tuple[str, str, dict[str, Any]]]:
    code = _simple_cell(ctx)
    return [
        ("shell", "kernel_info_request", {}),
        ("shell", "execute_request", KernelClient.execute_content(code)),
        ("shell", "complete_request", {"code": code, "cursor_pos": len(code)}),
        ("shell", "inspect_request", {"code": code, "cursor_pos": len(code), "detail_level": 0}),
        ("shell", "is_complete_request", {"code": code}),
        ("shell", "history_request", {"output": False, "raw": True, "hist_access_type": "tail", "n": 5}),
        ("shell", "comm_info_request", {}),
    ]


@check(
    "reply_routing",
    spec="Every request gets exactly one reply, of type <name>_reply, on the channel it came "
    "from, with the request's header as parent_header.",
)
def reply_routing(ctx: Context) -> str:
    client = ctx.client
    socks = {"shell": client.shell, "control": client.control}
    problems: dict[str, str] = {}
    requests = _requests(ctx)
    for channel, msg_type, content in requests:
        problem = _routing_problem(ctx, socks, channel, msg_type, content)
        if problem:
            problems[msg_type] = problem
    ctx.unrouted = set(problems)
    if problems:
        raise Violation("; ".join(f"{t}: {p}" for t, p in problems.items()))
    return f"{len(requests)} request types, one reply each"


def _routing_problem(
    ctx: Context,
    socks: dict[str, zmq.Socket],
    channel: str,
    msg_type: str,
    content: dict[str, Any],
) -> str | None:
    client = ctx.client
    sock = socks[channel]
    msg_id = client.send(sock, msg_type, content)
    expected = msg_type.replace("_request", "_reply")
    got: list[Msg] = []
    strays: list[str] = []
    deadline = time.monotonic() + ctx.timeout
    end: float | None = None
    poller = zmq.Poller()
    for s in socks.values():
        poller.register(s, zmq.POLLIN)
    while time.monotonic() < (end or deadline):
        for ready, _ in poller.poll(int(max(0.0, (end or deadline) - time.monotonic()) * 1000)):
            msg = client.recv(ready, 0)
            if msg is None:
                continue
            if ready is not sock:
                strays.append(f"a {msg['msg_type']} on {'control' if ready is client.control else 'shell'}")
            elif client.parent_id(msg) == msg_id:
                got.append(msg)
                end = end or time.monotonic() + 0.2
            else:
                strays.append(
                    f"a {msg['msg_type']} whose parent_header.msg_id is "
                    f"{client.parent_id(msg)!r}, not the request's {msg_id!r}"
                )
    ctx.quiet(msg_id, 0.05)  # drain this request's iopub traffic
    if strays:
        return f"got {strays[0]}"
    if not got:
        return f"no reply within {ctx.timeout:g} s"
    if len(got) > 1:
        return f"{len(got)} replies, expected exactly one"
    if got[0]["msg_type"] != expected:
        return f"reply type {got[0]['msg_type']!r}, expected {expected!r}"
    status = got[0]["content"].get("status")
    if msg_type != "is_complete_request" and status not in REPLY_STATUSES:  # is_complete's statuses are its own
        return f"{expected} status {status!r} is not one of {', '.join(REPLY_STATUSES)}"
    return None


@check(
    "status_wrap",
    spec="The kernel publishes status busy before handling each request and idle when done, both "
    "with the request as parent; every message the request causes is published between them.",
)
def status_wrap(ctx: Context) -> str:
    checked = 0
    for channel, msg_type, content in _requests(ctx):
        if msg_type in ctx.unrouted:
            continue  # reply_routing failed it: judged there
        checked += 1
        ex = ctx.exchange(channel, msg_type, content, settle=0.3)
        _expect(bool(ex.replies), f"{msg_type}: no reply within {ctx.timeout:g} s")
        states = [m["content"].get("execution_state") for m in ex.iopub if m["msg_type"] == "status"]
        _expect(
            bool(ex.iopub), f"{msg_type}: no status busy/idle published for it (nothing on iopub with it as parent)"
        )
        first = ex.iopub[0]
        _expect(
            first["msg_type"] == "status" and first["content"].get("execution_state") == "busy",
            f"{msg_type}: first iopub message is {first['msg_type']} "
            f"{first['content'].get('execution_state', '')}, expected status busy",
        )
        idle = ex.idle_index()
        _expect(idle is not None, f"{msg_type}: no status idle within {ctx.timeout:g} s (got {', '.join(ex.types())})")
        assert idle is not None
        after = ex.types()[idle + 1 :]
        _expect(not after, f"{msg_type}: published {', '.join(after)} after its status idle")
        _expect(
            states.count("busy") == 1 and states.count("idle") == 1,
            f"{msg_type}: status sequence {states}, expected one busy then one idle",
        )
    if not checked:
        raise Skip("depends on reply_routing, which failed for every request type")
    return f"busy first, idle last, nothing after idle, for {checked} request types"


@check(
    "execute_order",
    requires=["status_wrap", "reply_routing:execute_request"],
    spec="execute_input is broadcast before the outputs; outputs are "
    "published before status idle; execute_input and execute_reply carry the same execution_count.",
)
def execute_order(ctx: Context) -> str:
    code = ctx.sample("print")
    ex = ctx.executed(ctx.execute(code))
    kinds = [m for m in ex.iopub if m["msg_type"] != "status"]
    _expect(bool(kinds), "the print sample published nothing but status")
    first = kinds[0]
    _expect(
        first["msg_type"] == "execute_input", f"first message after busy is {first['msg_type']}, expected execute_input"
    )
    _expect(
        first["content"].get("code") == code, f"execute_input code {first['content'].get('code')!r}, expected {code!r}"
    )
    count = first["content"].get("execution_count")
    _expect(isinstance(count, int), f"execute_input execution_count must be an int, got {count!r}")
    _expect(
        ex.content.get("execution_count") == count,
        f"execute_reply execution_count {ex.content.get('execution_count')!r} != execute_input's {count!r}",
    )
    _expect(bool(ex.outputs()), f"the print sample produced no output (got {', '.join(ex.types())})")
    return f"{', '.join(ex.types())}"


def _count(ex: Exchange) -> int:
    count = ex.content.get("execution_count")
    if not isinstance(count, int) or isinstance(count, bool):
        raise Violation(f"execute_reply execution_count must be an int, got {count!r}")
    return count


@check(
    "execution_count",
    requires=["status_wrap", "reply_routing:execute_request"],
    spec="execution_count increments only for execute requests with store_history true and silent false.",
)
def execution_count(ctx: Context) -> str:
    code = ctx.sample("print")
    first = _count(ctx.executed(ctx.execute(code)))
    second = _count(ctx.executed(ctx.execute(code)))
    _expect(second == first + 1, f"execution_count went {first} -> {second} for a store_history cell, expected +1")
    ctx.executed(ctx.execute(code, store_history=False), "store_history=false cell")
    third = _count(ctx.executed(ctx.execute(code)))
    _expect(
        third == second + 1,
        f"a store_history=false cell bumped execution_count: {second} -> {third}, expected {second + 1} next",
    )
    return f"{first} -> {second} -> (store_history=false) -> {third}"


@check(
    "silent",
    requires=["status_wrap", "reply_routing:execute_request"],
    spec="silent=true: no execute_input, no output is broadcast, and "
    "execution_count is not incremented (store_history is forced false).",
)
def silent(ctx: Context) -> str:
    code = ctx.sample("print")
    before = _count(ctx.executed(ctx.execute(code)))
    ex = ctx.executed(ctx.execute(code, silent=True), "silent cell")
    noisy = [t for t in ex.types() if t != "status"]
    _expect(not noisy, f"a silent execute published {', '.join(noisy)}")
    after = _count(ctx.executed(ctx.execute(code)))
    _expect(
        after == before + 1,
        f"a silent cell bumped execution_count: {before} -> (silent) -> {after}, expected {before + 1}",
    )
    return "nothing but status, count unchanged"


@check(
    "error",
    requires=["status_wrap", "reply_routing:execute_request"],
    spec="On error, the execute_reply has status 'error' with ename, evalue "
    "and traceback (a list of strings), and the same is published as an 'error' message on iopub.",
)
def error(ctx: Context) -> str:
    ex = ctx.execute(ctx.sample("error"))
    content = ex.content
    _expect(
        content.get("status") == "error",
        f"the error sample's execute_reply status is {content.get('status')!r}, expected 'error'",
    )
    _field(content, "ename", str, "error execute_reply")
    _field(content, "evalue", str, "error execute_reply")
    tb = _field(content, "traceback", list, "error execute_reply")
    _expect(all(isinstance(line, str) for line in tb), "error execute_reply: traceback must be a list of strings")
    errors = [m for m in ex.iopub if m["msg_type"] == "error"]
    _expect(bool(errors), f"no 'error' message on iopub for the failed cell (got {', '.join(ex.types())})")
    for key, kind in (("ename", str), ("evalue", str), ("traceback", list)):
        _field(errors[0]["content"], key, kind, "iopub error message")
    _expect(ex.idle_index() is not None, "no status idle after the error")
    return f"{content['ename']}: {content['evalue']}"[:80]


@check(
    "stop_on_error",
    requires=["error"],
    spec="stop_on_error (default true): after an error, execute requests "
    "already queued are not run and are answered with status 'aborted'.",
)
def stop_on_error(ctx: Context) -> str:
    # "Already queued" is racy by nature: the second request may reach the kernel only after the
    # first has failed. A kernel that aborts passes one of five attempts.
    statuses = []
    for _ in range(5):
        status = _queued_after_error(ctx)
        statuses.append(status)
        if status == "aborted":
            break
    _expect(
        statuses[-1] == "aborted",
        f"the cell queued behind a failing one got status {statuses[-1]!r}, expected "
        f"'aborted' ({len(statuses)} attempts)",
    )
    after = ctx.executed(ctx.execute(_simple_cell(ctx)), "the cell after the abort")
    return f"queued cell aborted; next cell {after.content.get('status')}"


def _queued_after_error(ctx: Context) -> str:
    client = ctx.client
    # Both built before either is sent, so they leave back to back: the second is queued while the first runs.
    bad, first = client.frames("execute_request", KernelClient.execute_content(ctx.sample("error")))
    queued, second = client.frames("execute_request", KernelClient.execute_content(_simple_cell(ctx)))
    client.shell.send_multipart(first)
    client.shell.send_multipart(second)
    replies: dict[str, Msg] = {}
    deadline = time.monotonic() + ctx.timeout
    while len(replies) < 2 and time.monotonic() < deadline:
        msg = client.recv(client.shell, max(0.0, deadline - time.monotonic()))
        if msg is not None and client.parent_id(msg) in (bad, queued):
            replies[client.parent_id(msg)] = msg
    ctx.quiet(queued, 0.2)
    _expect(
        bad in replies and queued in replies,
        f"{2 - len(replies)} of the two execute_replies missing within {ctx.timeout:g} s",
    )
    _expect(replies[bad]["content"].get("status") == "error", "the error cell did not fail")
    return str(replies[queued]["content"].get("status"))


# ---- optional requests ----------------------------------------------------------------------------------------


@check(
    "complete",
    requires=["status_wrap", "reply_routing:complete_request"],
    spec="complete_reply: matches (a list of strings), cursor_start and "
    "cursor_end delimiting the text to replace, within the code.",
)
def complete(ctx: Context) -> str:
    code = ctx.sample("complete")
    content = _answered_or_unsupported(
        ctx.exchange("shell", "complete_request", {"code": code, "cursor_pos": len(code)}), "complete_request"
    )
    matches = _field(content, "matches", list, "complete_reply")
    _expect(all(isinstance(m, str) for m in matches), f"complete_reply: matches must be strings: {matches[:5]!r}")
    start = _field(content, "cursor_start", int, "complete_reply")
    end = _field(content, "cursor_end", int, "complete_reply")
    _expect(
        0 <= start <= end <= len(code),
        f"complete_reply: cursor_start {start}, cursor_end {end}: expected "
        f"0 <= cursor_start <= cursor_end <= {len(code)} (the code's length)",
    )
    if "metadata" in content:
        _field(content, "metadata", dict, "complete_reply")
    return f"{len(matches)} matches for {code[start:end]!r}"


@check(
    "inspect",
    requires=["status_wrap", "reply_routing:inspect_request"],
    spec="inspect_reply: status, found (bool), data (a mime bundle) and metadata.",
)
def inspect(ctx: Context) -> str:
    code = ctx.sample("inspect")
    content = _answered_or_unsupported(
        ctx.exchange("shell", "inspect_request", {"code": code, "cursor_pos": len(code), "detail_level": 0}),
        "inspect_request",
    )
    found = _field(content, "found", bool, "inspect_reply")
    data = _field(content, "data", dict, "inspect_reply")
    _field(content, "metadata", dict, "inspect_reply")
    _expect(all(isinstance(k, str) for k in data), "inspect_reply: data keys must be mime types")
    return f"found={found}, {', '.join(data) or 'no data'}"


@check(
    "is_complete",
    requires=["status_wrap", "reply_routing:is_complete_request"],
    spec="is_complete_reply: status is one of complete, incomplete, "
    "invalid, unknown; indent (a string) when incomplete.",
)
def is_complete(ctx: Context) -> str:
    results = []
    for key in ("print", "incomplete"):
        code = ctx.samples.get(key)
        if code is None:
            continue
        ex = ctx.exchange("shell", "is_complete_request", {"code": code})
        _expect(ex.reply["msg_type"] == "is_complete_reply", f"reply type {ex.reply['msg_type']!r}")
        status = ex.content.get("status")
        if status == "error":
            raise NotSupported(f"answered is_complete_request with an error ({ex.content.get('evalue', '')})")
        _expect(
            status in IS_COMPLETE_STATUSES,
            f"is_complete_reply status {status!r} is not one of {', '.join(IS_COMPLETE_STATUSES)}",
        )
        if status == "incomplete" and "indent" in ex.content:
            _field(ex.content, "indent", str, "is_complete_reply")
        results.append(f"{key}: {status}")
    if not results:
        raise Skip("no sample 'print' or 'incomplete'")
    return ", ".join(results)


@check(
    "history",
    requires=["status_wrap", "reply_routing:history_request"],
    spec="history_reply: history is a list of (session, line_number, input) "
    "or (session, line_number, (input, output)) entries.",
)
def history(ctx: Context) -> str:
    content = _answered_or_unsupported(
        ctx.exchange("shell", "history_request", {"output": False, "raw": True, "hist_access_type": "tail", "n": 10}),
        "history_request",
    )
    entries = _field(content, "history", list, "history_reply")
    for entry in entries:
        _expect(
            isinstance(entry, list) and len(entry) == 3,
            f"history_reply: entry {entry!r} is not a [session, line_number, input] triple"[:300],
        )
    return f"{len(entries)} entries"


@check(
    "comm_info",
    requires=["status_wrap", "reply_routing:comm_info_request"],
    spec="comm_info_reply: comms is a dict of comm_id -> {target_name}.",
)
def comm_info(ctx: Context) -> str:
    content = _answered_or_unsupported(ctx.exchange("shell", "comm_info_request", {}), "comm_info_request")
    comms = _field(content, "comms", dict, "comm_info_reply")
    for comm_id, value in comms.items():
        _expect(
            isinstance(value, dict) and isinstance(value.get("target_name"), str),
            f"comm_info_reply: comms[{comm_id!r}] must be {{'target_name': str}}, got {value!r}"[:300],
        )
    return f"{len(comms)} comms"


# ---- stdin ----------------------------------------------------------------------------------------------------


@check(
    "stdin",
    requires=["status_wrap", "reply_routing:execute_request"],
    spec="With allow_stdin true the kernel may send input_request on stdin, "
    "with the execute_request as parent, and waits for input_reply.",
)
def stdin(ctx: Context) -> str:
    client = ctx.client
    problems: list[str] = []
    code = ctx.sample("input")
    expected, frames = client.frames("execute_request", KernelClient.execute_content(code, allow_stdin=True))

    def answer(request: Msg) -> None:
        if request["msg_type"] != "input_request":
            problems.append(f"unexpected {request['msg_type']} on stdin")
            return
        if client.parent_id(request) != expected:
            problems.append(
                f"input_request parent_header.msg_id is {client.parent_id(request)!r}, not the "
                f"execute_request's {expected!r}"
            )
        if not isinstance(request["content"].get("prompt"), str):
            problems.append(f"input_request prompt is {request['content'].get('prompt')!r}, not a string")
        client.send(client.stdin, "input_reply", {"value": INPUT_VALUE}, parent=request["header"])

    ex = ctx.exchange("shell", "execute_request", frames=frames, msg_id=expected, on_stdin=answer)
    _expect(not problems, problems[0] if problems else "")
    if not ex.replies:
        ctx.ensure().kill()
        raise Violation(
            f"the input cell got no execute_reply within {ctx.timeout:g} s"
            + ("" if ex.stdin else " and sent no input_request")
        )
    if not ex.stdin:
        if ex.content.get("status") == "error":
            raise NotSupported(
                f"the input sample failed without an input_request ({ex.content.get('ename', '')}: "
                f"{ex.content.get('evalue', '')})"
            )
        raise Violation("the input sample finished without sending input_request although allow_stdin was true")
    ctx.executed(ex, "the input cell")
    _expect(
        INPUT_VALUE in ex.text(), f"the value typed ({INPUT_VALUE!r}) is not in the cell's output {ex.text()!r}"[:300]
    )
    return "input_request with the right parent, value received"


def _drain(sock: zmq.Socket, client: KernelClient, seconds: float = 0.1) -> list[Msg]:
    out = []
    while sock.poll(int(seconds * 1000)):
        msg = client.recv(sock, 0)
        if msg is not None:
            out.append(msg)
    return out


@check(
    "stdin_disallowed",
    requires=["reply_routing:execute_request"],
    spec="With allow_stdin false the kernel must not send input_request (the frontend does "
    "not support input); the cell must still be answered.",
)
def stdin_disallowed(ctx: Context) -> str:
    client = ctx.client
    code = ctx.sample("input")
    ex = ctx.execute(code, allow_stdin=False)
    if not ex.replies:
        ctx.ensure().kill()  # hung waiting for input nobody will give: start afresh for the next checks
        _expect(
            False,
            f"the input cell with allow_stdin=false hung: no execute_reply within {ctx.timeout:g} s"
            + (" (it sent input_request although allow_stdin was false)" if ex.stdin else ""),
        )
    _expect(not ex.stdin, "sent input_request although allow_stdin was false")
    stray = [m for m in _drain(client.stdin, client) if m["msg_type"] == "input_request"]
    _expect(not stray, "sent input_request although allow_stdin was false")
    return f"answered with status {ex.content.get('status')!r}, no input_request"


# ---- interrupt, heartbeat, iopub_welcome ------------------------------------------------------------------------


@check(
    "interrupt",
    requires=["status_wrap", "reply_routing:execute_request"],
    spec="Interrupt (SIGINT, or interrupt_request on control when "
    "interrupt_mode is 'message') stops the running cell, which is answered (error or aborted); the kernel "
    "stays usable.",
)
def interrupt(ctx: Context) -> str:
    kernel = ctx.ensure()
    client = kernel.client
    code = ctx.sample("sleep")
    msg_id = client.send(client.shell, "execute_request", KernelClient.execute_content(code))
    deadline = time.monotonic() + ctx.timeout
    started = False
    while not started and time.monotonic() < deadline:  # wait until the cell runs (execute_input or busy)
        msg = client.recv(client.iopub, max(0.0, deadline - time.monotonic()))
        started = msg is not None and client.parent_id(msg) == msg_id and msg["msg_type"] in ("execute_input", "status")
    time.sleep(0.5)
    t0 = time.monotonic()
    kernel.interrupt()
    reply: Msg | None = None
    limit = 5.0
    while reply is None and time.monotonic() - t0 < limit:
        msg = client.recv(client.shell, max(0.0, limit - (time.monotonic() - t0)))
        if msg is not None and client.parent_id(msg) == msg_id:
            reply = msg
    if reply is None:
        kernel.kill()
        raise Violation(
            f"the running cell was not answered within {limit:g} s of the interrupt "
            f"(interrupt_mode {kernel.interrupt_mode})"
        )
    took = time.monotonic() - t0
    status = reply["content"].get("status")
    _expect(
        status in ("error", "aborted"),
        f"the interrupted cell's execute_reply status is {status!r}, expected 'error' or 'aborted'",
    )
    ctx.quiet(msg_id, 0.2)
    after = ctx.execute(_simple_cell(ctx))
    _expect(
        bool(after.replies) and after.content.get("status") == "ok",
        "the kernel did not run a cell after the interrupt"
        + (f" (status {after.content.get('status')!r})" if after.replies else ""),
    )
    return f"{kernel.interrupt_mode}: answered {status!r} in {took:.2f} s"


@check("heartbeat", spec="Heartbeat: the kernel echoes every message on the hb socket back unchanged.")
def heartbeat(ctx: Context) -> str:
    payload = os.urandom(8).hex().encode()
    _expect(ctx.client.heartbeat(timeout=min(ctx.timeout, 5.0), payload=payload), "no heartbeat echo within 5 s")
    return "echoed"


@check(
    "iopub_welcome",
    requires=["kernel_info"],
    spec="Protocol 5.5 (JEP 65): iopub is an XPUB socket that sends iopub_welcome to each new subscriber.",
)
def iopub_welcome(ctx: Context) -> str:
    if ctx.protocol < (5, 5):
        raise NotSupported(f"protocol {ctx.kernel_info.get('protocol_version')} < 5.5")
    client = ctx.client
    sub = ctx.context.socket(zmq.SUB)
    sub.linger = 0
    try:
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(client.info.address("iopub"))
        deadline = time.monotonic() + ctx.timeout
        while time.monotonic() < deadline:
            msg = client.recv(sub, max(0.0, deadline - time.monotonic()))
            if msg is not None and msg["msg_type"] == "iopub_welcome":
                return "welcomed a new subscriber"
        raise Violation(
            f"a second iopub subscriber (besides the client's own) got no iopub_welcome within {ctx.timeout:g} s "
            "(protocol "
            f"{ctx.kernel_info.get('protocol_version')})"
        )
    finally:
        sub.close(linger=0)


# ---- security and robustness -------------------------------------------------------------------------------------


def _still_alive(ctx: Context, after: str) -> None:
    kernel = ctx.ensure() if ctx.kernel is None else ctx.kernel
    try:
        kernel.process.wait(0.2)
    except Exception:
        return
    raise Violation(f"the kernel exited (code {kernel.process.returncode}) after {after}")


def _forged(ctx: Context, how: str) -> str:
    client = ctx.client
    code = _simple_cell(ctx)
    msg_id, frames = client.frames("execute_request", KernelClient.execute_content(code))
    if how == "wrong":
        frames[1] = bytes(reversed(frames[1]))
    else:
        frames[1] = b""
    client.shell.send_multipart(frames)
    seen = ctx.quiet(msg_id, 1.0)
    what = "a wrong signature" if how == "wrong" else "no signature"
    _expect(
        not seen,
        f"a message with {what} was processed: the kernel sent {', '.join(m['msg_type'] for m in seen)} for it",
    )
    _still_alive(ctx, f"a message with {what}")
    after = ctx.execute(code, idle=False)
    _expect(
        bool(after.replies),
        f"the message with {what} was dropped, but then the kernel stopped answering: no "
        f"reply to a properly signed cell within {ctx.timeout:g} s",
    )
    ctx.quiet(after.msg_id, 0.1)
    return "dropped"


@check(
    "signature_wrong",
    requires=["reply_routing:execute_request"],
    spec="Messages are signed with HMAC of the connection key; a message whose signature is "
    "wrong must not be processed.",
)
def signature_wrong(ctx: Context) -> str:
    return _forged(ctx, "wrong")


@check(
    "signature_missing",
    requires=["reply_routing:execute_request"],
    spec="When the connection has a key, an unsigned message (empty signature) must not be processed.",
)
def signature_missing(ctx: Context) -> str:
    return _forged(ctx, "missing")


@check(
    "signature_replayed",
    requires=["reply_routing:execute_request"],
    spec="A message whose signature was already seen (a replay) must not be processed "
    "again (jupyter_client keeps a digest history).",
)
def signature_replayed(ctx: Context) -> str:
    client = ctx.client
    code = _simple_cell(ctx)
    msg_id, frames = client.frames("execute_request", KernelClient.execute_content(code))
    ex = ctx.exchange("shell", "execute_request", frames=frames, msg_id=msg_id, idle=False)
    _expect(bool(ex.replies), f"no reply to a properly signed execute_request within {ctx.timeout:g} s")
    ctx.quiet(msg_id, 0.3)  # the original's own iopub traffic
    client.shell.send_multipart(frames)
    seen = ctx.quiet(msg_id, 1.0)
    _expect(
        not seen, f"a replayed message was processed again: the kernel sent {', '.join(m['msg_type'] for m in seen)}"
    )
    _still_alive(ctx, "a replayed message")
    return "replay dropped"


@check(
    "malformed",
    requires=["reply_routing:kernel_info_request"],
    spec="Malformed messages (no delimiter, too few frames, invalid JSON, a header without msg_type) "
    "are dropped; the kernel keeps serving.",
)
def malformed(ctx: Context) -> str:
    kernel = ctx.ensure()
    client = kernel.client
    signer = client.signer

    def signed(parts: list[bytes]) -> list[bytes]:
        return [DELIMITER, signer.sign(parts), *parts]

    header = client.header("kernel_info_request")
    import json

    junk = [
        [b"not a jupyter message"],
        [DELIMITER],
        [DELIMITER, b"", b"{}"],
        signed([b"{not json", b"{}", b"{}", b"{}"]),
        signed([json.dumps({k: v for k, v in header.items() if k != "msg_type"}).encode(), b"{}", b"{}", b"{}"]),
        signed([json.dumps(header).encode(), b"[]", b"\xff\xfe", b"42"]),
    ]
    for frames in junk:
        for sock in (client.shell, client.control):
            sock.send_multipart(frames)
    time.sleep(0.3)
    _expect(kernel.alive(), f"the kernel exited (code {kernel.process.returncode}) after malformed messages")
    for channel in ("shell", "control"):
        if channel == "control" and ctx.status.get("kernel_info_control") != PASS:
            continue  # judged by kernel_info_control
        ex = ctx.exchange(channel, "kernel_info_request", idle=False)
        _expect(
            bool(ex.replies),
            f"after malformed messages, kernel_info_request on {channel} got no reply within {ctx.timeout:g} s",
        )
    return f"{len(junk)} malformed messages on shell and control; still serving"


# ---- shutdown -------------------------------------------------------------------------------------------------


def _shutdown(ctx: Context, restart: bool) -> str:
    kernel = ctx.start()
    try:
        client = kernel.client
        ex = ctx.exchange("control", "shutdown_request", {"restart": restart}, idle=False, client=client)
        _expect(bool(ex.replies), f"no shutdown_reply on control within {ctx.timeout:g} s")
        content = ex.content
        _expect(
            ex.reply["msg_type"] == "shutdown_reply", f"reply type {ex.reply['msg_type']!r}, expected shutdown_reply"
        )
        _expect(content.get("status") == "ok", f"shutdown_reply status {content.get('status')!r}, expected 'ok'")
        _expect(
            content.get("restart") is restart,
            f"shutdown_reply restart is {content.get('restart')!r}, expected {restart} (the request's)",
        )
        t0 = time.monotonic()
        try:
            kernel.process.wait(10)
        except Exception:
            raise Violation("the process did not exit within 10 s of its shutdown_reply") from None
        left = _group_members(kernel.pgid, 2.0)
        _expect(not left, f"processes left behind in the kernel's process group: {left}")
        return f"exit code {kernel.process.returncode} in {time.monotonic() - t0:.2f} s"
    finally:
        kernel.stop(timeout=1)


def _group_members(pgid: int | None, wait: float) -> list[int]:
    """Pids still in process group ``pgid`` after up to ``wait`` s (Linux /proc; empty elsewhere)."""
    if pgid is None or not os.path.isdir("/proc"):
        return []
    deadline = time.monotonic() + wait
    while True:
        members = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != b"Z":
                members.append(int(entry))
        if not members or time.monotonic() > deadline:
            if members:
                for pid in members:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            return members
        time.sleep(0.1)


@check(
    "shutdown",
    spec="shutdown_request on control: the kernel replies (restart false), then exits, leaving no process behind.",
    fresh=True,
)
def shutdown(ctx: Context) -> str:
    return _shutdown(ctx, restart=False)


@check(
    "restart",
    requires=["shutdown"],
    spec="shutdown_request with restart true: the reply says restart true and the process exits (the "
    "frontend starts a new one).",
    fresh=True,
)
def restart(ctx: Context) -> str:
    return _shutdown(ctx, restart=True)
