"""Answers that only a GPU can catch: right values, but a result or a tensor left on the CPU.

Each one leaves the device of its inputs through a route that a CPU-only grader cannot judge:
`.tolist()`, `float(...)` or `.item()` read values out of a tensor (on ``meta`` tensors that is
"no data", which `labkit.checks.core.check_meta_propagation` treats as inconclusive) and
new tensors are built with `torch.zeros(n)` or `torch.tensor(...)` without a device. So on a
CPU-only machine each keeps full marks, and on CUDA each must lose its devices point (and every
other check that runs on CUDA).

``GPU_ONLY[stem][question][variant]`` is the source of one answer; it runs in a namespace holding
`torch`, `math` and `F` (torch.nn.functional) and defines the graded name, as in `a1_*.py`.
`tests/test_gpu.py` grades them with the released tests, and `tools/gpu-check` hands them in as a
student's notebooks to prove that its GPU pass judged on CUDA.
"""

GPU_ONLY = {
    "1_1_linear_regression": {
        "as_column": {
            "tolist": (
                "def as_column(y):\n"
                "    return torch.tensor(y.tolist(), dtype=y.dtype).reshape(-1, 1)"
            ),
        },
        "pinv_svd": {
            "zeros_without_device": (
                "def pinv_svd(X):\n"
                "    U, S, Vh = torch.linalg.svd(X, full_matrices=False)\n"
                "    S_inv = torch.zeros(S.shape[0], dtype=S.dtype)\n"
                "    keep = S > S.max() * max(X.shape) * torch.finfo(S.dtype).eps\n"
                "    S_inv[keep] = 1 / S[keep]\n"
                "    return Vh.mT @ torch.diag(S_inv) @ U.mT"
            ),
        },
        "linear_regression_loss_grad": {
            "float_into_cpu_zeros": (
                "def linear_regression_loss_grad(theta, X, y):\n"
                "    r = X @ theta - y\n"
                "    grad = torch.zeros(theta.shape[0], 1, dtype=X.dtype)\n"
                "    for j in range(theta.shape[0]):\n"
                "        grad[j, 0] = float((X[:, j] * r[:, 0]).sum())\n"
                "    return grad"
            ),
        },
    },
    "1_2_logistic_regression": {
        "logistic_regression_loss_grad": {
            "item_into_cpu_tensor": (
                "def logistic_regression_loss_grad(theta, X, y):\n"
                "    p = torch.tensor([torch.sigmoid(X[i] @ theta).item()\n"
                "                      for i in range(X.shape[0])], dtype=X.dtype).reshape(-1, 1)\n"
                "    return X.T @ (p - y)"
            ),
        },
    },
    "1_3_softmax_regression": {
        "softmax_regression_loss": {
            "float_sum": (
                "def softmax_regression_loss(Theta, X, y):\n"
                "    Z = X @ Theta\n"
                "    total = 0.0\n"
                "    for i in range(X.shape[0]):\n"
                "        total += float(torch.logsumexp(Z[i], 0) - Z[i, y[i, 0]])\n"
                "    return torch.tensor(total, dtype=X.dtype)"
            ),
        },
        "softmax_regression_loss_grad": {
            "tolist_one_hot_on_cpu": (
                "def softmax_regression_loss_grad(Theta, X, y):\n"
                "    P = torch.softmax(X @ Theta, dim=1)\n"
                "    Y = torch.zeros(X.shape[0], Theta.shape[1], dtype=X.dtype)\n"
                "    Y[range(X.shape[0]), y.reshape(-1).tolist()] = 1\n"
                "    return X.T @ (P - Y)"
            ),
        },
    },
}
