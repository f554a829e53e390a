"""The typed messages between the grader and the process that runs a student's code.

The grader (trusted) and the sandboxed child (running the student's code, so hostile) talk over
pipes in frames: a 4-byte big-endian length, then a body. A body is one message: a byte for its
kind, then its fields as a value in a small tagged format of plain data (None, bools, ints,
floats, complex numbers, strings, bytes, NumPy arrays and scalars of numeric dtypes, lists,
tuples, sets, frozensets, dicts). Nothing is unpickled, so no object of the student's, and no
method of theirs, can reach the grader.

The decoder is iterative and budgeted: it refuses a frame longer than its limit, more nodes than
its budget, nesting deeper than its limit, and arrays whose shape and data disagree, with a
:class:`WireError` that says which. :func:`read_message` then checks that the message has the
fields its kind declares, with the right types. This file imports only the standard library and
NumPy, so that the child can load it by its path.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field, fields

import numpy as np

__all__ = [
    "MESSAGES",
    "CallDone",
    "CellDone",
    "CellsDone",
    "Finish",
    "Finished",
    "RunCall",
    "Started",
    "Unsupported",
    "WireError",
    "decode_message",
    "decode_value",
    "encode_message",
    "encode_value",
    "frame",
]

MAX_DEPTH = 32
MAX_NODES = 500_000
MAX_TEXT = 1 << 20  # characters in one string
MAX_BIGINT_DIGITS = 4000


class WireError(ValueError):
    """A frame or a message that does not follow the protocol."""


@dataclass(frozen=True)
class Unsupported:
    """A value the protocol does not carry: its type's name and a short repr."""

    type_name: str
    text: str

    def __repr__(self) -> str:
        return f"<{self.type_name} {self.text}>"


# -- messages ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    """child -> grader: set up; ``uid`` is who it runs as, ``dropped`` whether it left root."""

    uid: int
    dropped: bool


@dataclass(frozen=True)
class CellDone:
    """child -> grader: one answer cell ran; ``error`` is what it raised, or None."""

    name: str
    error: str | None


@dataclass(frozen=True)
class CellsDone:
    """child -> grader: all cells ran; evidence recorded so far."""

    denials: list = field(default_factory=list)
    attempts: list = field(default_factory=list)


@dataclass(frozen=True)
class RunCall:
    """grader -> child: run the call with this key (its arguments came with the job)."""

    key: str


@dataclass(frozen=True)
class CallDone:
    """child -> grader: what the call returned (``value``) or raised (``raised``: type, text),
    the arguments after the call, its seconds and the evidence recorded during it."""

    key: str
    value: object
    raised: tuple | None
    args_after: object
    kwargs_after: object
    seconds: float
    denials: list = field(default_factory=list)
    attempts: list = field(default_factory=list)


@dataclass(frozen=True)
class Finish:
    """grader -> child: no more calls; say goodbye."""


@dataclass(frozen=True)
class Finished:
    """child -> grader: the printed output it kept, how much there was, the last evidence."""

    output: str
    output_total: int
    denials: list = field(default_factory=list)
    attempts: list = field(default_factory=list)


MESSAGES: dict[int, type] = {
    1: Started,
    2: CellDone,
    3: CellsDone,
    4: RunCall,
    5: CallDone,
    6: Finish,
    7: Finished,
}
_KIND_OF = {cls: kind for kind, cls in MESSAGES.items()}

#: The type each field must have after decoding (``object``: any value).
_FIELD_TYPES: dict[type, dict[str, tuple]] = {
    Started: {"uid": (int,), "dropped": (bool,)},
    CellDone: {"name": (str,), "error": (str, type(None))},
    CellsDone: {"denials": (list,), "attempts": (list,)},
    RunCall: {"key": (str,)},
    CallDone: {
        "key": (str,),
        "value": (object,),
        "raised": (tuple, type(None)),
        "args_after": (object,),
        "kwargs_after": (object,),
        "seconds": (float,),
        "denials": (list,),
        "attempts": (list,),
    },
    Finish: {},
    Finished: {"output": (str,), "output_total": (int,), "denials": (list,), "attempts": (list,)},
}


# -- values ---------------------------------------------------------------------------------------

_CONTAINERS = {list: b"l", tuple: b"t", set: b"S", frozenset: b"Z"}
_BUILDERS = {b"l": list, b"t": tuple, b"S": set, b"Z": frozenset}
_NUMERIC_KINDS = "biufc"


def _numeric(dtype: np.dtype) -> bool:
    return dtype.kind in _NUMERIC_KINDS and dtype.fields is None and dtype.itemsize <= 16


