"""Hidden checks of assignment 1.1 (linear regression).

References are independent of what students write: ``torch.linalg.pinv`` for the pseudoinverse,
autograd for the gradient, ``torch.linalg.lstsq`` for least-squares solutions, and scikit-learn's
own copy of the diabetes data for the real-data model.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from . import core
from .graded import (FLOAT32, FLOAT64, Args, GradedFunction, Tolerance, cast, random_matrix,
                     sign_and_mean)

#: The real data set: two features of scikit-learn's diabetes data and how they are split.
DIABETES_FEATURES = (2, 8)  # body-mass index and s5 (log of serum triglycerides)
DIABETES_TRAIN_ROWS = 221
DIABETES_SPLIT_SEED = 0


# ---------------------------------------------------------------------------------------------
# Tensor manipulation: a bias column, targets as a column, a seeded train/test split.


def _bias_cases() -> list[Args]:
    gen = core.generator(11)
    return [(random_matrix(gen, m, n),) for m, n in [(5, 2), (1, 1), (30, 4), (7, 1), (3, 6)]]


add_bias_column = GradedFunction(
    name="add_bias_column",
    arg_names=("X",),
    cases=_bias_cases,
    reference=lambda X: torch.cat((X, torch.ones(X.shape[0], 1, dtype=X.dtype)), dim=1),
    # Copying entries and appending ones is exact in any dtype.
    float64=Tolerance(0.0, 0.0),
    float32=Tolerance(0.0, 0.0),
)


def _column_cases() -> list[Args]:
    gen = core.generator(12)
    return [(random_matrix(gen, m),) for m in (6, 1, 442, 13)]


as_column = GradedFunction(
    name="as_column",
    arg_names=("y",),
    cases=_column_cases,
    reference=lambda y: y.reshape(len(y), 1),
    float64=Tolerance(0.0, 0.0),
    float32=Tolerance(0.0, 0.0),
)


def _split_cases() -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    gen = core.generator(13)
    # Random rows are distinct with probability 1, so each output row identifies its source row.
    return [
        (random_matrix(gen, m, d), random_matrix(gen, m, 1), n_train)
        for m, d, n_train in [(20, 3, 12), (9, 1, 4), (50, 2, 25), (6, 4, 5)]
    ]


def _boundary_cases() -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """The boundary splits n_train = 0, 1, m - 1 and m, where a negative slice (`X[-n_test:]`
    with n_test = 0 is every row) or an off-by-one shows."""
    gen = core.generator(14)
    m, d = 8, 3
    X, y = random_matrix(gen, m, d), random_matrix(gen, m, 1)
    return [(X, y, n_train) for n_train in (0, 1, m - 1, m)]


def _split_seeds() -> list[int]:
    """Four distinct seeds to pass to the student's split (drawn under the grading key)."""
    seeds = torch.randperm(10_000, generator=core.generator(15))[:4]
    return [int(s) for s in seeds]


def _audit_split_cases() -> list[tuple[torch.Tensor, torch.Tensor, int, int]]:
    """The split's inputs with a seed each: what ``make audit`` runs a mutant of the reference
    split and the reference on (the split has no GradedFunction: its checks are its own)."""
    seeds = _split_seeds()
    return [(X, y, n_train, seeds[i % len(seeds)])
            for i, (X, y, n_train) in enumerate(_split_cases() + _boundary_cases())]


#: Inputs for ``make audit`` of the questions that have no GradedFunction (see labkit.audit).
AUDIT_CASES = {"train_test_split": _audit_split_cases}


def _source_rows(part: torch.Tensor, X: torch.Tensor, what: str) -> torch.Tensor:
    """Index in ``X`` of each row of ``part`` (which must be rows of ``X``, unchanged)."""
    if part.shape[0] == 0:
        return torch.zeros(0, dtype=torch.int64)
    distances = torch.cdist(part.detach().cpu().double(), X.detach().cpu().double())
    nearest = distances.min(dim=1)
    if bool((nearest.values > 1e-5 * (1 + float(X.abs().max()))).any()):
        raise core.CheckFailed(
            f"`train_test_split`: some rows of {what} are not rows of `X`. Select whole rows "
            "with one index tensor (e.g. `X[idx]`), without changing them."
        )
    return nearest.indices


