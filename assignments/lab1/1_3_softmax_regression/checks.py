"""Hidden checks of assignment 1.3 (softmax regression).

References are independent of what students write: the loss is ``F.cross_entropy`` with
``reduction="sum"`` (stable for any logits), the gradients are autograd of that loss (through
``[Theta, 0]`` for the reduced parameterisation), the gradient check uses central differences of the
reference loss, and the trained models use scikit-learn's own copy of the digits data.

Shapes throughout: ``Theta`` is n x K (n x (K - 1) for the reduced gradient), ``X`` is m x n and
``y`` is an m x 1 column of int64 class indices in 0..K-1.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from . import core
from .graded import FLOAT64, Args, GradedFunction, cast, random_matrix, sign_and_mean

Tensor = torch.Tensor

#: The digits model: all ten classes, pixels (0..16) divided by 16, a ones column, a seeded split.
DIGITS_TRAIN_ROWS = 260
DIGITS_SPLIT_SEED = 0
DIGITS_INIT_SEED = 1
#: Step and iterations of the notebook's loop. The loss is a sum over 260 rows, so its curvature is
#: at most lambda_max(X^T X) / 2, about 1500 on these rows: 0.001 is below the 2 / L that
#: guarantees a decrease at every step.
DIGITS_ALPHA = 1e-3
DIGITS_ITERATIONS = 1000
#: Test-accuracy bound for both trained models. With the reference gradient and the notebook's
#: step and iterations, split seeds 0-19 give the full model 91.3-94.1% (93.8% on the graded split,
#: seed 0; 93.2-93.8% there over start seeds 0-5) and the reduced model 90.8-93.2% (92.4% on seed 0;
#: 92.3-92.8% over start seeds 0-5); over 40 grading keys (split and start drawn under each,
#: assignments/lab1/calibrate_keys.py) the full model scores 91.5-94.4% and the reduced one 90.7-94.2%. 0.88 passes every correct gradient with a margin of over 2.5
#: points (about 40 of the 1537 test images); an untrained model scores about 10%, and a gradient
#: divided by the number of rows (a mean) reaches only 15% with this step.
DIGITS_ACCURACY_BOUND = 0.88
#: Central-difference step for the float64 gradient check. The error of a central difference is
#: about h^2 |J'''| / 6 (truncation) plus eps |J| / h (rounding), smallest near h = eps^(1/3),
#: about 6e-6; with h = 1e-5 both terms are below 1e-8 relative to the gradient here, while the
#: original's h = 1e-3 (chosen for float32) leaves truncation errors near 1e-6.
GRADCHECK_STEP = 1e-5


# ---------------------------------------------------------------------------------------------
# References.


def reference_loss(Theta: Tensor, X: Tensor, y: Tensor) -> Tensor:
    """Sum over the items of -log P(y_i | x_i), stable for logits of any size."""
    return F.cross_entropy(X @ Theta, y.reshape(-1), reduction="sum")


def _with_zero_column(Theta: Tensor) -> Tensor:
    return torch.cat((Theta, Theta.new_zeros(Theta.shape[0], 1)), dim=1)


def reference_grad(Theta: Tensor, X: Tensor, y: Tensor) -> Tensor:
    Theta = Theta.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(reference_loss(Theta, X, y), Theta)
    return grad


def reference_grad_0(Theta: Tensor, X: Tensor, y: Tensor) -> Tensor:
    """Gradient with respect to the first K - 1 columns, the last column held at zero."""
    Theta = Theta.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(reference_loss(_with_zero_column(Theta), X, y), Theta)
    return grad


# ---------------------------------------------------------------------------------------------
# Inputs.

#: (features n, classes K, items m, classes that occur in y). The first two cases feed the dtype and
#: device checks, so they have several items (a mean then differs from a sum) and m != K (a one-hot
#: broadcast to m x m shows). One case leaves the last classes out of y: the number of classes
#: comes from Theta, not from the labels.
_SHAPES = [
    (4, 3, 9, 3),
    (20, 10, 100, 10),
    (3, 2, 5, 2),
    (1, 4, 6, 4),
    (7, 5, 12, 3),
    (5, 7, 1, 7),
    (12, 6, 40, 6),
]


def _labels(gen: torch.Generator, m: int, classes: int) -> Tensor:
    """An m x 1 column of labels in 0..classes-1 in which every class occurs (when m < classes,
    the m largest), at places drawn under the grading key. Which classes occur decides whether
    an answer that takes K from the labels fails a case, so it is the same under every key; only
    the order and the other labels vary."""
    y = torch.randint(classes, (m,), generator=gen, dtype=torch.int64)
    placed = torch.randperm(m, generator=gen)[: min(m, classes)]
    y[placed] = torch.arange(classes - 1, classes - 1 - len(placed), -1, dtype=torch.int64)
    return y.reshape(m, 1)


def _cases(seed: int, reduced: bool) -> list[Args]:
    gen = core.generator(seed)
    cases = []
    for n, K, m, present in _SHAPES:
        Theta = random_matrix(gen, n, K - 1 if reduced else K)
        cases.append((Theta, random_matrix(gen, m, n), _labels(gen, m, present)))
    return cases


class _SoftmaxFunction(GradedFunction):
    """A graded function of (Theta, X, y) whose messages say where K comes from when a case
    leaves classes out of y."""

    def expect_values(self, fn: Any, args: Args, dtype: torch.dtype, what: str = "values",
                      tolerance: Any = None, explain: bool = True) -> None:
        try:
            super().expect_values(fn, args, dtype, what, tolerance, explain)
        except core.CheckFailed as failure:
            Theta, _, y = args
            if y.numel() and int(y.max()) + 1 < Theta.shape[1] + (1 if self.reduced else 0):
                raise core.CheckFailed(
                    f"{failure}\n  In this case the last classes do not occur in `y`: take the "
                    "number of classes K from `Theta` (`Theta.shape[1]`), not from the labels "
                    "(e.g. `F.one_hot(y.flatten(), num_classes=K)`)."
                ) from None
            raise

    @property
    def reduced(self) -> bool:
        return self.name.endswith("_0")


class _ScalarFunction(_SoftmaxFunction):
    """A graded function whose result is a 0-d tensor; says so plainly when it is not."""

    def expect_result(self, result: Any, expected: Tensor, inputs: Args) -> Tensor:
        if isinstance(result, (float, int)):
            raise core.CheckFailed(
                f"`{self.name}` returned a Python {type(result).__name__}; return a 0-d tensor "
                "(do not call `.item()` or `float(...)`)."
            )
        if isinstance(result, Tensor) and result.dim() != 0:
            raise core.CheckFailed(
                f"`{self.name}` returned a tensor of shape {tuple(result.shape)}; expected a 0-d "
                "(scalar) tensor, e.g. the result of `.sum()`. Sum over every item, and do not "
                "keep extra dimensions."
            )
        return core.expect_tensor(result, self.name, shape=(), args=inputs)


# ---------------------------------------------------------------------------------------------
# Known mistakes: what a failed answer's values match, so that its message names the bug.

#: What each usual wrong formula is called in a message (the words a TA would use for it).
SIGN = ("Its values are those of the gradient with the opposite sign: the gradient of the loss "
        "is X^T (P - Y), the probabilities minus the one-hot labels.")
MEAN = ("Its values are those of the gradient divided by the number of items: the loss is the "
        "*sum* of -log P(y_i | x_i) over the items, so do not average.")
AXIS = ("Its values are those of a softmax taken over the items (`dim=0`, down each column) "
        "instead of over the classes: take the softmax along the class axis, `dim=1`, so that "
        "each row of P sums to 1.")


BROADCAST = ("Its values are those of `y`, an m x 1 column, combined with a vector of length m "
             "(`torch.arange(m)`, `y.flatten()`), which broadcasts to an m x m block, so that "
             "every item gets the labels of every other item. Flatten `y` first (`y.flatten()` "
             "or `y[:, 0]`), or use `gather(1, y)` / `scatter_(1, y, 1.0)`.")


def _one_hot(y: Tensor, K: int, like: Tensor) -> Tensor:
    return F.one_hot(y.reshape(-1), K).to(like.dtype)


def _broadcast_one_hot(y: Tensor, like: Tensor) -> Tensor:
    """The one-hot ``Y[arange(m), y] = 1`` with y m x 1: a one at every class present in y."""
    Y = torch.zeros_like(like)
    Y[torch.arange(like.shape[0]), y] = 1.0
    return Y


def _compared_one_hot(y: Tensor, K: int, like: Tensor) -> Tensor:
    """The one-hot ``(y.flatten() == y)[:, :K]``: m x m equalities of labels, cut to K columns."""
    return (y.reshape(-1) == y).to(like.dtype)[:, :K]


def _gradient_mistakes(reduced: bool) -> dict[str, Any]:
    """The usual wrong gradients (full, or reduced through [Theta, 0] and its first K - 1
    columns)."""
    def full(Theta: Tensor) -> Tensor:
        return _with_zero_column(Theta) if reduced else Theta

    def grad(Theta: Tensor, X: Tensor, y: Tensor, dim: int = 1) -> Tensor:
        Z = X @ full(Theta)
        result = X.T @ (torch.softmax(Z, dim=dim) - _one_hot(y, Z.shape[1], Z))
        return result[:, : Theta.shape[1]]

    def with_one_hot(make: Callable[[Tensor, int, Tensor], Tensor]) -> Callable[..., Tensor]:
        def wrong(Theta: Tensor, X: Tensor, y: Tensor) -> Tensor:
            P = torch.softmax(X @ full(Theta), dim=1)
            return (X.T @ (P - make(y, P.shape[1], P)))[:, : Theta.shape[1]]
        return wrong

    return {
        **sign_and_mean(grad, SIGN, MEAN),
        "axis": (lambda Theta, X, y: grad(Theta, X, y, dim=0), AXIS),
        "broadcast_one_hot": (with_one_hot(lambda y, K, P: _broadcast_one_hot(y, P)), BROADCAST),
        "compared_one_hot": (with_one_hot(_compared_one_hot), BROADCAST),
    }


LOSS_MISTAKES = {
    **sign_and_mean(
        reference_loss,
        "Its values are those of the loss with the opposite sign: the loss is the sum of "
        "-log P(y_i | x_i), a positive number.",
        "Its values are those of the loss divided by the number of items: the loss is the "
        "*sum* over the items, so do not average."),
    "broadcast_index": (lambda Theta, X, y: -torch.log_softmax(X @ Theta, dim=1)[
        torch.arange(X.shape[0]), y].sum(), BROADCAST),
    "broadcast_one_hot": (lambda Theta, X, y: -(_broadcast_one_hot(
        y, X @ Theta) * torch.log_softmax(X @ Theta, dim=1)).sum(), BROADCAST),
    "axis": (lambda Theta, X, y: -torch.log_softmax(X @ Theta, dim=0).gather(1, y).sum(),
             "Its values are those of a (log-)softmax taken over the items (`dim=0`, down each "
             "column) instead of over the classes: take it along the class axis, `dim=1`, so "
             "that each row of P sums to 1."),
}


softmax_regression_loss = _ScalarFunction(
    name="softmax_regression_loss",
    arg_names=("Theta", "X", "y"),
    cases=lambda: _cases(51, reduced=False),
    reference=reference_loss,
    mistakes=LOSS_MISTAKES,
)



def _gradient_function(name: str, seed: int, reduced: bool, reference: Callable[..., Tensor],
                       ) -> _SoftmaxFunction:
    """The full gradient and the reduced one (the last class fixed at zero) are graded alike;
    only their cases' seed, their reference and their usual mistakes differ."""
    return _SoftmaxFunction(name=name, arg_names=("Theta", "X", "y"),
                            cases=lambda: _cases(seed, reduced=reduced), reference=reference,
                            mistakes=_gradient_mistakes(reduced=reduced))


