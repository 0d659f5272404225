"""Answer variants for assignment 1.3 (softmax regression); see README.md.

Each source runs in a namespace holding `torch`, `math` and `F` (torch.nn.functional), with the
notebook's default dtype (float64), and defines the graded name. Variants of the reduced gradient
are self-contained: those that reuse a full gradient define it too.
"""

# A correct full gradient, for the reduced-gradient variants that build on it.
_FULL_GRAD = '''
def softmax_regression_loss_grad(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=1)
    Y = torch.zeros_like(P).scatter_(1, y, 1.0)
    return X.T @ (P - Y)
'''

WRONG = {
    "softmax_regression_loss": {
        "sign_error": '''
def softmax_regression_loss(Theta, X, y):
    return torch.log_softmax(X @ Theta, dim=1).gather(1, y).sum()
''',
        "mean_not_sum": '''
def softmax_regression_loss(Theta, X, y):
    return -torch.log_softmax(X @ Theta, dim=1).gather(1, y).mean()
''',
        "softmax_over_items": '''
def softmax_regression_loss(Theta, X, y):
    return -torch.log_softmax(X @ Theta, dim=0).gather(1, y).sum()
''',
        "index_broadcast_m_by_m": '''
def softmax_regression_loss(Theta, X, y):
    log_p = torch.log_softmax(X @ Theta, dim=1)
    return -log_p[torch.arange(X.shape[0]), y].sum()  # y is m x 1: picks an m x m block
''',
        "one_hot_broadcast_m_by_m": '''
def softmax_regression_loss(Theta, X, y):
    log_p = torch.log_softmax(X @ Theta, dim=1)
    Y = torch.zeros_like(log_p)
    Y[torch.arange(X.shape[0]), y] = 1.0  # every row gets a one at every class present in y
    return -(Y * log_p).sum()
''',
        "naive_exp_overflows": '''
def softmax_regression_loss(Theta, X, y):
    E = torch.exp(X @ Theta)
    P = E / E.sum(dim=1, keepdim=True)
    return -torch.log(P.gather(1, y)).sum()
''',
        "log_of_softmax": '''
def softmax_regression_loss(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=1)  # stable, but a tiny probability rounds to zero
    return -torch.log(P.gather(1, y)).sum()
''',
        "dtype_lost": '''
def softmax_regression_loss(Theta, X, y):
    Y = F.one_hot(y.flatten(), Theta.shape[1]).double()
    return -(Y * torch.log_softmax(X @ Theta, dim=1)).sum()
''',
        "modifies_y_in_place": '''
def softmax_regression_loss(Theta, X, y):
    y.squeeze_(1)
    return F.cross_entropy(X @ Theta, y, reduction="sum")
''',
        "returns_python_float": '''
def softmax_regression_loss(Theta, X, y):
    return F.cross_entropy(X @ Theta, y.flatten(), reduction="sum").item()
''',
        "keeps_a_dimension": '''
def softmax_regression_loss(Theta, X, y):
    return -torch.log_softmax(X @ Theta, dim=1).gather(1, y).sum(dim=0)
''',
        "hard_coded_sanity_value": '''
def softmax_regression_loss(Theta, X, y):
    return torch.tensor(2 * math.log(1 + math.exp(-1)), dtype=Theta.dtype, device=Theta.device)
''',
    },
    "softmax_regression_loss_grad": {
        "sign_error": '''
def softmax_regression_loss_grad(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=1)
    Y = F.one_hot(y.flatten(), Theta.shape[1]).to(P.dtype)
    return X.T @ (Y - P)
''',
        "mean_not_sum": '''
def softmax_regression_loss_grad(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=1)
    Y = F.one_hot(y.flatten(), Theta.shape[1]).to(P.dtype)
    return X.T @ (P - Y) / X.shape[0]
''',
        "softmax_over_items": '''
def softmax_regression_loss_grad(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=0)
    Y = F.one_hot(y.flatten(), Theta.shape[1]).to(P.dtype)
    return X.T @ (P - Y)
''',
        "one_hot_broadcast_m_by_m": '''
def softmax_regression_loss_grad(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=1)
    Y = torch.zeros_like(P)
    Y[torch.arange(X.shape[0]), y] = 1.0  # y is m x 1: sets an m x m block of positions
    return X.T @ (P - Y)
''',
        "compare_broadcast_m_by_m": '''
def softmax_regression_loss_grad(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=1)
    # meant (m, 1) == (1, K); (m,) == (m, 1) gives m x m, then only the first K columns are kept
    Y = (y.flatten() == y).to(P.dtype)[:, : Theta.shape[1]]
    return X.T @ (P - Y)
''',
        "one_hot_without_num_classes": '''
def softmax_regression_loss_grad(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=1)
    Y = F.one_hot(y.flatten()).to(P.dtype)  # too few columns when the last classes are absent
    return X.T @ (P - Y)
''',
        "dtype_lost": '''
def softmax_regression_loss_grad(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=1)
    Y = F.one_hot(y.flatten(), Theta.shape[1]).double()
    return X.T @ (P - Y)
''',
        "one_hot_on_cpu": '''
def softmax_regression_loss_grad(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=1)
    Y = torch.zeros(X.shape[0], Theta.shape[1], dtype=X.dtype)
    Y[torch.arange(X.shape[0]), y.flatten()] = 1.0
    return X.T @ (P - Y)
''',
        "arange_on_cpu": '''
def softmax_regression_loss_grad(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=1)
    Y = (y == torch.arange(Theta.shape[1])).to(P.dtype)
    return X.T @ (P - Y)
''',
        "modifies_y_in_place": '''
def softmax_regression_loss_grad(Theta, X, y):
    y.squeeze_(1)
    P = torch.softmax(X @ Theta, dim=1)
    return X.T @ (P - F.one_hot(y, Theta.shape[1]).to(P.dtype))
''',
        "modifies_theta_in_place": '''
def softmax_regression_loss_grad(Theta, X, y):
    Theta -= Theta.max(dim=1, keepdim=True).values  # "stabilise" the parameters in place
    P = torch.softmax(X @ Theta, dim=1)
    return X.T @ (P - F.one_hot(y.flatten(), Theta.shape[1]).to(P.dtype))
''',
        "missing_x_transpose_sum": '''
def softmax_regression_loss_grad(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=1)
    Y = F.one_hot(y.flatten(), Theta.shape[1]).to(P.dtype)
    return X.sum(dim=0, keepdim=True).T * (P - Y).sum(dim=0, keepdim=True)
''',
    },
    "softmax_regression_loss_grad_0": {
        "first_column_dropped": _FULL_GRAD + '''
def softmax_regression_loss_grad_0(Theta, X, y):
    Theta_full = torch.cat((Theta, Theta.new_zeros(Theta.shape[0], 1)), dim=1)
    return softmax_regression_loss_grad(Theta_full, X, y)[:, 1:]
''',
        "first_class_fixed_at_zero": _FULL_GRAD + '''
def softmax_regression_loss_grad_0(Theta, X, y):
    Theta_full = torch.cat((Theta.new_zeros(Theta.shape[0], 1), Theta), dim=1)
    return softmax_regression_loss_grad(Theta_full, X, y)[:, 1:]
''',
        "zero_column_on_cpu": _FULL_GRAD + '''
def softmax_regression_loss_grad_0(Theta, X, y):
    zeros = torch.zeros(Theta.shape[0], 1, dtype=Theta.dtype)
    return softmax_regression_loss_grad(torch.cat((Theta, zeros), dim=1), X, y)[:, :-1]
''',
        "zero_column_default_dtype_on_cpu": _FULL_GRAD + '''
def softmax_regression_loss_grad_0(Theta, X, y):
    Theta_full = torch.cat((Theta, torch.zeros(Theta.shape[0], 1)), dim=1)
    return softmax_regression_loss_grad(Theta_full, X, y)[:, :-1]
''',
        "dtype_lost": _FULL_GRAD + '''
def softmax_regression_loss_grad_0(Theta, X, y):
    zeros = torch.zeros(Theta.shape[0], 1, dtype=torch.float64, device=Theta.device)
    return softmax_regression_loss_grad(torch.cat((Theta, zeros), dim=1), X, y)[:, :-1]
''',
        "keeps_all_k_columns": _FULL_GRAD + '''
def softmax_regression_loss_grad_0(Theta, X, y):
    Theta_full = torch.cat((Theta, Theta.new_zeros(Theta.shape[0], 1)), dim=1)
    return softmax_regression_loss_grad(Theta_full, X, y)
''',
        "sign_error": '''
def softmax_regression_loss_grad_0(Theta, X, y):
    Theta_full = torch.cat((Theta, Theta.new_zeros(Theta.shape[0], 1)), dim=1)
    P = torch.softmax(X @ Theta_full, dim=1)
    Y = F.one_hot(y.flatten(), Theta_full.shape[1]).to(P.dtype)
    return (X.T @ (Y - P))[:, :-1]
''',
        "mean_not_sum": '''
def softmax_regression_loss_grad_0(Theta, X, y):
    Theta_full = torch.cat((Theta, Theta.new_zeros(Theta.shape[0], 1)), dim=1)
    P = torch.softmax(X @ Theta_full, dim=1)
    Y = F.one_hot(y.flatten(), Theta_full.shape[1]).to(P.dtype)
    return (X.T @ (P - Y))[:, :-1] / X.shape[0]
''',
        "softmax_over_k_minus_1_columns": '''
def softmax_regression_loss_grad_0(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=1)  # forgets the last class's zero logit
    Y = F.one_hot(y.flatten(), Theta.shape[1] + 1).to(P.dtype)[:, :-1]
    return X.T @ (P - Y)
''',
        "modifies_y_in_place": _FULL_GRAD + '''
def softmax_regression_loss_grad_0(Theta, X, y):
    Theta_full = torch.cat((Theta, Theta.new_zeros(Theta.shape[0], 1)), dim=1)
    y.squeeze_(1)
    return softmax_regression_loss_grad(Theta_full, X, y[:, None])[:, :-1]
''',
    },
}

