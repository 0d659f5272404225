"""Answer variants for 1.2 (logistic regression): typical mistakes and correct alternatives."""

#: Globals as the notebook defines them (the digits training rows), for the answer that reads
#: them instead of its arguments: it then trains the notebook's model correctly, and only the
#: checks on other inputs can tell.
_NOTEBOOK_GLOBALS = (
    "from sklearn.datasets import load_digits\n"
    "_pixels, _digits = load_digits(n_class=2, return_X_y=True)\n"
    "_X = torch.cat((torch.tensor(_pixels) / 16.0, torch.ones(360, 1, dtype=torch.float64)), dim=1)\n"
    "_y = torch.tensor(_digits, dtype=torch.float64).reshape(-1, 1)\n"
    "_order = torch.randperm(360, generator=torch.Generator().manual_seed(0))\n"
    "X_train, y_train = _X[_order[:260]], _y[_order[:260]]\n"
)

WRONG = {
    "logistic_regression_loss_grad": {
        "sign_error": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    return X.T @ (y - torch.sigmoid(X @ theta))"
        ),
        "mean_not_sum": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    return X.T @ (torch.sigmoid(X @ theta) - y) / X.shape[0]"
        ),
        "bce_default_mean_autograd": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    theta = theta.detach().clone().requires_grad_(True)\n"
            "    F.binary_cross_entropy_with_logits(X @ theta, y).backward()\n"
            "    return theta.grad"
        ),
        "row_not_column": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    return (torch.sigmoid(X @ theta) - y).T @ X"
        ),
        "missing_transpose_summed": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    return (X * (torch.sigmoid(X @ theta) - y)).sum(dim=0)"
        ),
        "linear_not_sigmoid": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    return X.T @ (X @ theta - y)"
        ),
        "reads_notebook_globals": _NOTEBOOK_GLOBALS + (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    return X_train.T @ (torch.sigmoid(X_train @ theta) - y_train)"
        ),
        "hard_coded_sanity_value": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    return torch.full_like(theta, 0.5)"
        ),
        "ignores_theta": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    return X.T @ (0.5 - y)"
        ),
        "result_always_float64": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    return (X.T @ (torch.sigmoid(X @ theta) - y)).to(torch.float64)"
        ),
        "loop_default_dtype_tensor": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    rows = [(torch.sigmoid(X[i] @ theta) - y[i]) * X[i] for i in range(X.shape[0])]\n"
            "    return torch.tensor([[float(sum(r[j] for r in rows))] for j in range(X.shape[1])])"
        ),
        "zeros_on_cpu": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    grad = torch.zeros(X.shape[1], 1, dtype=X.dtype)\n"
            "    return grad + X.T @ (torch.sigmoid(X @ theta) - y)"
        ),
        "via_numpy": (
            "import numpy as np\n"
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    p = 1 / (1 + np.exp(-(X.numpy() @ theta.numpy())))\n"
            "    return torch.from_numpy(X.numpy().T @ (p - y.numpy()))"
        ),
        "modifies_y_in_place": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    y -= torch.sigmoid(X @ theta)\n"
            "    return -(X.T @ y)"
        ),
    },
}

CORRECT = {
    "logistic_regression_loss_grad": {
        "autograd_nll_formula": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    theta = theta.detach().clone().requires_grad_(True)\n"
            "    p = torch.sigmoid(X @ theta)\n"
            "    nll = -(y.T @ torch.log(p) + (1 - y).T @ torch.log(1 - p)).sum()\n"
            "    (grad,) = torch.autograd.grad(nll, theta)\n"
            "    return grad"
        ),
        "bce_with_logits_sum_autograd": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    theta = theta.detach().clone().requires_grad_(True)\n"
            "    loss = F.binary_cross_entropy_with_logits(X @ theta, y, reduction='sum')\n"
            "    loss.backward()\n"
            "    return theta.grad"
        ),
        "loop_over_rows": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    grad = torch.zeros_like(theta)\n"
            "    for i in range(X.shape[0]):\n"
            "        x = X[i:i + 1].T\n"
            "        grad = grad + x * (torch.sigmoid(x.T @ theta) - y[i:i + 1])\n"
            "    return grad"
        ),
        "special_expit": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    return X.T @ (torch.special.expit(X @ theta) - y)"
        ),
        "explicit_exp": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    return X.mT @ (1 / (1 + torch.exp(-(X @ theta))) - y)"
        ),
        "broadcast_and_sum": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    return (X * (torch.sigmoid(X @ theta) - y)).sum(dim=0, keepdim=True).T"
        ),
        "einsum": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    return torch.einsum('md,mk->dk', X, torch.sigmoid(X @ theta) - y)"
        ),
        "in_place_on_own_tensor": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    r = torch.sigmoid(X @ theta)\n"
            "    r -= y\n"
            "    return X.T @ r"
        ),
    },
}