softmax_regression_loss_grad = _gradient_function(
    "softmax_regression_loss_grad", 52, reduced=False, reference=reference_grad)
softmax_regression_loss_grad_0 = _gradient_function(
    "softmax_regression_loss_grad_0", 53, reduced=True, reference=reference_grad_0)


# ---------------------------------------------------------------------------------------------
# Large logits.


def _large_logit_cases() -> list[tuple[str, torch.dtype, Args]]:
    """Logits far beyond what ``exp`` can hold, in two patterns, in float64 and float32.

    - a shared offset: a ones column whose parameters are +-offset in every class, so every logit
      is about +-offset while their differences are O(1) (``exp`` overflows, or underflows to a
      zero sum);
    - large gaps: logits of size several hundred (float32) or thousands (float64) with large
      differences, where the true class's probability rounds to zero, so ``log(softmax(...))``
      gives -inf while the log-sum-exp form stays exact.

    ``exp`` overflows above about 709 in float64 and 88 in float32, and rounds to zero below about
    -745 and -104: the offsets (1000 and 120) cross both limits.
    """
    gen = core.generator(54)
    cases = []
    for dtype, offset, spread in ((torch.float64, 1000.0, 300.0), (torch.float32, 120.0, 40.0)):
        for sign in (1.0, -1.0):
            n, K, m = 5, 4, 30
            X = torch.cat((random_matrix(gen, m, n), torch.ones(m, 1, dtype=torch.float64)), 1)
            Theta = torch.cat(
                (random_matrix(gen, n, K), torch.full((1, K), sign * offset, dtype=torch.float64)), 0
            )
            cases.append(("a shared offset", dtype, (Theta, X, _labels(gen, m, K))))
        n, K, m = 6, 5, 25
        Theta = spread * random_matrix(gen, n, K)
        cases.append(("large gaps", dtype, (Theta, random_matrix(gen, m, n), _labels(gen, m, K))))
    return cases


