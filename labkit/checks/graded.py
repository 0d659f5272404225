"""The standard checks of a graded tensor function, each one hidden test case.

A graded function is described once, by its name, its argument names, the inputs to try and an
independent reference; the hidden test cells of a master notebook then call one method each
(values, dtypes, unmodified inputs, meta propagation), which gives partial credit per property.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from . import core

Args = tuple[Any, ...]


def cast(args: Args, dtype: torch.dtype, device: torch.device | str) -> Args:
    """Move inputs to a device, giving floating tensors ``dtype`` (class indices keep int64)."""
    moved = []
    for arg in args:
        if isinstance(arg, torch.Tensor):
            arg = arg.to(device=device, dtype=dtype) if arg.is_floating_point() else arg.to(device)
        moved.append(arg)
    return tuple(moved)


@dataclass(frozen=True)
class Tolerance:
    """Allowed error: ``rtol`` per entry plus ``atol`` times the largest expected entry."""

    rtol: float
    atol: float


# float64: results must be accurate to float64's level. Every correct variant of the answer banks
# (loops, einsum, autograd, other factorisations and formulas) was measured against
# the references under 20 grading keys: at most 2e-15 of the largest expected entry off, and 1e-12
# of an entry that cancels to nearly zero. 1e-10 relative per entry and 1e-12 of the largest entry
# leave a margin of 50-500 for other BLAS builds and GPU reductions, while a computation that goes
# through float32 (about 1e-8 off), a probability clamped to [1e-7, 1 - 1e-7] or a score clamped to
# [-10, 10] fails, as does a wrong formula (sign, factor, transpose, mean for sum: off by O(1)).
FLOAT64 = Tolerance(rtol=1e-10, atol=1e-12)
# float32: eps is 1.2e-7; sums over up to a few hundred terms and moderately conditioned
# factorisations lose up to about 1e-4 relative, still far below the O(1) errors of a wrong formula.
FLOAT32 = Tolerance(rtol=1e-3, atol=1e-3)


#: A usual mistake: a function computing its wrong result from the inputs (float64, CPU), and
#: the sentence that names it for the student.
Mistake = tuple[Callable[..., torch.Tensor], str]


def sign_and_mean(reference: Callable[..., Any], sign: str, mean: str) -> dict[str, Mistake]:
    """The two mistakes every sum over the rows of ``X`` (the second argument) invites, with the
    words that name them: the opposite sign, and the mean in place of the sum."""
    return {"sign": (lambda *args: -reference(*args), sign),
            "mean": (lambda *args: reference(*args) / args[1].shape[0], mean)}


def known_mistake(fn: Any, name: str, cases: Sequence[Args], mistakes: dict[str, Mistake]) -> str:
    """The sentence of the one usual mistake whose wrong results the student's function gives on
    ``cases`` (float64, CPU), or "": a hint is given only where the evidence shows its mistake.

    A case where the student's function or a wrong formula raises (a wrong shape that cannot be
    computed) is left out for that comparison; a mistake must match on at least one case and on
    every case where both could be computed, and no other mistake may match too.
    """
    matched: dict[str, int] = {mistake: 0 for mistake in mistakes}
    for args in cases:
        try:
            result = core.call(fn, name, *args)
        except core.CheckFailed:
            continue
        if not isinstance(result, torch.Tensor) or not result.is_floating_point():
            return ""
        mine = result.detach().cpu().double()
        for mistake, (formula, _) in mistakes.items():
            if mistake not in matched:
                continue
            try:
                wrong = formula(*args).double()
            except Exception:  # a formula that cannot be computed for this shape
                continue
            if mine.shape == wrong.shape and bool(torch.isfinite(mine).all()) \
                    and torch.allclose(mine, wrong, rtol=1e-6,
                                       atol=1e-9 * (1 + float(wrong.abs().max()))):
                matched[mistake] += 1
            else:
                del matched[mistake]
    found = [mistake for mistake, count in matched.items() if count]
    return mistakes[found[0]][1] if len(found) == 1 else ""


#: What a float64 answer right only to float32's level is told: both causes seen in practice.
FLOAT32_LEVEL = (
    "Its values are right to about 7 digits but not to float64's 15: a step of it runs in "
    "float32 (`.float()`, a tensor made with `dtype=torch.float32` or the default dtype) or "
    "clamps values (e.g. probabilities at 1e-7). Keep every step in the inputs' dtype, and "
    "exact."
)


def _float32_close(result: torch.Tensor, reference: torch.Tensor, allowed: Tolerance) -> bool:
    """Whether a float64 result that failed float64's tolerance is within float32's."""
    a = result.detach().to(device="cpu", dtype=torch.float64)
    e = reference.detach().to(device="cpu", dtype=torch.float64)
    if a.shape != e.shape or not bool(torch.isfinite(a).all()):
        return False
    scale = float(e.abs().max()) if e.numel() else 0.0
    return bool(((a - e).abs() <= max(allowed.atol * scale, 1e-12) + allowed.rtol * e.abs()).all())


@dataclass(frozen=True)
class GradedFunction:
    """A graded function: its name, argument names, inputs to try and an independent reference.

    ``cases`` are float64 CPU inputs (drawn with seeded generators, see ``core.generator``);
    ``reference`` maps them to the expected float64 result, by a route independent of the
    student's (a library routine or autograd).

    Each check judges one property, so that one mistake costs one test: ``check_values`` the
    values (whatever the result's dtype), ``check_dtypes`` the dtype, ``check_inputs_unmodified``
    the arguments, ``check_devices`` the placement, ``check_plain`` (for gradients) that no
    autograd graph is attached. Each needs a tensor of the right shape, the
    least that counts as an answer. Every check runs on every device present (the CPU, and
    CUDA where there is one); placement is judged by the devices check alone (on CUDA a failure
    caused only by where tensors live is excused elsewhere), so a device bug costs one point.
    Other checks accept a result that requires grad (values are compared detached): only
    ``check_plain`` judges it.
    """

    name: str
    arg_names: Sequence[str]
    cases: Callable[[], list[Args]]
    reference: Callable[..., torch.Tensor]
    float64: Tolerance = FLOAT64
    float32: Tolerance = FLOAT32
    #: The usual mistakes a failed values case names when the answer's values match them.
    mistakes: dict[str, Mistake] = field(default_factory=dict)

    def expected(self, args: Args, dtype: torch.dtype) -> torch.Tensor:
        """The reference on exactly the numbers the student's function sees (``args`` cast to
        ``dtype``), computed in float64 on the CPU."""
        return self.reference(*cast(cast(args, dtype, "cpu"), torch.float64, "cpu"))

    def expect_result(self, result: Any, expected: torch.Tensor, inputs: Args) -> torch.Tensor:
        """The result is a tensor of the expected shape (dtype and device are other checks')."""
        return core.expect_tensor(result, self.name, shape=expected.shape, args=inputs)

    def tolerance(self, *dtypes: torch.dtype) -> Tolerance:
        """float64's tolerance when the inputs and the result are float64, else float32's: a
        values check judges values, and a float32 result cannot hold float64 accuracy."""
        return self.float64 if all(d == torch.float64 for d in dtypes) else self.float32

    def known_mistake(self, fn: Any) -> str:
        """The usual mistake the function's values show on the first two cases, or ""."""
        found = known_mistake(fn, self.name, self.cases()[:2], self.mistakes) if self.mistakes else ""
        return found or self.ignored_argument(fn)

    def ignored_argument(self, fn: Any) -> str:
        """A sentence when the function gives the same result for two values of its first
        argument where the reference's results differ (a hard-coded answer, or one that leaves
        that argument out), else ""."""
        args = self.cases()[0]
        first = args[0]
        if not isinstance(first, torch.Tensor) or not first.is_floating_point():
            return ""
        other = (2 * first + 1, *args[1:])
        try:
            results = [core.call(fn, self.name, *inputs) for inputs in (args, other)]
        except core.CheckFailed:
            return ""
        if not all(isinstance(r, torch.Tensor) for r in results) \
                or results[0].shape != results[1].shape \
                or not torch.equal(results[0].detach().cpu(), results[1].detach().cpu()) \
                or torch.allclose(self.reference(*args), self.reference(*other)):
            return ""
        argument = self.arg_names[0]
        return (f"Its result does not change when `{argument}` changes: compute it from "
                f"`{argument}` and the other arguments, not from fixed numbers.")

    def expect_values(self, fn: Any, args: Args, dtype: torch.dtype, what: str = "values",
                      tolerance: Tolerance | None = None, explain: bool = True) -> None:
        """One values case on every device: ``args`` cast to ``dtype``, compared with the
        reference (within ``tolerance`` if given, else the dtype's). A failure names the usual
        mistake the values show, if any (unless ``explain`` is false)."""
        returned: list[bool] = []
        try:
            self._expect_values(fn, args, dtype, what, tolerance, returned)
        except core.CheckFailed as failure:
            # Only a result's values are explained: a call that raised or ran out of time is
            # not called again for a hint.
            mistake = self.known_mistake(fn) if explain and returned else ""
            if not mistake or isinstance(failure, core.PlacementFailed):
                raise
            raise core.CheckFailed(f"{failure}\n  {mistake}") from None

    def _expect_values(self, fn: Any, args: Args, dtype: torch.dtype, what: str,
                       tolerance: Tolerance | None, returned: list[bool]) -> None:
        expected = self.expected(args, dtype)

        def on(device: torch.device) -> None:
            inputs = cast(args, dtype, device)
            answer = core.call(fn, self.name, *inputs)
            returned.append(True)
            result = self.expect_result(answer, expected, inputs)
            reference = expected
            if result.is_floating_point() and result.dtype != torch.float64:
                # A lower-precision result is judged on what its dtype can hold: the reference
                # rounded to it (so exact functions such as a reshape stay exact).
                reference = expected.to(result.dtype).to(torch.float64)
            allowed = tolerance or self.tolerance(dtype, result.dtype)
            try:
                core.expect_close(result, reference, self.name, rtol=allowed.rtol,
                                  atol=allowed.atol, args=inputs, what=what)
            except core.CheckFailed as failure:
                if allowed is self.float32 or not _float32_close(result, reference, self.float32):
                    raise
                raise core.CheckFailed(f"{failure}\n  {FLOAT32_LEVEL}") from None

        core.on_every_device(on)

    def check_values(self, fn: Any, cases: list[Args] | None = None,
                     dtypes: Sequence[torch.dtype] = (torch.float64,)) -> None:
        """Correct shape and values on random inputs of several shapes (float64 unless told)."""
        chosen = self.cases() if cases is None else cases
        for dtype in dtypes:
            for args in chosen:
                self.expect_values(fn, args, dtype)

    def check_dtypes(self, fn: Any) -> None:
        """float32 in gives float32 out; float64 in gives float64 out (values are not judged)."""

        def on(device: torch.device) -> None:
            for args in self.cases()[:2]:
                for dtype in (torch.float32, torch.float64):
                    inputs = cast(args, dtype, device)
                    result = self.expect_result(
                        core.call(fn, self.name, *inputs), self.expected(args, dtype), inputs
                    )
                    core.expect_tensor(result, self.name, shape=result.shape, dtype=dtype,
                                       args=inputs)

        core.on_every_device(on)

    def check_plain(self, fn: Any) -> None:
        """The result is a plain tensor, detached from autograd (``core.expect_plain``); values
        and dtype are other checks'. A gradient or a fit is a value: one still attached to its
        graph drags that graph into every step of a descent that uses it."""

        def on(device: torch.device) -> None:
            for args in self.cases()[:2]:
                inputs = cast(args, torch.float64, device)
                result = self.expect_result(core.call(fn, self.name, *inputs),
                                            self.expected(args, torch.float64), inputs)
                core.expect_plain(result, self.name, args=inputs)

        core.on_every_device(on)

    def check_inputs_unmodified(self, fn: Any) -> None:
        """The function leaves its arguments as it found them: values, ``requires_grad`` and
        ``.grad`` (see ``core.expect_unmodified``). Values are not judged; a result of the right
        shape is needed, so a blank function earns nothing."""

        def on(device: torch.device) -> None:
            for args in self.cases():
                inputs = cast(args, torch.float64, device)
                result = core.expect_unmodified(fn, self.name, self.arg_names, inputs)
                self.expect_result(result, self.expected(args, torch.float64), inputs)

        core.on_every_device(on)

    def check_devices(self, fn: Any) -> None:
        """The result is on the inputs' device: decided on CUDA where present, else by meta
        propagation (which catches tensors created on the CPU, but not a function that answers
        meta inputs specially). Values and dtype are not judged."""
        core.check_placement(fn, self.name, self.cases()[0])


def random_matrix(gen: torch.Generator, *shape: int) -> torch.Tensor:
    """Standard normal float64 entries, drawn on the CPU from a seeded generator."""
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def random_uniform(gen: torch.Generator, count: int, low: float, high: float) -> list[float]:
    """``count`` Python floats drawn uniformly from [low, high) with a seeded generator."""
    return (low + (high - low) * torch.rand(count, generator=gen, dtype=torch.float64)).tolist()


def random_signed(gen: torch.Generator, count: int) -> list[float]:
    """Numbers of size 0.5 to 2 with random signs: away from 0, so that a quotient is defined."""
    sizes = random_uniform(gen, count, 0.5, 2.0)
    signs = torch.randint(2, (count,), generator=gen).tolist()
    return [s if sign else -s for s, sign in zip(sizes, signs)]
