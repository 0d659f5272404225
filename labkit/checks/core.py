"""What every hidden test shares: devices, calling student code, comparisons and messages.

Messages are written for the student who reads them in the feedback: they say what was wrong and
what to try, and describe inputs by shape, dtype and device only, never by their values, so that
the hidden inputs and the expected results stay hidden.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

Tensor = torch.Tensor

#: Error texts by which torch reports two tensors on different devices (CUDA and meta alike).
_DEVICE_MISMATCH_TEXTS = (
    "is not on the expected device",
    "expected all tensors to be on the same device",
    "expected device",
)


class CheckFailed(AssertionError):
    """A failed check; its message is shown to the student as it is."""


def available_devices() -> list[torch.device]:
    """Devices a check runs on: the CPU always, CUDA when this machine has it."""
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    return devices


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """Turn TF32 off while checking, so that float32 CUDA matmuls keep float32 accuracy.

    TF32 keeps 10 mantissa bits: with it a correct float32 answer on an Ampere or newer GPU could
    miss a tolerance it meets on the CPU, and a correct submission must get the same grade on both.
    """
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn


def describe(value: Any) -> str:
    """Describe an argument without revealing its values."""
    if isinstance(value, Tensor):
        dtype = str(value.dtype).replace("torch.", "")
        article = "an" if dtype.startswith("int") else "a"
        return f"{article} {dtype} tensor of shape {tuple(value.shape)} on {value.device.type}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(describe(v) for v in value) + ")"
    return type(value).__name__


def generator(seed: int) -> torch.Generator:
    """A CPU generator: hidden inputs are drawn on the CPU, then moved, so every device sees the
    same numbers."""
    return torch.Generator().manual_seed(seed)


def require_function(fn: Any, name: str) -> Callable[..., Any]:
    if not callable(fn):
        raise CheckFailed(
            f"`{name}` is not defined as a function. Run the cell that defines it, and keep its name."
        )
    return fn


def call(fn: Any, name: str, *args: Any) -> Any:
    """Call a student's function; any error becomes a failed check that names it."""
    fn = require_function(fn, name)
    try:
        return fn(*args)
    except CheckFailed:
        raise
    except Exception as error:  # the student's code may raise anything
        raise CheckFailed(
            f"`{name}` raised {type(error).__name__}: {error}\n"
            f"  when called with {describe(args)}."
        ) from None


def expect_tensor(
    result: Any,
    name: str,
    *,
    shape: Sequence[int],
    dtype: torch.dtype,
    device: torch.device,
    args: Sequence[Any] = (),
    output: str = "",
) -> Tensor:
    """The result is a tensor of the shape, dtype and device the inputs call for.

    ``output`` names one of several results (e.g. ``X_train``) in the messages.
    """
    called = f" for inputs {describe(tuple(args))}" if args else ""
    who = f"`{name}`" + (f" (its {output})" if output else "")
    if not isinstance(result, Tensor):
        hint = " (did you forget `return`?)" if result is None else ""
        raise CheckFailed(
            f"{who} returned {type(result).__name__}{hint}; expected a torch.Tensor{called}."
        )
    if tuple(result.shape) != tuple(shape):
        raise CheckFailed(
            f"{who} returned shape {tuple(result.shape)}{called}; expected {tuple(shape)}. "
            "Check transposes and keep column vectors as (n, 1)."
        )
    if result.dtype != dtype:
        raise CheckFailed(
            f"{who} returned dtype {result.dtype}{called}; expected {dtype}, the inputs' dtype. "
            "Create new tensors with the inputs' dtype (e.g. `torch.ones_like`, `X.new_ones`, or "
            "`dtype=X.dtype`)."
        )
    if result.device.type != device.type:
        raise CheckFailed(
            f"{who} returned a tensor on {result.device.type}{called}; expected it on "
            f"{device.type}, the inputs' device. Create new tensors on the inputs' device "
            "(`device=X.device`, `X.new_zeros`, `torch.zeros_like`) and avoid `.cpu()` / `.numpy()`."
        )
    return result


