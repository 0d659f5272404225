"""Student markdown as HTML a page may show: written answers, and the checks' messages.

Student content is untrusted. Markdown is rendered by markdown-it-py with raw HTML disabled (so
``<script>`` shows as text) and its link checks (no ``javascript:`` links). An image is shown
only when it is one of the notebook's own attachments: each is written once, as
``OUT/manual/attachments/<sha256>.<ext>``, and every answer that shows it points there; any other
image is shown as its alt text and URL. An answer whose HTML would exceed
``MAX_ANSWER_HTML_BYTES`` is replaced by a note saying to open the notebook, so that no answer
can make the pages too large to write or to open.

LaTeX: math (``$...$``, ``$$...$$``, ``\\begin{env}...\\end{env}``, as Jupyter renders it) is
converted to MathML when the page is written (``mathml``), which the browser renders with no
network; what cannot be converted shows as its LaTeX source.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import markupsafe
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token
from mdit_py_plugins.amsmath import amsmath_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from PIL import Image

from labkit.course.written import (IMAGE_FORMATS, MAX_ATTACHMENT_BYTES, MAX_ATTACHMENT_PIXELS,
                                   Answer, Part)

from .mathml import to_mathml
from .page_policy import neutralise

#: An answer's rendered HTML is shown up to this size, else a note stands in for it. An answer
#: is at most MAX_ANSWER_CHARS of markdown; measured at that length, prose renders to 0.02 MB,
#: formulas or a table to 0.11 to 0.13 MB, the densest LaTeX (``x^2+x^2+...``) to 0.22 MB of
#: MathML; the masters' solutions to 3 kB. So 1 MB is over 4 times any real answer, and what
#: exceeds it repeats a long link or an image thousands of times.
MAX_ANSWER_HTML_BYTES = 1 << 20

ATTACHMENTS_FOLDER = "attachments"

# --- rendering -------------------------------------------------------------------------------

def _math(latex: str, display: bool, source: str) -> str:
    """MathML for ``latex``, else its ``source`` (delimiters included) as code."""
    return to_mathml(latex, display) or f'<code class="tex">{escapeHtml(source)}</code>'


def _math_inline(self, tokens, idx, options, env) -> str:
    content = tokens[idx].content
    return _math(content, False, f"${content}$")


def _math_double(self, tokens, idx, options, env) -> str:
    content = tokens[idx].content
    return _math(content, True, f"$${content}$$")


def _math_block(self, tokens, idx, options, env) -> str:
    content = tokens[idx].content
    return f'<div class="math display">{_math(content, True, f"$${content}$$")}</div>\n'


def _amsmath(self, tokens, idx, options, env) -> str:
    content = tokens[idx].content
    return f'<div class="math display">{_math(content, True, content)}</div>\n'


def _image(self, tokens, idx, options, env) -> str:
    """An attachment's ``<img>``: lazily loaded, so a long page decodes only what is in view."""
    token = tokens[idx]
    alt = escapeHtml(token.content)
    return f'<img src="{escapeHtml(str(token.attrs["src"]))}" alt="{alt}" loading="lazy">'


def _markdown() -> MarkdownIt:
    # "js-default": CommonMark plus tables and strikethrough, raw HTML off, no typographer.
    md = MarkdownIt("js-default", {"html": False})
    md.use(dollarmath_plugin, double_inline=True, allow_labels=False).use(amsmath_plugin)
    for rule, render in (("math_inline", _math_inline), ("math_inline_double", _math_double),
                         ("math_block", _math_block), ("amsmath", _amsmath), ("image", _image)):
        md.add_render_rule(rule, render)
    return md


MARKDOWN = _markdown()


@dataclass(frozen=True)
class Shown:
    """How one attachment shows: the file's URL relative to the page, or why it is not shown."""

    src: str = ""
    note: str = ""


def render_markdown(text: str, attachment: Callable[[str], Shown | None] = lambda name: None,
                    used: set[str] | None = None) -> str:
    """Safe HTML for untrusted markdown: raw HTML shows as text, math becomes MathML, an
    ``attachment:`` image shows as ``attachment(name)`` says (its file, or a note), and every
    other image as text. The files shown are added to ``used``."""
    env: dict = {}

    def keep(image: Token) -> bool:
        src = str(image.attrs.get("src", ""))
        if not src.startswith("attachment:"):
            return False
        name = src[len("attachment:"):]
        shown = attachment(name) or attachment(unquote(name))
        if shown is None or not shown.src:
            why = shown.note if shown else "not among the notebook's attachments"
            image.attrs["src"] = f"attachment:{name}, not shown: {why}"
            return False
        image.attrs["src"] = shown.src
        if used is not None:
            used.add(shown.src)
        return True

    tokens = neutralise(MARKDOWN.parse(text, env), keep)
    return MARKDOWN.renderer.render(tokens, MARKDOWN.options, env)


