"""Answer variants for 2.3 (automatic differentiation in PyTorch): typical mistakes and correct
alternatives, as Lab 1's answers.py files hold them (see docs/instructors.md, "Answer banks").

Each source is run in a namespace holding `torch`, `math` and `torch.nn.functional as F`, next
to the master's own solution of every other question, and must define the graded names it
replaces. tests/test_lab2_autograd_content.py grades every variant with the hidden tests of all
four questions: a wrong one must lose points in its own question and nowhere else, a correct one
must keep full marks everywhere.
"""

WRONG = {
    "algorithm_grad": {
        # The caller's tensor is turned into a leaf: its autograd state changes, and a second
        # call adds its gradient to the first one's.
        "requires_grad_on_the_argument": (
            "def algorithm_grad(x):\n"
            "    x.requires_grad_(True)\n"
            "    z = torch.ones_like(x)\n"
            "    for i in range(2):\n"
            "        z = (z + i) * x * x\n"
            "    z.backward()\n"
            "    return x.grad.detach().clone()"
        ),
        "returns_z_not_its_gradient": (
            "def algorithm_grad(x):\n"
            "    x = x.detach().clone().requires_grad_(True)\n"
            "    z = torch.ones_like(x)\n"
            "    for i in range(2):\n"
            "        z = (z + i) * x * x\n"
            "    z.backward()\n"
            "    return z.detach()\n"
            "dzdx = algorithm_grad(torch.tensor(0.5, dtype=torch.float64)).item()"
        ),
        # backward twice (once to look, once to return): .grad holds the sum of both.
        "backward_twice": (
            "def algorithm_grad(x):\n"
            "    x = x.detach().clone().requires_grad_(True)\n"
            "    z = torch.ones_like(x)\n"
            "    for i in range(2):\n"
            "        z = (z + i) * x * x\n"
            "    z.backward(retain_graph=True)\n"
            "    z.backward()\n"
            "    return x.grad\n"
            "dzdx = algorithm_grad(torch.tensor(0.5, dtype=torch.float64)).item()"
        ),
        # The notebook's global leaf reused at every call, its .grad never zeroed: the
        # gradient accumulates across calls (and the leaf is float32 whatever x is).
        "global_leaf_grad_accumulates_across_calls": (
            "leaf = torch.tensor(0.5, requires_grad=True)\n"
            "def algorithm_grad(x):\n"
            "    with torch.no_grad():\n"
            "        leaf.copy_(x)\n"
            "    z = torch.ones_like(leaf)\n"
            "    for i in range(2):\n"
            "        z = (z + i) * leaf * leaf\n"
            "    z.backward()\n"
            "    return leaf.grad.clone()"
        ),
        "float32_result": (
            "def algorithm_grad(x):\n"
            "    x = torch.tensor(float(x), requires_grad=True)\n"
            "    z = torch.ones_like(x)\n"
            "    for i in range(2):\n"
            "        z = (z + i) * x * x\n"
            "    z.backward()\n"
            "    return x.grad"
        ),
        "gradient_left_attached": (
            "def algorithm_grad(x):\n"
            "    x = x.detach().clone().requires_grad_(True)\n"
            "    z = torch.ones_like(x)\n"
            "    for i in range(2):\n"
            "        z = (z + i) * x * x\n"
            "    (g,) = torch.autograd.grad(z, x, create_graph=True)\n"
            "    return g"
        ),
        # The derivative by hand through NumPy: right on the CPU, impossible on a GPU.
        "via_numpy": (
            "import numpy as np\n"
            "def algorithm_grad(x):\n"
            "    v = x.detach().numpy()\n"
            "    return torch.from_numpy(np.asarray(4 * v ** 3 + 2 * v))"
        ),
        "dzdx_left_a_tensor": (
            "dzdx = algorithm_grad(torch.tensor(0.5, dtype=torch.float64))"
        ),
    },
    "two_output_grads": {
        # One leaf for both outputs: its .grad holds d(z + v)/dx, copied into both rows.
        "one_leaf_for_both_outputs": (
            "def two_output_grads(x):\n"
            "    x = x.detach().clone().requires_grad_(True)\n"
            "    outputs = torch.stack((2 * x + torch.sin(x), 4 * x + torch.cos(x)))\n"
            "    outputs.backward(torch.ones_like(outputs))\n"
            "    return x.grad.reshape(1, 1).repeat(2, 1)"
        ),
        "derivative_of_cos_sign": (
            "def two_output_grads(x):\n"
            "    return torch.stack((2 + torch.cos(x), 4 + torch.sin(x))).reshape(2, 1)"
        ),
        "weights_on_the_cpu": (
            "def two_output_grads(x):\n"
            "    X = x.detach().reshape(1, 1).repeat(2, 1).requires_grad_(True)\n"
            "    z = 2 * X[:1] + torch.sin(X[:1])\n"
            "    v = 4 * X[1:] + torch.cos(X[1:])\n"
            "    outputs = torch.cat((z, v))\n"
            "    outputs.backward(torch.ones(2, 1, dtype=x.dtype))\n"
            "    return X.grad"
        ),
        "float32_leaf": (
            "def two_output_grads(x):\n"
            "    X = torch.full((2, 1), float(x), requires_grad=True)\n"
            "    z = 2 * X[:1] + torch.sin(X[:1])\n"
            "    v = 4 * X[1:] + torch.cos(X[1:])\n"
            "    outputs = torch.cat((z, v))\n"
            "    outputs.backward(torch.ones_like(outputs))\n"
            "    return X.grad"
        ),
    },
    "gradient_descent": {
        # x rebound to a new tensor: a non-leaf carrying the whole descent as its history.
        "rebinds_x_instead_of_x_data": (
            "def gradient_descent(x0, step, steps):\n"
            "    x = x0.detach().clone().requires_grad_(True)\n"
            "    for _ in range(steps):\n"
            "        (g,) = torch.autograd.grad((x ** 2).sum(), x)\n"
            "        x = x - step * g\n"
            "    return x"
        ),
        # The same with backward: the new x has no .grad, so the second step fails.
        "rebinds_x_with_backward": (
            "def gradient_descent(x0, step, steps):\n"
            "    x = x0.detach().clone().requires_grad_(True)\n"
            "    for _ in range(steps):\n"
            "        (x ** 2).sum().backward()\n"
            "        x = x - step * x.grad\n"
            "    return x"
        ),
        "forgets_to_zero_the_grad": (
            "def gradient_descent(x0, step, steps):\n"
            "    x = x0.detach().clone().requires_grad_(True)\n"
            "    for _ in range(steps):\n"
            "        (x ** 2).sum().backward()\n"
            "        x.data -= step * x.grad\n"
            "    return x"
        ),
        "returns_a_detached_copy": (
            "def gradient_descent(x0, step, steps):\n"
            "    x = x0.detach().clone().requires_grad_(True)\n"
            "    for _ in range(steps):\n"
            "        (x ** 2).sum().backward()\n"
            "        x.data -= step * x.grad\n"
            "        x.grad.zero_()\n"
            "    return x.detach()"
        ),
        "descends_on_the_argument_itself": (
            "def gradient_descent(x0, step, steps):\n"
            "    x = x0.requires_grad_(True)\n"
            "    for _ in range(steps):\n"
            "        (x ** 2).sum().backward()\n"
            "        x.data -= step * x.grad\n"
            "        x.grad.zero_()\n"
            "    return x"
        ),
        "float32_iterate": (
            "def gradient_descent(x0, step, steps):\n"
            "    x = x0.detach().float().requires_grad_(True)\n"
            "    for _ in range(steps):\n"
            "        (x ** 2).sum().backward()\n"
            "        x.data -= step * x.grad\n"
            "        x.grad.zero_()\n"
            "    return x"
        ),
        "via_numpy": (
            "import numpy as np\n"
            "def gradient_descent(x0, step, steps):\n"
            "    values = x0.detach().numpy().copy()\n"
            "    for _ in range(steps):\n"
            "        values = values - step * 2 * values\n"
            "    return torch.from_numpy(values).requires_grad_(True)"
        ),
        "ascends": (
            "def gradient_descent(x0, step, steps):\n"
            "    x = x0.detach().clone().requires_grad_(True)\n"
            "    for _ in range(steps):\n"
            "        (x ** 2).sum().backward()\n"
            "        x.data += step * x.grad\n"
            "        x.grad.zero_()\n"
            "    return x"
        ),
    },
    "sample": {
        "detach_breaks_the_gradient_to_sigma": (
            "def sample(mu, sigma, generator):\n"
            "    zeta = torch.randn(mu.shape, generator=generator, dtype=mu.dtype,\n"
            "                       device=mu.device)\n"
            "    return mu + sigma.detach() * zeta"
        ),
        "zeta_sampled_with_requires_grad": (
            "def sample(mu, sigma, generator):\n"
            "    zeta = torch.randn(mu.shape, generator=generator, dtype=mu.dtype,\n"
            "                       device=mu.device, requires_grad=True)\n"
            "    return mu + sigma * zeta"
        ),
        # Sampling N(mu, sigma^2) directly: right values, no gradient to mu or sigma.
        "torch_normal_without_the_trick": (
            "def sample(mu, sigma, generator):\n"
            "    return torch.normal(mu, sigma, generator=generator)"
        ),
        "global_random_state": (
            "def sample(mu, sigma, generator):\n"
            "    return mu + sigma * torch.randn_like(mu)"
        ),
        "uniform_noise": (
            "def sample(mu, sigma, generator):\n"
            "    zeta = torch.rand(mu.shape, generator=generator, dtype=mu.dtype,\n"
            "                      device=mu.device)\n"
            "    return mu + sigma * zeta"
        ),
        "variance_for_scale": (
            "def sample(mu, sigma, generator):\n"
            "    zeta = torch.randn(mu.shape, generator=generator, dtype=mu.dtype,\n"
            "                       device=mu.device)\n"
            "    return mu + sigma ** 2 * zeta"
        ),
        "noise_on_the_cpu": (
            "def sample(mu, sigma, generator):\n"
            "    zeta = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)\n"
            "    return mu + sigma * zeta"
        ),
        "noise_from_numpy": (
            "import numpy as np\n"
            "def sample(mu, sigma, generator):\n"
            "    noise = np.random.default_rng().standard_normal(tuple(mu.shape))\n"
            "    zeta = torch.from_numpy(noise)\n"
            "    return mu + sigma * zeta.to(mu.dtype)"
        ),
        "float32_result": (
            "def sample(mu, sigma, generator):\n"
            "    zeta = torch.randn(mu.shape, generator=generator, dtype=mu.dtype,\n"
            "                       device=mu.device)\n"
            "    return (mu + sigma * zeta).float()"
        ),
        "adds_to_mu_in_place": (
            "def sample(mu, sigma, generator):\n"
            "    zeta = torch.randn(mu.shape, generator=generator, dtype=mu.dtype,\n"
            "                       device=mu.device)\n"
            "    return mu.add_(sigma * zeta)"
        ),
    },
}

