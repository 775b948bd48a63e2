"""Pure tests on bytes for kernelkit.protocol.wire and kernelkit.transport.connection: no sockets, no processes."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelkit.protocol import wire
from kernelkit.transport import connection
from kernelkit.transport.connection import ConnectionFileError, ConnectionInfo
from kernelkit.protocol.wire import DELIMITER, ReplayGuard, Signer, WireError

KEY = b"0123456789abcdef-secret"


def make_msg(msg_type: str = "execute_request", content: dict | None = None, buffers: list | None = None) -> dict:
    return {
        "header": wire.new_header(msg_type, "sess-1", "tester"),
        "parent_header": {"msg_id": "parent-1"},
        "metadata": {"cellId": "c1"},
        "content": content if content is not None else {"code": "print('hi')", "silent": False},
        "buffers": buffers or [],
    }


# ---- round trip -----------------------------------------------------------------------------


def test_round_trip_with_identities_and_buffers() -> None:
    signer = Signer(KEY)
    msg = make_msg(buffers=[b"\x00\x01binary\xff", memoryview(b"second buffer")])
    idents = [b"client-a", b"\x00\x80\xffrouting"]
    frames = wire.serialize(msg, signer, idents)
    assert frames[:2] == idents
    assert frames[2] == DELIMITER
    got_idents, got = wire.deserialize(frames, signer, ReplayGuard())
    assert got_idents == idents
    for part in ("header", "parent_header", "metadata", "content"):
        assert got[part] == msg[part]
    assert got["msg_id"] == msg["header"]["msg_id"]
    assert got["msg_type"] == "execute_request"
    assert [bytes(b) for b in got["buffers"]] == [b"\x00\x01binary\xff", b"second buffer"]


def test_signature_is_hex_hmac_of_the_four_json_frames() -> None:
    frames = wire.serialize(make_msg(), Signer(KEY))
    expected = hmac.new(KEY, digestmod=hashlib.sha256)
    for part in frames[2:6]:
        expected.update(part)
    assert frames[1] == expected.hexdigest().encode()


def test_frames_interoperate_with_jupyter_client_session() -> None:
    from jupyter_client.session import Session as JCSession

    jc = JCSession(key=KEY, signature_scheme="hmac-sha256")
    jc_msg = jc.msg("kernel_info_request", content={"x": 1})
    frames = jc.serialize(jc_msg, ident=[b"id"])
    idents, msg = wire.deserialize(frames, Signer(KEY))
    assert idents == [b"id"]
    assert msg["content"] == {"x": 1}
    assert msg["msg_id"] == jc_msg["header"]["msg_id"]
    # and the other way round
    ours = wire.serialize(make_msg(), Signer(KEY), [b"id"])
    jc_idents, rest = jc.feed_identities(ours, copy=True)
    back = jc.deserialize(rest, content=True)
    assert back["content"] == make_msg()["content"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    content=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    idents=st.lists(st.binary(min_size=1, max_size=16).filter(lambda b: b != DELIMITER), max_size=3),
    buffers=st.lists(st.binary(max_size=64), max_size=3),
    key=st.binary(max_size=32),
)
@pytest.mark.slow
def test_round_trip_property(content: dict, idents: list[bytes], buffers: list[bytes], key: bytes) -> None:
    signer = Signer(key)
    msg = make_msg(content=content, buffers=buffers)
    got_idents, got = wire.deserialize(wire.serialize(msg, signer, idents), signer, ReplayGuard())
    assert got_idents == idents
    assert got["content"] == content
    assert [bytes(b) for b in got["buffers"]] == buffers


# ---- signature schemes ------------------------------------------------------------------------


@pytest.mark.parametrize("digest", ["sha256", "sha512", "sha384", "sha224", "md5", "sha1", "blake2b", "blake2s", "sha3_256"])
def test_every_hashlib_scheme_signs_and_verifies(digest: str) -> None:
    signer = Signer(KEY, f"hmac-{digest}")
    frames = wire.serialize(make_msg(), signer)
    expected = hmac.new(KEY, digestmod=digest)
    for part in frames[2:6]:
        expected.update(part)
    assert frames[1] == expected.hexdigest().encode()
    wire.deserialize(frames, signer)
    other = Signer(KEY, "hmac-sha256" if digest != "sha256" else "hmac-sha512")
    with pytest.raises(WireError):
        wire.deserialize(frames, other)


@pytest.mark.parametrize("scheme", ["hmac-nosuchhash", "sha256", "hmac-", "", "HMAC_SHA256"])
def test_unknown_scheme_raises_value_error(scheme: str) -> None:
    with pytest.raises(ValueError):
        Signer(KEY, scheme)


def test_empty_key_means_unsigned() -> None:
    signer = Signer(b"")
    assert not signer.enabled
    frames = wire.serialize(make_msg(), signer)
    assert frames[1] == b""
    _, msg = wire.deserialize(frames, signer)
    assert msg["msg_type"] == "execute_request"
    assert Signer("").sign([b"x"]) == b""


def test_str_key_equals_bytes_key() -> None:
    assert Signer("abc").sign([b"x"]) == Signer(b"abc").sign([b"x"])


# ---- rejected input ---------------------------------------------------------------------------


def signed_frames(key: bytes = KEY) -> list[bytes]:
    return [bytes(f) for f in wire.serialize(make_msg(), Signer(key), [b"ident"])]


def test_wrong_signature_raises() -> None:
    frames = signed_frames()
    frames[2] = b"0" * len(frames[2])
    with pytest.raises(WireError, match="signature"):
        wire.deserialize(frames, Signer(KEY))


def test_signature_from_another_key_raises() -> None:
    with pytest.raises(WireError, match="signature"):
        wire.deserialize(signed_frames(b"other key"), Signer(KEY))


def test_tampered_content_raises() -> None:
    frames = signed_frames()
    frames[6] = frames[6].replace(b"print", b"evil!")
    with pytest.raises(WireError, match="signature"):
        wire.deserialize(frames, Signer(KEY))


def test_unsigned_message_when_key_is_set_raises() -> None:
    frames = signed_frames(b"")
    assert frames[2] == b""
    with pytest.raises(WireError, match="unsigned"):
        wire.deserialize(frames, Signer(KEY))


def test_replayed_signature_raises() -> None:
    guard = ReplayGuard()
    frames = signed_frames()
    wire.deserialize(frames, Signer(KEY), guard)
    with pytest.raises(WireError, match="replay"):
        wire.deserialize(frames, Signer(KEY), guard)
    assert len(guard) == 1


def test_forged_messages_do_not_enter_the_replay_guard() -> None:
    guard = ReplayGuard()
    frames = signed_frames()
    frames[2] = b"f" * 64
    for _ in range(3):
        with pytest.raises(WireError):
            wire.deserialize(frames, Signer(KEY), guard)
    assert len(guard) == 0


def test_replay_guard_is_bounded_and_forgets_oldest_first() -> None:
    guard = ReplayGuard(capacity=3)
    for sig in (b"a", b"b", b"c", b"d"):
        guard.check(sig)
    assert len(guard) == 3
    guard.check(b"a")  # forgotten: accepted again
    with pytest.raises(WireError):
        guard.check(b"d")
    for i in range(1000):
        guard.check(str(i).encode())
    assert len(guard) == 3


@pytest.mark.parametrize("keep", range(0, 5))
def test_truncated_frames_raise(keep: int) -> None:
    frames = signed_frames()
    cut = frames[: 2 + keep]  # identity, delimiter, then only `keep` of the 5 required frames
    with pytest.raises(WireError):
        wire.deserialize(cut, Signer(KEY))


def test_missing_delimiter_raises() -> None:
    frames = signed_frames()
    frames.remove(DELIMITER)
    with pytest.raises(WireError, match="delimiter"):
        wire.deserialize(frames, Signer(KEY))


def _resigned(parts: list[bytes], key: bytes = KEY) -> list[bytes]:
    return [DELIMITER, Signer(key).sign(parts), *parts]


@pytest.mark.parametrize("index", range(4))
@pytest.mark.parametrize("bad", [b"{not json", b"\xff\xfe\x00", b"", b'{"a": NaN', b"[" * 100_000 + b"]" * 100_000])
def test_invalid_json_in_any_part_raises(index: int, bad: bytes) -> None:
    parts = [bytes(p) for p in signed_frames()[3:7]]
    parts[index] = bad
    with pytest.raises(WireError, match="JSON|nested too deeply"):
        wire.deserialize(_resigned(parts), Signer(KEY))


@pytest.mark.parametrize("index", range(4))
@pytest.mark.parametrize("bad", [b"[]", b"42", b'"text"', b"null", b"true"])
def test_json_that_is_not_an_object_raises(index: int, bad: bytes) -> None:
    parts = [bytes(p) for p in signed_frames()[3:7]]
    parts[index] = bad
    if bad == b"null" and index in (1, 2):  # a null parent_header or metadata reads as {} (as jupyter_client)
        _, msg = wire.deserialize(_resigned(parts), Signer(KEY))
        assert msg[("parent_header", "metadata")[index - 1]] == {}
        return
    with pytest.raises(WireError, match="object"):
        wire.deserialize(_resigned(parts), Signer(KEY))


@pytest.mark.parametrize("header", [{}, {"msg_id": "x"}, {"msg_type": "x"}, {"msg_id": 1, "msg_type": "x"}])
def test_header_without_string_msg_id_and_type_raises(header: dict) -> None:
    parts = [json.dumps(header).encode(), b"{}", b"{}", b"{}"]
    with pytest.raises(WireError):
        wire.deserialize(_resigned(parts), Signer(KEY))


def test_wire_error_is_a_value_error() -> None:
    assert issubclass(WireError, ValueError)


def test_unserializable_content_raises_wire_error() -> None:
    with pytest.raises(WireError):
        wire.serialize(make_msg(content={"x": object()}), Signer(KEY))
    with pytest.raises(WireError):
        wire.serialize(make_msg(content={"x": float("nan")}), Signer(KEY))


# ---- headers ------------------------------------------------------------------------------------


def test_header_has_protocol_version_and_timezone_aware_iso_date() -> None:
    header = wire.new_header("status", "sess", "me")
    assert header["version"] == wire.PROTOCOL_VERSION == "5.5"
    assert header["msg_type"] == "status"
    assert header["session"] == "sess"
    assert header["username"] == "me"
    date = datetime.fromisoformat(header["date"])
    assert date.tzinfo is not None and date.utcoffset() is not None
    from jupyter_client.jsonutil import extract_dates

    assert extract_dates(header)["date"].tzinfo is not None
    assert header["msg_id"] != wire.new_header("status", "sess")["msg_id"]


# ---- connection files ---------------------------------------------------------------------------


def test_write_makes_0600_file_in_new_0700_folder(tmp_path) -> None:
    info = ConnectionInfo(shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5)
    path = tmp_path / "new" / "deeper" / "kernel-x.json"
    connection.write(info, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    data = json.loads(path.read_text())
    assert data["shell_port"] == 1 and data["key"] == info.key and data["signature_scheme"] == "hmac-sha256"
    assert [p.name for p in path.parent.iterdir()] == ["kernel-x.json"]  # no temp file left
    again = connection.load(path)
    assert again.to_dict() == info.to_dict()


def test_write_replaces_an_existing_file_keeping_0600(tmp_path) -> None:
    path = tmp_path / "k.json"
    path.write_text("{}")
    os.chmod(path, 0o644)
    connection.write(ConnectionInfo(), path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_load_keeps_unknown_fields_and_reads_jupyter_client_files(tmp_path) -> None:
    from jupyter_client.connect import write_connection_file

    fname, cfg = write_connection_file(str(tmp_path / "jc.json"), key=b"k3y", kernel_name="echo")
    info = connection.load(fname)
    assert info.key == "k3y"
    assert info.shell_port == cfg["shell_port"]
    assert info.address("shell") == f"tcp://127.0.0.1:{cfg['shell_port']}"


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "does not exist"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"transport": "udp"}', "transport"),
        ('{"shell_port": "80"}', "shell_port"),
        ('{"stdin_port": "abc"}', "stdin_port"),
        ('{"control_port": true}', "control_port"),
        ('{"iopub_port": -1}', "iopub_port"),
        ('{"hb_port": 70000}', "hb_port"),
        ('{"key": 5}', "key"),
    ],
)
def test_load_errors_are_clear(tmp_path, text: str | None, message: str) -> None:
    path = tmp_path / "conn.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConnectionFileError, match=message) as info:
        connection.load(path)
    assert str(path) in str(info.value)


def test_load_unreadable_file(tmp_path) -> None:
    with pytest.raises(ConnectionFileError, match="cannot read"):
        connection.load(tmp_path)  # a folder


def test_ipc_and_ipv6_addresses() -> None:
    assert ConnectionInfo(transport="ipc", ip="/tmp/kk", shell_port=3).address("shell") == "ipc:///tmp/kk-3"
    assert ConnectionInfo(ip="::1", hb_port=9).address("hb") == "tcp://[::1]:9"


@pytest.mark.parametrize("text", ["lone \ud800 high", "escaped \udcff byte", "mixed é \ud83d ✓"])
def test_lone_surrogates_go_out_as_valid_utf8_and_come_back(text: str) -> None:
    signer = Signer(KEY)
    frames = wire.serialize(make_msg(content={"text": text}), signer)
    for part in frames[2:6]:
        bytes(part).decode("utf-8")  # strict: the wire carries valid UTF-8 only
    _, msg = wire.deserialize(frames, signer)
    assert msg["content"]["text"] == text


def test_normal_text_stays_compact_utf8() -> None:
    assert wire.pack({"t": "é✓"}) == '{"t":"é✓"}'.encode()


# ---- the JSON fast paths agree with the json module -------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _JSON, max_size=6))
def test_pack_and_unpack_agree_with_the_json_module(obj: dict) -> None:
    packed = wire.pack(obj)
    reference = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        assert packed == reference.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: the ASCII form (see above)
        assert packed == json.dumps(obj, allow_nan=False, separators=(",", ":")).encode("ascii")
    assert wire.unpack(packed) == json.loads(packed)


def test_pack_uses_the_default_for_common_non_json_types() -> None:
    packed = wire.pack({"when": datetime(2026, 1, 2, 3, 4, 5), "raw": b"\x00\xff", "pair": (1, 2)})
    assert json.loads(packed) == {"when": "2026-01-02T03:04:05", "raw": "AP8=", "pair": [1, 2]}


def test_pack_of_a_circular_structure_raises_wire_error() -> None:
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(WireError, match="not JSON serializable"):
        wire.pack({"content": loop})
    assert wire.pack({"after": [1]}) == b'{"after":[1]}'  # the encoder is not left in a bad state


@pytest.mark.parametrize(
    "data",
    [b' {"a": 1} ', b'\n{"a":1}', '{"a":"é"}'.encode("utf-16"), '{"a":1}'.encode("utf-8-sig")],
    ids=["spaces", "newline", "utf-16", "utf-8-bom"],
)
def test_unpack_reads_what_json_loads_reads(data: bytes) -> None:
    assert wire.unpack(data) == json.loads(data)
    assert wire.unpack(memoryview(data)) == json.loads(data)


@pytest.mark.parametrize("data", [b'{"a":1}x', b'{"a":1}{}', b'{"a":', b"\xff{}", b"", b"   "])
def test_unpack_rejects_what_json_loads_rejects(data: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(data)
    with pytest.raises(WireError, match="not valid JSON"):
        wire.unpack(data)


def test_pack_without_the_c_encoder_gives_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    obj = {"t": "é✓", "n": [1, 2.5, None, True], "d": {"k": "v"}}
    fast = wire.pack(obj)
    monkeypatch.setattr(wire, "_C_ENCODE", None)  # a Python whose json has no (or another) C encoder
    assert wire.pack(obj) == fast
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(WireError):
        wire.pack(loop)
