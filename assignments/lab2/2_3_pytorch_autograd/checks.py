"""Hidden checks of assignment 2.3 (automatic differentiation in PyTorch).

Shipped in the autograder zip as ``labkit/checks/pytorch_autograd.py``. Every answer of this
notebook is a small function of tensors, judged by what it does: its values on keyed random
inputs, against closed forms of the derivatives (never against autograd on the student's own
code), its dtype and device, what it leaves of its arguments, and what autograd sees of its result
(a gradient is a plain value; the iterate of a gradient descent is a leaf that still requires grad;
a reparameterised sample passes gradients to its mean and its scale). The notebook's own text says
how each function is called; nothing here reads the student's code.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from . import core
from .graded import Args, GradedFunction, Tolerance, cast

# ---------------------------------------------------------------------------------------------
# The algorithm: z = 1, then z = (z + i) * x * x for i in 0, 1; so z = x^4 + x^2.


def algorithm(x: torch.Tensor) -> torch.Tensor:
    """The notebook's algorithm, as the check's own code (its derivative is taken in closed form
    below; this is what the derivative is of, and what a hint compares against)."""
    z = torch.ones_like(x)
    for i in range(2):
        z = (z + i) * x * x
    return z


def algorithm_derivative(x: torch.Tensor) -> torch.Tensor:
    """dz/dx of the algorithm in closed form: z = x^4 + x^2, so 4 x^3 + 2 x (1.5 at x = 0.5)."""
    return 4 * x**3 + 2 * x


def _scalar_cases() -> list[Args]:
    """0-d float64 points: the notebook's 0.5, then keyed draws of either sign and of sizes from
    about 0.05 to 3 (so x^4 and x^2 dominate in turn), and 0, where the derivative is 0."""
    gen = core.generator(2301)
    drawn = (torch.rand(5, generator=gen, dtype=torch.float64) * 6 - 3).tolist()
    return [(torch.tensor(v, dtype=torch.float64),) for v in (0.5, *drawn, 0.0)]


#: Usual wrong derivatives of the algorithm, named when an answer's values match them.
ALGORITHM_MISTAKES = {
    "value_not_gradient": (lambda x: algorithm(x),
                           "Its values are those of z itself, not of dz/dx: return the gradient "
                           "autograd computed (`x.grad` after `z.backward()`), not z."),
    "one_iteration": (lambda x: 2 * x,
                      "Its values are those of one pass of the loop (z = x^2): run the loop for "
                      "i = 0 and i = 1, as the algorithm says."),
    "doubled": (lambda x: 2 * algorithm_derivative(x),
                "Its values are twice the derivative: a `.grad` that already held a gradient "
                "(backward called twice, or a gradient not zeroed) adds to it."),
}

# Tolerances: graded's FLOAT64 (1e-10 relative) and FLOAT32. Autograd's chain of products and the
# closed form differ by a few rounding errors: the master's solution and every correct variant of
# the bank were within 2.2e-16 relative of it over 20 grading keys, a margin above 10^5; a
# float32 step (about 1e-7 off) or a wrong derivative (O(1)) fail.
algorithm_grad = GradedFunction(
    name="algorithm_grad",
    arg_names=("x",),
    cases=_scalar_cases,
    reference=algorithm_derivative,
    mistakes=ALGORITHM_MISTAKES,
)

#: dz/dx at the notebook's point x = 0.5: 4 (0.5)^3 + 2 (0.5) = 1.5.
DZDX_VALUE = 1.5


def check_dzdx(env: Any) -> None:
    """``dzdx`` is a Python float holding dz/dx at x = 0.5: 1.5, exactly as float64 computes it.

    Both 4 x^3 + 2 x and autograd's chain of products give 1.5 with no rounding at x = 0.5 (every
    intermediate is a small power of two); 1e-12 only forgives a route through other operations.
    A float32 route is exact here too: what this check asks beyond the value is a float, not a
    tensor, as the notebook says.
    """
    dzdx = env.get("dzdx")
    if dzdx is None or isinstance(dzdx, core.MissingName):
        missing = dzdx if isinstance(dzdx, core.MissingName) else core.MissingName("dzdx")
        raise core.CheckFailed(missing.absent(
            "`dzdx`", "Set it in the cell of the exercise (it starts as `None` in the original)."))
    if isinstance(dzdx, torch.Tensor):
        raise core.CheckFailed(
            "`dzdx` is a tensor; the exercise asks for a Python float. Take the number out of "
            "the gradient with `.item()` (or `float(...)`).")
    if isinstance(dzdx, bool) or not isinstance(dzdx, (float, int)):
        raise core.CheckFailed(f"`dzdx` is a {type(dzdx).__name__}; set it to a Python float.")
    if not math.isfinite(dzdx) or abs(dzdx - DZDX_VALUE) > 1e-12:
        raise core.CheckFailed(
            "`dzdx` is not dz/dx of the algorithm at x = 0.5. Check it against your derivation "
            "by hand, and that the tensor x you differentiate with respect to is the one the "
            "loop multiplies by.")


# ---------------------------------------------------------------------------------------------
# Two outputs of one input: z = 2x + sin x and v = 4x + cos x, by one backward with a weight.


def two_output_derivatives(x: torch.Tensor) -> torch.Tensor:
    """[[dz/dx], [dv/dx]] in closed form: [[2 + cos x], [4 - sin x]] (2.5403023 and 3.1585290 at
    x = 1)."""
    return torch.stack((2 + torch.cos(x), 4 - torch.sin(x))).reshape(2, 1)


def _two_output_cases() -> list[Args]:
    """The notebook's x = 1, then keyed draws over two periods of sin and cos, either sign."""
    gen = core.generator(2302)
    drawn = (torch.rand(5, generator=gen, dtype=torch.float64) * 4 * math.pi - 2 * math.pi).tolist()
    return [(torch.tensor(v, dtype=torch.float64),) for v in (1.0, *drawn)]


