"""Answer variants for 1.1 (linear regression): typical mistakes and correct alternatives."""

WRONG = {
    "add_bias_column": {
        "ones_first": "def add_bias_column(X):\n    return torch.cat((X.new_ones(X.shape[0], 1), X), dim=1)",
        "ones_on_cpu": "def add_bias_column(X):\n    return torch.cat((X, torch.ones(X.shape[0], 1, dtype=X.dtype)), dim=1)",
        "hard_coded_rows": "def add_bias_column(X):\n    return torch.cat((X, X.new_ones(1000, 1)), dim=1)",
        "via_numpy": "import numpy as np\ndef add_bias_column(X):\n    return torch.from_numpy(np.hstack([X.numpy(), np.ones((X.shape[0], 1))])).to(X.dtype)",
    },
    "as_column": {
        "row_not_column": "def as_column(y):\n    return y.reshape(1, -1)",
        "unsqueeze_in_place": "def as_column(y):\n    return y.unsqueeze_(1)",
        "always_float32": "def as_column(y):\n    return y.reshape(-1, 1).float()",
    },
    "train_test_split": {
        "no_shuffle": "def train_test_split(X, y, n_train, seed):\n    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]",
        "targets_not_aligned": (
            "def train_test_split(X, y, n_train, seed):\n"
            "    g = torch.Generator().manual_seed(seed)\n"
            "    p, q = torch.randperm(len(X), generator=g), torch.randperm(len(X), generator=g)\n"
            "    return X[p[:n_train]], y[q[:n_train]], X[p[n_train:]], y[q[n_train:]]"
        ),
        "ignores_seed": (
            "def train_test_split(X, y, n_train, seed):\n"
            "    p = torch.randperm(len(X))\n"
            "    return X[p[:n_train]], y[p[:n_train]], X[p[n_train:]], y[p[n_train:]]"
        ),
        "overlapping_parts": (
            "def train_test_split(X, y, n_train, seed):\n"
            "    g = torch.Generator().manual_seed(seed)\n"
            "    i = torch.randint(len(X), (len(X),), generator=g)\n"
            "    return X[i[:n_train]], y[i[:n_train]], X[i[n_train:]], y[i[n_train:]]"
        ),
        "shuffles_in_place": (
            "def train_test_split(X, y, n_train, seed):\n"
            "    p = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))\n"
            "    X[:] = X[p]\n    y[:] = y[p]\n"
            "    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]"
        ),
    },
    "pinv_svd": {
        "no_threshold": (
            "def pinv_svd(X):\n    U, S, Vh = torch.linalg.svd(X, full_matrices=False)\n"
            "    return Vh.mT @ torch.diag(1 / S) @ U.mT"
        ),
        "missing_transposes": (
            "def pinv_svd(X):\n    U, S, Vh = torch.linalg.svd(X, full_matrices=False)\n"
            "    S_inv = torch.where(S > 1e-10, 1 / S, torch.zeros_like(S))\n"
            "    return Vh @ torch.diag(S_inv) @ U.mT"
        ),
        "S_not_inverted": (
            "def pinv_svd(X):\n    U, S, Vh = torch.linalg.svd(X, full_matrices=False)\n"
            "    return Vh.mT @ torch.diag(S) @ U.mT"
        ),
        "normal_equations": "def pinv_svd(X):\n    return torch.linalg.inv(X.T @ X) @ X.T",
        "zeros_on_cpu": (
            "def pinv_svd(X):\n    U, S, Vh = torch.linalg.svd(X, full_matrices=False)\n"
            "    S_inv = torch.where(S > 1e-10, 1 / S, torch.zeros(S.shape, dtype=S.dtype))\n"
            "    return Vh.mT @ torch.diag(S_inv) @ U.mT"
        ),
        "via_numpy": (
            "import numpy as np\ndef pinv_svd(X):\n    U, S, Vh = np.linalg.svd(X.numpy(), full_matrices=False)\n"
            "    S_inv = np.where(S > 1e-10, 1 / S, 0)\n"
            "    return torch.from_numpy(Vh.T @ np.diag(S_inv) @ U.T)"
        ),
    },
    "linear_regression_loss_grad": {
        "sign_error": "def linear_regression_loss_grad(theta, X, y):\n    return X.T @ (y - X @ theta)",
        "mean_not_sum": "def linear_regression_loss_grad(theta, X, y):\n    return X.T @ (X @ theta - y) / X.shape[0]",
        "factor_two": "def linear_regression_loss_grad(theta, X, y):\n    return 2 * X.T @ (X @ theta - y)",
        "transposed_result": "def linear_regression_loss_grad(theta, X, y):\n    return (X @ theta - y).T @ X",
        "in_place_residual": "def linear_regression_loss_grad(theta, X, y):\n    y -= X @ theta\n    return -X.T @ y",
        "float64_result": "def linear_regression_loss_grad(theta, X, y):\n    return X.double().T @ (X.double() @ theta.double() - y.double())",
        "via_numpy": (
            "def linear_regression_loss_grad(theta, X, y):\n"
            "    Xn, t, yn = X.numpy(), theta.numpy(), y.numpy()\n"
            "    return torch.from_numpy(Xn.T @ (Xn @ t - yn))"
        ),
    },
}

