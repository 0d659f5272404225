"""What every hidden test shares: devices, calling student code, comparisons and messages.

Messages are written for the student who reads them in the feedback: they say what was wrong and
what to try, and describe inputs by shape, dtype and device only, never by their values, so that
the hidden inputs and the expected results stay hidden.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import math
import operator
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from . import descent

Tensor = torch.Tensor

#: Error texts by which torch reports two tensors on different devices (CUDA and meta alike).
_DEVICE_MISMATCH_TEXTS = (
    "is not on the expected device",
    "expected all tensors to be on the same device",
    "expected device",
)


#: Longest student error text put into a message: the type and first line, enough to act on,
#: too little to carry hidden inputs out (an error text is student-controlled).
MAX_ERROR_CHARS = 200

#: The grading key: when set (by the grader, per notebook), every seed of a hidden input is mixed
#: with it, so each submission gets its own inputs while grading one file stays deterministic.
#: None (the default, and always in the student's kernel) keeps the seeds as written.
_KEY: bytes | None = None


class CheckFailed(AssertionError):
    """A failed check; its message is shown to the student as it is."""


def set_key(key: bytes | None) -> None:
    """Set the key mixed into every hidden input's seed (None: the seeds as written)."""
    global _KEY
    _KEY = bytes(key) if key is not None else None


@contextlib.contextmanager
def keyed(key: bytes | None) -> Iterator[None]:
    """Run checks under ``key``, restoring the previous key afterwards."""
    previous = _KEY
    set_key(key)
    try:
        yield
    finally:
        set_key(previous)


def seed_for(seed: int) -> int:
    """The seed actually used for ``seed``: itself without a key, else an HMAC of it under the key
    (63 bits, so any two written seeds stay distinct with overwhelming probability)."""
    if _KEY is None:
        return seed
    digest = hmac.new(_KEY, f"labkit-seed-{seed}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def clip_error(text: str) -> str:
    """A student's error text cut to ``MAX_ERROR_CHARS`` characters, "..." included: the one rule
    for every error text of student code that reaches a message, wherever it is cut."""
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def short_error(error: BaseException) -> str:
    """``Type: first line`` of a student's exception, cut as ``clip_error`` cuts."""
    text = str(error).strip().split("\n", 1)[0]
    return clip_error(f"{type(error).__name__}: {text}" if text else type(error).__name__)


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


def where(device: torch.device | str) -> str:
    """A device in the student's words. ``meta`` is how the grader stands in for a GPU without
    one, so it is called a GPU: students never meet meta tensors."""
    kind = torch.device(device).type
    return "the CPU" if kind == "cpu" else "a GPU" if kind in ("cuda", "meta") else kind


#: The name under which a stand-in, in the grader, for an object of the notebook's process gives
#: that object's type (its own class is the stand-in's).
NOTEBOOK_TYPE = "__notebook_type__"


def type_name(value: Any) -> str:
    """The name of a value's type: the notebook's name for an object that lives in the
    notebook's process, never the grader's stand-in's."""
    declared = getattr(type(value), NOTEBOOK_TYPE, None)
    return str(declared.__get__(value)) if isinstance(declared, property) else type(value).__name__


def kind_of(value: Any) -> str:
    """What a value that is not the expected tensor is, in a student's words: the placeholder
    ``...`` left in, None, or an object of a named type."""
    name = type_name(value)
    if value is Ellipsis or name == "ellipsis":
        return "`...`, the placeholder (write the answer in its place)"
    if value is None:
        return "None"
    return f"an object of type `{name}`"


def describe(value: Any) -> str:
    """Describe an argument without revealing its values."""
    if isinstance(value, Tensor):
        dtype = str(value.dtype).replace("torch.", "")
        article = "an" if dtype.startswith("int") else "a"
        return f"{article} {dtype} tensor of shape {tuple(value.shape)} on {where(value.device)}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(describe(v) for v in value) + ")"
    return type_name(value)


def generator(seed: int) -> torch.Generator:
    """A CPU generator for hidden inputs, seeded with ``seed_for(seed)``: inputs are drawn on the
    CPU, then moved, so every device sees the same numbers."""
    return torch.Generator().manual_seed(seed_for(seed))


