"""The documentation points at what exists: every relative link at a file (and a heading of it),
every `make X` at a target of the Makefile, and the README at every page of docs/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labkit import paths

PAGES = [paths.ROOT / "README.md", *sorted((paths.ROOT / "docs").glob("*.md"))]
#: A markdown link or image: [text](target) or ![alt](target), target up to a space or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
#: `make X` in an inline code span, or a line of a fenced block that starts with make.
INLINE_MAKE = re.compile(r"`make ([A-Za-z][\w-]*)")
BLOCK_MAKE = re.compile(r"^\s*(?:\$\s*)?make ([A-Za-z][\w-]*)", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _relative_links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [target for target in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings: lower case, punctuation dropped, spaces as
    hyphens."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def _make_targets() -> set[str]:
    makefile = (paths.ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*):", makefile, re.MULTILINE))


def _named_targets(page: Path) -> set[str]:
    text = page.read_text(encoding="utf-8")
    blocks = "\n".join(FENCE.findall(text))
    return set(INLINE_MAKE.findall(text)) | set(BLOCK_MAKE.findall(blocks))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(paths.ROOT)))
def test_every_relative_link_points_to_a_file_that_exists(page):
    missing = [target for target in _relative_links(page)
               if not target.startswith("#") and not (page.parent / target.split("#", 1)[0]).exists()]
    assert missing == [], f"{page.name} links to files that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(paths.ROOT)))
def test_every_anchor_of_a_link_is_a_heading_of_its_page(page):
    broken = []
    for target in _relative_links(page):
        path, _, anchor = target.partition("#")
        linked = page.parent / path if path else page
        if anchor and linked.suffix == ".md" and linked.is_file() and anchor not in _anchors(linked):
            broken.append(target)
    assert broken == [], f"{page.name} links to headings that do not exist: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(paths.ROOT)))
def test_every_make_target_the_docs_name_is_in_the_makefile(page):
    unknown = sorted(_named_targets(page) - _make_targets())
    assert unknown == [], f"{page.name} names make targets the Makefile lacks: {unknown}"


def test_the_readme_links_every_page_of_the_documentation():
    linked = {(paths.ROOT / target.split("#", 1)[0]).resolve()
              for target in _relative_links(paths.ROOT / "README.md") if not target.startswith("#")}
    pages = {page.resolve() for page in PAGES[1:]}
    assert pages, "docs/ holds no page"
    assert sorted(str(p.name) for p in pages - linked) == []


def test_the_readme_stays_short():
    """Details live in docs/, each page for its readers; the README only points to them."""
    assert (paths.ROOT / "README.md").stat().st_size < 8000