#: Largest logit of a large-logit case scaled down (``_moderate``): exp of it is far from
#: overflowing or underflowing in float32 and float64, so only a formula that is wrong for every
#: logit can fail there.
MODERATE_LOGIT = 5.0
#: What a function that fails on large logits only is told to do.
OVERFLOW = ("subtract each row's maximum logit before `exp` (the log-sum-exp form), or use "
            "`torch.softmax` / `torch.log_softmax`, which do.")
NOT_THE_SIZE = ("The same function also fails on these inputs with the logits scaled down to "
                f"at most {MODERATE_LOGIT:g}, so their size is not the (only) problem: see the "
                "other failed tests.")


def _moderate(args: Args) -> Args:
    """A large-logit case with Theta scaled so that no logit exceeds ``MODERATE_LOGIT``."""
    Theta, X, y = args
    size = float((X @ Theta).abs().max())
    return (Theta * (MODERATE_LOGIT / size), X, y)


def _right_on_moderate(graded: GradedFunction, fn: Any, args: Args, dtype: torch.dtype) -> bool:
    """Whether the function is right on the case scaled down: the evidence that it fails on the
    large logits alone, so that a stability hint is true (a dtype crash, a wrong shape, a wrong
    class count or a softmax over the wrong axis fail there as well)."""
    try:
        graded.expect_values(fn, _moderate(args), dtype, explain=False)
    except core.CheckFailed:
        return False
    return True


