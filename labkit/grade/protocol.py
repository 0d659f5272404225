"""Messages between the grader and the sandboxed process that holds a student's notebook.

A message is a JSON header followed by the raw bytes of its tensors. Reading one runs no code of
the sender's (no pickle): a hostile notebook can send wrong values, never behaviour. Tensors travel
as CPU copies with the name of the device they were on; ``meta`` tensors travel as shape and dtype
alone. The format is this simple because a grader makes thousands of calls per notebook (a
training loop driven by the student's gradient), and each must cost well under a millisecond.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

import torch

_LENGTH = struct.Struct("!Q")
#: No message from a sandbox may exceed this; a larger one is treated as a broken sandbox.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


class ChannelClosed(EOFError):
    """The other side is gone (it exited, crashed or was killed)."""


class BadMessage(ValueError):
    """A message that is not what the protocol allows."""


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
    buffers: list[bytes] = []
    header = json.dumps(_pack(message, buffers)).encode("utf-8")
    parts = [_LENGTH.pack(len(header)), header, _LENGTH.pack(len(buffers))]
    for buffer in buffers:
        parts += [_LENGTH.pack(len(buffer)), buffer]
    sock.sendall(b"".join(parts))


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    if size > MAX_MESSAGE_BYTES:
        raise BadMessage(f"a message part of {size} bytes")
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ChannelClosed("the connection was closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_length(sock: socket.socket) -> int:
    (size,) = _LENGTH.unpack(_recv_exactly(sock, _LENGTH.size))
    return size


def _tensor(entry: dict[str, Any], buffers: list[bytes]) -> torch.Tensor:
    dtype = _DTYPES.get(entry.get("dtype"))
    index, shape = entry.get("__buffer__"), entry.get("shape")
    if dtype is None or not isinstance(index, int) or not 0 <= index < len(buffers) \
            or not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise BadMessage("a malformed tensor")
    data = buffers[index]
    numel = 1
    for n in shape:
        numel *= n
    if len(data) != numel * torch.empty((), dtype=dtype).element_size():
        raise BadMessage("a tensor whose size does not match its shape")
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).view(dtype).reshape(shape)


def _unpack(value: Any, buffers: list[bytes]) -> Any:
    if isinstance(value, dict):
        if "__buffer__" in value:
            return _tensor(value, buffers)
        return {k: _unpack(v, buffers) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v, buffers) for v in value]
    return value


def receive(sock: socket.socket) -> Any:
    header = _recv_exactly(sock, _read_length(sock))
    count = _read_length(sock)
    if count > 10_000:
        raise BadMessage(f"a message with {count} tensors")
    buffers = [_recv_exactly(sock, _read_length(sock)) for _ in range(count)]
    try:
        message = json.loads(header.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BadMessage("an unreadable header") from None
    return _unpack(message, buffers)


def plain_tensor(value: torch.Tensor) -> torch.Tensor:
    """A plain CPU tensor with the same values: no subclass, no grad, no view of anything else."""
    source = value.detach()
    copy = torch.empty(tuple(source.shape), dtype=source.dtype)
    copy.copy_(source.to("cpu"))
    return copy


def encode(value: Any) -> Any:
    """Turn a value into what ``send`` carries: plain CPU tensors, numbers, strings, containers."""
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta":
            return {"__tensor__": None, "device": "meta", "dtype": str(value.dtype),
                    "shape": list(value.shape)}
        return {"__tensor__": plain_tensor(value), "device": value.device.type}
    if isinstance(value, (list, tuple)):
        return {"__seq__": [encode(v) for v in value], "tuple": isinstance(value, tuple)}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__map__": [[k, encode(v)] for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"__object__": type(value).__name__}


class Opaque:
    """Stands for a value of a type that cannot cross the boundary (it is named, not rebuilt)."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


def decode(value: Any) -> Any:
    """Rebuild a value sent by ``encode``, on the device it came from where that device exists."""
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
                return tensor.to("cuda")
            return tensor
        if "__seq__" in value:
            items = [decode(v) for v in value["__seq__"]]
            return tuple(items) if value.get("tuple") else items
        if "__map__" in value:
            return {str(k): decode(v) for k, v in value["__map__"]}
        if "__object__" in value:
            return Opaque(str(value["__object__"]))
        raise BadMessage("an unknown entry")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise BadMessage(f"an unexpected {type(value).__name__}")