CORRECT = {
    "add_bias_column": {
        "hstack_ones_like": "def add_bias_column(X):\n    return torch.hstack((X, torch.ones_like(X[:, :1])))",
        "default_dtype_ones_promoted_by_cat": "def add_bias_column(X):\n    return torch.cat((X, torch.ones(X.shape[0], 1, device=X.device)), dim=1)",
        "functional_pad": "def add_bias_column(X):\n    return F.pad(X, (0, 1), value=1.0)",
    },
    "as_column": {
        "unsqueeze": "def as_column(y):\n    return y.unsqueeze(1)",
        "none_index": "def as_column(y):\n    return y[:, None]",
        "view": "def as_column(y):\n    return y.view(len(y), 1)",
    },
    "train_test_split": {
        "manual_seed_global": (
            "def train_test_split(X, y, n_train, seed):\n    torch.manual_seed(seed)\n"
            "    p = torch.randperm(X.shape[0])\n"
            "    return X[p[:n_train]], y[p[:n_train]], X[p[n_train:]], y[p[n_train:]]"
        ),
        "argsort_of_rand": (
            "def train_test_split(X, y, n_train, seed):\n"
            "    g = torch.Generator().manual_seed(seed)\n"
            "    p = torch.rand(len(X), generator=g).argsort().to(X.device)\n"
            "    tr, te = p[:n_train], p[n_train:]\n"
            "    return X[tr], y[tr], X[te], y[te]"
        ),
    },
    "pinv_svd": {
        "legacy_torch_svd": (
            "def pinv_svd(X):\n    U, S, V = torch.svd(X)\n"
            "    S_inv = torch.where(S > 1e-10, 1 / S, torch.zeros_like(S))\n"
            "    return V @ torch.diag(S_inv) @ U.T"
        ),
        "boolean_mask_and_item": (
            "def pinv_svd(X):\n    U, S, Vh = torch.linalg.svd(X, full_matrices=False)\n"
            "    S_inv = torch.zeros_like(S)\n    tol = S.max().item() * 1e-12 if len(S) else 0.0\n"
            "    S_inv[S > tol] = 1 / S[S > tol]\n"
            "    return Vh.T @ torch.diag(S_inv) @ U.T"
        ),
        "scaled_columns": (
            "def pinv_svd(X):\n    U, S, Vh = torch.linalg.svd(X, full_matrices=False)\n"
            "    keep = S > torch.finfo(X.dtype).eps * max(X.shape) * S.amax(dim=-1, keepdim=True)\n"
            "    S_inv = torch.where(keep, S.reciprocal(), 0.0)\n"
            "    return (Vh.mT * S_inv) @ U.mT"
        ),
    },
    "linear_regression_loss_grad": {
        "autograd": (
            "def linear_regression_loss_grad(theta, X, y):\n"
            "    theta = theta.detach().clone().requires_grad_(True)\n"
            "    loss = 0.5 * ((X @ theta - y) ** 2).sum()\n"
            "    loss.backward()\n    return theta.grad"
        ),
        "loop_over_rows": (
            "def linear_regression_loss_grad(theta, X, y):\n    grad = torch.zeros_like(theta)\n"
            "    for i in range(X.shape[0]):\n"
            "        grad = grad + X[i].unsqueeze(1) * (X[i] @ theta - y[i])\n    return grad"
        ),
        "normal_form": "def linear_regression_loss_grad(theta, X, y):\n    return X.T @ X @ theta - X.T @ y",
        "einsum": "def linear_regression_loss_grad(theta, X, y):\n    return torch.einsum('md,mk->dk', X, X @ theta - y)",
    },
}

