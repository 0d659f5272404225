"""Which answers of a class look copied, question by question: every pair of students compared on
their own code (or text) for one question at a time, ranked against the rest of the class.

A whole-notebook comparison drowns in the template every student starts from; so each graded
function and each written answer is compared on its own, less what the student release already
holds for it (the answer cell as released, its docstring, the notebook's given code, a written
question's prompt). The comparison is ``copydetect``'s: its fingerprints (MOSS's winnowing:
k-grams of the token stream, the smallest hash of each window kept), with the release's k-grams
as its boilerplate, and its overlap and coverage of two fingerprinted documents.

What copying changes cheaply is normalised before fingerprinting: comments, whitespace and
layout (gone in the token stream, tokenised by pygments as copydetect does); the names an answer
binds itself (arguments, variables, helpers), which all become one placeholder, while the names
it only reads (``torch.linalg.svd``, ``dim=``) are kept, since copydetect's own filter, which
turns every name into one letter, made distinct answers of this lab identical (``torch.ones(...,
dtype=X.dtype)`` and ``torch.ones(..., device=X.device)``); and the order of independent
statements (each block put in one canonical order that keeps every statement after those it
depends on).

A pair's similarity is the share of both answers covered by fingerprints they share. It is then
ranked against the class: what is left above the question's typical pair (its median), divided
among the other students who are as close to either of the two (an answer many wrote alike is
nobody's in particular), and scaled down for questions whose answers are mostly one short line
(those coincide honestly). The result flags pairs for a person to read; it never changes a grade.

Budgets: one question's code or text is read up to ``MAX_ANSWER_CHARS`` (cut beyond, with a
note), a block of more than ``MAX_REORDERED`` statements keeps its order; notebooks are found
and read by discovery, within its budgets. Only pairs that share a fingerprint are compared (a
sparse product of who holds which fingerprint), so the cost grows with how alike the class's
answers are; it is measured for a class of 500 in ``make bench``. At most ``MAX_KEPT_PAIRS``
pairs a question are kept.
"""

from __future__ import annotations

import ast
import bisect
import functools
import hashlib
import json
import multiprocessing
import os
import re
import tempfile
import warnings
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from copydetect import CodeFingerprint, compare_files
from pygments.lexers.python import PythonLexer
from pygments.token import Token
from scipy import sparse

from labkit import paths
from labkit.grading import intake
from labkit.course import written
from labkit.course.autograders import Assignment, written_questions
from labkit.course.questions import Question

#: One question's code or text is compared up to this many characters: the longest correct
#: answer of the lab is under 600, a student's with helpers and prints a few thousand; an
#: answer of 8000 characters costs about 0.1 s to fingerprint.
MAX_ANSWER_CHARS = 8_000
#: Code k-grams, in tokens: fewer than the shortest line of an answer (``return y[:, None]``),
#: so that one changed token leaves the rest of its line matching.
CODE_K = 5
#: Code winnowing window: a match of CODE_K + CODE_WINDOW - 1 tokens is always found.
CODE_WINDOW = 3
#: Written answers: k-grams of words, and their window.
TEXT_K = 5
TEXT_WINDOW = 3
#: A question whose median answer (its own part, in tokens of code or words of text) is
#: shorter than this has its pairs' ranks scaled down: two or three lines of code, one
#: sentence. Answers of one short line coincide honestly.
CODE_EVIDENCE = 40
TEXT_EVIDENCE = 25
#: Longer blocks of statements are compared in the order written: putting a block in canonical
#: order costs the square of its length, and an answer's blocks are a few to a few dozen lines.
MAX_REORDERED = 200
#: Pairs kept per question, and for the whole class, best first (the page shows the first
#: hundred; the CSV file lists these): the rest are counted, not kept, so that a class of 500
#: (125,000 pairs a question) does not hold every pair in memory.
MAX_KEPT_PAIRS = 5000
#: Classes from this size compare their questions in parallel processes.
PARALLEL_FROM = 100
#: Cells looked at before one question's check cell (its answer cell, helpers a student added).
MAX_REGION_CELLS = 12
_CHECK = re.compile(r"""grader\.check\(\s*["']([A-Za-z0-9_]+)["']\s*\)""")
_WORD = re.compile(r"\w+|[=+\-*/^<>]")
_ANSWER_TAG = "otter_answer_cell"

