"""How the index packs values into bytes and back, exactly (no pickle: an index in a shared directory must
not be able to run code): float64 and int64 arrays for numbers, JSON for everything else.

A column holds one value per row; a row without one is MISSING. Column encodings: `d`/`q` float64/int64,
`j` JSON, `t` small int tuples (file signatures), `c` opaque bytes per row (a run's epochs, packed by
`pack_series` into one chunk per run so that a shard can be rewritten without decoding them).
"""

from __future__ import annotations

import json
from array import array
from typing import Any


class _Missing:
    """A key a record or run does not have (None is a value: `root: null`)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _json(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


def _presence(values: list[Any]) -> bytes:
    """One byte per row: 1 where the row has a value."""
    return bytes([v is not MISSING for v in values])


def _present_rows(flags: bytes) -> list[int] | None:
    """The rows with a value; None when every row has one."""
    if flags.count(1) == len(flags):
        return None
    return [i for i, flag in enumerate(flags) if flag]


def _spread(found: list[Any], where: list[int] | None, rows: int) -> list[Any]:
    if where is None:
        if len(found) != rows:
            raise ValueError("column length")
        return found
    if len(found) != len(where):
        raise ValueError("column length")
    column: list[Any] = [MISSING] * rows
    for i, value in zip(where, found):
        column[i] = value
    return column


def encode_column(values: list[Any]) -> tuple[str, bytes]:
    """Presence flags, then the present values as float64 (`d`) when all are floats, int64 (`q`) when all
    are ints that fit, else as one JSON list (`j`)."""
    present = [v for v in values if v is not MISSING]
    kinds = set(map(type, present))
    payload = None
    if kinds <= {float}:
        kind, payload = "d", array("d", present).tobytes()
    elif kinds == {int}:
        kind, payload = "q", _ints(present)
    if payload is None:
        kind, payload = "j", _json(present)
    return kind, _presence(values) + payload


def decode_column(kind: str, blob: bytes, rows: int) -> list[Any]:
    where = _present_rows(blob[:rows])
    if kind in "dq":
        present = array(kind)
        present.frombytes(blob[rows:])
        return _spread(present.tolist(), where, rows)
    return _spread(json.loads(blob[rows:]), where, rows)


def encode_tuples(values: list[Any]) -> bytes:
    present = [v for v in values if v is not MISSING]
    return (_presence(values) + array("B", map(len, present)).tobytes()
            + array("q", [i for v in present for i in v]).tobytes())


def decode_tuples(blob: bytes, rows: int) -> list[Any]:
    where = _present_rows(blob[:rows])
    count = rows if where is None else len(where)
    lengths = array("B")
    lengths.frombytes(blob[rows: rows + count])
    ints = array("q")
    ints.frombytes(blob[rows + count:])
    flat = ints.tolist()
    if sum(lengths) != len(flat):
        raise ValueError("tuple lengths")
    if set(lengths) == {4}:  # file signatures, directory states
        found: list[Any] = list(zip(flat[0::4], flat[1::4], flat[2::4], flat[3::4]))
    else:
        found, at = [], 0
        for length in lengths:
            found.append(tuple(flat[at: at + length]))
            at += length
    return _spread(found, where, rows)


def encode_chunks(chunks: list[bytes]) -> bytes:
    return array("I", map(len, chunks)).tobytes() + b"".join(chunks)


def decode_chunks(blob: bytes, rows: int) -> list[Any]:
    lengths = array("I")
    lengths.frombytes(blob[: 4 * rows])
    view, chunks, at = memoryview(blob), [], 4 * rows
    for length in lengths:
        chunks.append(bytes(view[at: at + length]) if length else MISSING)
        at += length
    if at != len(blob):
        raise ValueError("chunk lengths")
    return chunks


def decode(kind: str, blob: bytes, rows: int) -> list[Any]:
    if kind == "c":
        return decode_chunks(blob, rows)
    if kind == "t":
        return decode_tuples(blob, rows)
    if kind in ("d", "q", "j"):
        return decode_column(kind, blob, rows)
    raise ValueError(f"unknown column encoding {kind!r}")


def encode(name: str, values: list[Any]) -> tuple[str, bytes]:
    if name.endswith("~"):
        return "c", encode_chunks([b"" if v is MISSING else v for v in values])
    if name.endswith("@") or name == "@dir":
        return "t", encode_tuples(values)
    return encode_column(values)


def pack_series(series: dict[str, list[Any]], records: int) -> bytes | None:
    """A run's epochs as one chunk: a JSON header (record count; each key's encoding, offset and size), then
    each key's values: float64 (`d`), int64 (`q`), lists of int64 (`L`: their lengths, then the ints) or JSON
    (MISSING marked). None when JSON cannot hold some value exactly."""
    keys, payloads, at = [], [], 0
    for key, values in series.items():
        kinds = set(map(type, values))
        payload = None
        if kinds == {float}:
            kind, payload = "d", array("d", values).tobytes()
        elif kinds == {int}:
            kind, payload = "q", _ints(values)
        elif kinds == {list}:
            flat = [i for v in values for i in v]
            if set(map(type, flat)) <= {int} and (ints := _ints(flat)) is not None:
                kind, payload = "L", array("I", map(len, values)).tobytes() + ints
        if payload is None:
            kind = "j"
            missing = [i for i, v in enumerate(values) if v is MISSING]
            plain = [None if v is MISSING else v for v in values] if missing else values
            if not storable(plain):
                return None
            payload = _json({"v": plain, "m": missing} if missing else plain)
        keys.append([key, kind, at, len(payload)])
        payloads.append(payload)
        at += len(payload)
    return _json({"n": records, "k": keys}) + b"\n" + b"".join(payloads)


def _ints(values: list[int]) -> bytes | None:
    try:
        return array("q", values).tobytes()
    except OverflowError:
        return None


class SeriesChunk:
    """A run's epochs from its chunk, each key decoded when first asked for."""

    __slots__ = ("_at", "_data", "_decoded", "keys", "records")

    def __init__(self, data: bytes):
        end = data.index(b"\n")
        header = json.loads(data[:end])
        self._data, self._at = data, end + 1
        self.records: int = header["n"]
        self.keys: dict[str, tuple[str, int, int]] = {key: (kind, at, size) for key, kind, at, size in header["k"]}
        self._decoded: dict[str, list[Any]] = {}

    def values(self, key: str) -> list[Any]:
        """The key's value in each record (MISSING where a record has none); the same list on every call."""
        found = self._decoded.get(key)
        if found is None:
            found = self._decoded[key] = self._decode(key)
        return found

    def _decode(self, key: str) -> list[Any]:
        place = self.keys.get(key)
        if place is None:
            return [MISSING] * self.records
        kind, at, size = place
        payload = self._data[self._at + at: self._at + at + size]
        if len(payload) != size:
            raise ValueError("epochs chunk cut short")
        if kind in ("d", "q"):
            values = array(kind)
            values.frombytes(payload)
            return values.tolist()
        if kind == "L":
            lengths, ints = array("I"), array("q")
            lengths.frombytes(payload[: 4 * self.records])
            ints.frombytes(payload[4 * self.records:])
            flat, found, start = ints.tolist(), [], 0
            for length in lengths:
                found.append(flat[start: start + length])
                start += length
            return found
        decoded = json.loads(payload)
        if isinstance(decoded, dict):
            plain: list[Any] = decoded["v"]
            for i in decoded["m"]:
                plain[i] = MISSING
            return plain
        return decoded


_PLAIN = frozenset((str, int, float, bool, type(None)))
_CONTAINED = _PLAIN | {list, dict}  # what a storable list may hold


def storable(value: Any) -> bool:
    """Whether JSON (and float64/int64) gives this value back exactly: no dates, sets, tuples or non-text keys."""
    kind = type(value)
    if kind in _PLAIN:
        return True
    if kind is list:
        kinds = set(map(type, value))
        if kinds <= _PLAIN:
            return True
        return kinds <= _CONTAINED and all(map(storable, [item for item in value if type(item) is list or type(item) is dict]))
    if kind is dict:
        return all(type(key) is str for key in value) and all(map(storable, value.values()))
    return False