def encode_value(value: object, *, max_depth: int = MAX_DEPTH) -> bytes:
    """``value`` in the tagged format; what it cannot carry becomes an :class:`Unsupported`.

    Only exact builtin types and NumPy arrays (their data copied) are kept, so a value cannot
    carry the student's methods (an ``__eq__`` that always says yes) to the judge.
    """
    out = bytearray()
    # an explicit stack instead of recursion: (value, depth)
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, _Raw):
            out += item.data
            continue
        _encode_one(item, depth, max_depth, out, stack)
    return bytes(out)


@dataclass(frozen=True)
class _Raw:
    data: bytes


def _text(tag: bytes, data: bytes) -> bytes:
    return tag + struct.pack("!I", len(data)) + data


def _unsupported(type_name: str, text: str) -> bytes:
    return b"u" + _text(b"", type_name[:200].encode()) + _text(b"", text[:200].encode())


def _encode_one(item: object, depth: int, max_depth: int, out: bytearray, stack: list) -> None:
    kind = type(item)
    if depth >= max_depth:
        out += _unsupported("nested too deep", "")
    elif item is None:
        out += b"N"
    elif kind is bool:
        out += b"T" if item else b"F"
    elif kind is int:
        if -(2**63) <= item < 2**63:  # type: ignore[operator]
            out += b"i" + struct.pack("!q", item)
        else:
            digits = str(item)
            if len(digits) > MAX_BIGINT_DIGITS:
                out += _unsupported("int", f"an int of {len(digits)} digits")
            else:
                out += _text(b"I", digits.encode())
    elif kind is float:
        out += b"f" + struct.pack("!d", item)
    elif kind is complex:
        out += b"c" + struct.pack("!dd", item.real, item.imag)  # type: ignore[union-attr]
    elif kind is str:
        out += _text(b"s", item[:MAX_TEXT].encode("utf-8", "surrogatepass"))  # type: ignore[index]
    elif kind is bytes:
        out += _text(b"b", item)  # type: ignore[arg-type]
    elif isinstance(item, np.ndarray):
        array = np.ascontiguousarray(np.asarray(item))
        if not _numeric(array.dtype):
            out += _unsupported("numpy.ndarray", f"of dtype {array.dtype}")
            return
        dtype = array.dtype.str.encode()
        out += b"a" + _text(b"", dtype) + struct.pack("!B", array.ndim)
        out += b"".join(struct.pack("!Q", int(n)) for n in array.shape)
        data = array.tobytes()
        out += struct.pack("!Q", len(data)) + data
    elif isinstance(item, np.generic):
        scalar = np.asarray(item)
        if not _numeric(scalar.dtype):
            out += _unsupported("numpy scalar", f"of dtype {scalar.dtype}")
            return
        out += b"g" + _text(b"", scalar.dtype.str.encode()) + _text(b"", scalar.tobytes())
    elif kind in _CONTAINERS:
        items = list(item)  # type: ignore[call-overload]
        out += _CONTAINERS[kind] + struct.pack("!I", len(items))
        stack.extend((x, depth + 1) for x in reversed(items))
    elif kind is dict:
        pairs = list(item.items())  # type: ignore[union-attr]
        out += b"d" + struct.pack("!I", len(pairs))
        for key, val in reversed(pairs):
            stack.append((val, depth + 1))
            stack.append((key, depth + 1))
    elif kind is Unsupported:
        out += _unsupported(item.type_name, item.text)  # type: ignore[union-attr]
    else:
        try:
            text = repr(item)[:200]
        except BaseException:
            text = "<repr failed>"
        out += _unsupported(f"{kind.__module__}.{kind.__qualname__}", text)


class _Reader:
    def __init__(self, data: bytes, max_nodes: int) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.nodes = 0
        self.max_nodes = max_nodes

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise WireError("the frame ends in the middle of a value")
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def text(self, limit: int = MAX_TEXT * 4) -> bytes:
        (size,) = self.unpack("!I")
        if size > limit:
            raise WireError(f"a string of {size} bytes is longer than allowed")
        return self.take(size)

    def count(self) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise WireError(f"more than {self.max_nodes} values in one message")


def _dtype(reader: _Reader) -> np.dtype:
    name = reader.text(64).decode("ascii", "replace")
    try:
        dtype = np.dtype(name)
    except TypeError as error:
        raise WireError(f"unknown dtype {name!r}") from error
    if not _numeric(dtype):
        raise WireError(f"dtype {name!r} is not a numeric dtype")
    return dtype