CORRECT = {
    "softmax_regression_loss": {
        "cross_entropy": '''
def softmax_regression_loss(Theta, X, y):
    return F.cross_entropy(X @ Theta, y.flatten(), reduction="sum")
''',
        "log_softmax_gather": '''
def softmax_regression_loss(Theta, X, y):
    return -torch.log_softmax(X @ Theta, dim=1).gather(1, y).sum()
''',
        "max_subtracted_by_hand_scatter": '''
def softmax_regression_loss(Theta, X, y):
    Z = X @ Theta
    Z = Z - Z.max(dim=1, keepdim=True).values
    log_p = Z - torch.log(torch.exp(Z).sum(dim=1, keepdim=True))
    Y = torch.zeros_like(log_p).scatter_(1, y, 1.0)
    return -(Y * log_p).sum()
''',
        "logsumexp_one_hot": '''
def softmax_regression_loss(Theta, X, y):
    Z = X @ Theta
    Y = F.one_hot(y.flatten(), Theta.shape[1]).to(Z.dtype)
    return torch.logsumexp(Z, dim=1).sum() - (Y * Z).sum()
''',
        "einsum_arange_one_hot": '''
def softmax_regression_loss(Theta, X, y):
    Z = torch.einsum("mn,nk->mk", X, Theta)
    Y = (y == torch.arange(Theta.shape[1], device=y.device)).to(Z.dtype)
    c = Z.max(dim=1, keepdim=True).values
    lse = c.squeeze(1) + torch.log(torch.exp(Z - c).sum(dim=1))
    return torch.einsum("mk,mk->", Y, lse[:, None] - Z)
''',
        "advanced_index_flattened": '''
def softmax_regression_loss(Theta, X, y):
    log_p = torch.log_softmax(X @ Theta, dim=1)
    return -log_p[torch.arange(X.shape[0], device=X.device), y.flatten()].sum()
''',
        "loop_over_items": '''
def softmax_regression_loss(Theta, X, y):
    total = Theta.new_zeros(())
    for i in range(X.shape[0]):
        z = X[i] @ Theta
        total = total + torch.logsumexp(z, dim=0) - z[y[i, 0]]
    return total
''',
    },
    "softmax_regression_loss_grad": {
        "one_hot": '''
def softmax_regression_loss_grad(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=1)
    return X.T @ (P - F.one_hot(y.flatten(), Theta.shape[1]).to(P.dtype))
''',
        "scatter_stable_by_hand": '''
def softmax_regression_loss_grad(Theta, X, y):
    Z = X @ Theta
    E = torch.exp(Z - Z.max(dim=1, keepdim=True).values)
    P = E / E.sum(dim=1, keepdim=True)
    return X.T @ (P - torch.zeros_like(P).scatter_(1, y, 1.0))
''',
        "autograd_cross_entropy": '''
def softmax_regression_loss_grad(Theta, X, y):
    Theta = Theta.detach().requires_grad_(True)
    loss = F.cross_entropy(X @ Theta, y.flatten(), reduction="sum")
    (grad,) = torch.autograd.grad(loss, Theta)
    return grad
''',
        "autograd_log_softmax": '''
def softmax_regression_loss_grad(Theta, X, y):
    with torch.enable_grad():
        T = Theta.detach().clone().requires_grad_()
        loss = -torch.log_softmax(X @ T, dim=1).gather(1, y).sum()
        loss.backward()
    return T.grad
''',
        "einsum_arange_one_hot": '''
def softmax_regression_loss_grad(Theta, X, y):
    P = torch.softmax(torch.einsum("mn,nk->mk", X, Theta), dim=1)
    Y = (y == torch.arange(Theta.shape[1], device=y.device)).to(P.dtype)
    return torch.einsum("mn,mk->nk", X, P - Y)
''',
        "index_subtract_on_copy": '''
def softmax_regression_loss_grad(Theta, X, y):
    D = torch.softmax(X @ Theta, dim=1)
    D[torch.arange(X.shape[0], device=X.device), y.flatten()] -= 1
    return X.T @ D
''',
        "per_column_loop": '''
def softmax_regression_loss_grad(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=1)
    columns = []
    for k in range(Theta.shape[1]):
        indicator = (y[:, 0] == k).to(X.dtype)
        columns.append(-(X * (indicator - P[:, k])[:, None]).sum(dim=0))
    return torch.stack(columns, dim=1)
''',
    },
    "softmax_regression_loss_grad_0": {
        "cat_new_zeros_full_gradient": _FULL_GRAD + '''
def softmax_regression_loss_grad_0(Theta, X, y):
    Theta_full = torch.cat((Theta, Theta.new_zeros(Theta.shape[0], 1)), dim=1)
    return softmax_regression_loss_grad(Theta_full, X, y)[:, :-1]
''',
        "pad": _FULL_GRAD + '''
def softmax_regression_loss_grad_0(Theta, X, y):
    return softmax_regression_loss_grad(F.pad(Theta, (0, 1)), X, y)[:, : Theta.shape[1]]
''',
        "zeros_like_column": '''
def softmax_regression_loss_grad_0(Theta, X, y):
    Theta_full = torch.cat((Theta, torch.zeros_like(Theta[:, :1])), dim=1)
    P = torch.softmax(X @ Theta_full, dim=1)
    Y = F.one_hot(y.flatten(), Theta_full.shape[1]).to(P.dtype)
    return X.T @ (P[:, :-1] - Y[:, :-1])
''',
        "autograd_through_cat": '''
def softmax_regression_loss_grad_0(Theta, X, y):
    T = Theta.detach().requires_grad_(True)
    full = torch.cat((T, torch.zeros(T.shape[0], 1, dtype=T.dtype, device=T.device)), dim=1)
    loss = F.cross_entropy(X @ full, y.flatten(), reduction="sum")
    return torch.autograd.grad(loss, T)[0]
''',
        "logits_with_zero_column_appended": '''
def softmax_regression_loss_grad_0(Theta, X, y):
    Z = X @ Theta
    Z = torch.cat((Z, Z.new_zeros(Z.shape[0], 1)), dim=1)
    P = torch.softmax(Z, dim=1)
    Y = torch.zeros_like(P).scatter_(1, y, 1.0)
    return X.T @ (P - Y)[:, :-1]
''',
    },
}

