"""Running a notebook confined: the Linux steps (``namespaces``, ``cgroups``), the policy that
composes them (``confine``), the pre-started interpreter that forks each notebook's process
(``forkserver``, ``zygote``), the program that runs inside (``runner``), the wire format between
them (``protocol``) and the grader's side of one running notebook (``session``).

Knows nothing of tests, points or outputs: it runs cells and answers requests, under limits.
"""

from labkit import startup  # noqa: F401  (before otter is first imported)