# --- what each student wrote for each question ----------------------------------------------


def answer_kind(question: Question) -> str:
    """How a question's answers are compared: "code" for a graded function (or value), "text"
    for a written answer."""
    return "text" if question.written else "code"


@dataclass
class Work:
    """What one student (of this class or an earlier one) wrote, per question column."""

    student: str
    earlier: bool = False
    answers: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _cells(path: Path) -> list[dict]:
    nb = json.loads(path.read_bytes().decode("utf-8"))
    cells = nb.get("cells") if isinstance(nb, dict) else None
    return [c for c in cells if isinstance(c, dict)] if isinstance(cells, list) else []


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _is_code(cell: dict) -> bool:
    return cell.get("cell_type") == "code"


def _defines(source: str, name: str) -> bool:
    pattern = rf"^[ \t]*def[ \t]+{re.escape(name)}[ \t]*\("
    return re.search(pattern, source, re.MULTILINE) is not None


def question_code(cells: list[dict], name: str, given: set[str] = frozenset()) -> str:
    """A student's own code for graded question ``name``: the code cells just above its
    ``grader.check`` cell (back to the previous text or check cell), less cells that are exactly
    the release's ``given`` cells; and the notebook's last cell defining ``def name`` when that
    region lacks it (a function moved elsewhere)."""
    check = next((i for i, c in enumerate(cells) if _is_code(c)
                  and name in _CHECK.findall(_source(c))), None)
    region: list[str] = []
    if check is not None:
        index = check - 1
        while index >= 0 and check - index <= MAX_REGION_CELLS and _is_code(cells[index]):
            source = _source(cells[index])
            if _CHECK.search(source):
                break
            if source.strip() and source.strip() not in given:
                region.insert(0, source)
            index -= 1
    if not any(_defines(s, name) for s in region):
        defining = [_source(c) for c in cells if _is_code(c) and _defines(_source(c), name)]
        if defining:
            region.append(defining[-1])
    return "\n\n".join(s.strip("\n") for s in region)


def given_cells(cells: list[dict]) -> set[str]:
    """The release's code cells that are not answer cells, as a student keeps them."""
    return {_source(c).strip() for c in cells if _is_code(c)
            and _ANSWER_TAG not in (c.get("metadata") or {}).get("tags", [])}


def written_text(answer: written.Answer) -> str:
    return "\n\n".join(part.markdown for part in answer.parts) if answer.status == written.ANSWERED \
        else ""


@dataclass
class Release:
    """The questions and what the student release already holds for each: per question column,
    its template (the answer cell as released, or the written question's prompt) first, then,
    for code, every cell of code the release gives in that notebook."""

    questions: list[Question]
    templates: dict[str, list[str]]
    given: dict[str, set[str]]
    written: list[Question]


def release(assignments: list[Assignment]) -> Release:
    """Every graded function and written question of the assignments, with their templates
    read from the student release (``student/``)."""
    questions, templates, given = [], {}, {}
    asked_in_writing = written_questions(assignments)
    for assignment in assignments:
        cells = _cells(paths.student_notebook(assignment.stem))
        given[assignment.stem] = given_cells(cells)
        for question in assignment.graded:
            questions.append(question)
            templates[question.column] = [question_code(cells, question.name),
                                          *sorted(given[assignment.stem])]
    for question in asked_in_writing:
        questions.append(question)
        templates[question.column] = [question.prompt]
    return Release(questions, templates, given, asked_in_writing)


def _cut(text: str, column: str, notes: list[str]) -> str:
    if len(text) > MAX_ANSWER_CHARS:
        notes.append(f"{column}: longer than {MAX_ANSWER_CHARS} characters; compared up to there")
        return text[:MAX_ANSWER_CHARS]
    return text


def read_work(entry: Path | intake.Entry, kit: Release, workdir: Path, earlier: bool = False) -> Work:
    """One entry's answers, found as grading finds its notebooks (``labkit.grading.intake``); whatever
    cannot be read is a note, never an error."""
    work = Work(intake.student_id(entry), earlier)
    try:
        submission = intake.discover(entry, list(kit.given), workdir)
    except Exception as error:  # one odd entry must not cost the class its comparison
        work.notes.append(f"{entry.name}: could not be read ({type(error).__name__})")
        return work
    work.notes.extend(submission.notes)
    for stem, notebook in submission.notebooks.items():
        try:
            cells = _cells(notebook)
            for question in kit.questions:
                if question.assignment == stem and not question.written:
                    code = question_code(cells, question.name, kit.given[stem])
                    work.answers[question.column] = _cut(code, question.column, work.notes)
            asked = [q for q in kit.written if q.assignment == stem]
            for column, answer in written.read_answers(cells, asked).items():
                work.answers[column] = _cut(written_text(answer), column, work.notes)
        except Exception as error:  # noqa: BLE001 (a notebook of any shape)
            work.notes.append(f"{stem}: its answers could not be read ({type(error).__name__})")
    return work