class MissingName:
    """What the grader passes to a test for a name the notebook does not define: calling it fails
    with a message that names the function, rather than otter's "'NoneType' object is not
    callable". It is no tensor and no function of the notebook, so every check treats it as
    absent. ``cause`` says why, when the grader knows: the cell that sets the name raised an
    error or was stopped ('the cell under "4.2 Fit" that starts "theta = ..." raised an error
    (ZeroDivisionError: division by zero)')."""

    def __init__(self, name: str, cause: str = ""):
        self.name, self.cause = name, cause

    def __repr__(self) -> str:
        return f"<no {self.name} in the notebook>"

    def __bool__(self) -> bool:
        return False

    def absent(self, what: str, advice: str) -> str:
        """The sentence that says ``what`` ("function named `f`") is missing: with its cause
        and the cell to fix when known, else with ``advice``."""
        if self.cause:
            return (f"There is no {what} in your notebook because {self.cause}, so "
                    f"`{self.name}` was never set. Fix that cell first: this test depends on it.")
        return f"There is no {what} in your notebook. {advice}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise CheckFailed(self.absent(f"function named `{self.name}`",
                                      "Run the cell that defines it, and keep its name."))


def require_function(fn: Any, name: str) -> Callable[..., Any]:
    """The student's function, or a failed check saying that the notebook does not define it."""
    if fn is None or isinstance(fn, MissingName):
        (fn if isinstance(fn, MissingName) else MissingName(name))()
    if not callable(fn):
        raise CheckFailed(
            f"`{name}` in your notebook is not a function. Define it with `def {name}(...):` and "
            "do not reuse the name for a variable."
        )
    return fn


#: Python's binary arithmetic operators by their symbol, as a check applies them to objects of
#: a notebook (through their handles) or to tensors of a reference.
BINARY_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "**": operator.pow,
}


def attempt(what: str, action: Callable[[], Any]) -> Any:
    """Run ``action`` (a read, call or operator on an object of the notebook): any error is a
    failed check naming ``what``, as a call of a student's function is (``call``)."""
    try:
        return action()
    except CheckFailed:
        raise
    except Exception as error:  # the student's code may raise anything
        raise CheckFailed(f"{what} raised {short_error(error)}.") from None


def number_kind(value: Any, none_hint: str = "did you forget `return` or to set it?") -> str:
    """What a value that should be a plain number is, in a student's words (never its value)."""
    if value is None:
        return f"None ({none_hint})"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, (str, tuple, list, dict, Tensor)):
        return f"a {type(value).__name__}"
    return kind_of(value)  # the placeholder `...`, or an object of the notebook's named type


def plain_number(value: Any, what: str, advice: str,
                 none_hint: str = "did you forget `return` or to set it?") -> float:
    """``value`` as a float, once it is known to be a real number: an int or a float (not a
    bool, a tensor or an object of the notebook), and finite; else a failed check saying what
    it is and ``advice`` (where such a number comes from)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckFailed(f"{what} is {number_kind(value, none_hint)}, not a plain number. "
                          f"{advice}")
    if not math.isfinite(value):
        raise CheckFailed(f"{what} is not finite ({value!r}).")
    return float(value)


def stored(value: Any, name: str) -> Any:
    """A value the notebook stores under ``name``; a failed check naming it when it does not."""
    if isinstance(value, MissingName):
        raise CheckFailed(value.absent(f"variable named `{name}`",
                                       "Run the cell that sets it, and keep its name."))
    return value


def copies(args: Sequence[Any]) -> tuple[Any, ...]:
    """Fresh copies of the tensor arguments, so the caller's own tensors stay untouched whatever
    the student's function does to what it receives."""
    return tuple(a.detach().clone() if isinstance(a, Tensor) else a for a in args)


class PlacementFailed(CheckFailed):
    """A call that failed only because of where its tensors live (a tensor made on the CPU mixed
    with CUDA inputs, ``.numpy()`` of a CUDA tensor): the devices check's verdict, not another's."""


def _is_placement_error(error: Exception) -> bool:
    text = str(error).lower()
    return any(t in text for t in _DEVICE_MISMATCH_TEXTS) or (
        "numpy" in text and "cuda" in text)


