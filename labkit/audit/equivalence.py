"""Is a mutant that kept full marks a mistake at all? Compare it with the reference on many inputs.

A mutant is judged equivalent when, on every input tried, it gives what the reference gives: the
same kind of result, the same shapes, dtypes and ``requires_grad``, the same values to float64's
rounding (float32's for float32 inputs), the same error where the reference raises one, the same
arguments afterwards (an in-place write shows), and the same shapes, dtypes and devices on meta
tensors (a tensor made on the CPU shows). No hidden test can tell such a mutant from the
reference, so it is no survivor.

The inputs are the graded function's own cases (``checks.graded.GradedFunction.cases``, found in
the assignment's checks module by the question's name) drawn under several grading keys, in
float64 and float32, as drawn and scaled up a hundredfold (large scores and logits, where a
dropped max-shift shows). A function checked by its own properties, without a
``GradedFunction``, names its inputs in the module's ``AUDIT_CASES`` (``{question: cases}``).
An answer that is not a function (``theta = ...``) cannot be judged this way: its mutants that
keep full marks are survivors, for the instructor to judge.

Mutant code runs in a child process with a time limit (a mutated constant can make a loop run
for ever); the child holds no secret and writes nothing.
"""

from __future__ import annotations

import ast
import importlib
import json
import math
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from typing import Any

from labkit import notebooks, paths

#: Grading keys the inputs are drawn under: the seeds as written, then these.
KEYS = 8
#: Factors the floating inputs are also tried at (large scores and logits).
SCALES = (1.0, 100.0)
#: Largest difference, relative to the reference's largest entry, that is still rounding.
RELATIVE = {"float64": 1e-10, "float32": 1e-5}
#: Seconds one mutant's comparison may take in its child process.
TIMEOUT = 120


@dataclass(frozen=True)
class Verdict:
    #: True: same outputs everywhere; False: differs; None: cannot be judged
    equivalent: bool | None
    #: why, in one line
    reason: str


# --- in the parent ------------------------------------------------------------------------------

def checks_module(stem: str, question: str) -> str | None:
    """The checks module the question's released tests import (``labkit.checks.<name>``)."""
    with zipfile.ZipFile(paths.autograder_zip(stem)) as archive:
        try:
            source = archive.read(f"tests/{question}.py").decode("utf-8")
        except KeyError:
            return None
    found = re.search(r"from\s+labkit\.checks\s+import\s+(\w+)", source) or \
        re.search(r"labkit\.checks\.(\w+)", source)
    return f"labkit.checks.{found.group(1)}" if found else None


def definitions(stem: str) -> str:
    """The master's imports and top-level functions, every code cell's, in order: what a
    graded function may call (another graded function, a helper the notebook defines)."""
    kept = []
    for cell in notebooks.read(paths.master_notebook(stem)).cells:
        if cell.cell_type != "code":
            continue
        try:
            module = ast.parse(cell.source)
        except SyntaxError:
            continue
        kept.extend(ast.unparse(node) for node in module.body
                    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef)))
    return "\n\n".join(kept)


def judge(stem: str, question: str, function: str | None, mutant_source: str,
          timeout: float = TIMEOUT) -> Verdict:
    """Compare a mutant of ``function`` with the reference, in a child process."""
    if function is None:
        return Verdict(None, "not a function: no inputs to compare on")
    module = checks_module(stem, question)
    if module is None:
        return Verdict(None, "its tests import no checks module")
    request = {"module": module, "question": question, "function": function,
               "definitions": definitions(stem), "mutant": mutant_source}
    try:
        done = subprocess.run([sys.executable, "-m", __name__], input=json.dumps(request),
                              capture_output=True, text=True, timeout=timeout,
                              cwd=paths.ROOT)
    except subprocess.TimeoutExpired:
        return Verdict(False, f"ran over {timeout:.0f} s where the reference did not")
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return Verdict(None, f"the comparison failed: {done.stderr.strip()[-300:]}")
    return Verdict(answer["equivalent"], answer["reason"])


# --- in the child -------------------------------------------------------------------------------

def _load(definitions_source: str, extra: str | None) -> dict[str, Any]:
    """A namespace holding the master's definitions (each statement on its own: an import that
    fails leaves the rest), then ``extra`` on top."""
    namespace: dict[str, Any] = {"__name__": "__audit__"}
    for node in ast.parse(definitions_source).body:
        try:
            exec(compile(ast.Module(body=[node], type_ignores=[]), "<master>", "exec"), namespace)
        except Exception:
            pass
    if extra is not None:
        exec(compile(extra, "<mutant>", "exec"), namespace)
    return namespace


@dataclass(frozen=True)
class _Cases:
    """A question's inputs named in its checks module's ``AUDIT_CASES`` (a question checked by
    its own properties, without a GradedFunction): all the comparison needs is ``cases()``."""

    cases: Any


def _describe(value: Any) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    return type(value).__name__