def _split(fn: Any, X: torch.Tensor, y: torch.Tensor, n_train: int, seed: int,
           result: Any = None) -> tuple:
    """Call the student's split (or take its ``result``); check the four parts are tensors of the
    right shapes. Dtype and device are the devices check's."""
    name = "train_test_split"
    parts = core.call(fn, name, X, y, n_train, seed) if result is None else result
    if not isinstance(parts, (tuple, list)) or len(parts) != 4:
        raise core.CheckFailed(
            f"`{name}` must return four tensors `(X_train, y_train, X_test, y_test)`; it returned "
            f"{core.describe(parts) if isinstance(parts, (tuple, list)) else core.kind_of(parts)}."
        )
    m, d = X.shape
    shapes = [(n_train, d), (n_train, 1), (m - n_train, d), (m - n_train, 1)]
    labels = ["X_train", "y_train", "X_test", "y_test"]
    for part, shape, label in zip(parts, shapes, labels):
        core.expect_tensor(part, name, shape=shape, args=(X, y, n_train, seed), output=label)
    return tuple(parts)


def _split_rows(fn: Any, X: torch.Tensor, y: torch.Tensor, n_train: int, seed: int) -> torch.Tensor:
    """Check the split is a partition of the rows with X and y aligned; return the row order."""
    X_train, y_train, X_test, y_test = _split(fn, X, y, n_train, seed)
    train_rows = _source_rows(X_train, X, "X_train")
    test_rows = _source_rows(X_test, X, "X_test")
    order = torch.cat((train_rows, test_rows))
    if not torch.equal(order.sort().values, torch.arange(len(X))):
        raise core.CheckFailed(
            "`train_test_split`: the training and test rows together must be every row of `X` "
            "exactly once (a permutation of the rows, cut in two)."
        )
    y_cpu = y.detach().cpu().double()
    if not (
        torch.equal(y_train.detach().cpu().double(), y_cpu[train_rows])
        and torch.equal(y_test.detach().cpu().double(), y_cpu[test_rows])
    ):
        raise core.CheckFailed(
            "`train_test_split`: the targets are not aligned with their rows: index `X` and `y` "
            "with the same permutation."
        )
    return order


def check_split_partition(fn: Any) -> None:
    """The parts have the right shapes and are a partition of the rows with X and y aligned, in
    float64 and float32, including the boundary splits n_train = 0, 1, m - 1 and m. Whether the
    rows are shuffled is the seeded check's."""
    seed = _split_seeds()[0]

    def on(device: torch.device) -> None:
        for X, y, n_train in _split_cases():
            for dtype in (torch.float64, torch.float32):
                _split_rows(fn, *cast((X, y), dtype, device), n_train, seed)
        for X, y, n_train in _boundary_cases():
            try:
                _split_rows(fn, *cast((X, y), torch.float64, device), n_train, seed)
            except core.PlacementFailed:
                raise
            except core.CheckFailed as failure:
                raise core.CheckFailed(
                    f"{failure}\n  This happened for n_train = {n_train} of {len(X)} rows: the "
                    "split must also work when the training or the test set is empty or holds "
                    "one row (beware of negative slices such as `X[-n_test:]`)."
                ) from None

    core.on_every_device(on)


def check_split_seeded(fn: Any) -> None:
    """The same seed gives the same split; different seeds give different, shuffled splits."""
    core.on_every_device(lambda device: _check_seeded_on(fn, device))


def _check_seeded_on(fn: Any, device: torch.device) -> None:
    X, y, n_train = _split_cases()[2]
    X, y = X.to(device), y.to(device)
    first_seed, *other_seeds = _split_seeds()
    first = _split_rows(fn, X, y, n_train, seed=first_seed)
    again = _split_rows(fn, X, y, n_train, seed=first_seed)
    if not torch.equal(first, again):
        raise core.CheckFailed(
            "`train_test_split` gave two different splits for the same seed. Draw the permutation "
            "from a generator seeded with `seed` (e.g. `torch.Generator().manual_seed(seed)`)."
        )
    others = [_split_rows(fn, X, y, n_train, seed=s) for s in other_seeds]
    # 50 rows cut 25/25: two random permutations pick the same training rows with probability
    # 1 / C(50, 25), about 8e-15, and the first 25 rows with the same probability.
    if all(torch.equal(o[:n_train].sort().values, torch.arange(n_train)) for o in [first, *others]):
        raise core.CheckFailed(
            "`train_test_split` puts the first `n_train` rows in the training set: shuffle the "
            "rows with a random permutation drawn with the given seed before cutting them in two."
        )
    if all(torch.equal(first[:n_train].sort().values, o[:n_train].sort().values) for o in others):
        raise core.CheckFailed(
            "`train_test_split` picks the same training rows whatever the seed. The split must "
            "be a random permutation drawn with the given seed."
        )