def on_every_device(check: Callable[[torch.device], None]) -> None:
    """Run a check on the CPU, then on CUDA where this machine has one (in full float32
    precision). On CUDA a failure caused only by where tensors live is excused: placement is
    judged once, by the devices check, so a device bug costs one point, not every check's."""
    check(torch.device("cpu"))
    if torch.cuda.is_available():
        with full_precision():
            try:
                check(torch.device("cuda"))
            except PlacementFailed:
                pass


#: Sizes in an error text: "260x65" (a matrix product's shapes), "size 1000", "[5, 3]".
_SIZES = re.compile(r"(?<![\w.])(\d+)x(\d+)(?![\w.])|\bsize (\d+)|\[(\d+(?:, \d+)*)\]")


def foreign_sizes(text: str, args: Sequence[Any]) -> list[int]:
    """Sizes (2 or more) an error text names that no tensor argument has in any dimension: the
    evidence that the function used a size written as a number, or a notebook variable, rather
    than its arguments."""
    named = []
    for match in _SIZES.finditer(text):
        for group in match.groups():
            named.extend(int(n) for n in re.findall(r"\d+", group or ""))
    own = {size for a in args if isinstance(a, Tensor) for size in a.shape}
    return sorted({n for n in named if n >= 2 and n not in own})


def _raised(error: Exception, name: str, args: Sequence[Any]) -> CheckFailed:
    failure = PlacementFailed if _is_placement_error(error) else CheckFailed
    message = f"`{name}` raised {short_error(error)}\n  when called with {describe(tuple(args))}."
    foreign = foreign_sizes(short_error(error), args)
    if foreign and failure is CheckFailed:
        sizes = ", ".join(map(str, foreign[:3]))
        message += (f"\n  The error names sizes ({sizes}) that none of its arguments have: take "
                    "every size and every tensor from the arguments (e.g. `X.shape[0]`), not "
                    "from numbers written in the code or from the notebook's variables (such "
                    "as `X_train`).")
    return failure(message)


def _invoke(fn: Any, name: str, args: Sequence[Any]) -> Any:
    fn = require_function(fn, name)
    try:
        return fn(*args)
    except CheckFailed:
        raise
    except Exception as error:  # the student's code may raise anything
        raise _raised(error, name, args) from None


def call(fn: Any, name: str, *args: Any) -> Any:
    """Call a student's function on copies of ``args``; any error becomes a failed check that
    names it. Checks may read ``args`` afterwards: the function never saw them.

    A function whose ``receives_copies`` is true (a notebook's function called in its own
    process) gets the arguments themselves: they reach it as copies anyway, and passing the same
    objects lets the transport send a training loop's data once rather than at every step. A
    tensor that requires grad is detached first all the same: a copy here is plain, and the
    notebook's copy of a tensor that requires grad would be a leaf that requires grad."""
    if not getattr(fn, "receives_copies", False):
        return _invoke(fn, name, copies(args))
    return _invoke(fn, name, tuple(a.detach() if isinstance(a, Tensor) and a.requires_grad else a
                                   for a in args))


def expect_tensor(
    result: Any,
    name: str,
    *,
    shape: Sequence[int],
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
    args: Sequence[Any] = (),
    output: str = "",
    variable: bool = False,
) -> Tensor:
    """The result is a tensor of the shape, and where given the dtype and device, the inputs call
    for. A check judges only the properties it is about: values checks pass no dtype or device.
    ``variable``: the result is a name the notebook sets, not what a function returned.

    ``output`` names one of several results (e.g. ``X_train``) in the messages. A result that
    requires grad or hangs on an autograd graph is accepted here (every comparison detaches
    first): where that matters, ``expect_plain`` judges it as its own property.
    """
    called = f" for inputs {describe(tuple(args))}" if args else ""
    who = f"`{name}`" + (f" (its {output})" if output else "")
    if not isinstance(result, Tensor):
        hint = " (did you forget `return`?)" if result is None and not variable else ""
        raise CheckFailed(
            f"{who} {'is' if variable else 'returned'} {kind_of(result)}{hint}; expected a "
            f"torch.Tensor{called}."
        )
    if tuple(result.shape) != tuple(shape):
        raise CheckFailed(
            f"{who} returned shape {tuple(result.shape)}{called}; expected {tuple(shape)}. "
            "Check transposes and keep column vectors as (n, 1)."
        )
    if dtype is not None and result.dtype != dtype:
        raise CheckFailed(
            f"{who} returned dtype {result.dtype}{called}; expected {dtype}, the inputs' dtype. "
            "Create new tensors with the inputs' dtype (e.g. `torch.ones_like`, `X.new_ones`, or "
            "`dtype=X.dtype`)."
        )
    if device is not None and result.device.type != device.type:
        raise CheckFailed(
            f"{who} returned a tensor on {where(result.device)}{called}; expected it on "
            f"{where(device)}, the inputs' device. Create new tensors on the inputs' device "
            "(`device=X.device`, `X.new_zeros`, `torch.zeros_like`) and avoid `.cpu()` / `.numpy()`."
        )
    return result