# The threshold must follow the input's dtype and scale (Exercise 2 states finfo(X.dtype).eps).
CORRECT["pinv_svd"]["legacy_torch_svd"] = (
    "def pinv_svd(X):\n    U, S, V = torch.svd(X)\n"
    "    cut = S.max() * max(X.shape) * torch.finfo(X.dtype).eps if S.numel() else 0.0\n"
    "    S_inv = torch.where(S > cut, 1 / S, torch.zeros_like(S))\n"
    "    return V @ torch.diag(S_inv) @ U.T"
)
CORRECT["pinv_svd"]["boolean_mask_and_item"] = (
    "def pinv_svd(X):\n    U, S, Vh = torch.linalg.svd(X, full_matrices=False)\n"
    "    S_inv = torch.zeros_like(S)\n"
    "    tol = S.max().item() * max(X.shape) * torch.finfo(X.dtype).eps if len(S) else 0.0\n"
    "    S_inv[S > tol] = 1 / S[S > tol]\n"
    "    return Vh.T @ torch.diag(S_inv) @ U.T"
)
WRONG["linear_regression_loss_grad"]["result_on_a_graph"] = (
    "def linear_regression_loss_grad(theta, X, y):\n"
    "    t = theta.detach().clone().requires_grad_(True)\n"
    "    (g,) = torch.autograd.grad(0.5 * ((X @ t - y) ** 2).sum(), t, create_graph=True)\n"
    "    return g  # right values, but it requires grad and hangs on a graph"
)
CORRECT["train_test_split"]["slices_by_count"] = (
    "def train_test_split(X, y, n_train, seed):\n"
    "    order = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))\n"
    "    train, test = order[:n_train], order[n_train:X.shape[0]]\n"
    "    return X[train], y[train], X[test], y[test]"
)
WRONG["pinv_svd"]["fixed_cutoff"] = (
    "def pinv_svd(X):\n    U, S, Vh = torch.linalg.svd(X, full_matrices=False)\n"
    "    return Vh.mT @ torch.diag(torch.where(S > 1e-10, 1 / S, torch.zeros_like(S))) @ U.mT"
)
WRONG["pinv_svd"]["float64_eps_for_every_dtype"] = (
    "def pinv_svd(X):\n    U, S, Vh = torch.linalg.svd(X, full_matrices=False)\n"
    "    cut = S.max() * max(X.shape) * 2.220446049250313e-16 if S.numel() else 0.0\n"
    "    return Vh.mT @ torch.diag(torch.where(S > cut, 1 / S, torch.zeros_like(S))) @ U.mT"
)
WRONG["pinv_svd"]["relative_cutoff_too_small"] = (
    "def pinv_svd(X):\n    U, S, Vh = torch.linalg.svd(X, full_matrices=False)\n"
    "    keep = S > 1e-12 * S.max() if S.numel() else S > 0\n"
    "    return Vh.mT @ torch.diag(torch.where(keep, 1 / S, torch.zeros_like(S))) @ U.mT"
)
WRONG["train_test_split"]["negative_slice_for_test"] = (
    "def train_test_split(X, y, n_train, seed):\n"
    "    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))\n"
    "    n_test = len(X) - n_train\n"
    "    train, test = order[:n_train], order[-n_test:]  # every row when n_test == 0\n"
    "    return X[train], y[train], X[test], y[test]"
)
WRONG["linear_regression_loss_grad"]["autograd_on_the_argument"] = (
    "def linear_regression_loss_grad(theta, X, y):\n"
    "    theta.requires_grad_(True)\n"
    "    (0.5 * ((X @ theta - y) ** 2).sum()).backward()\n"
    "    return theta.grad  # the caller's theta now requires grad; .grad accumulates"
)

#: The notebook's functions and split, as the solution defines them, for the variants of
#: ``diabetes_theta`` (a value, not a function: each variant sets ``theta``).
_DIABETES = (
    "from sklearn.datasets import load_diabetes\n"
    "def add_bias_column(X):\n"
    "    return torch.cat((X, torch.ones(X.shape[0], 1, dtype=X.dtype)), dim=1)\n"
    "def as_column(v):\n"
    "    return v.reshape(-1, 1)\n"
    "def train_test_split(X, y, n_train, seed):\n"
    "    order = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))\n"
    "    return X[order[:n_train]], y[order[:n_train]], X[order[n_train:]], y[order[n_train:]]\n"
    "def pinv_svd(X):\n"
    "    return torch.linalg.pinv(X)\n"
    "_features, _target = load_diabetes(return_X_y=True)\n"
    "_features = torch.tensor(_features[:, [2, 8]])\n"
    "_features = _features / _features.std(dim=0)\n"
    "X_train, y_train, X_test, y_test = train_test_split(\n"
    "    add_bias_column(_features), as_column(torch.tensor(_target)), 221, 0)\n"
)
CORRECT["diabetes_theta"] = {
    "pinv_svd_times_y": _DIABETES + "theta = pinv_svd(X_train) @ y_train\n",
    "lstsq": _DIABETES + "theta = torch.linalg.lstsq(X_train, y_train).solution\n",
}
WRONG["diabetes_theta"] = {
    # Fitted and kept in float32 where the notebook works in float64.
    "float32_theta": _DIABETES + "theta = pinv_svd(X_train.float()) @ y_train.float()\n",
    "fitted_with_autograd_attached": _DIABETES + (
        "theta = torch.zeros(3, 1, dtype=X_train.dtype, requires_grad=True)\n"
        "theta = theta + pinv_svd(X_train) @ y_train  # the fit, still on autograd's graph\n"),
    "fitted_to_every_row": _DIABETES + (
        "_X, _y = torch.cat((X_train, X_test)), torch.cat((y_train, y_test))\n"
        "theta = pinv_svd(_X) @ _y\n"),
}