def _difference(result: Any, expected: Any, relative: float) -> str | None:
    """How ``result`` differs from ``expected``, or None when no test could tell them apart."""
    import torch

    if isinstance(expected, BaseException) or isinstance(result, BaseException):
        if type(result) is type(expected):
            return None
        return f"{_describe(result)} where the reference gives {_describe(expected)}"
    if isinstance(expected, (tuple, list)):
        if type(result) is not type(expected) or len(result) != len(expected):
            return f"{_describe(result)} where the reference gives {_describe(expected)}"
        for a, b in zip(result, expected):
            if (why := _difference(a, b, relative)) is not None:
                return why
        return None
    if isinstance(expected, torch.Tensor):
        if not isinstance(result, torch.Tensor) or result.shape != expected.shape or \
                result.dtype != expected.dtype or result.device != expected.device or \
                result.requires_grad != expected.requires_grad:
            return f"{_describe(result)} where the reference gives {_describe(expected)}"
        if expected.device.type == "meta":
            return None
        a, b = result.detach(), expected.detach()
        if not a.is_floating_point():
            return None if torch.equal(a, b) else "different values"
        a, b = a.double(), b.double()
        if not torch.equal(a.isnan(), b.isnan()) or not torch.equal(a.isinf(), b.isinf()) or \
                not torch.equal(a[a.isinf()], b[b.isinf()]):
            return "nan or inf where the reference has none (or the reverse)"
        finite = b.isfinite()
        if not finite.any():
            return None
        scale = max(1.0, float(b[finite].abs().max()))
        error = float((a[finite] - b[finite]).abs().max())
        return None if error <= relative * scale else f"values differ by {error:.3g}"
    try:
        same = bool(result == expected)
    except Exception:
        same = False
    return None if same else f"{result!r} where the reference gives {expected!r}"


def _run(fn: Any, args: tuple) -> tuple[Any, tuple]:
    """The result (or the exception) of ``fn`` on copies of ``args``, and the copies after."""
    from labkit.checks import core

    inputs = core.copies(args)
    try:
        result = fn(*inputs)
    except Exception as error:  # the mutant's own error is an outcome to compare
        result = error
    return result, inputs


def _inputs(graded: Any) -> list[tuple[str, tuple, str]]:
    """(label, arguments, precision) for every input tried."""
    import torch

    from labkit.checks import core
    from labkit.checks.graded import cast

    tried = []
    for number in range(KEYS):
        key = None if number == 0 else f"audit key {number}".encode()
        with core.keyed(key):
            cases = graded.cases()
        for case_number, case in enumerate(cases):
            for dtype in (torch.float64, torch.float32):
                for scale in SCALES:
                    args = tuple(arg * scale if isinstance(arg, torch.Tensor)
                                 and arg.is_floating_point() else arg
                                 for arg in cast(case, dtype, "cpu"))
                    precision = str(dtype).removeprefix("torch.")
                    tried.append((f"key {number}, case {case_number}, {precision}, x{scale:g}",
                                  args, precision))
    return tried


def compare(request: dict) -> Verdict:
    """The child's work: the mutant against the reference on every input (see the module)."""
    import torch

    from labkit.checks.graded import GradedFunction, cast

    torch.set_num_threads(1)
    module = importlib.import_module(request["module"])
    graded = getattr(module, request["question"], None)
    if not isinstance(graded, GradedFunction):
        graded = next((value for value in vars(module).values() if isinstance(
            value, GradedFunction) and value.name == request["question"]), None)
    if graded is None and request["question"] in getattr(module, "AUDIT_CASES", {}):
        graded = _Cases(getattr(module, "AUDIT_CASES")[request["question"]])
    if graded is None:
        return Verdict(None, f"{request['module']} declares no GradedFunction "
                             f"{request['question']} nor AUDIT_CASES for it: no inputs to "
                             "compare on")
    reference = _load(request["definitions"], None)[request["function"]]
    try:
        mutant = _load(request["definitions"], request["mutant"])[request["function"]]
    except Exception as error:
        return Verdict(False, f"does not define the function: {type(error).__name__}")
    inputs = _inputs(graded)
    for label, args, precision in inputs:
        expected, expected_args = _run(reference, args)
        again, _ = _run(reference, args)
        if _difference(again, expected, 0.0) is not None:
            return Verdict(None, "the reference gives different results on the same input")
        result, result_args = _run(mutant, args)
        why = _difference(result, expected, RELATIVE[precision])
        if why is None and (changed := _difference(result_args, expected_args,
                                                   RELATIVE[precision])) is not None:
            why = f"leaves its arguments changed: {changed}"
        if why is not None:
            return Verdict(False, f"{why} ({label})")
    for label, args, precision in inputs[:4]:
        meta = cast(args, getattr(torch, precision), "meta")
        expected, _ = _run(reference, meta)
        result, _ = _run(mutant, meta)
        if (why := _difference(result, expected, math.inf)) is not None:
            return Verdict(False, f"on meta tensors: {why} ({label})")
    scales = " and x".join(f"{scale:g}" for scale in SCALES)
    return Verdict(True, f"same outputs as the reference on {len(inputs)} inputs "
                         f"({KEYS} keys, float64 and float32, scaled x{scales})")


def main() -> None:
    verdict = compare(json.loads(sys.stdin.read()))
    print(json.dumps({"equivalent": verdict.equivalent, "reason": verdict.reason}))


if __name__ == "__main__":
    main()