def expect_close(
    actual: Tensor,
    expected: Tensor,
    name: str,
    *,
    rtol: float,
    atol: float,
    what: str = "values",
    args: Sequence[Any] = (),
) -> None:
    """Values agree within tolerances; compared in float64 on the CPU, outside any TF32 path.

    ``atol`` is relative to the largest expected entry (with a floor of 1e-12), so that one
    tolerance serves inputs of any scale and entries that cancel to nearly zero are not judged
    by a relative error they cannot meet.
    """
    a = actual.detach().to(device="cpu", dtype=torch.float64)
    e = expected.detach().to(device="cpu", dtype=torch.float64)
    if a.shape != e.shape:
        raise CheckFailed(f"`{name}`: {what} have shape {tuple(a.shape)}, expected {tuple(e.shape)}.")
    if not torch.isfinite(a).all():
        raise CheckFailed(
            f"`{name}` returned NaN or infinite {what} for inputs {describe(tuple(args))}."
        )
    error = (a - e).abs()
    scale = float(e.abs().max()) if e.numel() else 0.0
    allowed = max(atol * scale, 1e-12) + rtol * e.abs()
    if bool((error > allowed).any()):
        worst = float(error.max())
        raise CheckFailed(
            f"`{name}` returned wrong {what} for inputs {describe(tuple(args))}: off by up to "
            f"{worst:.3g} where the expected {what} are of size up to {scale:.3g}."
        )


def snapshot(args: Sequence[Any]) -> list[Any]:
    return [a.detach().clone() if isinstance(a, Tensor) else a for a in args]


def expect_unmodified(
    name: str, arg_names: Sequence[str], args: Sequence[Any], before: Sequence[Any]
) -> None:
    """The function left its arguments as it found them (no in-place updates on inputs)."""
    for arg_name, arg, old in zip(arg_names, args, before):
        if isinstance(arg, Tensor) and not torch.equal(arg.detach().cpu(), old.cpu()):
            raise CheckFailed(
                f"`{name}` modified its argument `{arg_name}` in place. Work on new tensors "
                "(e.g. `y = y - 1` rather than `y -= 1`, or `.clone()` first)."
            )


def check_meta_propagation(fn: Any, name: str, args: Sequence[Any]) -> None:
    """Run the function on ``meta`` copies of its inputs to find device bugs without a GPU.

    Meta tensors follow CUDA's device rules but hold no data, so only three outcomes are decisive:
    a device-mismatch error, a ``.numpy()`` call, and a result that is not on ``meta``. Everything
    else meta refuses (``.item()``, boolean masks, copies to the CPU) is fine on a GPU and passes.
    """
    fn = require_function(fn, name)
    meta_args = [a.detach().to("meta") if isinstance(a, Tensor) else a for a in args]
    try:
        result = fn(*meta_args)
    except TypeError as error:
        if "numpy" in str(error):
            raise CheckFailed(
                f"`{name}` converts a tensor to NumPy (`.numpy()`), which fails for tensors on a "
                "GPU. Stay in torch for the whole computation."
            ) from None
        return
    except RuntimeError as error:
        if any(text in str(error).lower() for text in _DEVICE_MISMATCH_TEXTS):
            raise CheckFailed(
                f"`{name}` mixes tensors on different devices (it fails when its inputs are on a "
                f"GPU: {error}). Create new tensors on the inputs' device, e.g. with "
                "`device=X.device`, `torch.zeros_like(...)` or `X.new_ones(...)`."
            ) from None
        return
    except Exception:  # inconclusive on meta: a GPU run settles it
        return
    outputs = result if isinstance(result, (tuple, list)) else (result,)
    if not outputs or not all(isinstance(output, Tensor) for output in outputs):
        raise CheckFailed(
            f"`{name}` returned {describe(result)} instead of tensors"
            + (" (did you forget `return`?)." if result is None else ".")
        )
    for output in outputs:
        if isinstance(output, Tensor) and output.device.type != "meta":
            raise CheckFailed(
                f"`{name}` returns a tensor on {output.device.type} when its inputs are elsewhere "
                "(for example on a GPU). Create new tensors on the inputs' device "
                "(`device=X.device`, `torch.zeros_like`, `X.new_ones`)."
            )


def on_every_device(check: Callable[[torch.device], None]) -> None:
    """Run one check on each available device, with full float32 precision on CUDA."""
    with full_precision():
        for device in available_devices():
            check(device)