def _scalar(reader: _Reader, tag: bytes) -> object:
    """A value without children, or a _Open marker for a container."""
    if tag == b"N":
        return None
    if tag in (b"T", b"F"):
        return tag == b"T"
    if tag == b"i":
        return reader.unpack("!q")[0]
    if tag == b"I":
        digits = reader.text(MAX_BIGINT_DIGITS + 1).decode("ascii", "replace")
        try:
            return int(digits)
        except ValueError as error:
            raise WireError("a malformed big int") from error
    if tag == b"f":
        return reader.unpack("!d")[0]
    if tag == b"c":
        real, imag = reader.unpack("!dd")
        return complex(real, imag)
    if tag == b"s":
        return reader.text().decode("utf-8", "replace")
    if tag == b"b":
        return reader.text(len(reader.data))
    if tag == b"a":
        dtype = _dtype(reader)
        (ndim,) = reader.unpack("!B")
        if ndim > 32:
            raise WireError(f"an array of {ndim} dimensions")
        shape = tuple(reader.unpack("!Q")[0] for _ in range(ndim))
        (size,) = reader.unpack("!Q")
        expected = math.prod(shape) * dtype.itemsize
        if size != expected:
            raise WireError(f"an array of shape {shape} and dtype {dtype} with {size} bytes")
        return np.frombuffer(reader.take(size), dtype=dtype).reshape(shape).copy()
    if tag == b"g":
        dtype = _dtype(reader)
        data = reader.text(64)
        if len(data) != dtype.itemsize:
            raise WireError("a malformed NumPy scalar")
        return np.frombuffer(data, dtype=dtype)[0]
    if tag == b"u":
        type_name = reader.text(4096).decode("utf-8", "replace")
        text = reader.text(4096).decode("utf-8", "replace")
        return Unsupported(type_name, text)
    if tag in _BUILDERS or tag == b"d":
        (n,) = reader.unpack("!I")
        if n > reader.max_nodes:
            raise WireError(f"a container of {n} items")
        return _Open(tag, n * (2 if tag == b"d" else 1))
    raise WireError(f"unknown tag {tag!r}")


@dataclass
class _Open:
    tag: bytes
    remaining: int
    items: list = field(default_factory=list)


def _close(container: _Open) -> object:
    try:
        if container.tag == b"d":
            it = iter(container.items)
            return dict(zip(it, it, strict=True))
        return _BUILDERS[container.tag](container.items)
    except TypeError as error:  # an unhashable set item or dict key
        raise WireError(f"a container that cannot be built: {error}") from error


def decode_value(data: bytes, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> object:
    """The value encoded in ``data`` (all of it); :class:`WireError` if it is malformed."""
    value, end = _decode_at(_Reader(data, max_nodes), max_depth)
    if end != len(data):
        raise WireError(f"{len(data) - end} bytes after the value")
    return value


def _decode_at(reader: _Reader, max_depth: int) -> tuple[object, int]:
    stack: list[_Open] = []
    while True:
        reader.count()
        value = _scalar(reader, reader.take(1))
        if isinstance(value, _Open):
            if len(stack) >= max_depth:
                raise WireError(f"values nested deeper than {max_depth}")
            if value.remaining:
                stack.append(value)
                continue
            value = _close(value)
        while True:
            if not stack:
                return value, reader.pos
            top = stack[-1]
            top.items.append(value)
            top.remaining -= 1
            if top.remaining:
                break
            stack.pop()
            value = _close(top)


# -- messages on the wire ----------------------------------------------------------------------


def encode_message(message: object) -> bytes:
    """A message's body: its kind, then its fields as a dict."""
    kind = _KIND_OF[type(message)]
    values = {f.name: getattr(message, f.name) for f in fields(message)}  # type: ignore[arg-type]
    return struct.pack("!B", kind) + encode_value(values)


def frame(body: bytes) -> bytes:
    """A body with its length in front."""
    return struct.pack("!I", len(body)) + body


def decode_message(body: bytes, *, max_nodes: int = MAX_NODES) -> object:
    """The message in ``body``, its fields checked against its kind; WireError otherwise."""
    if not body:
        raise WireError("an empty message")
    kind = body[0]
    cls = MESSAGES.get(kind)
    if cls is None:
        raise WireError(f"unknown message kind {kind}")
    values = decode_value(body[1:], max_nodes=max_nodes)
    expected = _FIELD_TYPES[cls]
    if not isinstance(values, dict) or set(values) != set(expected):
        got = sorted(values) if isinstance(values, dict) else type(values).__name__
        raise WireError(f"{cls.__name__} with fields {got}, expected {sorted(expected)}")
    for name, types in expected.items():
        if object not in types and not isinstance(values[name], types):
            raise WireError(
                f"{cls.__name__}.{name} is a {type(values[name]).__name__}, "
                f"expected {' or '.join(t.__name__ for t in types)}"
            )
        if types == (int,) and isinstance(values[name], bool):
            raise WireError(f"{cls.__name__}.{name} is a bool, expected int")
    return cls(**values)