#: A check's message to a student is markdown (code spans, emphasis), without math; raw HTML in
#: it is shown as text, never run.
_MESSAGE_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False})


def render_message(message: str) -> markupsafe.Markup:
    """A message as HTML: its markdown rendered, with raw HTML escaped (markdown-it's ``html``
    option off), links limited to markdown-it's safe schemes and images shown as text (a link is
    the reader's choice to follow; an image would be fetched by merely opening the page)."""
    env: dict = {}
    tokens = neutralise(_MESSAGE_MARKDOWN.parse(message, env))
    html = _MESSAGE_MARKDOWN.renderer.render(tokens, _MESSAGE_MARKDOWN.options, env)
    return markupsafe.Markup(html)


class AttachmentFiles:
    """The attachments of the written answers as files, ``OUT/manual/attachments/<sha256>.<ext>``:
    each image is decoded, checked and written once, however many answers, pages or references
    show it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        #: data: URL -> how it shows (the same image pasted twice is decoded once)
        self._shown: dict[str, Shown] = {}
        #: the files an answer on a page shows
        self.kept: set[str] = set()

    def show(self, url: str) -> Shown:
        if url not in self._shown:
            self._shown[url] = self._write(url)
        return self._shown[url]

    def _write(self, url: str) -> Shown:
        try:
            data = base64.b64decode(url.partition(",")[2], validate=True)
        except (binascii.Error, ValueError):
            return Shown(note="not readable (bad base64)")
        if len(data) > MAX_ATTACHMENT_BYTES:
            return Shown(note=f"larger than {MAX_ATTACHMENT_BYTES >> 20} MB")
        too_many = Shown(note=f"more than {MAX_ATTACHMENT_PIXELS // 1_000_000} megapixels")
        try:
            with warnings.catch_warnings():  # Pillow's warning about large images: ours is below
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as image:  # reads the header only
                    kind, (width, height) = image.format, image.size
        except Image.DecompressionBombError:
            return too_many
        except Exception:  # Pillow's many errors for a file that is not an image it reads
            kind, width, height = None, 0, 0
        if kind not in IMAGE_FORMATS:
            return Shown(note="not a png, jpeg or gif image")
        if width * height > MAX_ATTACHMENT_PIXELS:
            return Shown(note=f"{width} x {height} pixels, {too_many.note}")
        name = f"{hashlib.sha256(data).hexdigest()}.{IMAGE_FORMATS[kind]}"
        path = self.folder / name
        if not path.is_file() or path.stat().st_size != len(data):
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{name}.partial")
            partial.write_bytes(data)
            os.replace(partial, path)
        return Shown(src=f"{ATTACHMENTS_FOLDER}/{name}")

    def remove_unused(self) -> None:
        """Remove the files no page shows (left by an earlier run, or only in answers too
        large to show)."""
        if not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            if f"{ATTACHMENTS_FOLDER}/{path.name}" not in self.kept and path.is_file():
                path.unlink()
        if not any(self.folder.iterdir()):
            self.folder.rmdir()


def _lookup(part: Part, files: AttachmentFiles) -> Callable[[str], Shown | None]:
    """How the attachments of one cell show, decoded only when referenced."""
    def attachment(name: str) -> Shown | None:
        if name in part.skipped:
            return Shown(note=part.skipped[name])
        url = part.images.get(name)
        return files.show(url) if url is not None else None
    return attachment


def render_answer(answer: Answer, files: AttachmentFiles) -> tuple[list[str], int]:
    """An answer's HTML, one piece per cell, and its size in bytes; an answer over
    ``MAX_ANSWER_HTML_BYTES`` gives no HTML (and keeps no file), only its size."""
    used: set[str] = set()
    html = [render_markdown(part.markdown, _lookup(part, files), used) for part in answer.parts]
    size = sum(len(piece.encode("utf-8")) for piece in html)
    if size > MAX_ANSWER_HTML_BYTES:
        return [], size
    files.kept.update(used)
    return html, size


