"""``make grade``: find each student's notebooks, grade each with its released autograder, and
write the gradebook. One module per step: discover -> run -> gradebook, driven by ``batch``."""

import sys

# Every grading process (the grader, its workers, their pre-started interpreters) imports otter,
# which imports nbformat and jsonschema; jsonschema then imports rfc3987_syntax, when installed
# (Jupyter's server pulls it in), only to check the "iri" string format, and that import compiles a
# grammar: 1.7 s of every process's start on a 2-core machine, about a quarter of it. Nothing the
# kit or a notebook of this lab validates uses that format; jsonschema treats the module as absent.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