def expect_plain(result: Tensor, name: str, *, args: Sequence[Any] = (), output: str = "") -> None:
    """The result is a plain tensor: it does not require grad, so no autograd graph hangs on it.

    A gradient or a fitted parameter is a value. One returned with its graph attached (autograd
    with ``create_graph=True``, or a result computed from a tensor that requires grad) makes every
    step of a gradient descent that uses it build on the previous step's graph, so memory and time
    grow with each step. For a function of the notebook the flag comes with the result as data
    (``grade.protocol``); a runner rewritten to clear it gains no more than ``.detach()`` would.
    """
    if not result.requires_grad:
        return
    called = f" for inputs {describe(tuple(args))}" if args else ""
    who = f"`{name}`" + (f" (its {output})" if output else "")
    raise CheckFailed(
        f"{who} returned a tensor still attached to autograd (requires_grad=True){called}. A "
        "gradient or a fit is a plain value: return it detached (`.detach()`), and do not use "
        "`create_graph=True`. Used in gradient descent, an attached result drags its graph into "
        "every step, so memory and time grow with each step."
    )


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
    called = f" for inputs {describe(tuple(args))}" if args else ""
    if a.shape != e.shape:
        raise CheckFailed(f"`{name}`: {what} have shape {tuple(a.shape)}, expected {tuple(e.shape)}.")
    if not torch.isfinite(a).all():
        raise CheckFailed(f"`{name}` returned NaN or infinite {what}{called}.")
    error = (a - e).abs()
    scale = float(e.abs().max()) if e.numel() else 0.0
    allowed = max(atol * scale, 1e-12) + rtol * e.abs()
    if bool((error > allowed).any()):
        worst = float(error.max())
        raise CheckFailed(
            f"`{name}` returned wrong {what}{called}: off by up to "
            f"{worst:.3g} where the expected {what} are of size up to {scale:.3g}."
        )


def snapshot(args: Sequence[Any]) -> list[Any]:
    """What a call must leave as it was, per argument: values, ``requires_grad`` and ``.grad``
    (None for what is not a tensor)."""
    return [
        (a.detach().clone(), a.requires_grad, None if a.grad is None else a.grad.detach().clone())
        if isinstance(a, Tensor) else None
        for a in args
    ]


def _changed(old: Any, new: Any) -> str | None:
    """What a call changed in one tensor argument (two ``snapshot`` entries), in words, or None."""
    if old is None:
        return None
    if new is None:
        return "values"
    values, requires_grad, grad = old
    now, now_requires_grad, now_grad = new
    if now.shape != values.shape or now.dtype != values.dtype or (
            values.device.type != "meta" and not torch.equal(now.cpu(), values.cpu())):
        return "values"
    if now_requires_grad != requires_grad or (now_grad is None) != (grad is None) or (
        grad is not None and (now_grad.shape != grad.shape
                              or not torch.equal(now_grad.cpu(), grad.cpu()))
    ):
        return "autograd"
    return None


