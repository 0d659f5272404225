"""Sharded grading: which shard grades which student, and what a shard leaves in its OUT for
``merge``.

A class too large for one machine is graded as N shards (``grade --shard K/N``), each into its own
OUT, usually each on its own machine, then merged into one OUT (``merge``). K counts from 0, as
Slurm's ``SLURM_ARRAY_TASK_ID`` and Kubernetes' ``JOB_COMPLETION_INDEX`` do.

A student goes to the shard that weighs most for it, each shard's weight being a hash of the shard
and the student id (rendezvous, or highest-random-weight, hashing). The choice depends on the
student and N alone, never on who else is in the class, so adding students moves nobody. Going
from N to N+1 shards moves only the students the new shard wins, about one in N+1, so the other
shards reuse the records already in their OUTs; a plain hash modulo N would move almost every
student, and each moved student would be graded again. Weighing N shards per student costs N
hashes, nothing beside a notebook's grading.

Students, not entries, are hashed: two entries of one student ("ada/" and "ada.zip") go to one
shard, which alone writes ``results/ada/``, as in a run without shards.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from labkit.course import written
from labkit.outputs.gradebook import write_atomically

#: What a shard leaves in its OUT besides its records: written last, once its grading is done.
MANIFEST_FILE = "shard.json"
#: Bump when the manifest's meaning changes, so that a merge refuses shards of another kind.
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Shard:
    #: this shard, 0 to n - 1
    k: int
    #: how many shards the class is split into
    n: int

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


def parse(text: str) -> Shard:
    """``K/N`` as the command line gives it; a ValueError says what is wrong."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise ValueError(f"{text!r} is not K/N (for example 0/10: shard 0 of 10)")
    k, n = int(match[1]), int(match[2])
    if n < 1:
        raise ValueError(f"{text!r}: N must be at least 1")
    if k >= n:
        raise ValueError(f"{text!r}: K counts from 0, so it must be below N (0 to {n - 1})")
    return Shard(k, n)


def _weight(k: int, student: str) -> bytes:
    # surrogateescape: a student id comes from a file name, which need not be UTF-8.
    return hashlib.sha256(f"{k}\0{student}".encode("utf-8", "surrogateescape")).digest()


def shard_of(student: str, n: int) -> int:
    """The shard, 0 to n - 1, that grades ``student``."""
    return max(range(n), key=lambda k: _weight(k, student))


@dataclass
class Manifest:
    """What ``merge`` needs of a shard that lives in SUBMISSIONS or in the grader's settings."""

    shard: Shard
    #: ``classrun.grading_fingerprint``: the autograders, the limits and the grading secret
    grading: str
    #: ``classrun.release_fingerprint``: the released assignments the class files are written from
    release: str
    #: every entry the shard owns -> the fingerprint its record must carry
    entries: dict[str, str]
    #: the written answers of those entries, read from their notebooks
    answers: list[written.StudentAnswers]
    #: the lab the shard graded (a class is graded one lab at a time)
    lab: str = ""


class ManifestError(ValueError):
    """A folder that is not the OUT of a finished shard."""


def remove_manifest(out: Path) -> None:
    """Called as a grading starts, so that a run interrupted halfway leaves no manifest that
    would describe the run before it."""
    (out / MANIFEST_FILE).unlink(missing_ok=True)


def write_manifest(out: Path, manifest: Manifest) -> None:
    write_atomically(out / MANIFEST_FILE, json.dumps({
        "version": MANIFEST_VERSION, "k": manifest.shard.k, "n": manifest.shard.n,
        "grading": manifest.grading, "release": manifest.release,
        "entries": manifest.entries, "answers": written.answers_to_json(manifest.answers),
        "lab": manifest.lab,
    }, sort_keys=True, ensure_ascii=False))


def read_manifest(out: Path) -> Manifest:
    path = out / MANIFEST_FILE
    if not out.is_dir():
        raise ManifestError(f"{out} is not a folder")
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{out} is not the OUT of a finished shard: it has no {MANIFEST_FILE} "
                            "(grade it with --shard K/N; an interrupted shard has none until it "
                            "is run again)") from None
    except (OSError, ValueError) as error:
        raise ManifestError(f"{path} cannot be read: {error}") from None
    version = data.get("version") if isinstance(data, dict) else None
    if version != MANIFEST_VERSION:
        raise ManifestError(f"{path} was written by another version of the kit (version "
                            f"{version!r}; this kit reads {MANIFEST_VERSION})")
    try:
        shard = Shard(int(data["k"]), int(data["n"]))
        if not 0 <= shard.k < shard.n:
            raise ValueError(f"shard {shard}")
        return Manifest(shard, str(data["grading"]), str(data["release"]),
                        {str(name): str(value) for name, value in data["entries"].items()},
                        written.answers_from_json(data["answers"]), str(data.get("lab", "")))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ManifestError(f"{path} is malformed ({type(error).__name__}: {error})") from None