CORRECT = {
    "algorithm_grad": {
        "autograd_grad": (
            "def algorithm_grad(x):\n"
            "    x = x.detach().clone().requires_grad_(True)\n"
            "    z = torch.ones_like(x)\n"
            "    for i in (0, 1):\n"
            "        z = (z + i) * x * x\n"
            "    (g,) = torch.autograd.grad(z, x)\n"
            "    return g\n"
            "dzdx = float(algorithm_grad(torch.tensor(0.5)))"
        ),
        "torch_func_grad": (
            "def _algorithm(x):\n"
            "    z = torch.ones_like(x)\n"
            "    for i in range(2):\n"
            "        z = (z + i) * x * x\n"
            "    return z\n"
            "def algorithm_grad(x):\n"
            "    return torch.func.grad(_algorithm)(x.detach())"
        ),
        "gradient_detached_then_cloned": (
            "def algorithm_grad(x):\n"
            "    leaf = x.clone().detach().requires_grad_()\n"
            "    z = leaf.new_ones(())\n"
            "    for i in range(2):\n"
            "        z = (z + i) * leaf ** 2\n"
            "    z.backward()\n"
            "    return leaf.grad.detach().clone()"
        ),
    },
    "two_output_grads": {
        "autograd_grad_with_weights": (
            "def two_output_grads(x):\n"
            "    X = torch.stack((x.detach(), x.detach())).reshape(2, 1).requires_grad_(True)\n"
            "    z = 2 * X[0] + torch.sin(X[0])\n"
            "    v = 4 * X[1] + torch.cos(X[1])\n"
            "    outputs = torch.stack((z, v))\n"
            "    (g,) = torch.autograd.grad(outputs, X, torch.ones_like(outputs))\n"
            "    return g"
        ),
        "jacobian_diagonal": (
            "def two_output_grads(x):\n"
            "    def outputs(X):\n"
            "        return torch.cat((2 * X[:1] + torch.sin(X[:1]),\n"
            "                          4 * X[1:] + torch.cos(X[1:])))\n"
            "    X = x.detach().expand(2, 1).clone()\n"
            "    J = torch.func.jacrev(outputs)(X).reshape(2, 2)\n"
            "    return J.diagonal().reshape(2, 1)"
        ),
    },
    "gradient_descent": {
        "under_no_grad": (
            "def gradient_descent(x0, step, steps):\n"
            "    x = x0.clone().detach().requires_grad_(True)\n"
            "    for _ in range(steps):\n"
            "        loss = torch.sum(x * x)\n"
            "        loss.backward()\n"
            "        with torch.no_grad():\n"
            "            x -= step * x.grad\n"
            "        x.grad = None\n"
            "    return x"
        ),
        "sgd_optimiser": (
            "def gradient_descent(x0, step, steps):\n"
            "    x = x0.detach().clone().requires_grad_(True)\n"
            "    optimiser = torch.optim.SGD([x], lr=step)\n"
            "    for _ in range(steps):\n"
            "        optimiser.zero_grad()\n"
            "        (x ** 2).sum().backward()\n"
            "        optimiser.step()\n"
            "    return x"
        ),
        "autograd_grad_into_data": (
            "def gradient_descent(x0, step, steps):\n"
            "    x = x0.detach().clone().requires_grad_(True)\n"
            "    for _ in range(steps):\n"
            "        (g,) = torch.autograd.grad(x.pow(2).sum(), x)\n"
            "        x.data = x.data - step * g\n"
            "    return x"
        ),
    },
    "sample": {
        "normal_in_place_on_empty": (
            "def sample(mu, sigma, generator):\n"
            "    zeta = torch.empty_like(mu).normal_(generator=generator)\n"
            "    return mu + sigma * zeta"
        ),
        "standard_normal_by_torch_normal": (
            "def sample(mu, sigma, generator):\n"
            "    zeta = torch.normal(torch.zeros_like(mu), torch.ones_like(sigma),\n"
            "                        generator=generator)\n"
            "    return sigma * zeta + mu"
        ),
        "addcmul": (
            "def sample(mu, sigma, generator):\n"
            "    zeta = torch.randn(mu.size(), generator=generator, dtype=mu.dtype,\n"
            "                       device=mu.device)\n"
            "    return torch.addcmul(mu, sigma, zeta)"
        ),
    },
}