def _finite_on(graded: GradedFunction, fn: Any, args: Args, dtype: torch.dtype) -> bool:
    """Whether the function returns a finite tensor on this case (on the CPU): a wrong but
    finite result on large logits is a clamp or a lost digit, not an overflow."""
    try:
        result = core.call(fn, graded.name, *cast(args, dtype, "cpu"))
    except core.CheckFailed:
        return False
    return isinstance(result, Tensor) and bool(torch.isfinite(result.detach()).all())


def _large(pattern: str, dtype: torch.dtype) -> str:
    return f"These inputs give large logits ({pattern}, in {str(dtype).replace('torch.', '')})"


def check_loss_large_logits(fn: Any) -> None:
    """The loss stays finite and correct when exp of the logits overflows or underflows.

    The notebook asks for the log-sum-exp form, so a log of a probability clamped at 1e-7 fails
    here (it caps each item's loss near 16 where the true loss is in the hundreds), while it
    passes the values checks, where no probability comes near 1e-7. The advice follows the
    evidence: a missing shift for a function right on the same logits scaled down that fails on
    a shared offset, the log of a probability for one that fails only on large gaps, and no
    stability advice at all for one that fails on the scaled-down logits too.
    """
    for pattern, dtype, args in _large_logit_cases():
        try:
            softmax_regression_loss.expect_values(fn, args, dtype, what="loss")
        except core.CheckFailed as failure:
            if not _right_on_moderate(softmax_regression_loss, fn, args, dtype):
                advice = NOT_THE_SIZE
            elif pattern == "large gaps":
                advice = (f"{_large(pattern, dtype)}: the true class's probability rounds to "
                          "zero, so its log is -inf, while your function is right on the same "
                          "logits scaled down. Do not take the log of a probability: compute "
                          "-log P(y_i | x_i) = logsumexp(z_i) - z_{i, y_i} directly (e.g. with "
                          "`torch.log_softmax`).")
            else:
                advice = (f"{_large(pattern, dtype)}, where exp(logit) overflows or underflows, "
                          "while your function is right on the same logits scaled down: "
                          + OVERFLOW)
            raise core.CheckFailed(f"{failure}\n  {advice}") from None