def read_class(folder: Path, kit: Release, earlier: bool = False) -> list[Work]:
    """Every student's entry of a SUBMISSIONS folder (``intake.class_entries``), by student id;
    entries sharing an id are refused by discovery and have no answers."""
    entries = intake.class_entries(folder).students
    with tempfile.TemporaryDirectory(prefix="labkit-similarity-") as tmp:
        found = [read_work(entry, kit, Path(tmp) / str(index), earlier)
                 for index, entry in enumerate(entries)]
    return sorted(found, key=lambda w: w.student)


# --- normalising and fingerprinting ----------------------------------------------------------

def _names(node: ast.AST) -> tuple[set[str], set[str]]:
    """The names a statement reads and writes (a subscript or attribute store writes its base)."""
    reads, writes = set(), set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            (writes if isinstance(sub.ctx, (ast.Store, ast.Del)) else reads).add(sub.id)
        elif isinstance(sub, (ast.Subscript, ast.Attribute)) and isinstance(
                sub.ctx, (ast.Store, ast.Del)):
            base = sub.value
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name):
                writes.add(base.id)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            writes.add(sub.name)
        elif isinstance(sub, ast.alias):
            writes.add((sub.asname or sub.name).split(".")[0])
    return reads, writes


_BARRIERS = (ast.Return, ast.Raise, ast.Break, ast.Continue, ast.Global, ast.Nonlocal,
             ast.Expr, ast.Assert, ast.Try, ast.With, ast.Delete)


def _key(statement: ast.stmt, own: set[str]) -> str:
    """A statement's sort key that renaming does not change: its tokens, own names as one."""
    return "".join(_code_tokens(ast.unparse(statement), own)[0])


def _canonical_block(body: list[ast.stmt], own: set[str]) -> list[ast.stmt]:
    """``body`` in one canonical order: each statement after every earlier one it depends on
    (data, or a side effect: a bare call, a return), otherwise by its filtered tokens."""
    for statement in body:
        for attr in ("body", "orelse", "finalbody"):
            block = getattr(statement, attr, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                setattr(statement, attr, _canonical_block(block, own))
    if len(body) < 2 or len(body) > MAX_REORDERED:
        return body
    names = [_names(s) for s in body]
    after: list[set[int]] = [set() for _ in body]
    for j in range(len(body)):
        for i in range(j):
            (ri, wi), (rj, wj) = names[i], names[j]
            if isinstance(body[i], _BARRIERS) or isinstance(body[j], _BARRIERS) \
                    or wi & (rj | wj) or ri & wj:
                after[j].add(i)
    keys = [_key(s, own) for s in body]
    placed: list[int] = []
    done: set[int] = set()
    while len(placed) < len(body):
        ready = [j for j in range(len(body)) if j not in done and after[j] <= done]
        chosen = min(ready, key=lambda j: (keys[j], j))
        placed.append(chosen)
        done.add(chosen)
    return [body[j] for j in placed]


def own_names(tree: ast.AST) -> set[str]:
    """The names an answer binds itself (arguments, assignments, loop variables, its own
    functions): renamed freely by a copier, so compared as one placeholder. Names it only
    reads (``torch``, ``dim=``, a method) are the library's and are kept."""
    own = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            own.add(node.id)
        elif isinstance(node, ast.arg):
            own.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
    return own


def _parse(code: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def canonical_code(code: str) -> tuple[str, set[str] | None]:
    """``code`` as compared: parsed, independent statements in canonical order, unparsed (no
    comments, one layout), with the names it binds; code that does not parse is compared as
    written (and every name in it taken for its own: None)."""
    tree = _parse(code)
    if tree is None:
        return code, None
    try:
        own = own_names(tree)
        tree.body = _canonical_block(tree.body, own)
        return ast.unparse(tree), own
    except Exception:  # noqa: BLE001 (any tree ast can parse; compared as written then)
        return code, None


_LEXER = PythonLexer()


@functools.lru_cache(maxsize=1 << 16)
def _token_id(token: str) -> int:
    """A token's fixed number (the same in every run and process)."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8", "surrogatepass"),
                                          digest_size=8).digest(), "big")


class _Tokens:
    """A document for copydetect: read() gives the tokens as a tuple of fixed numbers.

    copydetect hashes each k-gram of its document with ``hash()``, which Python salts per
    process for strings: a class would rank differently from one run to the next. Tuples of
    integers hash the same in every run, and copydetect only takes lengths and slices of the
    document, so a tuple stands in for its string: one element per token, not per character."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tuple(_token_id(token) for token in tokens)

    def read(self) -> tuple[int, ...]:
        return self.tokens


def _code_tokens(code: str, own: set[str] | None) -> tuple[list[str], list[tuple[int, int]]]:
    """Code as tokens (pygments, as copydetect tokenises): comments and whitespace dropped,
    strings as one token, the answer's own names (``own``; every name when None) as one
    placeholder, everything else as written; and each token's span in ``code``."""
    found, spans = [], []
    for start, kind, value in _LEXER.get_tokens_unprocessed(code):
        if kind in Token.Comment or kind in Token.Text or not value.strip():
            continue
        end = start + len(value)
        if kind in Token.Literal.String:
            if found and found[-1] == "S" and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], end)
                continue
            value = "S"
        elif kind in Token.Name and (own is None or value in own):
            value = "V"
        found.append(value)
        spans.append((start, end))
    return found, spans


