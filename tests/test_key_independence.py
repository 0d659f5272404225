"""The same mistake gets the same marks whatever the grading key: every WRONG and CORRECT variant
of the answer banks, and each answer wrong only on a GPU, is graded under KEYS keys (the hidden
inputs differ per key, see ``labkit.checks.core``) and with the seeds as written, and each must
get the same points on each hidden test under all of them; each CORRECT one full marks (and,
without CUDA, each GPU-only one). Only the values inside the inputs may vary with the key, never the
cases that decide a property (a class missing from the labels, a rank-deficient matrix, the
split's boundaries, large scores). ``assignments/lab1/calibrate_keys.py`` prints the same over any number of
keys.
"""

from __future__ import annotations

from . import marks

#: Grading keys per variant: about 10 s of CPU time a key for the whole banks here (2 s of it the
#: budget a too-slow training spends), so about 200 s in all.
KEYS = 20


def test_every_variant_gets_the_same_marks_under_every_key():
    graded = marks.grade_all(marks.bank(), [None, *marks.keys(KEYS, salt="ci")])
    differing, lost = marks.key_differences(graded), marks.full_marks_lost(graded)
    assert not differing, "marks that depend on the grading key:\n" + "\n".join(differing)
    assert not lost, "correct answers that lost a point:\n" + "\n".join(lost)
