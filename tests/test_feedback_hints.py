"""Each hint is given where its condition is true and only there: the answer banks' variants are
graded by the released tests of their question (otter's runner, as in test_answer_variants), and
what the feedback page would show for the failed tests is searched for each hint, both in the
variants that should get it and in those that should not."""

from __future__ import annotations

import pytest

from .conftest import answer_variants, grade_source

SOFTMAX = "1_3_softmax_regression"
LOGISTIC = "1_2_logistic_regression"
LOSS, GRAD, GRAD_0 = ("softmax_regression_loss", "softmax_regression_loss_grad",
                      "softmax_regression_loss_grad_0")
LOGISTIC_GRAD = "logistic_regression_loss_grad"
LINEAR = "1_1_linear_regression"
PINV, LINEAR_GRAD, BIAS = "pinv_svd", "linear_regression_loss_grad", "add_bias_column"


def _shown(stem: str, question: str, variant: str, tmp_path) -> str:
    """What the feedback page shows for the failed tests of one variant, joined."""
    wrong, correct = answer_variants(stem)
    source = {**correct.get(question, {}), **wrong.get(question, {})}[variant]
    _, _, shown = grade_source(stem, question, source, tmp_path)
    return "\n".join(shown)


#: (hint, a phrase only that hint writes, the variants that must get it, those that must not).
HINTS = [
    ("missing max shift", "subtract each row's maximum logit", SOFTMAX,
     [(GRAD, "no_max_shift"), (GRAD_0, "no_max_shift"), (LOSS, "naive_exp_overflows")],
     [(GRAD, "dtype_lost"), (GRAD_0, "dtype_lost"), (GRAD_0, "keeps_all_k_columns"),
      (GRAD, "one_hot_without_num_classes"), (GRAD, "softmax_over_items"),
      (LOSS, "softmax_over_items"), (LOSS, "log_of_softmax"), (LOSS, "keeps_a_dimension")]),
    ("log of a probability", "Do not take the log of a probability", SOFTMAX,
     [(LOSS, "log_of_softmax")],
     [(LOSS, "naive_exp_overflows"), (LOSS, "softmax_over_items"), (LOSS, "dtype_lost"),
      (LOSS, "returns_python_float")]),
    ("softmax axis", "take the softmax along the class axis", SOFTMAX,
     [(GRAD, "softmax_over_items")],
     [(GRAD, "sign_error"), (GRAD, "mean_not_sum"), (GRAD, "no_max_shift"),
      (GRAD, "one_hot_broadcast_m_by_m"), (GRAD, "compare_broadcast_m_by_m")]),
    ("loss axis", "take it along the class axis", SOFTMAX,
     [(LOSS, "softmax_over_items")],
     [(LOSS, "sign_error"), (LOSS, "mean_not_sum"), (LOSS, "index_broadcast_m_by_m")]),
    ("opposite sign", "with the opposite sign", SOFTMAX,
     [(GRAD, "sign_error"), (GRAD_0, "sign_error"), (LOSS, "sign_error")],
     [(GRAD, "softmax_over_items"), (GRAD, "mean_not_sum"), (GRAD, "missing_x_transpose_sum"),
      (GRAD_0, "first_column_dropped")]),
    ("mean for the sum", "divided by the number of items", SOFTMAX,
     [(GRAD, "mean_not_sum"), (GRAD_0, "mean_not_sum"), (LOSS, "mean_not_sum")],
     [(GRAD, "sign_error"), (GRAD, "softmax_over_items"), (GRAD_0, "softmax_over_k_minus_1_columns")]),
    ("log(1 - sigmoid) under autograd", "log(1 - sigmoid(z))", LOGISTIC,
     [(LOGISTIC_GRAD, "autograd_through_log_sigmoid")],
     [(LOGISTIC_GRAD, "sigmoid_as_exp_ratio"), (LOGISTIC_GRAD, "sign_error"),
      (LOGISTIC_GRAD, "row_not_column")]),
    ("rows broadcast to m x m", "broadcasts to an m x m block", SOFTMAX,
     [(LOSS, "index_broadcast_m_by_m"), (LOSS, "one_hot_broadcast_m_by_m"),
      (GRAD, "one_hot_broadcast_m_by_m"), (GRAD, "compare_broadcast_m_by_m")],
     [(LOSS, "softmax_over_items"), (GRAD, "one_hot_without_num_classes"), (GRAD, "sign_error")]),
    ("changed in place, seen on a second call", "changed `y` in place", SOFTMAX,
     [(LOSS, "modifies_y_in_place"), (GRAD, "modifies_y_in_place"),
      (GRAD_0, "modifies_y_in_place")],
     [(GRAD, "one_hot_without_num_classes"), (GRAD, "autograd_on_the_argument")]),
    ("an ignored first argument", "does not change when", LOGISTIC,
     [(LOGISTIC_GRAD, "ignores_theta"), (LOGISTIC_GRAD, "hard_coded_sanity_value")],
     [(LOGISTIC_GRAD, "sign_error"), (LOGISTIC_GRAD, "linear_not_sigmoid"),
      (LOGISTIC_GRAD, "mean_not_sum")]),
    ("sizes from no argument", "none of its arguments have", LOGISTIC,
     [(LOGISTIC_GRAD, "reads_notebook_globals")],
     [(LOGISTIC_GRAD, "row_not_column"), (LOGISTIC_GRAD, "missing_transpose_summed")]),
    ("hard-coded rows", "none of its arguments have", LINEAR,
     [(BIAS, "hard_coded_rows")], [(BIAS, "ones_first"), (PINV, "missing_transposes")]),
    ("factor two", "has no factor 2", LINEAR,
     [(LINEAR_GRAD, "factor_two")], [(LINEAR_GRAD, "sign_error"), (LINEAR_GRAD, "mean_not_sum")]),
    ("SVD transposes", "check the transposes", LINEAR,
     [(PINV, "missing_transposes")], [(PINV, "S_not_inverted"), (PINV, "normal_equations"),
                                      (PINV, "no_threshold")]),
    ("singular values not inverted", "rather than multiply by them", LINEAR,
     [(PINV, "S_not_inverted")], [(PINV, "missing_transposes"), (PINV, "no_threshold")]),
    ("normal equations", "normal equations", LINEAR,
     [(PINV, "normal_equations")], [(PINV, "missing_transposes"), (PINV, "fixed_cutoff")]),
    ("threshold on the singular values", "Invert only s_i > s_1 * max(m, n) * eps", LINEAR,
     [(PINV, "no_threshold"), (PINV, "fixed_cutoff"), (PINV, "float64_eps_for_every_dtype"),
      (PINV, "zeros_on_cpu")],
     [(PINV, "missing_transposes"), (PINV, "S_not_inverted"), (PINV, "normal_equations")]),
    ("sigmoid as a ratio of exps", "not as `exp(z) / (1 + exp(z))`", LOGISTIC,
     [(LOGISTIC_GRAD, "sigmoid_as_exp_ratio")],
     [(LOGISTIC_GRAD, "autograd_through_log_sigmoid"), (LOGISTIC_GRAD, "sign_error"),
      (LOGISTIC_GRAD, "linear_not_sigmoid"), (LOGISTIC_GRAD, "row_not_column")]),
]