def _expect_split_dtypes(parts: tuple, X: torch.Tensor, y: torch.Tensor) -> None:
    """Each part has the dtype of the tensor it was cut from: a split only selects rows."""
    for part, source, label in zip(parts, (X, y, X, y), ("X_train", "y_train", "X_test", "y_test")):
        if part.dtype != source.dtype:
            raise core.CheckFailed(
                f"`train_test_split` returned {label} as {str(part.dtype).removeprefix('torch.')} "
                f"for {str(source.dtype).removeprefix('torch.')} inputs. A split only selects "
                "rows: keep the inputs' dtype (no `.float()` or `.double()`)."
            )


def check_split_unmodified_and_devices(fn: Any) -> None:
    """The split leaves its inputs unmodified (see ``core.expect_unmodified``) and returns its
    parts on the inputs' device (CUDA where present, else meta) and in their dtype (float64 and
    float32 alike). Values are the partition check's."""
    seed = _split_seeds()[0]

    def on(device: torch.device) -> None:
        for X, y, n_train in _split_cases():
            for dtype in (torch.float64, torch.float32):
                X, y = cast((X, y), dtype, device)
                parts = core.expect_unmodified(fn, "train_test_split",
                                               ("X", "y", "n_train", "seed"),
                                               (X.clone(), y.clone(), n_train, seed))
                _expect_split_dtypes(_split(fn, X, y, n_train, seed, result=parts), X, y)

    core.on_every_device(on)
    X, y, n_train = _split_cases()[0]
    core.check_placement(fn, "train_test_split", (*cast((X, y), torch.float32, "cpu"), n_train, seed))


# ---------------------------------------------------------------------------------------------
# The pseudoinverse from the SVD.


def _pinv_cases() -> list[Args]:
    gen = core.generator(21)
    shapes = [(6, 3), (3, 7), (5, 5), (1, 1), (40, 2), (2, 9)]
    return [(random_matrix(gen, m, n),) for m, n in shapes]


def _with_singular_values(gen: torch.Generator, m: int, n: int, rank: int, scale: float) -> torch.Tensor:
    """An m x n float64 matrix of the given rank whose non-zero singular values lie in
    [0.5, 2] * scale (random orthonormal singular vectors), so the gap between zero and non-zero
    singular values is known whatever the seed."""
    U = torch.linalg.qr(random_matrix(gen, m, rank)).Q
    V = torch.linalg.qr(random_matrix(gen, n, rank)).Q
    S = 0.5 + 1.5 * torch.rand(rank, generator=gen, dtype=torch.float64)
    return scale * (U * S) @ V.mT


def _threshold_cases() -> list[tuple[torch.dtype, str, torch.Tensor]]:
    """Cases where the threshold on the singular values decides, in float64 and float32.

    - rank-deficient matrices: the zero singular values come out near eps * s_1 (about 1e-16 in
      float64, 1e-7 in float32, from rounding) and the non-zero ones near s_1, so a threshold of
      order max(m, n) * eps * s_1 for the input's dtype cuts exactly the zero ones, while
      float64's eps on a float32 matrix, or a fixed cut-off, inverts rounding noise (entries of
      1e7 and more);
    - scaled matrices (1e-12 and 1e12): a relative threshold is scale-free, while a fixed cut-off
      such as 1e-10 drops every singular value of a tiny matrix, or keeps the rounding noise
      (about 1e-4) of a huge rank-deficient one;
    - the zero matrix, whose pseudoinverse is zero.
    """
    gen = core.generator(22)
    cases = []
    for dtype in (torch.float64, torch.float32):
        for m, n, rank in [(8, 4, 2), (3, 6, 1), (5, 5, 3), (9, 7, 4)]:
            cases.append((dtype, "rank-deficient", _with_singular_values(gen, m, n, rank, 1.0)))
        cases.append((dtype, "tiny (scaled by 1e-12)", _with_singular_values(gen, 6, 4, 4, 1e-12)))
        cases.append((dtype, "huge (scaled by 1e12)", _with_singular_values(gen, 7, 5, 3, 1e12)))
        cases.append((dtype, "tiny (scaled by 1e-12)", _with_singular_values(gen, 4, 6, 2, 1e-12)))
        cases.append((dtype, "zero", torch.zeros(3, 2, dtype=torch.float64)))
    return cases