def _modified_message(name: str, arg_name: str, what: str) -> str:
    if what == "autograd":
        return (
            f"`{name}` changed the autograd state of its argument `{arg_name}` (`requires_grad` or "
            "`.grad`), so a second call on the same tensors gives another result. To use "
            f"autograd, work on a copy: `{arg_name} = {arg_name}.detach().clone().requires_grad_(True)`."
        )
    return (
        f"`{name}` modified its argument `{arg_name}` in place. Work on new tensors "
        "(e.g. `y = y - 1` rather than `y -= 1`, or `.clone()` first)."
    )


def _twice(fn: Any, args: Sequence[Any]) -> tuple[Any, Any, list[Any]]:
    """Call ``fn`` on ``args``, then again on the same objects; returns both results and the
    arguments as the first call left them (``snapshot``'s form). A function of the notebook does
    this in its own process (``call_twice``) and sends the arguments back as data, so that the
    comparison is the grader's, never the notebook's word."""
    remote = getattr(fn, "call_twice", None)
    if remote is not None:
        return remote(*args)
    result = fn(*args)
    after = snapshot(args)
    return result, fn(*args), after


def expect_unmodified(fn: Any, name: str, arg_names: Sequence[str], args: Sequence[Any]) -> Any:
    """Call the function on ``args``; it must leave them as it found them. Returns its result.

    The function receives ``args`` themselves (not copies), so that this is the one check that
    sees in-place changes; it is then called a second time on the same tensors, which must give
    the same result: an answer that runs ``.backward()`` on its argument returns twice the
    gradient the second time. A function of the notebook is called twice in its own process on
    its copies of ``args``, which come back as data (``_twice``); every comparison is made here.
    """
    fn = require_function(fn, name)
    before = snapshot(args)
    fresh = copies(args)
    try:
        result, again, after = _twice(fn, args)
    except (PlacementFailed, TooSlow):
        raise
    except Exception as error:  # the student's code may raise anything
        failure = error if isinstance(error, CheckFailed) else _raised(error, name, args)
        raise _failed_again(fn, name, arg_names, args, before, fresh, failure) from None
    for arg_name, old, new in zip(arg_names, before, after):
        what = _changed(old, new)
        if what:
            raise CheckFailed(_modified_message(name, arg_name, what))
    if isinstance(result, Tensor) and not (
        isinstance(again, Tensor) and again.shape == result.shape
        and torch.equal(again.detach().cpu(), result.detach().cpu())
    ):
        raise CheckFailed(
            f"`{name}` gives a different result when called twice on the same tensors: it keeps "
            "state between calls (for example a `.grad` that accumulates). Compute the result from "
            "the arguments alone."
        )
    return result


def _failed_again(fn: Any, name: str, arg_names: Sequence[str], args: Sequence[Any],
                  before: list[Any], fresh: tuple[Any, ...], failure: CheckFailed) -> CheckFailed:
    """The failure of a function called twice on the same tensors, with what the evidence says
    about it: when a call on fresh copies of the same values succeeds, the first call changed
    an argument in place (named when the change shows here) or kept state."""
    try:
        call(fn, name, *fresh)
    except CheckFailed:
        return failure  # it fails on fresh tensors too: nothing more to say
    changed = [arg_name for arg_name, old, new in zip(arg_names, before, snapshot(args))
               if _changed(old, new)]
    which = f"`{changed[0]}`" if changed else "an argument"
    return CheckFailed(
        f"{failure}\n  It works on fresh tensors but fails when called again on the same ones: "
        f"its first call changed {which} in place (for example with `squeeze_`, `unsqueeze_` or "
        "`-=`) or kept state between calls. Work on new tensors (e.g. `y = y.squeeze(1)` "
        "rather than `y.squeeze_(1)`, or `.clone()` first)."
    )


_DEVICE_HINT = (
    "Create new tensors on the inputs' device (`device=X.device`, `torch.zeros_like(...)`, "
    "`X.new_ones(...)`) and avoid `.cpu()`, `.numpy()` and `.tolist()`."
)