def _cases(should: bool) -> list:
    cases = []
    for hint, phrase, stem, given, withheld in HINTS:
        for question, variant in given if should else withheld:
            cases.append(pytest.param(phrase, stem, question, variant,
                                      id=f"{hint}-{question}-{variant}"))
    return cases


@pytest.mark.parametrize("phrase, stem, question, variant", _cases(True))
def test_a_hint_is_given_where_its_mistake_is(phrase, stem, question, variant, tmp_path):
    assert phrase.lower() in _shown(stem, question, variant, tmp_path).lower()


@pytest.mark.parametrize("phrase, stem, question, variant", _cases(False))
def test_a_hint_is_not_given_where_its_mistake_is_not(phrase, stem, question, variant, tmp_path):
    assert phrase.lower() not in _shown(stem, question, variant, tmp_path).lower()


def test_autograd_through_log_of_sigmoid_is_not_told_to_use_torch_sigmoid(tmp_path):
    shown = _shown(LOGISTIC, LOGISTIC_GRAD, "autograd_through_log_sigmoid", tmp_path)
    assert "torch.sigmoid" not in shown and "log(1 - sigmoid(z))" in shown


def test_training_on_the_wrong_axis_names_the_axis_not_the_sign(tmp_path):
    shown = _shown(SOFTMAX, GRAD, "softmax_over_items", tmp_path)
    training = next(line for line in shown.split("\n") if line.startswith("Training on the digits"))
    assert "dim=1" in training and "axis" in training
    assert "sign" not in training


def test_a_correct_answer_gets_no_hint(tmp_path):
    for question, variant in ((GRAD, "one_hot"), (LOSS, "cross_entropy")):
        assert _shown(SOFTMAX, question, variant, tmp_path) == ""
