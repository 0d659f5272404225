"""The grading secret: what makes each submission's hidden inputs its own.

Hidden inputs are drawn from seeds mixed with a key per notebook (``labkit.checks.core``); the key
is an HMAC of the notebook's bytes under this secret. Grading the same file again gives the same
inputs, so grades are reproducible, but a student cannot know another submission's inputs, nor
hard-code answers seen in feedback, without the secret. It never enters a release: the student
notebooks and the autograder zips hold no key, so public checks and plain ``otter run`` use the
seeds as written.

The secret is read from the environment variable ``LABKIT_GRADING_SECRET`` when set, else from the
file ``.grading-secret`` at the kit's root (git-ignored), created with 32 random bytes on first
use. Keep that file, and share it (or the variable) across the machines that grade one class, so
that they grade alike.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from labkit import paths

ENVIRONMENT_VARIABLE = "LABKIT_GRADING_SECRET"
SECRET_FILE = paths.ROOT / ".grading-secret"
SECRET_BYTES = 32


def grading_secret(path: Path = SECRET_FILE) -> bytes:
    """The secret: the environment variable's bytes if set, else the file's, creating the file
    (readable by its owner only) when it does not exist."""
    from_environment = os.environ.get(ENVIRONMENT_VARIABLE)
    if from_environment:
        return from_environment.encode("utf-8")
    if not path.exists():
        # Written aside, then linked into place: a reader never sees a half-written file, and
        # of two graders starting at once, one secret wins and both use it.
        aside = path.with_name(f"{path.name}.{os.getpid()}.new")
        descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(os.urandom(SECRET_BYTES))
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
        finally:
            aside.unlink()
    secret = path.read_bytes()
    if not secret:
        raise RuntimeError(f"{path} is empty: restore the class's copy, or delete it to make a "
                           "new grading secret")
    return secret


def notebook_key(notebook_bytes: bytes, secret: bytes) -> bytes:
    """The key for one notebook: HMAC-SHA256 of its bytes under the secret."""
    return hmac.new(secret, notebook_bytes, hashlib.sha256).digest()