def check_meta_propagation(fn: Any, name: str, args: Sequence[Any]) -> None:
    """Run the function on ``meta`` copies of its inputs to find device bugs without a GPU.

    Meta tensors follow CUDA's device rules but hold no data, so only three outcomes are decisive:
    a device-mismatch error, a ``.numpy()`` call, and a result that is not on ``meta``. Everything
    else meta refuses (``.item()``, boolean masks, copies to the CPU) is fine on a GPU and passes.
    A function that tests for ``meta`` inputs and answers them specially is not caught here; with
    a GPU, ``check_on_cuda`` decides instead. Messages say "a GPU": meta stands in for one.
    """
    fn = require_function(fn, name)
    meta_args = [a.detach().to("meta") if isinstance(a, Tensor) else a for a in args]
    try:
        result = fn(*meta_args)
    except CheckFailed:  # the call itself failed (the notebook's process stopped): decisive
        raise
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
                f"`{name}` mixes tensors on different devices: it fails when its inputs are on a "
                f"GPU (expected all tensors to be on the same device). {_DEVICE_HINT}"
            ) from None
        return
    except Exception:  # inconclusive on meta: a GPU run settles it
        return
    _expect_outputs_on(result, name, "meta")


def _expect_outputs_on(result: Any, name: str, device: str) -> None:
    outputs = result if isinstance(result, (tuple, list)) else (result,)
    if not outputs or not all(isinstance(output, Tensor) for output in outputs):
        raise CheckFailed(
            f"`{name}` returned {describe(result)} instead of tensors"
            + (" (did you forget `return`?)." if result is None else ".")
        )
    for output in outputs:
        if output.device.type != device:
            raise CheckFailed(
                f"`{name}` returns a tensor on {where(output.device)} when its inputs are on "
                f"another device (for example a GPU). {_DEVICE_HINT}"
            )


def check_on_cuda(fn: Any, name: str, args: Sequence[Any]) -> None:
    """Where a GPU is present it decides placement: the function runs on CUDA copies of its
    inputs and every tensor it returns must be on CUDA (whatever it would do on meta)."""
    cuda_args = [a.detach().to("cuda") if isinstance(a, Tensor) else a for a in args]
    with full_precision():
        result = _invoke(fn, name, cuda_args)
    _expect_outputs_on(result, name, "cuda")


def check_placement(fn: Any, name: str, args: Sequence[Any]) -> None:
    """The devices verdict: on CUDA where this machine has it, else by meta propagation.

    Without a GPU the function first runs on the CPU inputs themselves, as it would on CUDA's:
    a function that raises, or returns no tensors, there fails as it fails on a GPU, rather
    than passing because meta found nothing decisive. A grade does not depend on the machine."""
    if torch.cuda.is_available():
        check_on_cuda(fn, name, args)
    else:
        _expect_outputs_on(call(fn, name, *args), name, "cpu")
        check_meta_propagation(fn, name, args)


# ---------------------------------------------------------------------------------------------
# Training: gradient descent driven by the student's gradient, under a budget of CPU time.

#: A training check may take this many times the CPU time the reference gradient takes on the
#: grading machine, and at least MIN_BUDGET_SECONDS. 10 (rather than a looser 50) keeps a batch's
#: time decided by its fast notebooks. Measured here (one thread, the first lab's answer banks
#: and its calibrate_keys.py): the reference (autograd) needs 0.001-0.13 s for a whole training,
#: so every budget is the 2 s floor; every correct vectorised answer of the banks needs at most 0.3 s (a loop over
#: 1.3's ten classes), seven times under it, and a gradient that loops over 1.3's 260 items and
#: ten classes in Python about 28 s, fourteen times over it. CPU time, counted by the kernel, does
#: not grow when other processes load the machine, and a too-slow verdict needs the whole budget
#: spent (``descent.descend`` never stops on a projection).
BUDGET_FACTOR = 10.0
MIN_BUDGET_SECONDS = 2.0
#: The CPU time the kernel counts for a descent may exceed its budget by this factor and
#: CPU_SLACK_SECONDS before the grader says it was too slow: the process stops itself by its own
#: clock at the budget, and the request also decodes its inputs and sends the trajectory back.
CPU_SLACK = 1.25
CPU_SLACK_SECONDS = 0.25
#: The reference is timed on this many steps, scaled up: the fastest of PROBE_REPEATS runs, in CPU
#: time, so that a run slowed by a neighbour (a cache emptied by another process, a page fault)
#: does not set the budget.
PROBE_STEPS = 20
PROBE_REPEATS = 5
#: How many steps of a descent run in the notebook's process are replayed with fresh calls: those
#: that moved theta most, and as many drawn at random under the grading key (``seed_for``), besides
#: the first and the last.
REPLAYED_LARGEST = 4
REPLAYED_RANDOM = 4
REPLAY_SEED = 8191
#: A replayed step must agree with the trajectory's within this fraction of the larger of theta
#: and the step: the same function on the same inputs gives the same bits (a nondeterministic GPU
#: reduction moves float32 results by about 1e-7), while a step that was not the function's is off
#: by the whole step.
REPLAY_TOLERANCE = 1e-5
_reference_seconds: dict[tuple, float] = {}