#: Wrong variants that must lose exactly the points of these hidden tests (by the test's name after
#: the question's: ``values``, ``leaf``, ...): a mistake of one property costs that property's
#: point, and no other.
FAILS = {
    "algorithm_grad": {
        "requires_grad_on_the_argument": {"unmodified"},
        "returns_z_not_its_gradient": {"values", "dzdx"},
        "backward_twice": {"values", "dzdx"},
        "float32_result": {"dtypes"},
        "gradient_left_attached": {"plain"},
        "via_numpy": {"devices"},
        "dzdx_left_a_tensor": {"dzdx"},
    },
    "two_output_grads": {
        "one_leaf_for_both_outputs": {"values"},
        "derivative_of_cos_sign": {"values"},
        "weights_on_the_cpu": {"devices"},
        "float32_leaf": {"dtypes"},
    },
    "gradient_descent": {
        "rebinds_x_instead_of_x_data": {"leaf"},
        "forgets_to_zero_the_grad": {"values"},
        "returns_a_detached_copy": {"requires_grad"},
        "descends_on_the_argument_itself": {"unmodified"},
        "float32_iterate": {"dtypes"},
        "via_numpy": {"devices"},
        "ascends": {"values"},
    },
    "sample": {
        "detach_breaks_the_gradient_to_sigma": {"gradients"},
        "zeta_sampled_with_requires_grad": {"plain"},
        "torch_normal_without_the_trick": {"gradients"},
        "uniform_noise": {"distribution"},
        "variance_for_scale": {"values", "distribution", "gradients"},
        "noise_on_the_cpu": {"devices"},
        "float32_result": {"dtypes"},
        "adds_to_mu_in_place": {"gradients", "unmodified"},
    },
}