TWO_OUTPUT_MISTAKES = {
    "summed": (lambda x: two_output_derivatives(x).sum().expand(2, 1),
               "Both entries hold d(z + v)/dx: one backward from a single leaf x adds the two "
               "outputs' gradients. Stack x twice into a 2 x 1 leaf, so that each output has a "
               "copy of x of its own, and read the two entries of its `.grad`."),
    "sin_sign": (lambda x: torch.stack((2 + torch.cos(x), 4 + torch.sin(x))).reshape(2, 1),
                 "The second entry has the wrong sign: the derivative of cos x is -sin x."),
    "swapped": (lambda x: two_output_derivatives(x).flip(0),
                "The two entries are swapped: the first is dz/dx, the second dv/dx."),
}

# graded's FLOAT64 and FLOAT32: the correct answers of the bank gave 2 + cos x and 4 - sin x with
# no rounding difference at all over 20 grading keys (autograd computes the same cos and sin).
two_output_grads = GradedFunction(
    name="two_output_grads",
    arg_names=("x",),
    cases=_two_output_cases,
    reference=two_output_derivatives,
    mistakes=TWO_OUTPUT_MISTAKES,
)


# ---------------------------------------------------------------------------------------------
# Gradient descent on f(x) = sum of x_i^2, the update written to x.data (or under no_grad).


def descent_closed_form(x0: torch.Tensor, step: float, steps: int) -> torch.Tensor:
    """Each step is x - step * 2x = (1 - 2 step) x, so x_k = (1 - 2 step)^k x0 (0.8^k for step
    0.1: about 2e-10 x0 after 100 steps)."""
    return (1 - 2 * step) ** steps * x0


def _descent_cases() -> list[Args]:
    """The notebook's x0 = (2, 1, 10), step 0.1, 100 steps, then keyed x0 of other shapes with
    other steps: few steps (the iterate far from 0, where a gradient not zeroed between steps is
    far off), a step of 0.75 (factor -0.5: the sign alternates) and 0.3."""
    gen = core.generator(2303)
    notebook = (torch.tensor([2.0, 1.0, 10.0], dtype=torch.float64), 0.1, 100)
    return [notebook,
            (3 * torch.randn(4, generator=gen, dtype=torch.float64), 0.1, 5),
            (torch.randn(2, 3, generator=gen, dtype=torch.float64), 0.3, 7),
            (torch.randn(5, generator=gen, dtype=torch.float64), 0.75, 4),
            (torch.randn(1, generator=gen, dtype=torch.float64), 0.05, 20)]


DESCENT_MISTAKES = {
    "not_zeroed": (lambda x0, step, steps: _descent_not_zeroed(x0, step, steps),
                   "Its values are those of a descent whose gradient is never zeroed: `.grad` "
                   "adds each backward's gradient to what it holds. Zero it after each update "
                   "(`x.grad.zero_()`, or `x.grad = None`)."),
    "ascent": (lambda x0, step, steps: (1 + 2 * step) ** steps * x0,
               "Its values grow: the update adds the gradient. Gradient descent subtracts it: "
               "x <- x - step * grad."),
}


