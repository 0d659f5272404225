"""Pinned versions the released notebooks name, read from the one pinned requirements file."""

from __future__ import annotations

import re

from .paths import ROOT


def _pin(package: str) -> str:
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(package)}==([^\s#]+)", text, flags=re.MULTILINE | re.IGNORECASE)
    if match is None:
        raise RuntimeError(f"{package} is not pinned in requirements.txt")
    return f"{package}=={match.group(1)}"


#: What a student's environment installs where otter is missing.
OTTER = _pin("otter-grader")
