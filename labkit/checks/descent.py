"""Gradient descent driven by a student's gradient function, under a time budget.

The hidden training checks run hundreds of steps ``theta <- theta - alpha * grad(theta, *args)``.
Run by the grader one call at a time, every step would cross the sandbox's connection twice; so the
loop runs where the function lives (the notebook's confined process, ``grade.child``), and only the
final parameters come back to be judged in the grader. That gives a student nothing they did not
have: the function's every result is theirs to choose anyway, and the judging stays outside.

This module holds no test, reference or expected value: it is imported by the sandboxed process as
well as by the checks, so both loops are one loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

#: Before stopping a descent on its projected time, at least this many steps and seconds are
#: measured: the first call of a function is often slower than the others (caches, lazy set-up).
PROJECT_AFTER_STEPS = 5
PROJECT_AFTER_SECONDS = 0.1
#: A descent whose projected total exceeds its budget by this factor stops at once; one under it
#: runs until the budget itself is spent, so that noise in the projection (step times vary by a
#: few per cent once warm) never fails a function that would have finished in time, while a
#: function clearly too slow costs a tenth of a second rather than the whole budget.
PROJECT_MARGIN = 1.25


@dataclass
class Descent:
    """How a descent ended: its parameters, or why it stopped early."""

    theta: torch.Tensor
    steps: int
    seconds: float
    #: True when the budget ran out (or was projected to run out) before the last step.
    over_budget: bool = False
    #: The result of the step that was not a tensor like theta (then ``theta`` is the last good one).
    bad_step: Any = None


def _fresh(value: Any) -> Any:
    return value.clone() if isinstance(value, torch.Tensor) else value


def _elapsed(since: float, theta: torch.Tensor) -> float:
    if theta.is_cuda:  # kernels run asynchronously: count them, not their launches
        torch.cuda.synchronize(theta.device)
    return time.perf_counter() - since


def _like(step: Any, theta: torch.Tensor) -> bool:
    return isinstance(step, torch.Tensor) and step.shape == theta.shape \
        and step.dtype == theta.dtype


def descend(grad: Callable[..., Any], theta: torch.Tensor, args: Sequence[Any], *, alpha: float,
            steps: int, seconds: float) -> Descent:
    """``steps`` steps of gradient descent from ``theta`` with ``grad(theta, *args)``.

    Each call gets fresh copies of its arguments, as a call from the grader would: a function
    that changes its inputs in place cannot change what later steps see. A step placed on another
    device is moved (placement is judged by the devices check, not here). The descent stops when
    ``seconds`` pass, or as soon as its projected time is ``PROJECT_MARGIN`` times over them.
    Errors of the function propagate.
    """
    started = time.perf_counter()
    for done in range(steps):
        step = grad(theta.clone(), *(_fresh(a) for a in args))
        if not _like(step, theta):
            return Descent(theta, done, _elapsed(started, theta), bad_step=step)
        theta = theta - alpha * step.detach().to(theta.device)
        elapsed = _elapsed(started, theta)
        finished = done + 1
        if finished == steps:
            break
        projected = elapsed / finished * steps
        if elapsed > seconds or (finished >= PROJECT_AFTER_STEPS and elapsed >= PROJECT_AFTER_SECONDS
                                 and projected > PROJECT_MARGIN * seconds):
            return Descent(theta, finished, elapsed, over_budget=True)
    return Descent(theta, steps, _elapsed(started, theta))
