"""Which existing LMS column each of the kit's assignments goes into, so that an import updates
the assignments the course already has instead of creating new ones.

Either the teaching team says it, in a TOML file (``COLUMNS=columns.toml``)::

    4_1_convolutions = "Lab 4.1 Convolutions (48211)"
    4_2_attention = "Lab 4.2 Attention (48213)"

(an assignment left out is not exported; several assignments may share a column, which then
holds their sum), or each assignment is matched by itself: its number (``4_2_...`` is 4.2) and
its words (``attention``) must pick out exactly one of the LMS's columns, else the
export is refused with the candidates named.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path


class ColumnError(Exception):
    """No safe mapping: said in one sentence naming the candidates."""


_STEM = re.compile(r"^(?P<major>\d+)_(?P<minor>\d+)_(?P<words>.+)$")


def listing(columns: list[str]) -> str:
    return ", ".join(repr(column) for column in columns) if columns else "none"


def read_mapping(path: Path, stems: list[str], columns: list[str]) -> dict[str, str]:
    """The mapping file's stem -> column, each checked against the kit's assignments and the
    LMS file's columns."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as error:
        raise ColumnError(f"cannot read the columns file {path}: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ColumnError(f"the columns file {path} is not TOML ({error}); write one line per "
                          f"assignment: stem = \"the LMS's column\"") from None
    mapping: dict[str, str] = {}
    for stem, column in data.items():
        if stem not in stems:
            raise ColumnError(f"the columns file {path} names {stem!r}, which is not one of the "
                              f"graded assignments ({', '.join(stems)})")
        if not isinstance(column, str) or column not in columns:
            raise ColumnError(f"the columns file {path} maps {stem} to {column!r}, which is not a "
                              f"column of the LMS's file; its columns are {listing(columns)}")
        mapping[stem] = column
    if not mapping:
        raise ColumnError(f"the columns file {path} maps no assignment; write one line per "
                          f"assignment: stem = \"the LMS's column\"")
    return mapping


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def _has_number(column: str, major: str, minor: str) -> bool:
    """Whether ``column`` names assignment ``major.minor`` ("Lab 1.3", "1_3", "1-3"), not 11.3
    or 1.30 or 2.1.3."""
    pattern = rf"(?<![\d.]){int(major)}[._\- ]0*{int(minor)}(?![\d])(?!\.\d)"
    return re.search(pattern, column) is not None


def match_columns(stems: list[str], columns: list[str]) -> dict[str, str]:
    """Each stem's one column, by its number, narrowed (or, without a number match, found) by
    its words; ColumnError when a stem matches none or several, or two stems one column."""
    mapping: dict[str, str] = {}
    for stem in stems:
        parts = _STEM.match(stem)
        words = _words(parts["words"] if parts else stem)
        found = [c for c in columns if parts and _has_number(c, parts["major"], parts["minor"])]
        if len(found) > 1:
            found = [c for c in found if words <= _words(c)] or found
        if not found:
            found = [c for c in columns if words and words <= _words(c)]
        if len(found) != 1:
            what = "matches none of" if not found else "matches several of"
            named = found or columns
            raise ColumnError(
                f"assignment {stem} {what} the LMS's assignment columns (candidates: "
                f"{listing(named)}); say which in a columns file, COLUMNS=columns.toml, one line "
                f"per assignment: {stem} = \"the column\"")
        mapping[stem] = found[0]
    taken: dict[str, str] = {}
    for stem, column in mapping.items():
        if column in taken:
            raise ColumnError(f"assignments {taken[column]} and {stem} both match the column "
                              f"{column!r}; say which goes where in a columns file, "
                              f"COLUMNS=columns.toml")
        taken[column] = stem
    return mapping
