"""Pages are made from template files, style sheets and scripts from files of their own
(``labkit/outputs/templates/``, ``labkit/outputs/static/``): no HTML, CSS or JavaScript of more
than one line sits in a Python string anywhere in the kit, where no editor, linter or reviewer
sees it as what it is. Those files are package data: a wheel holds them, and pages rendered from
an installed kit are the pages of a checkout.

Each module's syntax tree is read, not its text, so comments and docstrings (which may well name
``<script>`` or ``<style>``) never count; string constants and f-strings that span lines are
checked for markup, Jinja tags, CSS rules and script.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import labkit
from labkit.outputs import feedback, report, written_pages
from labkit.similarity import page as similarity_page

PACKAGE = Path(labkit.__file__).resolve().parent
PAGE_FILES = [PACKAGE / "outputs" / "templates", PACKAGE / "outputs" / "static"]
#: Prints each page's policy (its hashes come from the static files as loaded) and where it
#: loaded the kit from.
POLICIES = """
import json, labkit
from labkit.outputs import feedback, report, written_pages
from labkit.similarity import page
print(json.dumps({"from": labkit.__file__, "policies": [feedback.CSP, report.CSP,
                  written_pages.CSP, written_pages.INDEX_CSP, page.CSP]}))
"""

#: What gives a string away as a page, a style sheet or a script.
LOOKS_LIKE = {
    "HTML": re.compile(r"<!DOCTYPE|</?(?:html|head|body|meta|title|style|script|div|span|p|a|h[1-6]"
                       r"|table|thead|tbody|tr|td|th|ul|ol|li|section|details|summary|pre|code"
                       r"|img|input|textarea|label|button|small|strong|em|mark|br)\b[^<>]*>",
                       re.IGNORECASE),
    "a Jinja template": re.compile(r"\{%-?\s*(?:if|for|block|extends|include|set|macro)\b"),
    "CSS": re.compile(r"[^{};\n]+\{[^{}]*?[a-z-]+\s*:\s*[^;{}]+;[^{}]*\}"),
    "JavaScript": re.compile(r"\bfunction\s*[\w$]*\s*\([\w$,\s]*\)\s*\{|\baddEventListener\b"
                             r"|\bdocument\.|\bvar\s+[\w$]+\s*="),
}


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the nodes that are docstrings (of the module, a class or a function)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _text(node: ast.JoinedStr) -> str:
    """An f-string's literal parts, with each placeholder as ``{}``."""
    return "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)


def markup_in_strings(source: str, filename: str = "<string>") -> list[str]:
    """``"<line>: <kind>"`` for every string of ``source`` spanning lines that looks like a page,
    a style sheet or a script."""
    tree = ast.parse(source, filename)
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):  # its parts are checked as one string, below
            skip.update(id(part) for part in node.values)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = _text(node)
        else:
            continue
        if id(node) in skip or node.end_lineno == node.lineno:
            continue
        found += [f"{node.lineno}: {kind}" for kind, pattern in LOOKS_LIKE.items()
                  if pattern.search(text)]
    return sorted(found, key=lambda where: int(where.split(":")[0]))


def test_no_python_string_holds_html_css_or_javascript_of_more_than_one_line() -> None:
    found = [f"{path.relative_to(PACKAGE.parent)}:{where}"
             for path in sorted(PACKAGE.rglob("*.py"))
             for where in markup_in_strings(path.read_text(encoding="utf-8"), str(path))]
    assert not found, "markup in Python strings; move it to a template or static file:\n" \
        + "\n".join(found)


def test_the_check_finds_each_kind_of_markup_and_skips_docstrings_and_single_lines() -> None:
    source = '''
"""A module about ``<script>`` and ``<style>`` elements, { color: red; }."""
PAGE = """<!DOCTYPE html>
<p>{{ x }}</p>"""
LOOP = """{% for x in xs %}
{{ x }}{% endfor %}"""
STYLE = """
body { color: #123; }
"""
SCRIPT = r"""
(function () { "use strict"; }());
"""
TAGS = ('<meta name="a">\\n'
        '<meta name="b">')
def page(title):
    """Returns ``<html>`` with a <title>."""
    return f"""<title>{title}</title>
<body></body>"""
ONE_LINE = '<p class="x">one line</p>'
PYTHON = """
def f(x):
    return {"a": x}
"""
'''
    assert markup_in_strings(source) == [
        "3: HTML", "5: a Jinja template", "7: CSS", "10: JavaScript", "13: HTML", "17: HTML"]


def test_a_wheel_holds_the_page_files_and_its_pages_load_them(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(PACKAGE, source / "labkit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PACKAGE.parent / "pyproject.toml", source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", str(source), "-w", str(tmp_path / "wheel")],
                   check=True, capture_output=True, cwd=tmp_path)
    with zipfile.ZipFile(next((tmp_path / "wheel").glob("*.whl"))) as wheel:
        held = set(wheel.namelist())
        wheel.extractall(tmp_path / "installed")
    page_files = {path.relative_to(PACKAGE.parent).as_posix()
                  for folder in PAGE_FILES for path in folder.rglob("*") if path.is_file()}
    assert page_files and page_files <= held
    installed_path = {**os.environ, "PYTHONPATH": str(tmp_path / "installed")}
    done = subprocess.run([sys.executable, "-c", POLICIES], capture_output=True, text=True,
                          cwd=tmp_path, env=installed_path)
    assert done.returncode == 0, done.stderr[-2000:]
    installed = json.loads(done.stdout)
    assert installed["from"].startswith(str(tmp_path / "installed"))
    assert installed["policies"] == [feedback.CSP, report.CSP, written_pages.CSP,
                                     written_pages.INDEX_CSP, similarity_page.CSP]
