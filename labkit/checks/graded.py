"""The standard checks of a graded tensor function, each one hidden test case.

A graded function is described once, by its name, its argument names, the inputs to try and an
independent reference; the hidden test cells of a master notebook then call one method each
(values, dtypes, unmodified inputs, meta propagation), which gives partial credit per property.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
# (loops, einsum, autograd, other factorisations and formulas; tests/answers) was measured against
# the references under 20 grading keys: at most 2e-15 of the largest expected entry off, and 1e-12
# of an entry that cancels to nearly zero. 1e-10 relative per entry and 1e-12 of the largest entry
# leave a margin of 50-500 for other BLAS builds and GPU reductions, while a computation that goes
# through float32 (about 1e-8 off), a probability clamped to [1e-7, 1 - 1e-7] or a score clamped to
# [-10, 10] fails, as does a wrong formula (sign, factor, transpose, mean for sum: off by O(1)).
FLOAT64 = Tolerance(rtol=1e-10, atol=1e-12)
# float32: eps is 1.2e-7; sums over up to a few hundred terms and moderately conditioned
# factorisations lose up to about 1e-4 relative, still far below the O(1) errors of a wrong formula.
FLOAT32 = Tolerance(rtol=1e-3, atol=1e-3)


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

    def expect_values(self, fn: Any, args: Args, dtype: torch.dtype, what: str = "values",
                      tolerance: Tolerance | None = None) -> None:
        """One values case on every device: ``args`` cast to ``dtype``, compared with the
        reference (within ``tolerance`` if given, else the dtype's)."""
        expected = self.expected(args, dtype)

        def on(device: torch.device) -> None:
            inputs = cast(args, dtype, device)
            result = self.expect_result(core.call(fn, self.name, *inputs), expected, inputs)
            reference = expected
            if result.is_floating_point() and result.dtype != torch.float64:
                # A lower-precision result is judged on what its dtype can hold: the reference
                # rounded to it (so exact functions such as a reshape stay exact).
                reference = expected.to(result.dtype).to(torch.float64)
            allowed = tolerance or self.tolerance(dtype, result.dtype)
            core.expect_close(result, reference, self.name, rtol=allowed.rtol, atol=allowed.atol,
                              args=inputs, what=what)

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
