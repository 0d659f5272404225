"""Messages between the grader and the sandboxed process that holds a student's notebook.

A message is a JSON header followed by the raw bytes of its tensors. Reading one runs no code of
the sender's (no pickle): a hostile notebook can send wrong values, never behaviour. Tensors travel
as CPU copies with the name of the device they were on, whether they required grad and, for one
computed under autograd, the name of the operation that computed it (its graph stays behind, and
may be named by a handle, for the receiver to ask for gradients through it); ``meta`` tensors
travel as shape and dtype alone. A ``torch.Generator`` travels as its device and state, and is
rebuilt as a fresh generator in that state: the receiver draws what the sender would have drawn,
and the sender's own generator is never advanced. The format is this simple
because a grader makes thousands of calls per notebook (a training loop driven by the student's
gradient), and each must cost well under a millisecond.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import torch

_LENGTH = struct.Struct("!Q")
#: What the grader accepts from a sandbox, checked before anything is parsed or allocated: a
#: message above these is a broken or hostile sandbox. Real messages are far smaller (a call's
#: header is a few hundred bytes; the largest tensor the lab sends is about 1 MB).
MAX_MESSAGE_BYTES = 64 << 20
MAX_HEADER_BYTES = 1 << 20
MAX_TENSORS = 1024
MAX_DEPTH = 32
#: What decoding one message may allocate for its tensors: no more than the message carried.
#: Each buffer becomes at most one tensor, which shares the buffer's memory, so the tensors of a
#: message together hold at most its buffers' bytes, themselves at most ``MAX_MESSAGE_BYTES``;
#: this is checked again while decoding, so that a header naming one buffer many times (each
#: name would otherwise be a copy) is refused rather than multiplied.
MAX_DECODED_BYTES = MAX_MESSAGE_BYTES
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class ChannelClosed(EOFError):
    """The other side is gone (it exited, crashed or was killed)."""


class BadMessage(ValueError):
    """A message that is not what the protocol allows."""


def _check_header(header: bytes) -> None:
    """Refuse a header too large or nested too deep before JSON parses it (a header of nested
    empty lists costs its parser about 48 times its size in memory)."""
    if len(header) > MAX_HEADER_BYTES:
        raise BadMessage(f"a header of {len(header)} bytes")
    depth = 0
    for bracket in _STRINGS.sub(b"", header).translate(None, _NOT_BRACKETS):
        depth += 1 if bracket in b"[{" else -1
        if depth > MAX_DEPTH:
            raise BadMessage(f"a header nested more than {MAX_DEPTH} deep")


_DTYPES = {str(dtype): dtype for dtype in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.int16,
    torch.int32, torch.int64, torch.uint8, torch.bool, torch.complex64, torch.complex128)}


def _pack(value: Any, buffers: list[bytes]) -> Any:
    if isinstance(value, torch.Tensor):
        flat = value.detach().reshape(-1)
        buffers.append(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
        return {"__buffer__": len(buffers) - 1, "dtype": str(value.dtype),
                "shape": list(value.shape)}
    if isinstance(value, dict):
        return {str(k): _pack(v, buffers) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_pack(v, buffers) for v in value]
    return value


def send(sock: socket.socket, message: Any) -> None:
    """Send one message; ``BadMessage`` (nothing sent) when the receiver would refuse it."""
    buffers: list[bytes] = []
    header = json.dumps(_pack(message, buffers)).encode("utf-8")
    _check_header(header)
    total = len(header) + sum(len(b) for b in buffers)
    if len(buffers) > MAX_TENSORS or total > MAX_MESSAGE_BYTES:
        raise BadMessage(f"a message of {len(buffers)} tensors and {total >> 20} MB")
    parts = [_LENGTH.pack(len(header)), header, _LENGTH.pack(len(buffers))]
    for buffer in buffers:
        parts += [_LENGTH.pack(len(buffer)), buffer]
    sock.sendall(b"".join(parts))


def _recv_exactly(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    """``size`` bytes, or ``TimeoutError`` once ``deadline`` (monotonic) passes."""
    return bytes(_recv_buffer(sock, size, deadline))


def _read_length(sock: socket.socket, deadline: float | None) -> int:
    (size,) = _LENGTH.unpack(_recv_exactly(sock, _LENGTH.size, deadline))
    return size


class _Buffers:
    """The buffers of one message being decoded: each may be taken once, and what is taken is
    counted against ``MAX_DECODED_BYTES``."""

    def __init__(self, buffers: list[bytearray]):
        self.buffers = buffers
        self.taken: set[int] = set()
        self.decoded = 0

    def take(self, index: int) -> bytearray:
        if index in self.taken:
            raise BadMessage(f"a tensor buffer ({index}) referenced more than once")
        self.taken.add(index)
        data = self.buffers[index]
        self.decoded += len(data)
        if self.decoded > MAX_DECODED_BYTES:
            raise BadMessage(f"tensors of more than {MAX_DECODED_BYTES >> 20} MB")
        return data


def _tensor(entry: dict[str, Any], buffers: _Buffers) -> torch.Tensor:
    dtype = _DTYPES.get(entry.get("dtype"))
    index, shape = entry.get("__buffer__"), entry.get("shape")
    if dtype is None or not isinstance(index, int) or isinstance(index, bool) \
            or not 0 <= index < len(buffers.buffers) \
            or not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise BadMessage("a malformed tensor")
    data = buffers.take(index)
    numel = 1
    for n in shape:
        numel *= n
    if len(data) != numel * torch.empty((), dtype=dtype).element_size():
        raise BadMessage("a tensor whose size does not match its shape")
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    # The tensor shares the received buffer (taken once, so no other tensor does): no copy.
    return torch.frombuffer(data, dtype=torch.uint8).view(dtype).reshape(shape)


def _unpack(value: Any, buffers: _Buffers) -> Any:
    if isinstance(value, dict):
        if "__buffer__" in value:
            return _tensor(value, buffers)
        return {k: _unpack(v, buffers) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v, buffers) for v in value]
    return value


def _recv_buffer(sock: socket.socket, size: int, deadline: float | None) -> bytearray:
    """``size`` bytes received straight into one writable buffer, which a tensor can then share
    (no joined copy, no second copy for the tensor); ``TimeoutError`` once ``deadline``
    (monotonic) passes."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    received = 0
    try:
        while received < size:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
            count = sock.recv_into(view[received:], min(size - received, 1 << 20))
            if not count:
                raise ChannelClosed("the connection was closed")
            received += count
    finally:
        if deadline is not None:
            sock.settimeout(None)
    return buffer


