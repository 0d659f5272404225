"""What the device checks deduct for, and what they must not: meta decides only device bugs."""

from __future__ import annotations

import pytest
import torch

from labkit.checks import core
from labkit.checks import linear_regression as lab


def _meta_verdict(fn) -> str | None:
    try:
        core.check_meta_propagation(fn, "f", (torch.randn(4, 3),))
    except core.CheckFailed as failure:
        return str(failure)
    return None


@pytest.mark.parametrize("fn", [
    lambda X: X + torch.ones(4, 3),                    # CPU tensor mixed with the input
    lambda X: torch.cat((X, torch.zeros(4, 1)), 1),   # CPU column appended
    lambda X: torch.from_numpy(X.numpy()),            # .numpy()
    lambda X: torch.zeros(3, 4),                      # ignores the input's device
    lambda X: None,                                   # no result
], ids=["mixed", "cat_cpu", "numpy", "new_cpu_tensor", "none"])
def test_meta_deducts_device_bugs(fn):
    assert _meta_verdict(fn) is not None


@pytest.mark.parametrize("fn", [
    lambda X: X * X.sum().item(),                     # .item(): no data on meta, fine on a GPU
    lambda X: X[X > 0].sum() * X,                     # boolean mask: data-dependent shape
    lambda X: X.cpu() + 1,                            # copy to host: inconclusive on meta
    lambda X: X @ torch.linalg.pinv(X.T @ X),        # library routines
    lambda X: torch.cat((X, X.new_ones(4, 1)), 1),    # right way to make a column
], ids=["item", "boolean_mask", "cpu_copy", "pinv", "new_ones"])
def test_meta_does_not_deduct_what_a_gpu_runs(fn):
    assert _meta_verdict(fn) is None


def test_cpu_only_machine_checks_cpu_only():
    devices = [d.type for d in core.available_devices()]
    assert devices[0] == "cpu"
    assert ("cuda" in devices) == torch.cuda.is_available()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_reference_answers_pass_every_check_on_cuda():
    """On a GPU the checks run on cuda too; correct answers keep full marks there."""
    def add_bias_column(X):
        return torch.cat((X, X.new_ones(X.shape[0], 1)), dim=1)

    def pinv_svd(X):
        U, S, Vh = torch.linalg.svd(X, full_matrices=False)
        tol = S.max() * max(X.shape) * torch.finfo(S.dtype).eps
        return Vh.mT @ torch.diag(torch.where(S > tol, 1 / S, torch.zeros_like(S))) @ U.mT

    def grad(theta, X, y):
        return X.T @ (X @ theta - y)

    assert "cuda" in [d.type for d in core.available_devices()]
    for check in ("check_values", "check_dtypes", "check_inputs_unmodified", "check_devices"):
        getattr(lab.add_bias_column, check)(add_bias_column)
        getattr(lab.pinv_svd, check)(pinv_svd)
        getattr(lab.linear_regression_loss_grad, check)(grad)
    lab.check_pinv_rank_deficient(pinv_svd)
    lab.check_gradient_descent(grad)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cpu_result_fails_on_cuda():
    def add_bias_column(X):
        return torch.cat((X.cpu(), torch.ones(X.shape[0], 1, dtype=X.dtype)), dim=1)

    with pytest.raises(core.CheckFailed, match="on the CPU"):
        lab.add_bias_column.check_devices(add_bias_column)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_meta_branch_does_not_fool_the_gpu_verdict():
    """A function that answers meta inputs with a meta tensor but builds its result on the CPU
    passes the meta check; with a GPU the CUDA verdict decides, and it fails."""
    def add_bias_column(X):
        if X.device.type == "meta":
            return torch.cat((X, X.new_ones(X.shape[0], 1)), dim=1)
        return torch.cat((X.cpu(), torch.ones(X.shape[0], 1, dtype=X.dtype)), dim=1)

    with pytest.raises(core.CheckFailed, match="on the CPU"):
        lab.add_bias_column.check_devices(add_bias_column)
    with pytest.raises(core.CheckFailed, match="on the CPU"):
        lab.check_split_unmodified_and_devices(
            lambda X, y, n, seed: tuple(t.cpu() if X.device.type != "meta" else t
                                        for t in (X[:n], y[:n], X[n:], y[n:])))


def test_without_a_gpu_a_meta_branch_is_not_caught():
    """What docs/instructors.md says: meta propagation cannot see a deliberate meta branch."""
    def add_bias_column(X):
        if X.device.type == "meta":
            return torch.cat((X, X.new_ones(X.shape[0], 1)), dim=1)
        return torch.cat((X.cpu(), torch.ones(X.shape[0], 1, dtype=X.dtype)), dim=1)

    assert _meta_verdict(add_bias_column) is None


@pytest.mark.parametrize("fn", [
    lambda X: {}["a key the notebook never set"],     # raises on every input
    lambda X: float(X.sum()),                          # no tensor (meta cannot say)
], ids=["raises", "returns_a_float"])
def test_the_devices_point_needs_a_function_that_works_where_it_is_judged(fn):
    """Without a GPU a function that raises, or returns no tensor, on real inputs fails its
    devices check as it would on a GPU, rather than passing because meta found nothing decisive:
    the devices point does not go to a function that does not work."""
    args = (torch.randn(4, 3, dtype=torch.float64),)
    with pytest.raises(core.CheckFailed):
        core.check_placement(fn, "f", args)
    assert _meta_verdict(fn) is None  # meta alone was inconclusive for both