WRONG["logistic_regression_loss_grad"]["sigmoid_as_exp_ratio"] = (
    "def logistic_regression_loss_grad(theta, X, y):\n"
    "    e = torch.exp(X @ theta)\n"
    "    return X.T @ (e / (1 + e) - y)  # inf / inf for scores above about 88 in float32"
)
WRONG["logistic_regression_loss_grad"]["autograd_on_the_argument"] = (
    "def logistic_regression_loss_grad(theta, X, y):\n"
    "    theta.requires_grad_()\n"
    "    F.binary_cross_entropy_with_logits(X @ theta, y, reduction='sum').backward()\n"
    "    return theta.grad"
)
# Accurate only to float32's level (or not at all on large scores), each on one property alone:
# the values on order-one scores, or the large-score case, where a clamp acts.
WRONG["logistic_regression_loss_grad"]["probabilities_clamped"] = (
    "def logistic_regression_loss_grad(theta, X, y):\n"
    "    p = torch.sigmoid(X @ theta).clamp(1e-7, 1 - 1e-7)\n"
    "    return X.T @ (p - y)"
)
WRONG["logistic_regression_loss_grad"]["scores_clamped"] = (
    "def logistic_regression_loss_grad(theta, X, y):\n"
    "    return X.T @ (torch.sigmoid((X @ theta).clamp(-10, 10)) - y)"
)
WRONG["logistic_regression_loss_grad"]["float32_inner_scores"] = (
    "def logistic_regression_loss_grad(theta, X, y):\n"
    "    p = torch.sigmoid((X @ theta).float()).to(theta.dtype)\n"
    "    return X.T @ (p - y)"
)
# Right values with autograd's graph still attached (create_graph=True): used in a descent it
# drags a growing graph through every step.
WRONG["logistic_regression_loss_grad"]["result_requires_grad"] = (
    "def logistic_regression_loss_grad(theta, X, y):\n"
    "    t = theta.detach().clone().requires_grad_(True)\n"
    "    loss = F.binary_cross_entropy_with_logits(X @ t, y, reduction='sum')\n"
    "    (g,) = torch.autograd.grad(loss, t, create_graph=True)\n"
    "    return g"
)
# Autograd through log(sigmoid) and log(1 - sigmoid) is exact on order-one scores but gives
# NaN once sigmoid rounds to 1 (scores above about 17 in float32, 37 in float64), where the
# gradient X^T (sigmoid(X theta) - y) is finite: the large-score check takes its point.
WRONG["logistic_regression_loss_grad"]["autograd_through_log_sigmoid"] = (
    CORRECT["logistic_regression_loss_grad"].pop("autograd_nll_formula")
)

#: Wrong variants that must lose exactly the points of these hidden tests (by the test's name after
#: the question's: ``values``, ``large_scores``, ``plain``, ...): a mistake of one property costs
#: that property's point, and no other.
FAILS = {
    "logistic_regression_loss_grad": {
        "probabilities_clamped": {"large_scores"},
        "scores_clamped": {"large_scores"},
        "float32_inner_scores": {"values"},
        "result_requires_grad": {"plain"},
    },
}

#: The words a TA would use for each wrong answer: the feedback of its failed tests must contain
#: each of them (case-insensitive). tests/test_answer_variants.py checks that every WRONG
#: variant has an entry.
WORDS = {
    "logistic_regression_loss_grad": {
        "sign_error": ("check the sign",),
        "mean_not_sum": ("do not average",),
        "bce_default_mean_autograd": ("do not average",),
        "row_not_column": ("transposes", "column"),
        "missing_transpose_summed": ("transposes",),
        "linear_not_sigmoid": ("leaves out the sigmoid",),
        "reads_notebook_globals": ("none of its arguments", "X_train"),
        "hard_coded_sanity_value": ("does not change when `theta` changes",),
        "ignores_theta": ("does not change when `theta` changes",),
        "result_always_float64": ("dtype",),
        "loop_default_dtype_tensor": ("dtype",),
        "zeros_on_cpu": ("device",),
        "via_numpy": ("NumPy",),
        "modifies_y_in_place": ("in place",),
        "sigmoid_as_exp_ratio": ("overflows", "torch.sigmoid"),
        "autograd_on_the_argument": ("autograd", "copy"),
        "autograd_through_log_sigmoid": ("log(1 - sigmoid(z))", "stable form of the loss"),
        "probabilities_clamped": ("clamp", "exact"),
        "scores_clamped": ("clamp", "exact"),
        "float32_inner_scores": ("float32", "7 digits"),
        "result_requires_grad": ("attached to autograd", ".detach()"),
    },
}


#: Answers only a GPU catches: right values, but a result or a tensor left on the CPU (a
#: CPU-only grader cannot judge them, so they keep full marks there and must lose their devices
#: point on CUDA). ``make gpu-check`` hands them in; tests/test_gpu.py grades them.
GPU_ONLY = {
    "logistic_regression_loss_grad": {
        "item_into_cpu_tensor": (
            "def logistic_regression_loss_grad(theta, X, y):\n"
            "    p = torch.tensor([torch.sigmoid(X[i] @ theta).item()\n"
            "                      for i in range(X.shape[0])], dtype=X.dtype).reshape(-1, 1)\n"
            "    return X.T @ (p - y)"
        ),
    },
}