def receive(sock: socket.socket, deadline: float | None = None) -> Any:
    """Read one message, trusting nothing in it: every read ends by ``deadline``
    (``TimeoutError``), and sizes, counts and nesting are checked before anything is allocated
    or parsed, and each tensor buffer becomes at most one tensor (``BadMessage``)."""
    size = _read_length(sock, deadline)
    if size > MAX_HEADER_BYTES:
        raise BadMessage(f"a header of {size} bytes")
    header = _recv_exactly(sock, size, deadline)
    _check_header(header)
    count = _read_length(sock, deadline)
    if count > MAX_TENSORS:
        raise BadMessage(f"a message with {count} tensors")
    total, buffers = len(header), []
    for _ in range(count):
        size = _read_length(sock, deadline)
        total += size
        if total > MAX_MESSAGE_BYTES:
            raise BadMessage(f"a message of more than {MAX_MESSAGE_BYTES >> 20} MB")
        buffers.append(_recv_buffer(sock, size, deadline))
    try:
        message = json.loads(header.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadMessage("an unreadable header") from None
    return _unpack(message, _Buffers(buffers))


def plain_tensor(value: torch.Tensor) -> torch.Tensor:
    """A plain CPU tensor with the same values: no subclass, no grad, no view of anything else."""
    source = value.detach()
    copy = torch.empty(tuple(source.shape), dtype=source.dtype)
    copy.copy_(source.to("cpu"))
    return copy


#: The longest type name a handle carries: it is display text, chosen by the notebook.
TYPE_NAME_CHARS = 80


def history(value: torch.Tensor) -> str | None:
    """The name of the operation that computed ``value`` under autograd (``MulBackward0``), or
    None for a leaf; cut to ``TYPE_NAME_CHARS`` (it is display text)."""
    node = value.grad_fn
    if node is None:
        return None
    name = node.name()
    return str.__str__(name)[:TYPE_NAME_CHARS] if isinstance(name, str) else "operation"


def encode(value: Any, keep: Callable[[Any], dict[str, Any]] | None = None,
           graph: Callable[[torch.Tensor], dict[str, Any]] | None = None) -> Any:
    """Turn a value into what ``send`` carries: plain CPU tensors, numbers, strings, containers.

    Any other object is named by its type (``Opaque`` on the other side); with ``keep`` (the
    notebook's side, ``labkit.sandbox.objects``) it is handed to ``keep`` instead, which keeps it
    and returns its handle entry, so that the grader can make requests about it later. A tensor
    computed under autograd carries the name of its last operation (``grad_fn``) and, with
    ``graph``, the handle entry ``graph`` returns for it: the graph stays with the sender, which
    can be asked for gradients through it."""
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta":
            return {"__tensor__": None, "device": "meta", "dtype": str(value.dtype),
                    "shape": list(value.shape)}
        entry = {"__tensor__": plain_tensor(value), "device": value.device.type,
                 "requires_grad": bool(value.requires_grad)}
        operation = history(value) if value.requires_grad else None
        if operation is not None:
            entry["grad_fn"] = operation
            if graph is not None:
                entry["graph"] = graph(value)
        return entry
    if isinstance(value, torch.Generator):
        return {"__generator__": value.get_state(), "device": value.device.type}
    if isinstance(value, (list, tuple)):
        return {"__seq__": [encode(v, keep, graph) for v in value],
                "tuple": isinstance(value, tuple)}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__map__": [[k, encode(v, keep, graph)] for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, complex):
        return {"__complex__": [value.real, value.imag]}
    if keep is not None:
        return keep(value)
    return {"__object__": type(value).__name__}


class Opaque:
    """Stands for a value of a type that cannot cross the boundary (it is named, not rebuilt)."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


def handle_entry(handle: int, type_name: str) -> dict[str, Any]:
    """How a kept object travels: its handle, and its type's name as display text only."""
    return {"__handle__": handle, "type": type_name[:TYPE_NAME_CHARS]}


def _handle(value: dict[str, Any], handle: Callable[[int, str], Any] | None) -> Any:
    number, type_name = value.get("__handle__"), value.get("type", "object")
    if not isinstance(number, int) or isinstance(number, bool) or number < 0 \
            or not isinstance(type_name, str):
        raise BadMessage("a malformed handle")
    type_name = type_name[:TYPE_NAME_CHARS]
    return Opaque(type_name) if handle is None else handle(number, type_name)


def _generator(value: dict[str, Any]) -> torch.Generator:
    """A fresh generator in the state the sender's was in, on the device it named."""
    state, device = value.get("__generator__"), value.get("device")
    if not isinstance(state, torch.Tensor) or state.dtype != torch.uint8 or state.dim() != 1 \
            or device not in ("cpu", "cuda"):
        raise BadMessage("a malformed generator")
    if device == "cuda" and not torch.cuda.is_available():
        raise BadMessage("a CUDA generator where there is no CUDA")
    generator = torch.Generator(device=device)
    try:
        generator.set_state(state.clone())
    except (RuntimeError, ValueError, TypeError):
        raise BadMessage("a generator state of the wrong size") from None
    return generator


#: What a receiver does with a tensor that was computed under autograd: ``attach(tensor,
#: operation, graph)`` gets the rebuilt values (requiring grad), the name of the operation that
#: computed them, and the sender's handle entry of their graph (None where none was sent), and
#: returns the tensor to use in their place.
Attach = Callable[[torch.Tensor, str, "dict[str, Any] | None"], torch.Tensor]


def decode(value: Any, *, grad_flags: bool = True,
           handle: Callable[[int, str], Any] | None = None, attach: Attach | None = None) -> Any:
    """Rebuild a value sent by ``encode``, on the device it came from where that device exists.

    With ``grad_flags`` a tensor that required grad requires grad again: a leaf (the grader's
    view of a result; the notebook's view of an argument the grader made a leaf); False leaves
    every tensor detached. A tensor computed under autograd is a leaf here unless ``attach``
    (the grader's side, ``labkit.grading.standins``) gives it a history. A handle entry becomes
    ``handle(number, type_name)``: a proxy on the grader's side, the kept object on the
    notebook's; without ``handle`` it is named only (``Opaque``). A generator entry becomes a
    fresh ``torch.Generator`` in the state sent."""
    if isinstance(value, dict):
        if "__tensor__" in value:
            device = value.get("device")
            if device == "meta":
                dtype = _DTYPES.get(value.get("dtype"))
                if dtype is None:
                    raise BadMessage("a meta tensor of an unknown dtype")
                return torch.empty([int(n) for n in value["shape"]], dtype=dtype, device="meta")
            tensor = value["__tensor__"]
            if not isinstance(tensor, torch.Tensor):
                raise BadMessage("a tensor entry without a tensor")
            if device == "cuda" and torch.cuda.is_available():
                tensor = tensor.to("cuda")
            if grad_flags and value.get("requires_grad") is True and (
                    tensor.is_floating_point() or tensor.is_complex()):
                # The graph stays behind; the flag says one hung on the value (core.expect_plain).
                tensor.requires_grad_(True)
                operation = value.get("grad_fn")
                if attach is not None and isinstance(operation, str):
                    graph = value.get("graph")
                    number = graph.get("__handle__") if isinstance(graph, dict) else None
                    if graph is not None and (not isinstance(number, int)
                                              or isinstance(number, bool) or number < 0):
                        raise BadMessage("a malformed graph")
                    return attach(tensor, operation[:TYPE_NAME_CHARS], graph)
            return tensor
        if "__seq__" in value:
            items = [decode(v, grad_flags=grad_flags, handle=handle, attach=attach)
                     for v in value["__seq__"]]
            return tuple(items) if value.get("tuple") else items
        if "__map__" in value:
            return {str(k): decode(v, grad_flags=grad_flags, handle=handle, attach=attach)
                    for k, v in value["__map__"]}
        if "__generator__" in value:
            return _generator(value)
        if "__handle__" in value:
            return _handle(value, handle)
        if "__complex__" in value:
            parts = value["__complex__"]
            if not isinstance(parts, list) or len(parts) != 2 or not all(
                    isinstance(p, (int, float)) and not isinstance(p, bool) for p in parts):
                raise BadMessage("a malformed complex number")
            return complex(parts[0], parts[1])
        if "__object__" in value:
            return Opaque(str(value["__object__"]))
        raise BadMessage("an unknown entry")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise BadMessage(f"an unexpected {type(value).__name__}")
