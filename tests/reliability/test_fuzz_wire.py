"""Fuzzing the pure wire layer with hypothesis: valid messages round-trip, anything else is a WireError.

Also: the HMAC check is constant-time (``hmac.compare_digest``), and the replay guard behaves
exactly like a bounded "last N signatures" set, in constant memory.
"""

from __future__ import annotations

import collections
import hmac
import tracemalloc

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jupyter_client.session import Session as JupyterSession

from kernelkit.protocol import wire
from kernelkit.protocol.wire import DELIMITER, ReplayGuard, Signer, WireError

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Valid JSON text: any code point except lone surrogates (which UTF-8 cannot carry).
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False) | text
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12)
json_objects = st.dictionaries(text, json_values, max_size=5)
keys = st.sampled_from([b"", b"k", b"a-much-longer-secret-key-" * 4]) | st.binary(min_size=1, max_size=64)
schemes = st.sampled_from(["hmac-sha256", "hmac-sha512", "hmac-sha1", "hmac-md5"])
identities = st.lists(st.binary(min_size=1, max_size=16).filter(lambda b: b != DELIMITER), max_size=3)


@st.composite
def messages(draw):
    header = draw(json_objects)
    header.update(msg_id=draw(text), msg_type=draw(text))
    return {
        "header": header,
        "parent_header": draw(json_objects),
        "metadata": draw(json_objects),
        "content": draw(json_objects),
        "buffers": draw(st.lists(st.binary(max_size=64), max_size=3)),
    }


@SETTINGS
@given(msg=messages(), key=keys, scheme=schemes, idents=identities)
@pytest.mark.slow
def test_every_valid_message_round_trips(msg, key, scheme, idents) -> None:
    signer = Signer(key, scheme)
    frames = wire.serialize(msg, signer, idents)
    got_idents, got = wire.deserialize(frames, signer, ReplayGuard(8))
    assert got_idents == idents
    for part in ("header", "parent_header", "metadata", "content"):
        assert got[part] == msg[part]
    assert [bytes(b) for b in got["buffers"]] == msg["buffers"]
    assert got["msg_type"] == msg["header"]["msg_type"]


@SETTINGS
@given(msg=messages(), key=st.binary(min_size=1, max_size=32), idents=identities)
@pytest.mark.slow
def test_jupyter_client_accepts_what_kernelkit_signs_and_vice_versa(msg, key, idents) -> None:
    """Interop with the reference implementation, both directions.

    The header carries a protocol 5 ``version``, as every header kernelkit writes does. Without one,
    jupyter_client treats the message as protocol 4 and adapts it by looking its ``msg_type`` up as
    an attribute of its adapter, which raises TypeError for a type such as ``__dict__``.
    """
    msg["header"]["version"] = "5.4"
    reference = JupyterSession(key=key, signature_scheme="hmac-sha256")
    frames = [bytes(f) for f in wire.serialize(msg, Signer(key), idents)]
    got_idents, rest = reference.feed_identities(frames)
    parsed = reference.deserialize(rest)
    assert got_idents == idents and parsed["content"] == msg["content"] and parsed["header"]["msg_id"] == msg["header"]["msg_id"]
    theirs = reference.serialize(reference.msg("execute_request", msg["content"]), idents)
    _, ours = wire.deserialize(theirs, Signer(key))
    assert ours["content"] == msg["content"]


frame_soup = st.lists(st.binary(max_size=80) | st.just(DELIMITER) | st.sampled_from([b"{}", b"[]", b"null", b'{"msg_id":"a","msg_type":"b"}']), max_size=12)


@settings(max_examples=2000, deadline=None)
@given(frames=frame_soup, key=st.sampled_from([b"", b"secret"]))
@pytest.mark.slow
def test_byte_soup_raises_only_wire_error(frames, key) -> None:
    try:
        idents, msg = wire.deserialize(frames, Signer(key), ReplayGuard(4))
    except WireError:
        return
    # Whatever got through is a well-formed message (possible only when the key is empty).
    assert not key
    assert isinstance(msg["header"]["msg_id"], str) and isinstance(msg["content"], dict)


@SETTINGS
@given(msg=messages(), frame=st.integers(0, 4), data=st.data())
@pytest.mark.slow
def test_any_change_to_a_signed_part_is_rejected(msg, frame, data) -> None:
    signer = Signer(b"secret")
    frames = [bytes(f) for f in wire.serialize(msg, signer)]
    index = 1 + frame  # signature, header, parent_header, metadata, content
    original = frames[index]
    mutated = data.draw(st.binary(max_size=len(original) + 8))
    assume(mutated != original)
    frames[index] = mutated
    with pytest.raises(WireError):
        wire.deserialize(frames, signer)


@SETTINGS
@given(msg=messages(), cut=st.integers(0, 4))
@pytest.mark.slow
def test_truncated_signed_messages_are_rejected(msg, cut) -> None:
    signer = Signer(b"secret")
    frames = wire.serialize({**msg, "buffers": []}, signer)
    with pytest.raises(WireError):
        wire.deserialize(frames[: 1 + cut], signer)


def test_unsigned_and_wrongly_signed_messages_are_rejected_before_any_parsing() -> None:
    signer = Signer(b"secret")
    not_json = [DELIMITER, b"", b"not json", b"{}", b"{}", b"{}"]
    with pytest.raises(WireError, match="unsigned"):
        wire.deserialize(not_json, signer)
    with pytest.raises(WireError, match="invalid signature"):
        wire.deserialize([DELIMITER, b"0" * 64, *not_json[2:]], signer)


def test_signature_check_is_constant_time_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Signer.verify`` must compare with ``hmac.compare_digest``, never ``==`` (no timing by measurement)."""
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(wire.hmac, "compare_digest", spy)
    signer = Signer(b"secret")
    parts = [b"{}", b"{}", b"{}", b"{}"]
    good = signer.sign(parts)
    assert signer.verify(good, parts) is True
    assert signer.verify(b"0" * len(good), parts) is False
    assert signer.verify(b"short", parts) is False
    assert len(calls) == 3 and all(good in call for call in calls)
    # compare_digest alone decides: were the signature also compared with ==, an inverted
    # compare_digest would not invert every verdict.
    monkeypatch.setattr(wire.hmac, "compare_digest", lambda a, b: not real(a, b))
    assert signer.verify(good, parts) is False
    assert signer.verify(b"0" * len(good), parts) is True
    assert signer.verify(b"short", parts) is True


@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(1, 40), stream=st.lists(st.integers(0, 80), max_size=400))
def test_replay_guard_remembers_exactly_the_last_capacity_signatures(capacity, stream) -> None:
    guard, model = ReplayGuard(capacity), collections.deque()
    for n in stream:
        signature = b"%064x" % n
        replayed = signature in model
        if replayed:
            with pytest.raises(WireError, match="replayed"):
                guard.check(signature)
        else:
            guard.check(signature)
            model.append(signature)
            if len(model) > capacity:
                model.popleft()
        assert len(guard) == len(model)
        assert all(s in guard for s in model)


def test_replay_guard_memory_is_constant() -> None:
    guard = ReplayGuard()  # jupyter_client's digest_history_size: 65,536
    tracemalloc.start()
    try:
        for n in range(1_000):
            guard.check(b"%064x" % n)
        after_1k = tracemalloc.get_traced_memory()[0]
        for n in range(1_000, 100_000):
            guard.check(b"%064x" % n)
        after_100k = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(guard) == 65_536
    assert after_100k - after_1k < 64 * 1024, (after_1k, after_100k)
    with pytest.raises(WireError):
        guard.check(b"%064x" % 99_999)
