"""The course's deadlines file (``make grade DEADLINES=deadlines.toml``): when each assignment is
due, the extensions given to single students, and the late policy, as the teaching team writes
them in TOML.

It is read whole and checked before anything is graded, so that a typo costs one sentence naming
the line or key, never a class graded against the wrong dates. Every time must carry its time
zone: a naive "23:59" means another hour on a grading server in another zone, so it is refused.

```toml
[due]
4_2_attention = 2026-10-09T23:59:00+02:00

[extensions."ada"]
4_2_attention = 2026-10-11T23:59:00+02:00   # a new due time
[extensions."bo"]
4_2_attention = { days = 2 }                # or so many days more
[extensions."cy"]
days = 1                                            # one day more on every assignment

[policy]
kind = "per_day"      # "none" | "per_day" | "cutoff"
per_day = 0.1         # per_day: this fraction of the assignment's points per started day late
cap = 0.5             # per_day: at most this fraction in all (default 1)
grace_minutes = 15    # handed in up to this long after the due time counts as on time

[cutoff]              # cutoff: zero after this time, full marks before (default: the due time)
4_2_attention = 2026-10-12T23:59:00+02:00
```

The arithmetic that turns these into days late and points lives in ``labkit.outputs.lateness``.
"""

from __future__ import annotations

import datetime
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("none", "per_day", "cutoff")
_TABLES = {"due", "extensions", "policy", "cutoff"}
_POLICY_KEYS = {"kind", "per_day", "cap", "grace_minutes"}


class DeadlinesError(Exception):
    """A deadlines file that cannot be used; the message says where and what to do, in one
    sentence."""


@dataclass(frozen=True)
class Policy:
    kind: str = "none"
    #: per_day: the fraction of the assignment's points taken per started day late
    per_day: float = 0.0
    #: per_day: the largest fraction taken in all
    cap: float = 1.0
    #: handed in up to this many minutes after the due time counts as on time
    grace_minutes: float = 0.0


@dataclass(frozen=True)
class Deadlines:
    #: assignment stem -> when it is due
    due: dict[str, datetime.datetime] = field(default_factory=dict)
    #: student id -> stem -> that student's due time
    extensions: dict[str, dict[str, datetime.datetime]] = field(default_factory=dict)
    #: stem -> the cutoff (policy "cutoff"; a stem without one is cut off at its due time)
    cutoff: dict[str, datetime.datetime] = field(default_factory=dict)
    policy: Policy = field(default_factory=Policy)
    #: the file it was read from, for messages
    path: Path | None = None

    def due_for(self, student: str, stem: str) -> datetime.datetime | None:
        """When ``student``'s ``stem`` is due, extension included; None when it has no due time."""
        return self.extensions.get(student, {}).get(stem, self.due.get(stem))

    def cutoff_for(self, student: str, stem: str) -> datetime.datetime | None:
        """``student``'s cutoff for ``stem``: the course's, moved by as much as an extension moved
        the due time (an extension gives the student that much more time on every limit)."""
        due = self.due.get(stem)
        if due is None:
            return None
        cutoff = self.cutoff.get(stem, due)
        extended = self.due_for(student, stem)
        return cutoff + (extended - due) if extended is not None and extended > due else cutoff


def parse_time(value: object, where: str) -> datetime.datetime:
    """A date-time with its time zone, as TOML writes it or as ISO 8601 text; ``where`` names
    the key or line in the message of the ValueError raised for anything else."""
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{where}: {value!r} is not a date-time; write it as "
                             "2026-10-09T23:59:00+02:00") from None
    if not isinstance(value, datetime.datetime):
        raise ValueError(f"{where}: {value!r} is not a date-time; write it as "
                         "2026-10-09T23:59:00+02:00 (a date alone has no hour)")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{where}: {value.isoformat()} has no time zone; add its offset, as in "
                         f"{value.isoformat()}+02:00 or {value.isoformat()}Z for UTC")
    return value


