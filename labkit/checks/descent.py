"""Gradient descent driven by a student's gradient function, under a budget of CPU time.

The hidden training checks run hundreds of steps ``theta <- theta - alpha * grad(theta, *args)``.
Run by the grader one call at a time, every step would cross the sandbox's connection twice; so the
loop runs where the function lives (the notebook's confined process, ``labkit.sandbox.runner``),
and the whole trajectory (every theta it went through) comes back. Nothing in the reply is believed as a
claim: the grader replays steps of it with fresh calls (``core.verify_trajectory``), measures the
CPU time the notebook's processes used from the kernel, and judges the last theta itself.

This module holds no test, reference or expected value: it is imported by the sandboxed process as
well as by the checks, so both loops are one loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

#: A descent stops when the CPU time it has actually spent passes its budget, never on a projection
#: from its first steps: one slow step (a cache warming up, a page fault, a neighbour on the same
#: core) must not decide a verdict, so a too-slow verdict always rests on a whole budget spent.
#: The wall-clock limit of a descent, in multiples of its CPU budget: only a step that waits
#: (sleeps, blocks) rather than computes reaches it. A machine whose every core runs four other
#: processes gives a process about a fifth of a core: 20 times leaves four times that margin.
WALL_FACTOR = 20.0


@dataclass
class Descent:
    """How a descent ended: every theta it went through, or why it stopped early."""

    #: theta before the first step, then after each step: ``steps + 1`` rows when it finished.
    trajectory: torch.Tensor
    #: CPU seconds the loop took, by the clock of the process that ran it (the grader's own
    #: verdict uses the kernel's count of the notebook's processes instead).
    seconds: float
    #: The result of the step that was not a tensor like theta (the trajectory ends before it).
    bad_step: Any = None

    @property
    def theta(self) -> torch.Tensor:
        return self.trajectory[-1]

    @property
    def steps(self) -> int:
        return self.trajectory.shape[0] - 1


def fresh(value: Any) -> Any:
    """A copy of a tensor (anything else as it is): what each call of a student's function gets."""
    return value.clone() if isinstance(value, torch.Tensor) else value


def cpu_seconds(theta: torch.Tensor | None = None) -> float:
    """This process's CPU time (every thread), after the GPU's queued work on ``theta``'s device
    is done (kernels run asynchronously: count them, not their launches)."""
    if theta is not None and theta.is_cuda:
        torch.cuda.synchronize(theta.device)
    return time.process_time()


def _like(step: Any, theta: torch.Tensor) -> bool:
    return isinstance(step, torch.Tensor) and step.shape == theta.shape \
        and step.dtype == theta.dtype


def descend(grad: Callable[..., Any], theta: torch.Tensor, args: Sequence[Any], *, alpha: float,
            steps: int, seconds: float, clock: Callable[[], float] | None = None) -> Descent:
    """``steps`` steps of gradient descent from ``theta`` with ``grad(theta, *args)``.

    Each call gets fresh copies of its arguments, as a call from the grader would: a function
    that changes its inputs in place cannot change what later steps see. A step placed on another
    device is moved (placement is judged by the devices check, not here). The descent stops when
    the CPU time it has spent passes ``seconds``, or when ``WALL_FACTOR`` times ``seconds`` of
    wall-clock time have passed (a step that waits rather than computes). Errors
    of the function propagate. ``clock`` replaces this process's CPU time where the function
    spends its time elsewhere (a composition of a notebook's function, whose process is another).
    """
    def spent(at: torch.Tensor) -> float:
        return cpu_seconds(at) if clock is None else (cpu_seconds(at), clock())[1]

    started, wall_started = spent(theta), time.monotonic()
    path = [theta]
    for done in range(steps):
        step = grad(theta.clone(), *(fresh(a) for a in args))
        if not _like(step, theta):
            return Descent(torch.stack(path), spent(theta) - started, bad_step=step)
        theta = theta - alpha * step.detach().to(theta.device)
        path.append(theta)
        if done + 1 == steps:
            break
        if spent(theta) - started > seconds \
                or time.monotonic() - wall_started > WALL_FACTOR * seconds:
            break
    return Descent(torch.stack(path), spent(theta) - started)