def _descent_not_zeroed(x0: torch.Tensor, step: float, steps: int) -> torch.Tensor:
    x, accumulated = x0.clone(), torch.zeros_like(x0)
    for _ in range(steps):
        accumulated = accumulated + 2 * x
        x = x - step * accumulated
    return x


# The iterate is multiplied by (1 - 2 step) at each step; each product rounds by at most one eps,
# so after at most 100 steps a float64 result is within about 100 * 2 eps = 4.4e-14 of the closed
# form, relative to each entry (measured over 20 grading keys, the master's solution and the bank's
# correct variants: at most 5.7e-15): FLOAT64's 1e-10 keeps a margin above 2000 (and an entry drawn
# near 0 is judged against 1e-12 of the largest, as ``core.expect_close`` does). A gradient not
# zeroed, an ascent or a float32 iterate (about 1e-7 off) fail it.
gradient_descent = GradedFunction(
    name="gradient_descent",
    arg_names=("x0", "step", "steps"),
    cases=_descent_cases,
    reference=descent_closed_form,
    mistakes=DESCENT_MISTAKES,
)


#: What a descent that failed on a missing gradient is told: the usual cause is rebinding x.
NO_GRAD_ADVICE = (
    "A `.grad` was None at the second step: after `x = x - step * x.grad` the name x is no "
    "longer a leaf but a new tensor computed from the old one, and `backward()` fills `.grad` for "
    "leaves only. Update the leaf in place instead: `x.data -= step * x.grad` (or inside "
    "`with torch.no_grad():`).")


def check_descent_values(fn: Any) -> None:
    """``gradient_descent.check_values``, naming the usual cause when the descent stops on a
    ``.grad`` that is None (x rebound to a non-leaf)."""
    try:
        gradient_descent.check_values(fn)
    except core.CheckFailed as failure:
        if "NoneType" not in str(failure):
            raise
        raise core.CheckFailed(f"{failure}\n  {NO_GRAD_ADVICE}") from None


def _descent_results(fn: Any) -> list[tuple[Args, torch.Tensor, torch.Tensor]]:
    """(inputs, result, expected) for the first two cases, on every device, as far as the result
    is a tensor of x0's shape."""
    name = gradient_descent.name
    found = []

    def on(device: torch.device) -> None:
        for args in gradient_descent.cases()[:2]:
            inputs = cast(args, torch.float64, device)
            expected = gradient_descent.expected(args, torch.float64)
            result = core.call(fn, name, *inputs)
            found.append((inputs, gradient_descent.expect_result(result, expected, inputs),
                          expected))

    core.on_every_device(on)
    return found


def check_descent_leaf(fn: Any) -> None:
    """The final x is a leaf: no autograd history (``grad_fn`` is None). Rebinding
    ``x = x - step * grad`` makes x the last node of a graph as long as the descent, and a new
    tensor with no ``.grad`` of its own; writing to ``x.data`` or under ``torch.no_grad()`` keeps
    the same leaf. Values, dtype and requires_grad are other checks'."""
    for inputs, result, _ in _descent_results(fn):
        if result.grad_fn is not None:
            raise core.CheckFailed(
                f"`gradient_descent` returned a tensor with an autograd history (it was computed "
                f"by `{result.grad_fn.name()}`) for inputs {core.describe(inputs)}: the "
                "update rebinds x to a new tensor computed from the old one, so x is no longer "
                "the leaf whose `.grad` backward fills, and the graph grows with every step. "
                "Update the same tensor in place: `x.data -= step * x.grad` (or inside "
                "`with torch.no_grad():`).")


def check_descent_requires_grad(fn: Any) -> None:
    """The final x still requires grad, as the notebook's x does after its descent: the same
    leaf, ready for another step. A result detached (or copied) at the end loses this point
    alone."""
    for inputs, result, _ in _descent_results(fn):
        if not result.requires_grad:
            raise core.CheckFailed(
                f"`gradient_descent` returned a tensor that does not require grad for inputs "
                f"{core.describe(inputs)}. Return x itself, the leaf you created with "
                "`requires_grad=True` and updated in place, not a detached copy: it must stay "
                "ready for the next step of the descent.")


# ---------------------------------------------------------------------------------------------
# The reparameterisation trick: z = mu + sigma * zeta, zeta ~ N(0, 1) drawn from `generator`.

SAMPLE = "sample"

