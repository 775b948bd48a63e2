"""The Jupyter wire format as pure functions on bytes: no sockets, no threads, no globals.

A message on any channel is the multipart frame list

    [identity..., b"<IDS|MSG>", signature, header, parent_header, metadata, content, buffer...]

where ``signature`` is the hex HMAC of the four JSON frames (empty when the key is empty).
Everything here raises :class:`WireError` for input that is not a valid message, so callers
(and fuzzers) have exactly one exception type to handle.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

DELIMITER = b"<IDS|MSG>"
PROTOCOL_VERSION = "5.5"

#: A frame as pyzmq hands it over: bytes, or a buffer (``zmq.Frame.buffer``, memoryview).
Frame = bytes | bytearray | memoryview
Message = dict[str, Any]


class WireError(ValueError):
    """The frames do not form a valid, authentic Jupyter message."""


class Signer:
    """Signs and verifies messages with one key and ``hmac-<hashlib name>`` scheme.

    The keyed HMAC state is built once and copied per message, which is cheaper than
    re-keying for every message.
    """

    def __init__(self, key: bytes | str, scheme: str = "hmac-sha256") -> None:
        self.key = key.encode() if isinstance(key, str) else bytes(key)
        self.scheme = scheme
        if not scheme.startswith("hmac-"):
            raise ValueError(f"signature_scheme {scheme!r} is not supported: use 'hmac-<hash>', e.g. 'hmac-sha256'")
        digest = scheme[len("hmac-") :]
        try:
            # An empty name ("hmac-") makes hmac raise TypeError, not ValueError.
            keyed = hmac.new(self.key, digestmod=digest or None)  # type: ignore[arg-type]
        except (ValueError, TypeError):
            raise ValueError(
                f"signature_scheme {scheme!r} names no hash known to hashlib: use e.g. 'hmac-sha256'"
            ) from None
        # The OpenSSL-backed state inside hmac.HMAC when there is one (CPython's ``_hmac``): the
        # same copy/update/hexdigest, without a Python-level wrapper call per frame.
        self._keyed: Any = getattr(keyed, "_hmac", None) or keyed

    @property
    def enabled(self) -> bool:
        """An empty key means messages are neither signed nor checked."""
        return bool(self.key)

    def sign(self, parts: Iterable[Frame]) -> bytes:
        if not self.key:
            return b""
        mac = self._keyed.copy()
        for part in parts:
            mac.update(part)
        return mac.hexdigest().encode("ascii")

    def verify(self, signature: Frame, parts: Iterable[Frame]) -> bool:
        """Constant-time check of ``signature`` against the parts."""
        if not self.key:
            return True
        return hmac.compare_digest(bytes(signature), self.sign(parts))


class ReplayGuard:
    """Remembers the signatures of the last ``capacity`` messages so a captured message cannot be sent again.

    Bounded in memory, and constant: it allocates everything at construction (about 24 bytes
    per entry, 1.5 MB for the default 65,536, jupyter_client's ``digest_history_size``), so a
    kernel's memory does not creep up over its first 65,536 messages as a set of signatures
    would (about 12 MB). Each signature is kept as a 64-bit hash in an open-addressing table
    (linear probing, at most half full, backward-shift deletion) plus a ring buffer giving
    the oldest entry to forget. Two distinct authentic messages share a 64-bit hash with
    probability about ``capacity / 2**64`` per message, so a legitimate message is never
    mistaken for a replay in practice.
    """

    def __init__(self, capacity: int = 1 << 16) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        size = 1 << max(4, (2 * capacity - 1).bit_length())  # a power of two, >= 2 * capacity
        self._mask = size - 1
        self._table = array("Q", bytes(8 * size))  # 0 marks an empty slot
        self._ring = array("Q", bytes(8 * capacity))  # keys in arrival order
        self._next = 0
        self._count = 0

    @staticmethod
    def _key(signature: bytes) -> int:
        key = int.from_bytes(hashlib.blake2b(signature, digest_size=8).digest(), "little")
        return key or 1

    def check(self, signature: bytes) -> None:
        """Record ``signature``; raise :class:`WireError` if it was seen before."""
        key = self._key(bytes(signature))
        table, mask = self._table, self._mask
        slot = key & mask
        while table[slot]:
            if table[slot] == key:
                raise WireError("replayed message: its signature was already used")
            slot = (slot + 1) & mask
        if self._count == self.capacity:
            self._forget(self._ring[self._next])
            slot = key & mask  # forgetting may have moved entries: probe again
            while table[slot]:
                slot = (slot + 1) & mask
        else:
            self._count += 1
        table[slot] = key
        self._ring[self._next] = key
        self._next = (self._next + 1) % self.capacity

    def _forget(self, key: int) -> None:
        """Remove ``key`` and shift later entries of its probe run back, so no run is broken."""
        table, mask = self._table, self._mask
        hole = key & mask
        while table[hole] != key:
            hole = (hole + 1) & mask
        probe = hole
        while True:
            probe = (probe + 1) & mask
            moved = table[probe]
            if not moved:
                break
            home = moved & mask
            # ``moved`` may fill the hole unless its home slot lies cyclically in (hole, probe].
            if (probe - home) & mask >= (probe - hole) & mask:
                table[hole] = moved
                hole = probe
        table[hole] = 0

    def __contains__(self, signature: bytes) -> bool:
        key = self._key(bytes(signature))
        slot = key & self._mask
        while self._table[slot]:
            if self._table[slot] == key:
                return True
            slot = (slot + 1) & self._mask
        return False

    def __len__(self) -> int:
        return self._count


def utc_now() -> str:
    """ISO 8601 timestamp with timezone, as the protocol's header ``date`` requires."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat()


class UTCClock:
    """``utc_now()`` at a third of the cost: the date and time to the second are formatted
    once per second, only the microseconds per call. Kernels stamp every message they send."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second, self._prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1_000_000):06d}+00:00"


def new_msg_id() -> str:
    """A random (version 4) UUID in hex, as ``uuid.uuid4().hex``, without importing uuid.

    ``uuid`` imports ``platform`` and runs ``uname`` at import: too slow for a kernel's start-up.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def new_header(
    msg_type: str,
    session: str,
    username: str = "kernel",
    msg_id: str | None = None,
    date: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    header = {
        "msg_id": msg_id or new_msg_id(),
        "msg_type": msg_type,
        "username": username,
        "session": session,
        "date": date or utc_now(),
        "version": PROTOCOL_VERSION,
    }
    header.update(extra)
    return header


def _json_default(obj: Any) -> Any:
    """JSON for the few non-JSON types kernels commonly put in messages."""
    from datetime import date, datetime  # only for a value JSON cannot carry

    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        import base64

        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


# Built once: json.dumps with options would build an identical encoder for every part.
_encode_utf8 = json.JSONEncoder(
    default=_json_default, ensure_ascii=False, allow_nan=False, separators=(",", ":")
).encode
_encode_ascii = json.JSONEncoder(
    default=_json_default, ensure_ascii=True, allow_nan=False, separators=(",", ":")
).encode


def _c_encoder() -> Any:
    """``_encode_utf8`` straight on the C encoder ``JSONEncoder.encode`` builds for every call
    (a third of the time per part; every message has four). None when this Python's json has
    no C encoder or its private signature differs: then ``_encode_utf8`` is used.

    Without circular-reference markers (shared markers would outlive a failed call): a
    circular structure ends in RecursionError instead, which :func:`pack` reports the same.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        encoder = make(None, _json_default, json.encoder.encode_basestring, None, ":", ",", False, False, False)
        sample = {"a": [1, 2.5, None, True, "\u00e9\n"], "b": {}}
        if "".join(encoder(sample, 0)) != _encode_utf8(sample):
            return None
    except Exception:  # a future Python's private API: fall back, never fail
        return None
    return encoder


_C_ENCODE = _c_encoder()
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # the C scanner json.loads runs


def pack(obj: Any) -> bytes:
    """Encode one message part as UTF-8 JSON (NaN and infinities are not valid JSON).

    Text with lone surrogates (``print("\\ud800")``, undecodable file names) cannot be UTF-8:
    it is sent as ASCII JSON with ``\\uXXXX`` escapes instead, which is valid on the wire and
    decodes back to the same string, rather than failing the send or emitting invalid UTF-8.
    """
    if not obj and type(obj) is dict:  # empty metadata and content: most messages have one
        return b"{}"
    try:
        text = "".join(_C_ENCODE(obj, 0)) if _C_ENCODE is not None else _encode_utf8(obj)
    except (TypeError, ValueError, RecursionError) as exc:
        raise WireError(f"message part is not JSON serializable: {exc}") from exc
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _encode_ascii(obj).encode("ascii")


def unpack(data: Frame, allow_null: bool = False) -> dict[str, Any]:
    """Decode one JSON part, which must be an object (or ``null``, read as ``{}``, with ``allow_null``)."""
    try:
        try:
            # The common case, UTF-8 JSON with nothing around it, straight on the C scanner;
            # anything else (whitespace, other encodings, errors) as json.loads reads and reports it.
            text = str(data, "utf-8")
            obj, end = _scan(text, 0)
            if end != len(text):
                raise ValueError
        except (StopIteration, ValueError):  # UnicodeDecodeError is a ValueError
            obj = json.loads(bytes(data))
    except ValueError as exc:  # json.loads's: the fast path's own are caught above
        raise WireError(f"message part is not valid JSON: {exc}") from exc
    except RecursionError:  # ``[[[[...`` thousands deep: the decoder recurses
        raise WireError("message part is nested too deeply to decode") from None
    if obj is None and allow_null:
        return {}
    if not isinstance(obj, dict):
        raise WireError(f"message part is a JSON {type(obj).__name__}, not an object")
    return obj


def split_identities(frames: Sequence[Frame]) -> tuple[list[bytes], Sequence[Frame]]:
    """Split routing identities from the message proper at the delimiter frame."""
    for index, frame in enumerate(frames):
        if frame == DELIMITER:
            return [bytes(f) for f in frames[:index]], frames[index + 1 :]
    raise WireError("no <IDS|MSG> delimiter frame")


def serialize(
    msg: Message, signer: Signer, idents: Sequence[bytes] = (), packed_parent: bytes | None = None
) -> list[Frame]:
    """Frames for ``msg`` (a dict with header, parent_header, metadata, content, buffers).

    ``packed_parent``: the parent header already encoded, since a request's replies and
    outputs all carry the same one.
    """
    parts = [
        pack(msg["header"]),
        packed_parent if packed_parent is not None else pack(msg.get("parent_header") or {}),
        pack(msg.get("metadata") or {}),
        pack(msg.get("content") or {}),
    ]
    return [*idents, DELIMITER, signer.sign(parts), *parts, *msg.get("buffers", ())]


def deserialize(
    frames: Sequence[Frame], signer: Signer, replay: ReplayGuard | None = None
) -> tuple[list[bytes], Message]:
    """Parse and authenticate ``frames``; returns ``(identities, message)``.

    The signature is checked before anything is decoded, and only an authentic signature
    enters the replay guard, so forged traffic cannot evict real entries from it early.
    """
    idents, rest = split_identities(frames)
    if len(rest) < 5:
        raise WireError(f"truncated message: {len(rest)} frames after the delimiter, at least 5 needed")
    signature, parts, buffers = bytes(rest[0]), rest[1:5], rest[5:]
    if signer.enabled:
        if not signature:
            raise WireError("unsigned message (this kernel requires signatures)")
        if not signer.verify(signature, parts):
            raise WireError("invalid signature")
        if replay is not None:
            replay.check(signature)
    header = unpack(parts[0])
    for field in ("msg_id", "msg_type"):
        if not isinstance(header.get(field), str):
            raise WireError(f"header has no string {field!r}")
    msg: Message = {
        "header": header,
        "msg_id": header["msg_id"],
        "msg_type": header["msg_type"],
        # null parent_header/metadata: jupyter_client accepts them (xeus-python sends a null parent)
        "parent_header": unpack(parts[1], allow_null=True),
        "metadata": unpack(parts[2], allow_null=True),
        "content": unpack(parts[3]),
        "buffers": [memoryview(b) for b in buffers],
    }
    return idents, msg


def new_key() -> str:
    """A fresh random HMAC key for a connection file."""
    return os.urandom(32).hex()
