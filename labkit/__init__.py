"""The lab kit: releases the course's otter master notebooks and grades submissions.

Kept import-free on purpose: ``labkit.checks`` is shipped inside every autograder zip and
imported in the grading kernel, where nothing but torch may be assumed.
"""
