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


# float64: any correct formula agrees with the reference to about 1e-12 on these well-conditioned
# inputs; 1e-7 leaves room for every stable route (loops, autograd, other factorisations), while a
# wrong formula (sign, factor, transpose, mean for sum) is off by O(1).
FLOAT64 = Tolerance(rtol=1e-7, atol=1e-9)
# float32: eps is 1.2e-7; sums over up to a few hundred terms and moderately conditioned
# factorisations lose up to about 1e-4 relative, still far below the O(1) errors of a wrong formula.
FLOAT32 = Tolerance(rtol=1e-3, atol=1e-3)


@dataclass(frozen=True)
class GradedFunction:
    """A graded function: its name, argument names, inputs to try and an independent reference.

    ``cases`` are float64 CPU inputs (drawn with fixed seeds); ``reference`` maps them to the
    expected float64 result, by a route independent of the student's (a library routine or
    autograd).
    """

    name: str
    arg_names: Sequence[str]
    cases: Callable[[], list[Args]]
    reference: Callable[..., torch.Tensor]
    float64: Tolerance = FLOAT64
    float32: Tolerance = FLOAT32

    def _check_case(self, fn: Any, args: Args, dtype: torch.dtype, device: torch.device) -> None:
        inputs = cast(args, dtype, device)
        # The reference sees exactly the numbers the student's function sees, in float64.
        expected = self.reference(*cast(cast(args, dtype, "cpu"), torch.float64, "cpu"))
        result = core.call(fn, self.name, *inputs)
        core.expect_tensor(
            result, self.name, shape=expected.shape, dtype=dtype, device=device, args=inputs
        )
        tolerance = self.float64 if dtype == torch.float64 else self.float32
        core.expect_close(
            result, expected, self.name, rtol=tolerance.rtol, atol=tolerance.atol, args=inputs
        )

    def check_values(self, fn: Any, cases: list[Args] | None = None) -> None:
        """Correct shape and values in float64 on random inputs of several shapes, every device."""
        chosen = self.cases() if cases is None else cases

        def on(device: torch.device) -> None:
            for args in chosen:
                self._check_case(fn, args, torch.float64, device)

        core.on_every_device(on)

    def check_dtypes(self, fn: Any) -> None:
        """float32 in gives float32 out (and right values); float64 in gives float64 out."""

        def on(device: torch.device) -> None:
            for args in self.cases()[:2]:
                for dtype in (torch.float32, torch.float64):
                    self._check_case(fn, args, dtype, device)

        core.on_every_device(on)

    def check_inputs_unmodified(self, fn: Any) -> None:
        """Right values without changing the arguments in place, on any device.

        Values are checked too: leaving the inputs alone earns nothing for a wrong function.
        """

        def on(device: torch.device) -> None:
            for args in self.cases():
                inputs = cast(args, torch.float64, device)
                before = core.snapshot(inputs)
                expected = self.reference(*args)
                result = core.call(fn, self.name, *inputs)
                core.expect_unmodified(self.name, self.arg_names, inputs, before)
                core.expect_tensor(result, self.name, shape=expected.shape, dtype=torch.float64,
                                   device=device, args=inputs)
                core.expect_close(result, expected, self.name, rtol=self.float64.rtol,
                                  atol=self.float64.atol, args=inputs)

        core.on_every_device(on)

    def check_devices(self, fn: Any) -> None:
        """Right values, with the result on the inputs' device: on meta tensors here (which
        catches tensors created on the CPU without a GPU), and on CUDA where present."""
        args = self.cases()[0]
        self._check_case(fn, args, torch.float32, torch.device("cpu"))
        core.check_meta_propagation(fn, self.name, cast(args, torch.float32, "meta"))
        if torch.cuda.is_available():
            with core.full_precision():
                self._check_case(fn, args, torch.float32, torch.device("cuda"))


def random_matrix(gen: torch.Generator, *shape: int) -> torch.Tensor:
    """Standard normal float64 entries, drawn on the CPU from a seeded generator."""
    return torch.randn(*shape, generator=gen, dtype=torch.float64)