def _pinv_reference(A: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The pseudoinverse of A as the student's function sees it (cast to ``dtype``), in float64.

    Casting to float32 perturbs the zero singular values to about 1e-7 * s_1, so the reference
    cuts below 1e-4 * s_1: every case has a gap from about 1e-6 to 0.25 (relative to s_1), and
    any cut inside the gap gives the same pseudoinverse.
    """
    seen = A.to(dtype).to(torch.float64)
    return torch.linalg.pinv(seen, rtol=1e-4 if dtype == torch.float32 else None)


def _svd_product(X: torch.Tensor, left: str, inverted: bool) -> torch.Tensor:
    """``V S^+ U^T`` with V taken as ``Vh`` itself (``left="Vh"``, the transposes missed) or as
    ``Vh^T``, and S inverted or not (no threshold needed: the values cases have full rank)."""
    U, S, Vh = torch.linalg.svd(X, full_matrices=False)
    V = Vh if left == "Vh" else Vh.mT
    return V @ torch.diag(1 / S if inverted else S) @ U.mT


#: The usual wrong pseudoinverses, named in a failed values case when the answer matches one.
PINV_MISTAKES = {
    "transposes": (lambda X: _svd_product(X, "Vh", inverted=True),
                   "Its values are those of Vh S^+ U^T: `torch.linalg.svd` returns Vh, V already "
                   "transposed, so the pseudoinverse is `Vh.mT @ torch.diag(S_inv) @ U.mT`: check "
                   "the transposes."),
    "not_inverted": (lambda X: _svd_product(X, "V", inverted=False),
                     "Its values are those of V S U^T: invert the non-zero singular values "
                     "(S^+ holds 1 / s_i) rather than multiply by them."),
    "normal_equations": (lambda X: torch.linalg.inv(X.T @ X) @ X.T,
                         "Its values are those of the normal equations (X^T X)^-1 X^T, the "
                         "pseudoinverse only of a matrix of full column rank: for a wide or "
                         "rank-deficient matrix X^T X has no inverse. Compute it from the SVD, "
                         "which works for any matrix."),
}

pinv_svd = GradedFunction(
    name="pinv_svd",
    arg_names=("X",),
    cases=_pinv_cases,
    reference=lambda X: torch.linalg.pinv(X),
    mistakes=PINV_MISTAKES,
)


def _right_on_full_rank(fn: Any) -> bool:
    """Whether ``pinv_svd`` is right on the first two values cases (full rank, float64, CPU):
    the evidence that what fails on the threshold cases is the threshold."""
    try:
        for args in _pinv_cases()[:2]:
            pinv_svd.expect_values(fn, args, torch.float64, explain=False)
    except core.CheckFailed:
        return False
    return True


def check_pinv_rank_deficient(fn: Any) -> None:
    """Only the non-zero singular values are inverted, with a threshold relative to s_1 for the
    input's dtype: rank-deficient, tiny, huge and zero matrices, in float64 and float32. Values
    only (with the tolerance of the lower precision among input and result), on every device."""
    cases = [(dtype, kind, A.to(dtype), _pinv_reference(A, dtype))
             for dtype, kind, A in _threshold_cases()]

    def on(device: torch.device) -> None:
        for dtype, kind, X, expected in cases:
            X = X.to(device)
            result = core.expect_tensor(core.call(fn, "pinv_svd", X), "pinv_svd",
                                        shape=expected.shape, args=(X,))
            tolerance = pinv_svd.tolerance(dtype, result.dtype)
            try:
                core.expect_close(result, expected, "pinv_svd", rtol=tolerance.rtol,
                                  atol=tolerance.atol, args=(X,))
            except core.CheckFailed as failure:
                if _right_on_full_rank(fn):
                    advice = (
                        f"This {kind} matrix has singular values that must be treated as zero, "
                        "or tiny ones that must not. Invert only s_i > s_1 * max(m, n) * eps, "
                        "with eps = `torch.finfo(X.dtype).eps` (the input's dtype, not a fixed "
                        "number).")
                else:
                    advice = pinv_svd.known_mistake(fn) or (
                        "The same function is also wrong on matrices of full rank, so the "
                        "threshold is not the (only) problem: see the other failed tests.")
                raise core.CheckFailed(f"{failure}\n  {advice}") from None

    core.on_every_device(on)


# ---------------------------------------------------------------------------------------------
# The least-squares gradient, and gradient descent driven by it.


def _least_squares_loss(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((X @ theta - y) ** 2).sum()


def _autograd_gradient(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    theta = theta.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_least_squares_loss(theta, X, y), theta)
    return grad


def _gradient_cases() -> list[Args]:
    gen = core.generator(31)
    cases = []
    for d, m in [(2, 10), (3, 7), (5, 50), (1, 1), (4, 3)]:
        cases.append((random_matrix(gen, d, 1), random_matrix(gen, m, d), random_matrix(gen, m, 1)))
    return [*cases, _near_fit_case()]


def _near_fit_case() -> Args:
    """Targets in the tens and a theta close to their fit: the residual X theta - y is of order 1
    while X theta and y are tens, so targets rounded to float32 (a float32 inner computation)
    move the gradient far beyond float64's tolerance: at least 480 times it over 200 keys, while
    every float64 route (autograd, a loop over rows, einsum, the normal form's
    X^T X theta - X^T y, which cancels terms of about 1e3) stays within 2% of it."""
    gen = core.generator(32)
    m, d = 40, 3
    X = random_matrix(gen, m, d)
    fit = 10 * random_matrix(gen, d, 1)
    y = X @ fit + random_matrix(gen, m, 1)
    return fit + 0.01 * random_matrix(gen, d, 1), X, y


#: The usual wrong gradients of the least-squares loss 1/2 ||X theta - y||^2.
GRADIENT_MISTAKES = {
    **sign_and_mean(
        _autograd_gradient,
        "Its values are those of the gradient with the opposite sign: it is "
        "X^T (X theta - y), the prediction minus the target.",
        "Its values are those of the gradient divided by the number of rows: the loss is "
        "the *sum* over the rows, so do not average."),
    "factor_two": (lambda theta, X, y: 2 * _autograd_gradient(theta, X, y),
                   "Its values are twice the gradient: the loss 1/2 ||X theta - y||^2 has a "
                   "factor 1/2, so its gradient X^T (X theta - y) has no factor 2."),
}

linear_regression_loss_grad = GradedFunction(
    name="linear_regression_loss_grad",
    arg_names=("theta", "X", "y"),
    cases=_gradient_cases,
    reference=_autograd_gradient,
    mistakes=GRADIENT_MISTAKES,
)


def synthetic_data(m: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The notebook's kind of data: a uniform feature, a ones column, a linear target with noise."""
    gen = core.generator(seed)
    X = torch.cat(
        (torch.rand(m, 1, generator=gen, dtype=torch.float64), torch.ones(m, 1, dtype=torch.float64)),
        dim=1,
    )
    theta_true = torch.tensor([[1.5], [2.0]], dtype=torch.float64)
    y = X @ theta_true + 0.1 * torch.randn(m, 1, generator=gen, dtype=torch.float64)
    return X, y, theta_true


#: How a gradient too slow for gradient descent is sped up (the notebook asks for matrix
#: operations rather than loops).
VECTORISE = (
    "Compute it with matrix operations, as the exercise asks, rather than a Python loop over the "
    "rows: `X.T @ (X @ theta - y)` is the whole gradient."
)
#: Rows on which a gradient too slow to train within the budget is judged instead.
SLOW_CASE_ROWS = 20


def check_gradient_descent(fn: Any) -> None:
    """Gradient descent with the student's gradient reaches the least-squares solution.

    200 rows, step 0.005, 400 steps from zero. X^T X has eigenvalues 12.5 and 260: the slow
    direction contracts by 0.94 a step, so the iterate is within 1e-11 of the solution in exact
    arithmetic, and step times the largest eigenvalue is 1.3, so a gradient twice too large
    diverges (one too small by a factor is the values checks'
    to catch). 1e-6 leaves room for rounding.

    The exercise asks for matrix operations, but this check is about where the descent goes, and
    a Python loop over the rows is a correct gradient (about 0.7 s of CPU time for this training
    here, against a budget of 2 s: too close for a verdict that must not depend on the machine or
    its load). So, as in 1.2, a gradient too slow for the training budget (``core.train``) is
    judged instead on its values on the first SLOW_CASE_ROWS rows at a seeded theta, against the
    reference, and the check passes if they are right.
    """
    X, y, _ = synthetic_data(200, seed=41)
    solution = torch.linalg.lstsq(X, y).solution

    def on(device: torch.device) -> None:
        X_d, y_d = X.to(device), y.to(device)
        name = "linear_regression_loss_grad"
        try:
            theta = core.train(
                fn, name, torch.zeros(2, 1, dtype=torch.float64, device=device), (X_d, y_d),
                alpha=0.005, steps=400, reference=_autograd_gradient,
                what=f"gradient descent on {X.shape[0]} rows", how_to_speed_up=VECTORISE)
        except core.TooSlow:
            theta0 = random_matrix(core.generator(42), 2, 1)
            small = (theta0, X[:SLOW_CASE_ROWS], y[:SLOW_CASE_ROWS])
            result = core.call(fn, name, *(t.to(device) for t in small))
            core.expect_tensor(result, name, shape=theta0.shape, dtype=torch.float64, args=small)
            core.expect_close(result, _autograd_gradient(*small), name,
                              rtol=linear_regression_loss_grad.float64.rtol,
                              atol=linear_regression_loss_grad.float64.atol, args=small,
                              what="gradient entries")
            return
        core.expect_close(
            theta, solution, name, rtol=1e-6, atol=1e-6,
            what="parameters after gradient descent",
        )

    core.on_every_device(on)


# ---------------------------------------------------------------------------------------------
# The real-data model.


def diabetes_data() -> tuple[torch.Tensor, torch.Tensor]:
    """The notebook's two diabetes features at unit variance (442 x 2) and targets (442,), before
    the student's ``add_bias_column`` and ``as_column`` shape them."""
    from sklearn.datasets import load_diabetes

    features, target = load_diabetes(return_X_y=True)
    n = features.shape[0]
    X = torch.tensor(features[:, list(DIABETES_FEATURES)], dtype=torch.float64) * math.sqrt(n)
    return X, torch.tensor(target, dtype=torch.float64)


def _student_split(env: Any) -> tuple[Any, Any] | None:
    """The training rows as the notebook's given cell builds them with the student's own
    functions (``add_bias_column``, ``as_column``, ``train_test_split`` with n_train = 221 and
    seed 0), on fresh copies: what ``X_train`` and ``y_train`` held when ``theta`` was fitted,
    even if a later cell changed them in place. None when those functions cannot give them."""
    try:
        features, target = diabetes_data()
        X = core.call(env.get("add_bias_column"), "add_bias_column", features)
        y = core.call(env.get("as_column"), "as_column", target)
        parts = core.call(env.get("train_test_split"), "train_test_split", X, y,
                          DIABETES_TRAIN_ROWS, DIABETES_SPLIT_SEED)
        return parts[0], parts[1]
    except Exception:  # any failure here is judged by those functions' own questions
        return None


def _fits(env: Any, X_train: Any, y_train: Any) -> list[torch.Tensor]:
    """Least-squares fits to one pair of training tensors: the library's, and the student's own
    ``pinv_svd(X_train) @ y_train``, which 4.2 asks for (a wrong ``pinv_svd`` is judged once, in
    its own question)."""
    if not (isinstance(X_train, torch.Tensor) and isinstance(y_train, torch.Tensor)
            and X_train.dim() == 2 and X_train.shape[0] == y_train.shape[0]
            and X_train.shape[1] == 3 and y_train.numel() == X_train.shape[0]):
        return []
    X64 = X_train.detach().cpu().double()
    y64 = y_train.detach().cpu().double().reshape(-1, 1)
    fits = [torch.linalg.lstsq(X64, y64).solution]
    try:
        own = core.call(env.get("pinv_svd"), "pinv_svd", X_train)
        if isinstance(own, torch.Tensor) and own.shape == (3, X_train.shape[0]):
            fits.append(own.detach().cpu().double() @ y64)
    except core.CheckFailed:
        pass
    return fits


def check_diabetes_theta(env: Any) -> None:
    """``theta`` is the least-squares fit to the student's own training rows.

    Judged against the student's own earlier results, so that each earlier mistake costs points
    once, in its own question: the training rows are the notebook's ``X_train`` and ``y_train``
    or, when a later cell changed those in place, the rows the student's own functions give for
    the notebook's split; the fit is the library's least squares or the student's own
    ``pinv_svd(X_train) @ y_train``. So a bias column placed first, a float32 target or a wrong
    pseudoinverse do not cost this question; a theta that is not fitted to the training rows
    (fitted to every row, to the test rows, or not at all) does.
    """
    theta = _fitted_theta(env)
    candidates = [_fits(env, env.get("X_train"), env.get("y_train"))]
    if (own := _student_split(env)) is not None:
        candidates.append(_fits(env, *own))
    fits = [fit for group in candidates for fit in group]
    if not fits:
        raise core.CheckFailed(
            "`X_train` and `y_train` are not a 221 x 3 design matrix and its 221 targets: run the "
            "cell that splits the diabetes data before fitting `theta`."
        )
    # A fit by the SVD and one by a QR-based solver agree to about cond(X) * eps, near 1e-15 on
    # these well-conditioned columns (condition number below 10), within FLOAT64; a fit to other
    # rows differs by several percent. A float32 theta is judged to float32's level here (its
    # dtype is the dtype check's), the reference rounded to it.
    tolerance = FLOAT64 if theta.dtype == torch.float64 else FLOAT32
    failures = []
    for fit in fits:
        if theta.dtype != torch.float64 and theta.is_floating_point():
            fit = fit.to(theta.dtype).to(torch.float64)
        try:
            core.expect_close(theta, fit, "theta", rtol=tolerance.rtol, atol=tolerance.atol,
                              what="parameters (least squares on the training rows)")
            return
        except core.CheckFailed as failure:
            failures.append(str(failure))
    raise core.CheckFailed(
        f"{failures[0]} Fit `theta` to the training rows only: `theta = pinv_svd(X_train) @ y_train`."
    )


def _fitted_theta(env: Any) -> torch.Tensor:
    """The notebook's ``theta``: a 3 x 1 tensor, or a failed check saying what it is instead."""
    theta = env.get("theta")
    if theta is None or isinstance(theta, core.MissingName):
        missing = theta if isinstance(theta, core.MissingName) else core.MissingName("theta")
        raise core.CheckFailed(missing.absent("`theta`", "Set it in the cell of 4.2."))
    return core.expect_tensor(theta, "theta", shape=(3, 1), variable=True)


def check_diabetes_theta_dtype(env: Any) -> None:
    """``theta`` keeps the data's dtype: float64, as the notebook's design matrix is (or the
    dtype of the student's own ``X_train`` where an earlier answer changed it, so that mistake is
    judged once, in its own question). A fit computed or kept in float32 holds about 7 digits."""
    theta = _fitted_theta(env)
    X_train = env.get("X_train")
    expected = (X_train.dtype if isinstance(X_train, torch.Tensor) and X_train.is_floating_point()
                else torch.float64)
    if theta.dtype != expected:
        raise core.CheckFailed(
            f"`theta` is a {str(theta.dtype).replace('torch.', '')} tensor; the training rows are "
            f"{str(expected).replace('torch.', '')}, and the fit must keep their precision. Do not "
            "convert to float32 (`.float()`, `dtype=torch.float32`) on the way."
        )


def check_diabetes_theta_plain(env: Any) -> None:
    """``theta`` is a plain tensor, not attached to autograd (``core.expect_plain``)."""
    core.expect_plain(_fitted_theta(env), "theta")