def _words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """A written answer as words (lowercased; punctuation and markup dropped), and each word's
    span in ``text``."""
    matches = list(_WORD.finditer(text))
    return [m.group().lower() for m in matches], [m.span() for m in matches]


@dataclass
class Print:
    """One answer's fingerprints (copydetect's, over its tokens) and where each token is in
    ``text``, the answer as compared."""

    text: str
    compared: CodeFingerprint
    spans: list[tuple[int, int]]


def _fingerprint(text: str, kind: str, window: int, excluded: np.ndarray, canonical: bool,
                 ) -> Print:
    """Tokens of ``text`` fingerprinted by copydetect (winnowed, ``excluded`` removed). Code
    is put in canonical form first when ``canonical``; else tokenised as written (for marking
    the matches on the student's own text)."""
    if kind == "code":
        if canonical:
            text, own = canonical_code(text)
        else:
            own = own_names(tree) if (tree := _parse(text)) is not None else None
        tokens, spans = _code_tokens(text, own)
        k = CODE_K
    else:
        tokens, spans = _words(text)
        k = TEXT_K
    found = CodeFingerprint("answer", k, window, excluded, filter=False, fp=_Tokens(tokens))
    return Print(text, found, spans)


def boilerplate(templates: list[str], kind: str) -> np.ndarray:
    """Every k-gram of the templates (not only the winnowed ones), as copydetect builds its
    boilerplate from files: each template fingerprinted on its own."""
    found: set[int] = set()
    for template in templates:
        found |= _all_kgrams(template, kind)
    return np.array(sorted(found), dtype=np.int64)


@functools.lru_cache(maxsize=256)
def _all_kgrams(template: str, kind: str) -> frozenset[int]:
    """One template's k-grams, computed once (the given cells serve every question of their
    notebook)."""
    if not template.strip():
        return frozenset()
    return frozenset(_fingerprint(template, kind, 1, np.array([]), canonical=True).compared.hashes)


def fingerprint(answer: str, kind: str, excluded: np.ndarray) -> Print | None:
    """The answer's fingerprints less the template's; None when nothing of its own is left."""
    if not answer.strip():
        return None
    found = _fingerprint(answer, kind, CODE_WINDOW if kind == "code" else TEXT_WINDOW,
                         excluded, canonical=True)
    if not found.compared.hashes or found.compared.token_coverage == 0:
        return None
    return found


# --- comparing and ranking -------------------------------------------------------------------