#: zeta recovered as (z - mu) / sigma: with |mu| up to about 10 and sigma at least 0.5 it carries
#: a rounding error of about eps * (|mu| + |sigma zeta|) / sigma, under 1e-13 in float64 (the
#: master's solution over 20 grading keys: at most 2.8e-15 between two draws); 1e-9 keeps a
#: margin of 10^4, while a sample that is not mu + sigma * zeta (sigma squared, mu times
#: sigma) is off by O(1). A float32 result is judged to float32's level: 1e-3 of its size.
ZETA_FLOAT64 = Tolerance(rtol=1e-9, atol=1e-9)
ZETA_FLOAT32 = Tolerance(rtol=1e-3, atol=1e-3)
#: Draws for the distribution check: the mean of n standard normals has standard deviation
#: 1/sqrt(n) and their variance sqrt(2/n) (0.0032 and 0.0045 here); 6 of them leave a chance
#: below 1e-8 that a correct answer fails, while uniform draws (mean 0.5), draws of variance 2 or
#: a zeta of N(0, sigma^2) are off by far more.
DISTRIBUTION_DRAWS = 100_000
DISTRIBUTION_SIGMAS = 6.0


def _sample_cases() -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """(mu, sigma, generator seed): keyed means of either sign and scales in [0.5, 2], of
    several shapes, 0-d included."""
    gen = core.generator(2304)
    cases = []
    for index, shape in enumerate([(5,), (3, 4), (), (2, 1, 3)]):
        mu = 3 * torch.randn(shape, generator=gen, dtype=torch.float64)
        sigma = 0.5 + 1.5 * torch.rand(shape, generator=gen, dtype=torch.float64)
        cases.append((mu, sigma, core.seed_for(2310 + index)))
    return cases


def sample_generator(seed: int, device: torch.device | str) -> torch.Generator:
    """A generator for the tensors' device, as the notebook says: one on the GPU for CUDA tensors;
    a CPU one for the CPU and for meta (which draws nothing)."""
    device = torch.device(device)
    where = device if device.type == "cuda" else torch.device("cpu")
    return torch.Generator(device=where).manual_seed(seed)


def with_generator(fn: Any, seed: int) -> Any:
    """The student's ``sample`` as a function of (mu, sigma) alone, each call handed a fresh
    generator seeded with ``seed`` on mu's device (``sample_generator``). So the core checks that
    call a function twice on the same tensors (``core.expect_unmodified``) or on another device
    (``core.check_placement``) give it the same noise each time, as a student's notebook would."""
    fn = core.require_function(fn, SAMPLE)

    def drawn(mu: torch.Tensor, sigma: torch.Tensor) -> Any:
        return fn(mu, sigma, sample_generator(seed, mu.device))

    drawn.__name__ = SAMPLE
    return drawn


def _draw(fn: Any, mu: torch.Tensor, sigma: torch.Tensor, seed: int) -> torch.Tensor:
    """The student's sample for copies of these tensors and a fresh generator seeded with
    ``seed``: a tensor of mu's shape (values are judged by the caller)."""
    result = core.call(with_generator(fn, seed), SAMPLE, mu, sigma)
    return core.expect_tensor(result, SAMPLE, shape=mu.shape, args=(mu, sigma))