class TooSlow(CheckFailed):
    """A training the student's function could not finish within its budget."""


def reference_seconds(reference: Callable[..., Tensor], start: Tensor, args: Sequence[Any],
                      steps: int, alpha: float) -> float:
    """The CPU time ``steps`` steps of the reference descent take on this machine (measured once
    per process and kind of input)."""
    key = (reference, start.device.type, tuple(start.shape), start.dtype,
           tuple((tuple(a.shape), a.dtype) for a in args if isinstance(a, Tensor)), steps)
    if key not in _reference_seconds:
        probe = min(steps, PROBE_STEPS)
        fastest = min(
            descent.descend(reference, start, args, alpha=alpha, steps=probe,
                            seconds=math.inf).seconds
            for _ in range(PROBE_REPEATS))
        _reference_seconds[key] = fastest / probe * steps
    return _reference_seconds[key]


def _replayed_steps(trajectory: Tensor) -> list[int]:
    """The steps of a trajectory the grader calls the function again for: the first, the last,
    those that moved theta most (a trajectory that jumps where the function would not shows its
    jump there) and some drawn under the grading key (which the notebook cannot know)."""
    steps = trajectory.shape[0] - 1
    flat = trajectory.detach().reshape(trajectory.shape[0], -1).to("cpu", torch.float64)
    moves = (flat[1:] - flat[:-1]).abs().amax(dim=1).nan_to_num(math.inf)
    largest = moves.argsort(descending=True)[:REPLAYED_LARGEST].tolist()
    drawn = torch.randint(steps, (REPLAYED_RANDOM,), generator=generator(REPLAY_SEED)).tolist()
    return sorted({0, steps - 1, *largest, *drawn})


def verify_trajectory(fn: Any, name: str, trajectory: Tensor, start: Tensor,
                      args: Sequence[Any], alpha: float) -> None:
    """A descent run in the notebook's process is believed only as far as fresh calls of the
    function reproduce it: it must start at the grader's own ``start``, and each replayed step
    ``theta_k - alpha * fn(theta_k, *args)`` must give the trajectory's next theta."""
    if tuple(trajectory.shape[1:]) != tuple(start.shape) or trajectory.dtype != start.dtype \
            or not torch.equal(trajectory[0].cpu(), start.cpu()):
        raise CheckFailed(f"`{name}`: the notebook's process sent back a training that does not "
                          "start where the grader's did, so it cannot be judged.")
    steps = trajectory.shape[0] - 1
    if steps == 0:
        return
    chosen = _replayed_steps(trajectory)
    each = getattr(fn, "call_each", None)
    if each is not None:  # one request for them all
        try:
            replayed = each([trajectory[k] for k in chosen], tuple(args))
        except CheckFailed:
            raise
        except Exception as error:  # the student's code may raise anything
            raise _raised(error, name, (start, *args)) from None
    else:
        replayed = [call(fn, name, trajectory[k], *args) for k in chosen]
    for k, step in zip(chosen, replayed):
        theta = trajectory[k]
        expect_tensor(step, name, shape=start.shape, dtype=start.dtype, args=(theta, *args))
        expected = (theta - alpha * step.detach().to(theta.device)).cpu().double()
        following = trajectory[k + 1].cpu().double()
        scale = torch.maximum(theta.detach().cpu().double().abs(),
                              (alpha * step.detach().cpu().double()).abs())
        if not bool(((following - expected).abs() <= REPLAY_TOLERANCE * scale + 1e-300).all()):
            raise CheckFailed(
                f"`{name}` gives another result when called again at step {k + 1} of its own "
                f"gradient descent ({steps} steps), so the training cannot be judged. A gradient "
                "must depend on its arguments alone (no randomness, no state kept between calls)."
            )