def _check_grad_large_logits(graded: GradedFunction, fn: Any) -> None:
    for pattern, dtype, args in _large_logit_cases():
        if graded.reduced:
            Theta, X, y = args
            args = (Theta[:, :-1], X, y)
        try:
            # Each dtype's own tolerance: the stable forms are exact to float64's level here,
            # while probabilities clamped at 1e-7 (about 1e-7 off) fail, as they fail the values.
            graded.expect_values(fn, args, dtype)
        except core.CheckFailed as failure:
            if not _right_on_moderate(graded, fn, args, dtype):
                advice = NOT_THE_SIZE
            elif _finite_on(graded, fn, args, dtype):
                advice = (f"{_large(pattern, dtype)}, and your function is right on the same "
                          "logits scaled down but not exact on these: the gradient must stay "
                          "exact for logits of any size (do not clamp the logits or the "
                          "probabilities; `torch.softmax` is exact here).")
            else:
                advice = (f"{_large(pattern, dtype)}, where exp(logit) overflows (inf / inf is "
                          "NaN), while your function is right on the same logits scaled down: "
                          + OVERFLOW)
            raise core.CheckFailed(f"{failure}\n  {advice}") from None


def check_grad_large_logits(fn: Any) -> None:
    """The full gradient stays finite and correct when exp of the logits overflows."""
    _check_grad_large_logits(softmax_regression_loss_grad, fn)


# ---------------------------------------------------------------------------------------------
# Gradient check by central differences.


def central_differences(loss: Callable[[Tensor], Tensor], Theta: Tensor, h: float) -> Tensor:
    """(loss(Theta + h e_ij) - loss(Theta - h e_ij)) / 2h for every entry (i, j) of Theta."""
    grad = torch.zeros_like(Theta)
    for index in itertools.product(*(range(size) for size in Theta.shape)):
        step = torch.zeros_like(Theta)
        step[index] = h
        grad[index] = (loss(Theta + step) - loss(Theta - step)) / (2 * h)
    return grad