WRONG["softmax_regression_loss_grad"]["no_max_shift"] = '''
def softmax_regression_loss_grad(Theta, X, y):
    E = torch.exp(X @ Theta)  # inf / inf = NaN once a logit passes about 88 in float32
    P = E / E.sum(dim=1, keepdim=True)
    return X.T @ (P - F.one_hot(y.flatten(), Theta.shape[1]).to(P.dtype))
'''
WRONG["softmax_regression_loss_grad"]["autograd_on_the_argument"] = '''
def softmax_regression_loss_grad(Theta, X, y):
    Theta.requires_grad_(True)
    F.cross_entropy(X @ Theta, y.flatten(), reduction="sum").backward()
    return Theta.grad
'''
WRONG["softmax_regression_loss_grad_0"]["no_max_shift"] = '''
def softmax_regression_loss_grad_0(Theta, X, y):
    Z = torch.cat((X @ Theta, X.new_zeros(X.shape[0], 1)), dim=1)
    E = torch.exp(Z)
    P = E / E.sum(dim=1, keepdim=True)
    Y = F.one_hot(y.flatten(), Theta.shape[1] + 1).to(P.dtype)
    return X.T @ (P - Y)[:, :-1]
'''
WRONG["softmax_regression_loss_grad_0"]["zero_column_first_on_own_grad"] = _FULL_GRAD + '''
def softmax_regression_loss_grad_0(Theta, X, y):
    full = torch.cat((Theta.new_zeros(Theta.shape[0], 1), Theta), dim=1)
    return softmax_regression_loss_grad(full, X, y)[:, 1:]
'''
# Probabilities clamped at 1e-7: accurate only to float32's level.
WRONG["softmax_regression_loss_grad"]["probabilities_clamped"] = '''
def softmax_regression_loss_grad(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=1).clamp(1e-7, 1.0)
    return X.T @ (P - F.one_hot(y.flatten(), Theta.shape[1]).to(P.dtype))
'''
# Correct values, but Python loops over the items and the classes: the notebook asks for matrix
# operations, and training with it (1000 steps, about 30 s here, over 100 times the reference) is
# far over the grader's budget on any machine, so it loses the trains check (with a message on
# vectorising) and keeps the others.
WRONG["softmax_regression_loss_grad"]["python_loops_over_items_and_classes"] = '''
def softmax_regression_loss_grad(Theta, X, y):
    grad = torch.zeros_like(Theta)
    for i in range(X.shape[0]):
        p = torch.softmax(X[i] @ Theta, dim=0)
        for k in range(Theta.shape[1]):
            grad[:, k] += X[i] * (p[k] - (1.0 if int(y[i, 0]) == k else 0.0))
    return grad
'''
# The number of classes taken from the labels present: wrong whenever the last classes are absent,
# which the hidden cases make so in the same cases under every grading key.
WRONG["softmax_regression_loss"]["one_hot_without_num_classes"] = '''
def softmax_regression_loss(Theta, X, y):
    Y = F.one_hot(y.flatten()).to(X.dtype)  # too few columns when the last classes are absent
    return -(Y * torch.log_softmax(X @ Theta, dim=1)).sum()
'''
WRONG["softmax_regression_loss_grad_0"]["one_hot_without_num_classes"] = '''
def softmax_regression_loss_grad_0(Theta, X, y):
    P = torch.softmax(torch.cat((X @ Theta, X.new_zeros(X.shape[0], 1)), dim=1), dim=1)
    Y = F.one_hot(y.flatten()).to(P.dtype)  # too few columns when the last classes are absent
    return X.T @ (P[:, : Y.shape[1]] - Y)[:, : Theta.shape[1]]
'''