def train(fn: Any, name: str, start: Tensor, args: Sequence[Any], *, alpha: float, steps: int,
          reference: Callable[..., Tensor], what: str, how_to_speed_up: str) -> Tensor:
    """``steps`` steps of ``theta <- theta - alpha * fn(theta, *args)`` from ``start``.

    A function of the notebook runs the loop in its own process (``fn.descend``): one round trip
    instead of one per step. What comes back is checked here before it is believed: the
    trajectory is replayed at some of its steps with fresh calls (``verify_trajectory``), and its
    CPU time is the kernel's count. The loop has a budget, ``BUDGET_FACTOR`` times the reference's
    CPU time here (at least ``MIN_BUDGET_SECONDS``); a function too slow for it fails with a
    message that says so and how to speed it up (``how_to_speed_up``) once it has spent the
    budget (never on a projection from its first steps), or when it has waited rather than
    computed for ``descent.WALL_FACTOR`` times the budget on the wall clock. ``what`` names the
    training in messages ("gradient descent on 200 rows"). A step that is not a tensor of
    theta's shape and dtype fails as ``expect_tensor`` says.
    """
    fn = require_function(fn, name)
    budget = max(MIN_BUDGET_SECONDS,
                 BUDGET_FACTOR * reference_seconds(reference, start, args, steps, alpha))
    runner = getattr(fn, "descend", None)
    try:
        if runner is not None:
            outcome = runner(start, args, alpha=alpha, steps=steps, seconds=budget)
        else:  # here, or a composition of a notebook's function, counting that one's CPU too
            elsewhere = getattr(fn, "cpu_seconds", None)
            outcome = descent.descend(
                fn, start, args, alpha=alpha, steps=steps, seconds=budget,
                clock=None if elsewhere is None else lambda: time.process_time() + elsewhere())
    except CheckFailed:
        raise
    except Exception as error:  # the student's code may raise anything
        raise _raised(error, name, (start, *args)) from None
    if runner is not None:
        verify_trajectory(fn, name, outcome.trajectory, start, args, alpha)
    if outcome.bad_step is not None:
        expect_tensor(outcome.bad_step, name, shape=start.shape, dtype=start.dtype,
                      args=(start, *args))
    _judge_time(outcome, name, steps, budget, what, how_to_speed_up)
    return outcome.theta


def _judge_time(outcome: descent.Descent, name: str, steps: int, budget: float, what: str,
                how_to_speed_up: str) -> None:
    """TooSlow unless the descent finished within its budget (and the kernel's count of its CPU
    time within the slack). A descent that stopped short has either spent its whole budget of
    CPU time, which the verdict says, or reached the wall-clock limit with CPU time to spare: it
    waited (slept, blocked) rather than computed."""
    if outcome.steps == steps and outcome.seconds <= CPU_SLACK * budget + CPU_SLACK_SECONDS:
        return
    rule = (f"{BUDGET_FACTOR:.0f} times what the reference gradient takes, at least "
            f"{MIN_BUDGET_SECONDS:.0f} s")
    if outcome.steps == steps:
        said = (f"used {outcome.seconds:.1f} s of CPU time, and the grader allows {budget:.1f} s "
                f"({rule})")
    elif outcome.seconds >= budget:
        said = (f"need more than the {budget:.1f} s of CPU time the grader allows ({rule}): it "
                f"had used {outcome.seconds:.1f} s after {outcome.steps} steps")
    else:
        said = (f"did not finish within {descent.WALL_FACTOR * budget:.0f} s on the clock, with "
                f"only {outcome.seconds:.1f} s of CPU time used after {outcome.steps} steps: the "
                "function waits (sleeps, reads, blocks) rather than computes")
    raise TooSlow(f"`{name}` is too slow for the grader: {steps} steps of {what} {said}. "
                  f"{how_to_speed_up}".rstrip())