def _zeta(z: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The noise a sample used, (z - mu) / sigma, in float64 on the CPU."""
    return ((z.detach().cpu().double() - mu.detach().cpu().double())
            / sigma.detach().cpu().double())


def _zeta_tolerance(*dtypes: torch.dtype) -> Tolerance:
    return ZETA_FLOAT64 if all(d == torch.float64 for d in dtypes) else ZETA_FLOAT32


def check_sample_values(fn: Any) -> None:
    """z = mu + sigma * zeta with one zeta for a given generator state, whatever mu and sigma:
    the same seed with another mean and scale gives the same (z - mu) / sigma. This is what
    makes z a differentiable function of mu and sigma; it does not depend on how zeta is drawn
    (``torch.randn``, ``normal_``, ``torch.normal(0, 1, ...)`` draw alike)."""

    def on(device: torch.device) -> None:
        for mu, sigma, seed in _sample_cases():
            other_mu, other_sigma = 2 * mu - 1, sigma / 2 + 0.25
            mu_d, sigma_d = mu.to(device), sigma.to(device)
            zeta = _zeta(_draw(fn, mu_d, sigma_d, seed), mu, sigma)
            z_other = _draw(fn, other_mu.to(device), other_sigma.to(device), seed)
            zeta_other = _zeta(z_other, other_mu, other_sigma)
            allowed = _zeta_tolerance(z_other.dtype)
            try:
                core.expect_close(zeta_other, zeta, SAMPLE, rtol=allowed.rtol, atol=allowed.atol,
                                  what="values of (z - mu) / sigma", args=(mu_d, sigma_d))
            except core.CheckFailed as failure:
                raise core.CheckFailed(
                    f"{failure}\n  With the same generator seed, another mu and sigma must give "
                    "the same noise zeta = (z - mu) / sigma: compute z = mu + sigma * zeta, with "
                    "zeta drawn from N(0, 1) (not N(mu, sigma^2), not sigma^2 * zeta).") from None

    core.on_every_device(on)


def check_sample_distribution(fn: Any) -> None:
    """zeta = (z - mu) / sigma is standard normal: over DISTRIBUTION_DRAWS draws its mean is
    within 6 standard errors of 0 and its variance within 6 standard errors of 1."""
    gen = core.generator(2305)
    mu = torch.randn(DISTRIBUTION_DRAWS, generator=gen, dtype=torch.float64)
    sigma = 0.5 + 1.5 * torch.rand(DISTRIBUTION_DRAWS, generator=gen, dtype=torch.float64)

    def on(device: torch.device) -> None:
        zeta = _zeta(_draw(fn, mu.to(device), sigma.to(device), core.seed_for(2306)), mu, sigma)
        if not bool(torch.isfinite(zeta).all()):
            raise core.CheckFailed(f"`{SAMPLE}` returned NaN or infinite values.")
        mean, variance = float(zeta.mean()), float(zeta.var())
        n = DISTRIBUTION_DRAWS
        if abs(mean) > DISTRIBUTION_SIGMAS / math.sqrt(n) \
                or abs(variance - 1) > DISTRIBUTION_SIGMAS * math.sqrt(2 / n):
            raise core.CheckFailed(
                f"The noise of `{SAMPLE}`, zeta = (z - mu) / sigma, is not standard normal over "
                f"{n} draws: its mean and variance are far from 0 and 1. Draw zeta with "
                "`torch.randn` (normal, mean 0, variance 1), not `torch.rand` (uniform), and "
                "scale it by sigma exactly once.")

    core.on_every_device(on)


def check_sample_gradients(fn: Any) -> None:
    """Gradients flow to mu and sigma: for weights w, the gradient of sum(w * z) is w for mu and
    w * zeta for sigma (dz/dmu = 1, dz/dsigma = zeta), with zeta = (z - mu) / sigma from the
    student's own z. Checked by autograd on leaves the check makes (mu and sigma are not the
    student's to change)."""

    def on(device: torch.device) -> None:
        for index, (mu, sigma, seed) in enumerate(_sample_cases()):
            mu_l = mu.to(device).requires_grad_(True)
            sigma_l = sigma.to(device).requires_grad_(True)
            with torch.enable_grad():
                # The check's own leaves, not copies: copies (``core.call``) would not require
                # grad, and the graph must lead back to these tensors.
                z = core.expect_tensor(_call_on_own(fn, (mu_l, sigma_l), seed), SAMPLE,
                                       shape=mu.shape, args=(mu_l, sigma_l))
                if not z.requires_grad:
                    raise core.CheckFailed(
                        f"No gradient flows through `{SAMPLE}`: its result does not require grad "
                        "when mu and sigma do. Compute z from mu and sigma with tensor operations "
                        "(`mu + sigma * zeta`): no `.detach()`, `.item()`, `torch.tensor(...)` of "
                        "values, and not `torch.normal(mu, sigma)`, which passes no gradient.")
                weights = torch.randn(mu.shape, generator=core.generator(2320 + index),
                                      dtype=torch.float64).to(device=device, dtype=z.dtype)
                grads = torch.autograd.grad(z, (mu_l, sigma_l), weights, allow_unused=True)
            zeta = _zeta(z, mu, sigma)
            expected = (weights.double().cpu(), weights.double().cpu() * zeta.cpu())
            allowed = _zeta_tolerance(z.dtype)
            for grad, want, what, rule in zip(grads, expected, ("mu", "sigma"),
                                              ("dz/dmu = 1", "dz/dsigma = zeta")):
                if grad is None or not bool(grad.abs().sum() > 0):
                    raise core.CheckFailed(
                        f"No gradient reaches `{what}` through `{SAMPLE}`: z must depend on it "
                        f"through tensor operations ({rule}). Do not detach it, and draw only "
                        "zeta at random (`torch.normal(mu, sigma)` passes no gradient).")
                core.expect_close(grad, want, SAMPLE, rtol=allowed.rtol, atol=allowed.atol,
                                  what=f"gradients with respect to {what} ({rule})",
                                  args=(mu_l, sigma_l))

    core.on_every_device(on)


def check_sample_generator(fn: Any) -> None:
    """zeta is drawn from the ``generator`` argument: two generators seeded alike give the same
    z, whatever the global random state, and two seeds give different z."""

    def on(device: torch.device) -> None:
        mu, sigma, seed = _sample_cases()[0]
        mu, sigma = mu.to(device), sigma.to(device)
        # The global random state is changed between two draws, and restored afterwards.
        with torch.random.fork_rng(
                devices=[torch.cuda.current_device()] if device.type == "cuda" else []):
            first = _draw(fn, mu, sigma, seed)
            torch.manual_seed(core.seed_for(2307))
            again = _draw(fn, mu, sigma, seed)
            other = _draw(fn, mu, sigma, seed + 1)
        if not torch.equal(first.detach().cpu(), again.detach().cpu()):
            raise core.CheckFailed(
                f"`{SAMPLE}` gives other values for two generators seeded alike: draw zeta from "
                "the `generator` argument (`torch.randn(mu.shape, generator=generator, "
                "dtype=mu.dtype, device=mu.device)`), not from torch's global random state.")
        if torch.equal(first.detach().cpu(), other.detach().cpu()):
            raise core.CheckFailed(
                f"`{SAMPLE}` gives the same values for generators seeded differently: draw zeta "
                "from the `generator` argument at every call.")

    core.on_every_device(on)


def check_sample_plain(fn: Any) -> None:
    """With plain mu and sigma, z is plain: zeta is noise, not a parameter, so nothing of the
    sample asks for a gradient (a zeta made with ``requires_grad=True`` makes every sample carry
    a graph that no parameter needs)."""

    def on(device: torch.device) -> None:
        mu, sigma, seed = _sample_cases()[0]
        z = _draw(fn, mu.to(device), sigma.to(device), seed)
        if z.requires_grad:
            raise core.CheckFailed(
                f"`{SAMPLE}` returned a tensor that requires grad when neither mu nor sigma does: "
                "the noise zeta must be a plain tensor (no `requires_grad=True`); gradients are "
                "for mu and sigma, the parameters.")

    core.on_every_device(on)


def check_sample_dtypes(fn: Any) -> None:
    """float32 in, float32 out; float64 in, float64 out (values are not judged)."""

    def on(device: torch.device) -> None:
        for mu, sigma, seed in _sample_cases()[:2]:
            for dtype in (torch.float32, torch.float64):
                args = (mu.to(device, dtype), sigma.to(device, dtype))
                z = _draw(fn, *args, seed)
                core.expect_tensor(z, SAMPLE, shape=mu.shape, dtype=dtype, args=args)

    core.on_every_device(on)


def check_sample_unmodified(fn: Any) -> None:
    """mu and sigma keep their values, requires_grad and .grad, and a second call with a
    generator seeded alike gives the same z (no state kept between calls):
    ``core.expect_unmodified`` on the sample with a fresh generator at each call."""

    def on(device: torch.device) -> None:
        for mu, sigma, seed in _sample_cases():
            args = (mu.to(device), sigma.to(device))
            result = core.expect_unmodified(with_generator(fn, seed), SAMPLE, ("mu", "sigma"),
                                            args)
            core.expect_tensor(result, SAMPLE, shape=mu.shape, args=args)

    core.on_every_device(on)


def _call_on_own(fn: Any, args: tuple[torch.Tensor, torch.Tensor], seed: int) -> Any:
    """Call the sample on the check's own tensors, not on copies (``core.call`` copies, and
    copies neither require grad nor lead a graph back to the check's leaves)."""
    drawn = with_generator(fn, seed)
    try:
        return drawn(*args)
    except core.CheckFailed:
        raise
    except Exception as error:  # the student's code may raise anything
        raise core.CheckFailed(f"`{SAMPLE}` raised {core.short_error(error)}\n  when called "
                               f"with {core.describe(args)}.") from None


def check_sample_devices(fn: Any) -> None:
    """z is on mu's device: decided on CUDA where present (with a CUDA generator), else by meta
    propagation (with a CPU generator, which meta accepts), as ``core.check_placement`` decides
    for every graded function."""
    mu, sigma, seed = _sample_cases()[0]
    core.check_placement(with_generator(fn, seed), SAMPLE, (mu, sigma))
