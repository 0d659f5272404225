"""The one Jinja environment of the kit's pages, and the style sheets and scripts they embed.

Pages are template files (``templates/``, each extending ``base.html.j2``, which holds the head
every page shares: doctype, charset, the Content-Security-Policy, title, style sheet); their CSS
and JavaScript are files too (``static/``), so an editor, a linter and a reviewer see them as
what they are. Both are read as package resources, so a page comes out the same from a checkout,
an editable install or a wheel. A page's ``<style>`` and ``<script>`` hold a static file's text
exactly as ``embedded`` returns it, and its policy allows that text by hash
(``page_policy.content_security_policy``): one text for both, so the hash always matches.

Every template is autoescaped, so student ids, answers and messages are text, never markup, and
an undefined name is an error rather than an empty string.
"""

from __future__ import annotations

from importlib import resources

import jinja2

from .markdown import render_message

#: The package whose ``templates/`` and ``static/`` folders hold the pages' files.
PACKAGE = __package__


def static_text(name: str) -> str:
    """The text of ``static/<name>``, a style sheet or a script of the pages."""
    return resources.files(PACKAGE).joinpath("static", name).read_text(encoding="utf-8")


def embedded(*names: str) -> str:
    """The content of a ``<style>`` or ``<script>`` element made of these static files, in order:
    their text on lines of its own, starting on the line after the opening tag. Hash this text
    for the page's policy."""
    return "\n" + "".join(static_text(name) for name in names)


def _points(value: float) -> str:
    """Points as ``grades.csv`` writes them (``%g``): 4, 1.5, 0."""
    return f"{value:g}"


ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader(PACKAGE, "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
ENVIRONMENT.filters["pts"] = _points
ENVIRONMENT.filters["markdown"] = render_message


def template(name: str) -> jinja2.Template:
    """The page template ``templates/<name>``."""
    return ENVIRONMENT.get_template(name)
