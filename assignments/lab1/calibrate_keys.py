"""Calibrate the hidden checks' bounds over many grading keys, and grade every correct answer
and wrong answer variant of Lab 1's answer banks under many keys.

Hidden inputs depend on a key per notebook (``labkit.checks.core``), so every bound must hold
for a correct answer whatever the key, and a mistake must cost the same points whatever the key:
only the values inside the inputs vary with it, never the cases that decide a property. This
prints, over KEYS random keys, the reference's margin on each bound (training accuracy and BCE,
gradient-check errors, gradient descent's error, the pseudoinverse's threshold cases), then grades
every variant under VARIANT_KEYS keys (default 20) and lists each whose marks (points per hidden
test) differ between keys and each correct one that lost a point; it exits with status 1 if any
did. ``tests/test_key_independence.py`` runs the second part in ``make test``.

    .venv/bin/python assignments/lab1/calibrate_keys.py [KEYS] [VARIANT_KEYS]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from labkit.checks import core
from labkit.checks import linear_regression as lab1
from labkit.checks import logistic_regression as lab2
from labkit.checks import softmax_regression as lab3

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests import marks  # noqa: E402


def _keys(count: int, salt: str) -> list[bytes]:
    return [f"{salt}-{i}".encode() for i in range(count)]


def _span(values: list[float]) -> str:
    return f"{min(values):.4g} .. {max(values):.4g}"


def bounds(count: int) -> None:
    logistic_acc, logistic_bce, logistic_grad, softmax_full, softmax_reduced = [], [], [], [], []
    softmax_check, descent, pinv32 = [], [], []
    for key in _keys(count, "bounds"):
        with core.keyed(key):
            # 1.2: the notebook's training with the closed-form gradient.
            X_tr, y_tr, X_te, y_te, theta = lab2.digits_split()
            for _ in range(lab2.EPOCHS):
                theta = theta - lab2.ALPHA * X_tr.T @ (torch.sigmoid(X_tr @ theta) - y_tr)
            logits = X_te @ theta
            logistic_acc.append(float(((logits > 0).double() == y_te).double().mean()))
            logistic_bce.append(float(F.binary_cross_entropy_with_logits(logits, y_te)))
            # 1.2: central differences against the closed form (the check's own cases).
            closed = lambda t, X, y: X.T @ (torch.sigmoid(X @ t) - y)  # noqa: E731
            gen = core.generator(61)
            t0 = 0.001 * torch.rand(X_te.shape[1], 1, generator=gen, dtype=torch.float64)
            coords = torch.randperm(X_te.shape[1], generator=gen)[: lab2.GRAD_CHECK_COORDINATES]
            logistic_grad.append(float(lab2._relative_errors(closed, t0, X_te, y_te, coords).mean()))
            # 1.3: both trained models, and the central-difference check's worst ratio.
            X_tr, y_tr, X_te, y_te = lab3.digits_split()
            softmax_full.append(lab3.accuracy(lab3.train(lab3.reference_grad, "g", X_tr, y_tr, 10),
                                              X_te, y_te))
            reduced = lab3.train(lab3.reference_grad_0, "g0", X_tr, y_tr, 9)
            softmax_reduced.append(lab3.accuracy(lab3._with_zero_column(reduced), X_te, y_te))
            gen = core.generator(55)
            Theta = graded_matrix(gen, 20, 10)
            X, y = graded_matrix(gen, 100, 20), torch.randint(10, (100, 1), generator=gen)
            numeric = lab3.central_differences(lambda T: lab3.reference_loss(T, X, y), Theta,
                                               lab3.GRADCHECK_STEP)
            exact = lab3.reference_grad(Theta, X, y)
            allowed = 1e-6 * exact.abs().max() + 1e-5 * exact.abs()
            softmax_check.append(float(((numeric - exact).abs() / allowed).max()))
            # 1.1: gradient descent's final error relative to its tolerance.
            Xs, ys, _ = lab1.synthetic_data(1000, seed=41)
            solution = torch.linalg.lstsq(Xs, ys).solution
            th = torch.zeros(2, 1, dtype=torch.float64)
            for _ in range(400):
                th = th - 0.001 * Xs.T @ (Xs @ th - ys)
            descent.append(float(((th - solution).abs() / (1e-6 * solution.abs().max()
                                                            + 1e-6 * solution.abs())).max()))
            # 1.1: the threshold cases: the notebook's threshold against the check's reference.
            worst = 0.0
            for dtype, _, A in lab1._threshold_cases():
                X32 = A.to(dtype)
                U, S, Vh = torch.linalg.svd(X32, full_matrices=False)
                tol = S.max() * max(X32.shape) * torch.finfo(S.dtype).eps
                mine = Vh.mT @ torch.diag(torch.where(S > tol, 1 / S, torch.zeros_like(S))) @ U.mT
                expected = lab1._pinv_reference(A, dtype)
                scale = float(expected.abs().max()) or 1.0
                worst = max(worst, float((mine.double() - expected).abs().max()) / scale)
            pinv32.append(worst)
    print(f"bounds over {count} keys:")
    print(f"  1.2 test accuracy {_span(logistic_acc)} (bound >= {lab2.MIN_TEST_ACCURACY}), "
          f"test BCE {_span(logistic_bce)} (bound <= {lab2.MAX_TEST_BCE})")
    print(f"  1.2 gradient check mean relative error {_span(logistic_grad)} "
          f"(bound < {lab2.GRAD_CHECK_MAX_ERROR})")
    print(f"  1.3 accuracy full {_span(softmax_full)}, reduced {_span(softmax_reduced)} "
          f"(bound >= {lab3.DIGITS_ACCURACY_BOUND})")
    print(f"  1.3 central differences: worst error / allowed {_span(softmax_check)} (fails > 1)")
    print(f"  1.1 gradient descent: worst error / allowed {_span(descent)} (fails > 1)")
    print(f"  1.1 threshold cases: worst error relative to the largest entry {_span(pinv32)} "
          "(float32 tolerance 1e-3)")


def graded_matrix(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def variants(count: int) -> bool:
    """Grade every WRONG and CORRECT variant under ``count`` keys; print each variant whose marks
    (points per hidden test) differ between keys, and each CORRECT one that lost a point. Returns
    whether none did."""
    bank = marks.bank()
    started = time.process_time()
    graded = marks.grade_all(bank, marks.keys(count))
    seconds = time.process_time() - started
    differing, lost = marks.key_differences(graded), marks.full_marks_lost(graded)
    print(f"variants: {len(bank)} variants x {count} keys in {seconds:.0f} s of CPU time "
          f"({seconds / count:.1f} s a key); {len(differing)} with marks that depend on the key, "
          f"{len(lost)} correct gradings that lost a point")
    for line in [*differing, *lost]:
        print("  ", line)
    return not differing and not lost


if __name__ == "__main__":
    started = time.time()
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    bounds(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
    same = variants(int(sys.argv[2]) if len(sys.argv) > 2 else 20)
    print(f"{time.time() - started:.0f} s")
    sys.exit(0 if same else 1)