#: The words a TA would use for each wrong answer: the feedback of its failed tests must contain
#: each of them (case-insensitive). tests/test_answer_variants.py checks that every WRONG
#: variant has an entry.
WORDS = {
    "softmax_regression_loss": {
        "sign_error": ("opposite sign",),
        "mean_not_sum": ("do not average",),
        "softmax_over_items": ("axis", "dim=1"),
        "index_broadcast_m_by_m": ("m x m", "flatten"),
        "one_hot_broadcast_m_by_m": ("m x m", "flatten"),
        "naive_exp_overflows": ("row's maximum logit",),
        "log_of_softmax": ("log of a probability", "log_softmax"),
        "dtype_lost": ("dtype",),
        "modifies_y_in_place": ("in place",),
        "returns_python_float": ("Python float", ".item()"),
        "keeps_a_dimension": ("0-d",),
        "one_hot_without_num_classes": ("number of classes",),
        "hard_coded_sanity_value": ("does not change when `Theta` changes",),
    },
    "softmax_regression_loss_grad": {
        "sign_error": ("opposite sign",),
        "mean_not_sum": ("do not average",),
        "softmax_over_items": ("axis", "dim=1"),
        "one_hot_broadcast_m_by_m": ("m x m", "flatten"),
        "compare_broadcast_m_by_m": ("m x m", "flatten"),
        "one_hot_without_num_classes": ("number of classes",),
        "dtype_lost": ("dtype",),
        "one_hot_on_cpu": ("device",),
        "arange_on_cpu": ("device",),
        "modifies_y_in_place": ("in place",),
        "modifies_theta_in_place": ("in place",),
        "missing_x_transpose_sum": ("X^T (P - Y)",),
        "no_max_shift": ("row's maximum logit",),
        "autograd_on_the_argument": ("autograd", "copy"),
        "python_loops_over_items_and_classes": ("too slow", "matrix operations"),
        "probabilities_clamped": ("clamp", "exact"),
    },
    "softmax_regression_loss_grad_0": {
        "first_column_dropped": ("last column",),
        "first_class_fixed_at_zero": ("last column",),
        "zero_column_on_cpu": ("device",),
        "zero_column_default_dtype_on_cpu": ("device",),
        "dtype_lost": ("dtype",),
        "keeps_all_k_columns": ("last column",),
        "sign_error": ("opposite sign",),
        "mean_not_sum": ("do not average",),
        "softmax_over_k_minus_1_columns": ("zero column",),
        "modifies_y_in_place": ("in place",),
        "no_max_shift": ("row's maximum logit",),
        "zero_column_first_on_own_grad": ("last column",),
        "one_hot_without_num_classes": ("number of classes",),
    },
}


#: Answers only a GPU catches: right values, but a result or a tensor left on the CPU (a
#: CPU-only grader cannot judge them, so they keep full marks there and must lose their devices
#: point on CUDA). ``make gpu-check`` hands them in; tests/test_gpu.py grades them.
GPU_ONLY = {
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
}
