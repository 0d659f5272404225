"""Messages between the grader and the sandboxed process that holds a student's notebook.

Messages are length-prefixed ``torch.save`` payloads. The grader reads what the sandbox sends with
``torch.load(weights_only=True)``, which rebuilds tensors and plain containers only, so a hostile
notebook can send wrong values but cannot run code in the grader. Tensors travel as CPU copies with
the name of the device they were on; ``meta`` tensors travel as shape and dtype alone.
"""

from __future__ import annotations

import io
import socket
import struct
from typing import Any

import torch

_HEADER = struct.Struct("!Q")
#: No message from a sandbox may exceed this; a larger one is treated as a broken sandbox.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


class ChannelClosed(EOFError):
    """The other side is gone (it exited, crashed or was killed)."""


class BadMessage(ValueError):
    """A message that is not what the protocol allows."""


def send(sock: socket.socket, message: Any) -> None:
    buffer = io.BytesIO()
    torch.save(message, buffer)
    payload = buffer.getvalue()
    sock.sendall(_HEADER.pack(len(payload)) + payload)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ChannelClosed("the connection was closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket) -> Any:
    (size,) = _HEADER.unpack(_recv_exactly(sock, _HEADER.size))
    if size > MAX_MESSAGE_BYTES:
        raise BadMessage(f"a message of {size} bytes")
    payload = _recv_exactly(sock, size)
    try:
        return torch.load(io.BytesIO(payload), weights_only=True)
    except Exception as error:
        raise BadMessage(f"an unreadable message ({type(error).__name__})") from None


def plain_tensor(value: torch.Tensor) -> torch.Tensor:
    """A plain CPU tensor with the same values: no subclass, no grad, no view of anything else."""
    source = value.detach()
    copy = torch.empty(tuple(source.shape), dtype=source.dtype)
    copy.copy_(source.to("cpu"))
    return copy


def encode(value: Any) -> Any:
    """Turn a value into something ``torch.load(weights_only=True)`` rebuilds."""
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


_DTYPES = {str(dtype): dtype for dtype in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.int16,
    torch.int32, torch.int64, torch.uint8, torch.bool, torch.complex64, torch.complex128)}


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