def _gradcheck(fn: Any, name: str, reduced: bool) -> None:
    """The student's gradient against central differences of the reference loss (computed in
    float64 on the CPU), on every device: K = 10 classes, 20 features, 100 items, every entry of
    Theta."""
    gen = core.generator(55)
    n, K, m = 20, 10, 100
    Theta = random_matrix(gen, n, K - 1 if reduced else K)
    X, y = random_matrix(gen, m, n), _labels(gen, m, K)
    loss = (lambda T: reference_loss(_with_zero_column(T), X, y)) if reduced else (
        lambda T: reference_loss(T, X, y)
    )
    numeric = central_differences(loss, Theta, GRADCHECK_STEP)

    def on(device: torch.device) -> None:
        inputs = tuple(t.to(device) for t in (Theta, X, y))
        result = core.call(fn, name, *inputs)
        core.expect_tensor(result, name, shape=Theta.shape, dtype=Theta.dtype, args=inputs)
        # The numeric gradient is accurate to about 1e-8 relative (see GRADCHECK_STEP); a wrong
        # formula is off by O(1).
        core.expect_close(
            result, numeric, name, rtol=1e-5, atol=1e-6, args=inputs,
            what="gradient entries (compared with central differences of the loss)",
        )

    core.on_every_device(on)


def check_grad_central_differences(fn: Any) -> None:
    _gradcheck(fn, "softmax_regression_loss_grad", reduced=False)


def check_grad_0_central_differences(fn: Any) -> None:
    _gradcheck(fn, "softmax_regression_loss_grad_0", reduced=True)


# ---------------------------------------------------------------------------------------------
# Trained models on the digits.