@dataclass(slots=True)
class Pair:
    column: str
    first: str
    second: str
    #: the share of the two answers covered by fingerprints they share (0 to 1)
    similarity: float
    #: the length of the shared part, in tokens of code or words of text
    shared: int
    #: the question's median pair similarity in the class
    typical: float = 0.0
    #: other students as close to either of the two as they are to each other
    crowd: int = 0
    #: the rank score: similarity above the typical, shared by the crowd, scaled for length
    score: float = 0.0
    #: the second student is from an earlier year
    earlier: bool = False


def _compare(a: Print, b: Print) -> tuple[float, int]:
    overlap, (one, two), _ = compare_files(a.compared, b.compared)
    return float(one + two) / 2, int(overlap)


def _sharing(rows: list[Print], columns: list[Print]) -> list[tuple[int, int]]:
    """(row, column) of every two answers that share at least one fingerprint: a sparse product
    of who-holds-which-fingerprint, so that pairs with nothing in common cost nothing."""
    numbers: dict[int, int] = {}

    def cells(prints: list[Print]) -> np.ndarray:
        found = [(i, numbers.setdefault(int(h), len(numbers)))
                 for i, p in enumerate(prints) for h in p.compared.hashes]
        return np.array(found, dtype=np.int64).reshape(-1, 2)

    def matrix(found: np.ndarray, height: int) -> sparse.csr_matrix:
        return sparse.csr_matrix((np.ones(len(found), dtype=np.int32), (found[:, 0], found[:, 1])),
                                 shape=(height, len(numbers)))

    one, two = cells(rows), cells(columns)
    if not len(one) or not len(two):
        return []
    product = (matrix(one, len(rows)) @ matrix(two, len(columns)).T).tocoo()
    return list(zip(product.row.tolist(), product.col.tolist()))


def compare_question(column: str, prints: dict[str, Print], earlier: dict[str, Print],
                     ) -> list[Pair]:
    """Every pair of the class that shares a fingerprint (others are 0), and every pair of a
    student with an earlier year's answer."""
    students = sorted(prints)
    pairs = []
    for i, j in _sharing([prints[s] for s in students], [prints[s] for s in students]):
        if i < j:
            similarity, shared = _compare(prints[students[i]], prints[students[j]])
            if similarity > 0:
                pairs.append(Pair(column, students[i], students[j], similarity, shared))
    old = sorted(earlier)
    for i, j in _sharing([prints[s] for s in students], [earlier[s] for s in old]):
        similarity, shared = _compare(prints[students[i]], earlier[old[j]])
        if similarity > 0:
            pairs.append(Pair(column, students[i], old[j], similarity, shared, earlier=True))
    return pairs


