"""Judging submissions: find each student's notebooks (``intake``), judge one notebook against
its released tests (``judge``, with ``standins`` for the student's functions), grade a class in
workers with resumable records (``classrun``), shards and their merge, and the grading keys.
Runs notebooks only through ``labkit.sandbox``; writes OUT only through ``labkit.outputs``."""

from labkit import startup  # noqa: F401  (before otter is first imported)
