"""What a page the kit writes may load, defined once for every page: the feedback pages, the
class report, the written questions' pages and their index.

Pages show untrusted text (student ids, exception messages, written answers), and a page is
opened by a TA or a student on their own machine, often straight from the file system. So every
page carries a Content-Security-Policy that lets it load nothing from anywhere else: no script
but the kit's own inline ones (by hash), no style but its own ``<style>`` block (by hash), images
only from where that page's own images are, no ``<base>``, no form submission, no connection.
A student's markdown is rendered without its images (``images_as_text``), so a remote image in
an answer or an error message is shown as text and never fetched, whatever the policy allows.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable

from markdown_it.token import Token

#: Images written by the kit next to the page (``OUT/manual/attachments/``).
SAME_FOLDER = "'self'"
#: Images the kit drew itself and embedded in the page (the report's charts).
EMBEDDED = "data:"
#: What markdown tables put in a ``style`` attribute; the pages style it by class instead.
_ALIGN = re.compile(r"text-align:(left|right|center)")


def source_hash(text: str) -> str:
    """The CSP source that allows exactly this inline ``<script>`` or ``<style>`` content."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def content_security_policy(styles: Iterable[str] = (), scripts: Iterable[str] = (),
                            images: Iterable[str] = ()) -> str:
    """The policy of one page: ``styles`` and ``scripts`` are the texts of its inline
    ``<style>`` and ``<script>`` elements, ``images`` the sources its ``<img>`` may use
    (``SAME_FOLDER``, ``EMBEDDED``); everything else is refused."""

    def sources(values: Iterable[str]) -> str:
        return " ".join(values) or "'none'"

    return "; ".join([
        "default-src 'none'",
        f"script-src {sources(source_hash(s) for s in scripts)}",
        f"style-src {sources(source_hash(s) for s in styles)}",
        f"img-src {sources(images)}",
        "base-uri 'none'",
        "form-action 'none'",
    ])


def images_as_text(tokens: list[Token], keep: Callable[[Token], bool] = lambda _: False) -> None:
    """Replace, in parsed markdown, every image that ``keep`` refuses by its alt text and URL as
    plain text: the reader sees what the author pointed at, and the browser fetches nothing."""
    for token in tokens:
        children = token.children or []
        for index, child in enumerate(children):
            if child.type == "image" and not keep(child):
                children[index] = Token("text", "", 0, content=image_text(child))


def image_text(image: Token) -> str:
    """How an image that is not shown reads: ``[image: alt (url)]``."""
    src = str(image.attrs.get("src", ""))
    alt = image.content.strip()
    return f"[image: {alt} ({src})]" if alt else f"[image: {src}]"


def styles_as_classes(tokens: list[Token]) -> None:
    """Move table cells' alignment out of ``style`` attributes (which the policy refuses) into
    classes (styled by ``static/table-align.css``), and drop any other ``style`` attribute."""
    for token in tokens:
        style = token.attrs.pop("style", None) if token.attrs else None
        match = _ALIGN.fullmatch(str(style)) if style is not None else None
        if match:
            token.attrJoin("class", f"align-{match.group(1)}")


def neutralise(tokens: list[Token], keep: Callable[[Token], bool] = lambda _: False) -> list[Token]:
    """Parsed markdown made fit for a page under the kit's policy: images as text unless ``keep``
    takes them, no ``style`` attributes. Returns ``tokens``, changed in place."""
    images_as_text(tokens, keep)
    styles_as_classes(tokens)
    return tokens