def rank(pairs: list[Pair], prints: dict[str, Print], kind: str) -> float:
    """Score one question's pairs against the class's own pairs for it (in place): the
    similarity above the question's median pair, shared among the others as close to either
    of the two, scaled down when the question's answers are short (the median answer's own
    tokens against ``CODE_EVIDENCE`` or ``TEXT_EVIDENCE``). Within one question the order is
    the similarity's, less the crowds. Returns the median pair's similarity."""
    total = len(prints) * (len(prints) - 1) // 2
    own = sorted(p.similarity for p in pairs if not p.earlier)
    zeros = total - len(own)
    middle = total // 2
    typical = 0.0 if total == 0 or middle < zeros else own[middle - zeros]
    closeness: dict[str, list[float]] = defaultdict(list)
    for pair in pairs:
        closeness[pair.first].append(pair.similarity)
        if not pair.earlier:
            closeness[pair.second].append(pair.similarity)
    for values in closeness.values():
        values.sort()
    lengths = sorted(float(p.compared.token_coverage) for p in prints.values())
    length = lengths[len(lengths) // 2] if lengths else 0.0
    short = min(1.0, length / (CODE_EVIDENCE if kind == "code" else TEXT_EVIDENCE))

    def as_close(student: str, similarity: float) -> int:
        values = closeness.get(student, [])
        return len(values) - bisect.bisect_left(values, similarity - 1e-12)

    for pair in pairs:
        crowd = max(as_close(pair.first, pair.similarity),
                    as_close(pair.second, pair.similarity) if not pair.earlier else 1) - 1
        above = (pair.similarity - typical) / (1 - typical) if typical < 1 else 0.0
        pair.typical, pair.crowd = typical, max(crowd, 0)
        pair.score = max(above, 0.0) / (1 + pair.crowd) * short
    return typical


def _order(pair: Pair) -> tuple:
    return (-pair.score, -pair.similarity, pair.column, pair.first, pair.second)


@dataclass
class QuestionResult:
    column: str
    #: answers compared (those with something of their own beyond the template)
    answered: int
    #: pairs of this class with any match
    matched: int
    typical: float
    #: the best ``MAX_KEPT_PAIRS`` pairs, best first
    pairs: list[Pair]
    #: students whose answer could not be fingerprinted (and why)
    failed: list[tuple[str, str]] = field(default_factory=list)


def _prints(answers: dict[str, str], kind: str, excluded: np.ndarray,
            failed: list[tuple[str, str]]) -> dict[str, Print]:
    """Each answer's fingerprints; one that fails is listed in ``failed``, not compared."""
    found = {}
    for student, answer in answers.items():
        try:
            if (value := fingerprint(answer, kind, excluded)) is not None:
                found[student] = value
        except Exception as error:  # noqa: BLE001 (one answer must not cost the question)
            failed.append((student, f"could not be compared ({type(error).__name__})"))
    return found


def compare_one(question: Question, templates: list[str], answers: dict[str, str],
                earlier: dict[str, str]) -> QuestionResult:
    """One question across the class: fingerprint, compare, rank, keep the best pairs."""
    kind = answer_kind(question)
    excluded = boilerplate(templates, kind)
    failed: list[tuple[str, str]] = []
    found = _prints(answers, kind, excluded, failed)
    old = _prints(earlier, kind, excluded, failed)
    pairs = compare_question(question.column, found, old)
    typical = rank(pairs, found, kind)
    matched = sum(1 for p in pairs if not p.earlier)
    pairs.sort(key=_order)
    return QuestionResult(question.column, len(found), matched, typical, pairs[:MAX_KEPT_PAIRS],
                          failed)


def _compare_task(task: tuple) -> QuestionResult:
    return compare_one(*task)


@dataclass
class Result:
    questions: list[Question]
    #: the best ``MAX_KEPT_PAIRS`` pairs of all questions, best first
    pairs: list[Pair]
    #: per question column
    stats: dict[str, QuestionResult]
    work: dict[str, Work]
    earlier: dict[str, Work]
    #: per question column: what the student release holds for it (``Release.templates``)
    templates: dict[str, list[str]]


def compare_class(kit: Release, work: list[Work], earlier: list[Work] = (),
                  workers: int | None = None) -> Result:
    """Compare every pair per question, the questions spread over ``workers`` processes
    (default: the cores this process may use; one for a small class)."""
    tasks = [(q, kit.templates.get(q.column, []),
              {w.student: w.answers[q.column] for w in work if q.column in w.answers},
              {w.student: w.answers[q.column] for w in earlier if q.column in w.answers})
             for q in kit.questions]
    if workers is None:
        workers = 1 if len(work) < PARALLEL_FROM else len(os.sched_getaffinity(0))
    workers = max(1, min(workers, len(tasks)))
    if workers == 1:
        done = [_compare_task(task) for task in tasks]
    else:
        context = multiprocessing.get_context("fork")  # a process of its own command, no threads
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            done = list(pool.map(_compare_task, tasks))
    pairs = sorted((p for d in done for p in d.pairs), key=_order)[:MAX_KEPT_PAIRS]
    return Result(kit.questions, pairs, {d.column: d for d in done},
                  {w.student: w for w in work}, {w.student: w for w in earlier}, kit.templates)


def highlights(text_a: str, text_b: str, kind: str, excluded: np.ndarray,
               ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Where two answers match, as spans of each one's text as written: code is fingerprinted
    again in the student's own order, so that the marks fall on the student's own lines."""
    window = CODE_WINDOW if kind == "code" else TEXT_WINDOW
    one = _fingerprint(text_a, kind, window, excluded, canonical=False)
    two = _fingerprint(text_b, kind, window, excluded, canonical=False)
    _, _, (first, second) = compare_files(one.compared, two.compared)
    return _token_spans(first, one.spans), _token_spans(second, two.spans)


def _token_spans(slices: np.ndarray, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Token slices (copydetect's, start and end rows) as character spans of the text."""
    if len(slices) == 0 or len(slices[0]) == 0:
        return []
    found = []
    for start, end in zip(slices[0], slices[1]):
        start, end = int(start), min(int(end), len(spans))
        if start < end:
            found.append((spans[start][0], spans[end - 1][1]))
    return found