def digits_split(
    seed: int = DIGITS_SPLIT_SEED, n_train: int = DIGITS_TRAIN_ROWS
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """All ten digit classes: pixels / 16 then a ones column (float64), labels as an int64 column,
    split by a seeded random permutation into n_train training rows and the rest."""
    from sklearn.datasets import load_digits

    features, labels = load_digits(return_X_y=True)
    X = torch.tensor(features, dtype=torch.float64) / 16
    X = torch.cat((X, torch.ones(X.shape[0], 1, dtype=torch.float64)), dim=1)
    y = torch.tensor(labels, dtype=torch.int64).reshape(-1, 1)
    order = torch.randperm(X.shape[0], generator=core.generator(seed))
    train, test = order[:n_train], order[n_train:]
    return X[train], y[train], X[test], y[test]


#: How a gradient too slow for the training checks is sped up (the notebook asks for matrix
#: operations rather than loops over items).
VECTORISE = (
    "Compute it with matrix operations, as the exercise asks, rather than Python loops over items "
    "or classes: `X @ Theta` gives every item's scores at once, `torch.softmax(..., dim=1)` every "
    "probability, and `X.T @ (P - Y)` the whole gradient."
)


def train(
    grad: Callable[[Tensor, Tensor, Tensor], Tensor],
    name: str,
    X: Tensor,
    y: Tensor,
    columns: int,
    init_seed: int = DIGITS_INIT_SEED,
) -> Tensor:
    """Gradient descent from a seeded uniform start with the notebook's step and iterations,
    within the training budget (``core.train``)."""
    Theta = torch.rand(X.shape[1], columns, generator=core.generator(init_seed),
                       dtype=X.dtype).to(X.device)
    return core.train(grad, name, Theta, (X, y), alpha=DIGITS_ALPHA, steps=DIGITS_ITERATIONS,
                      reference=reference_grad if columns == 10 else reference_grad_0,
                      what=f"gradient descent on the digits ({DIGITS_TRAIN_ROWS} rows)",
                      how_to_speed_up=VECTORISE)


def accuracy(Theta: Tensor, X: Tensor, y: Tensor) -> float:
    """Fraction of rows whose largest logit is at the true class (for a reduced Theta, append its
    zero column first)."""
    return float(((X @ Theta).argmax(dim=1) == y.reshape(-1)).double().mean())


#: The training message's advice when the gradient matches none of the known mistakes: the
#: formula, without claiming a sign or a mean that may well be right.
TRAINING_ADVICE = ("The gradient of the summed loss is X^T (P - Y), with P the softmax of each "
                   "item's logits over the classes (`dim=1`) and Y the one-hot labels.")


def _check_trained(Theta: Tensor, X_test: Tensor, y_test: Tensor, name: str,
                   advice: Callable[[], str] = lambda: TRAINING_ADVICE) -> None:
    if not bool(torch.isfinite(Theta).all()):
        raise core.CheckFailed(
            f"Training on the digits with `{name}` (step {DIGITS_ALPHA}, {DIGITS_ITERATIONS} "
            "iterations) gave NaN or infinite parameters: the gradient is too large or not finite."
        )
    if Theta.shape[1] < 10:  # the reduced model: its last class scores zero
        Theta = _with_zero_column(Theta)
    score = accuracy(Theta, X_test, y_test)
    if not score >= DIGITS_ACCURACY_BOUND:
        raise core.CheckFailed(
            f"Training on the digits with `{name}` (step {DIGITS_ALPHA}, {DIGITS_ITERATIONS} "
            f"iterations, {DIGITS_TRAIN_ROWS} training rows) reaches a test accuracy of "
            f"{score:.1%}; the correct gradient reaches over {DIGITS_ACCURACY_BOUND:.0%}. "
            + advice()
        )


def _training_advice(graded: GradedFunction, fn: Any) -> str:
    """The known mistake the gradient's values show, else the formula."""
    return graded.known_mistake(fn) or TRAINING_ADVICE


def check_grad_trains(fn: Any) -> None:
    """Gradient descent with the student's full gradient trains a digits classifier."""
    X_train, y_train, X_test, y_test = digits_split()

    def on(device: torch.device) -> None:
        Theta = train(fn, "softmax_regression_loss_grad", X_train.to(device), y_train.to(device),
                      columns=10)
        _check_trained(Theta.cpu(), X_test, y_test, "softmax_regression_loss_grad",
                       lambda: _training_advice(softmax_regression_loss_grad, fn))

    core.on_every_device(on)


def check_grad_0_trains(fn: Any) -> None:
    """The reduced gradient (9 columns) trains a digits classifier, and at the trained parameters
    it equals the first nine columns of the full gradient at [Theta, 0]."""
    name = "softmax_regression_loss_grad_0"
    X_train, y_train, X_test, y_test = digits_split()

    def on(device: torch.device) -> None:
        inputs = (X_train.to(device), y_train.to(device))
        Theta = train(fn, name, *inputs, columns=9)
        _check_trained(Theta.cpu(), X_test, y_test, name,
                       lambda: _training_advice(softmax_regression_loss_grad_0, fn))
        result = core.call(fn, name, Theta, *inputs)
        core.expect_close(
            result, reference_grad(_with_zero_column(Theta.cpu()), X_train, y_train)[:, :9], name,
            rtol=FLOAT64.rtol, atol=FLOAT64.atol,
            args=(Theta, *inputs),
            what="gradient entries (the first K - 1 columns of the full gradient at [Theta, 0])",
        )

    core.on_every_device(on)


# ---------------------------------------------------------------------------------------------
# The reduced gradient, judged against the student's own full gradient.


def check_grad_0_large_logits(fn: Any) -> None:
    """The reduced gradient stays finite and correct when exp of the logits overflows."""
    _check_grad_large_logits(softmax_regression_loss_grad_0, fn)


class _FromOwnGrad:
    """The reduced gradient as the notebook invites students to build it from their own full
    gradient: ``grad([Theta, 0], X, y)[:, :K - 1]``. Called twice on the same objects (the
    unmodified check), it calls the full gradient so, and X and y come back as that call left
    them (Theta is a fresh concatenation, which the full gradient never received)."""

    def __init__(self, grad: Any):
        self._grad = grad
        if hasattr(grad, "call_twice"):  # a function of the notebook: twice in its own process
            self.call_twice = self._call_twice
        if hasattr(grad, "cpu_seconds"):  # where the time of a loop over its calls is spent
            self.cpu_seconds = grad.cpu_seconds

    def __call__(self, Theta: Tensor, X: Tensor, y: Tensor) -> Any:
        return self._grad(_with_zero_column(Theta), X, y)[:, :-1]

    def _call_twice(self, Theta: Tensor, X: Tensor, y: Tensor) -> tuple[Any, Any, list[Any]]:
        first, again, after = self._grad.call_twice(_with_zero_column(Theta), X, y)
        return first[:, :-1], again[:, :-1], [core.snapshot((Theta,))[0], *after[1:]]


def _follows(fn: Any, composed: _FromOwnGrad) -> bool:
    """Whether the student's reduced gradient gives what their own full gradient gives for it,
    on the values inputs in float64 and float32: on each, both raise, or both return tensors of
    the same shape, dtype and device with the same values (within 1e-5, NaN where the other has
    NaN), and at least one input gives tensors. A full gradient that never returns a tensor
    leaves nothing to compare, so nothing is excused."""
    compared = 0
    for args in softmax_regression_loss_grad_0.cases()[:3]:
        for dtype in (torch.float64, torch.float32):
            outcomes = []
            for candidate in (fn, composed):
                try:
                    outcomes.append(core.call(candidate, "softmax_regression_loss_grad_0",
                                              *cast(args, dtype, "cpu")))
                except core.CheckFailed:
                    outcomes.append(_RAISED)
            mine, theirs = outcomes
            if mine is _RAISED and theirs is _RAISED:
                continue
            if not (isinstance(mine, Tensor) and isinstance(theirs, Tensor)
                    and mine.shape == theirs.shape and mine.dtype == theirs.dtype
                    and mine.device == theirs.device):
                return False
            a, b = (t.detach().cpu().double() for t in (mine, theirs))
            if not torch.equal(a.isnan(), b.isnan()):
                return False
            a, b = a.nan_to_num(), b.nan_to_num()
            if not torch.allclose(a, b, rtol=1e-5, atol=1e-7 * (1 + float(b.abs().max()))):
                return False
            compared += 1
    return compared > 0


_RAISED = object()


_GRAD_0_CHECKS: dict[str, Callable[[Any], None]] = {
    "values": softmax_regression_loss_grad_0.check_values,
    "dtypes": softmax_regression_loss_grad_0.check_dtypes,
    "unmodified": softmax_regression_loss_grad_0.check_inputs_unmodified,
    "devices": softmax_regression_loss_grad_0.check_devices,
    "central_differences": check_grad_0_central_differences,
    "trains": check_grad_0_trains,
    "large_logits": check_grad_0_large_logits,
}


def check_grad_0(check: str, fn: Any, own_grad: Any = None) -> None:
    """One check of the reduced gradient, judged against the student's own full gradient.

    Exercise 3 invites building the reduced gradient from the full one. When the reduced
    gradient fails a check only because it passes on a mistake of the student's full gradient
    (it gives what ``own_grad([Theta, 0])[:, :K - 1]`` gives, and that fails the same check),
    the mistake is the full gradient's, judged in its own question, and this check passes. A
    reduced gradient with a mistake of its own (the zero column first, a wrong slice) still fails.
    """
    judge = _GRAD_0_CHECKS[check]
    try:
        judge(fn)
    except core.CheckFailed as failure:
        if fn is None or own_grad is None or not callable(own_grad):
            raise
        composed = _FromOwnGrad(own_grad)
        if not _follows(fn, composed):
            raise
        try:
            judge(composed)
        except core.CheckFailed:
            return
        raise failure from None