#: The words a TA would use for each wrong answer: the feedback of its failed tests must contain
#: each of them (case-insensitive).
WORDS = {
    "algorithm_grad": {
        "requires_grad_on_the_argument": ("autograd state", "copy"),
        "returns_z_not_its_gradient": ("not of dz/dx",),
        "backward_twice": ("twice the derivative",),
        "global_leaf_grad_accumulates_across_calls": ("called twice",),
        "float32_result": ("dtype",),
        "gradient_left_attached": ("attached to autograd",),
        "via_numpy": ("NumPy",),
        "dzdx_left_a_tensor": ("Python float", ".item()"),
    },
    "two_output_grads": {
        "one_leaf_for_both_outputs": ("d(z + v)/dx", "stack x twice"),
        "derivative_of_cos_sign": ("-sin x",),
        "weights_on_the_cpu": ("device",),
        "float32_leaf": ("dtype",),
    },
    "gradient_descent": {
        "rebinds_x_instead_of_x_data": ("autograd history", "x.data"),
        "rebinds_x_with_backward": ("NoneType", "no longer a leaf", "x.data"),
        "forgets_to_zero_the_grad": ("never zeroed",),
        "returns_a_detached_copy": ("does not require grad",),
        "descends_on_the_argument_itself": ("x0",),
        "float32_iterate": ("dtype",),
        "via_numpy": ("NumPy",),
        "ascends": ("subtracts",),
    },
    "sample": {
        "detach_breaks_the_gradient_to_sigma": ("sigma", "detach"),
        "zeta_sampled_with_requires_grad": ("requires_grad=True",),
        "torch_normal_without_the_trick": ("torch.normal(mu, sigma)",),
        "global_random_state": ("generator",),
        "uniform_noise": ("torch.rand",),
        "variance_for_scale": ("sigma^2",),
        "noise_on_the_cpu": ("device",),
        "noise_from_numpy": ("generator",),
        "float32_result": ("dtype",),
        "adds_to_mu_in_place": ("in place",),
    },
}