#: Wrong variants that must lose exactly the points of these hidden tests (see a1_2.FAILS).
FAILS = {
    "linear_regression_loss_grad": {"result_on_a_graph": {"plain"}},
    "diabetes_theta": {
        "float32_theta": {"dtype"},
        "fitted_with_autograd_attached": {"plain"},
        "fitted_to_every_row": {"fit"},
    },
}

#: Survivors of `make audit` (mutants of the reference answer that kept full marks) that are real
#: mistakes; each must lose a point (tests/test_audit.py).
AUDIT_KILLED = {
    "linear_regression_loss_grad": {
        "targets_in_float32": (
            "def linear_regression_loss_grad(theta, X, y):\n"
            "    y = y.float()\n"
            "    return X.T @ (X @ theta - y)"
        ),
    },
    "train_test_split": {
        "parts_in_float32": (
            "def train_test_split(X, y, n_train, seed):\n"
            "    X = X.float()\n"
            "    order = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))\n"
            "    train, test = order[:n_train], order[n_train:]\n"
            "    return X[train], y[train], X[test], y[test]"
        ),
    },
}

#: The words a TA would use for each wrong answer: the feedback of its failed tests must contain
#: each of them (case-insensitive). tests/test_answer_variants.py checks that every WRONG
#: variant has an entry.
WORDS = {
    "add_bias_column": {
        "ones_first": ("ones column", "last"),
        "ones_on_cpu": ("device",),
        "hard_coded_rows": ("none of its arguments", "X.shape[0]"),
        "via_numpy": ("NumPy",),
    },
    "as_column": {
        "row_not_column": ("3 x 1 column",),
        "unsqueeze_in_place": ("in place",),
        "always_float32": ("dtype",),
    },
    "train_test_split": {
        "no_shuffle": ("shuffle", "permutation"),
        "targets_not_aligned": ("same permutation",),
        "ignores_seed": ("seed",),
        "overlapping_parts": ("exactly once",),
        "shuffles_in_place": ("in place",),
        "negative_slice_for_test": ("negative slice",),
    },
    "pinv_svd": {
        "no_threshold": ("singular values", "treated as zero"),
        "missing_transposes": ("transposes",),
        "S_not_inverted": ("invert the non-zero singular values",),
        "normal_equations": ("normal equations", "SVD"),
        "zeros_on_cpu": ("device",),
        "via_numpy": ("NumPy",),
        "fixed_cutoff": ("not a fixed number",),
        "float64_eps_for_every_dtype": ("the input's dtype",),
        "relative_cutoff_too_small": ("max(m, n) * eps",),
    },
    "linear_regression_loss_grad": {
        "sign_error": ("opposite sign",),
        "mean_not_sum": ("do not average",),
        "factor_two": ("factor 2",),
        "transposed_result": ("shape", "transposes"),
        "in_place_residual": ("in place",),
        "float64_result": ("dtype",),
        "via_numpy": ("NumPy",),
        "autograd_on_the_argument": ("autograd", "copy"),
        "result_on_a_graph": ("attached to autograd", ".detach()"),
    },
    "diabetes_theta": {
        "float32_theta": ("float32", "precision"),
        "fitted_with_autograd_attached": ("attached to autograd", ".detach()"),
        "fitted_to_every_row": ("training rows only",),
    },
}


#: Answers only a GPU catches: right values, but a result or a tensor left on the CPU (a
#: CPU-only grader cannot judge them, so they keep full marks there and must lose their devices
#: point on CUDA). ``make gpu-check`` hands them in; tests/test_gpu.py grades them.
GPU_ONLY = {
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
}