def _number(value: object, where: str, low: float, high: float, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value > high or value < low or (low_open and value == low):
        bound = f"{'above' if low_open else 'at least'} {low:g} and at most {high:g}"
        raise DeadlinesError(f"{where} must be a number {bound}, not {value!r}")
    return float(value)


def _table(data: dict, key: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise DeadlinesError(f"[{key}] must be a table (a [{key}] header with keys under it)")
    return value


def _stem(stem: str, known: list[str], where: str) -> None:
    if stem not in known:
        raise DeadlinesError(f"{where} names {stem!r}, which is not a released assignment; "
                             f"use one of {', '.join(known)}")


def _times(table: dict, section: str, known: list[str]) -> dict[str, datetime.datetime]:
    found = {}
    for stem, value in table.items():
        _stem(stem, known, f"[{section}]")
        try:
            found[stem] = parse_time(value, f"[{section}] {stem}")
        except ValueError as error:
            raise DeadlinesError(str(error)) from None
    return found


def _policy(table: dict) -> Policy:
    unknown = sorted(set(table) - _POLICY_KEYS)
    if unknown:
        raise DeadlinesError(f"[policy] has unknown key(s) {', '.join(unknown)}; the keys are "
                             f"{', '.join(sorted(_POLICY_KEYS))}")
    kind = table.get("kind", "none")
    if kind not in KINDS:
        raise DeadlinesError(f"[policy] kind must be one of {', '.join(map(repr, KINDS))}, "
                             f"not {kind!r}")
    if kind == "per_day" and "per_day" not in table:
        raise DeadlinesError("[policy] kind = \"per_day\" needs per_day, the fraction of the "
                             "assignment's points taken per day late (0.1 for 10%)")
    per_day = _number(table.get("per_day", 0.0), "[policy] per_day", 0.0, 1.0,
                      low_open=kind == "per_day")
    cap = _number(table.get("cap", 1.0), "[policy] cap", 0.0, 1.0, low_open=True)
    grace = _number(table.get("grace_minutes", 0.0), "[policy] grace_minutes", 0.0, 7 * 24 * 60)
    return Policy(kind, per_day, cap, grace)


def _extensions(table: dict, due: dict[str, datetime.datetime],
                known: list[str]) -> dict[str, dict[str, datetime.datetime]]:
    found: dict[str, dict[str, datetime.datetime]] = {}
    for student, given in table.items():
        where = f"[extensions.{student!r}]"
        if not isinstance(given, dict):
            raise DeadlinesError(f"{where} must be a table of assignment = new due time (or "
                                 "days = N); write it as a [extensions.\"<student>\"] header")
        moved: dict[str, datetime.datetime] = {}
        everywhere = given.get("days")
        if everywhere is not None:
            days = _number(everywhere, f"{where} days", 0.0, 366.0, low_open=True)
            moved = {stem: when + datetime.timedelta(days=days) for stem, when in due.items()}
        for stem, value in given.items():
            if stem == "days":
                continue
            _stem(stem, known, where)
            if stem not in due:
                raise DeadlinesError(f"{where} extends {stem}, which has no due time in [due]; "
                                     "give it one there first")
            if isinstance(value, dict):
                if set(value) != {"days"}:
                    raise DeadlinesError(f"{where} {stem} must be a date-time or {{ days = N }}, "
                                         f"not {value!r}")
                days = _number(value["days"], f"{where} {stem} days", 0.0, 366.0, low_open=True)
                moved[stem] = due[stem] + datetime.timedelta(days=days)
                continue
            try:
                moved[stem] = parse_time(value, f"{where} {stem}")
            except ValueError as error:
                raise DeadlinesError(str(error)) from None
            if moved[stem] < due[stem]:
                raise DeadlinesError(f"{where} {stem}: {moved[stem].isoformat()} is before the "
                                     f"due time {due[stem].isoformat()}; an extension gives "
                                     "more time, not less")
        found[student] = moved
    return found


def parse_deadlines(text: str, known: list[str], path: Path | None = None) -> Deadlines:
    """The deadlines written in ``text``, checked against the released assignments ``known``;
    raises DeadlinesError naming the line or key of the first problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DeadlinesError(f"it is not valid TOML ({error}); see docs/ta-grading.md for an "
                             "example") from None
    unknown = sorted(set(data) - _TABLES)
    if unknown:
        raise DeadlinesError(f"unknown key(s) or table(s) {', '.join(unknown)}; the tables are "
                             f"{', '.join(f'[{t}]' for t in sorted(_TABLES))}")
    due = _times(_table(data, "due"), "due", known)
    policy = _policy(_table(data, "policy"))
    cutoff = _times(_table(data, "cutoff"), "cutoff", known)
    for stem, when in cutoff.items():
        if stem not in due:
            raise DeadlinesError(f"[cutoff] {stem} has no due time in [due]; give it one there")
        if when < due[stem]:
            raise DeadlinesError(f"[cutoff] {stem}: {when.isoformat()} is before its due time "
                                 f"{due[stem].isoformat()}")
    if cutoff and policy.kind != "cutoff":
        raise DeadlinesError(f"[cutoff] is given but [policy] kind is {policy.kind!r}; set kind "
                             "= \"cutoff\" or remove [cutoff]")
    extensions = _extensions(_table(data, "extensions"), due, known)
    return Deadlines(due, extensions, cutoff, policy, path)


def read_deadlines(path: Path, known: list[str]) -> Deadlines:
    """The deadlines file at ``path``; raises DeadlinesError (one sentence, naming the file)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DeadlinesError(f"cannot read the deadlines file {path}: "
                             f"{getattr(error, 'strerror', None) or error}") from None
    try:
        return parse_deadlines(text, known, path)
    except DeadlinesError as error:
        raise DeadlinesError(f"the deadlines file {path}: {error}") from None
