"""LaTeX to MathML, converted when the pages are written, so that a page shows math without
loading anything (browsers render MathML Core natively).

The conversion is latex2mathml's. Its output is not trusted as is: it copies some input through
unescaped (``\\text{<b>}``) and turns ``\\href`` and ``\\style`` into attributes. So the output is
parsed and written again with only MathML elements and presentation attributes; anything that
does not parse, or holds another element, is refused, and the caller shows the LaTeX source.
"""

from __future__ import annotations

import html
from xml.etree import ElementTree

from latex2mathml.converter import convert

#: MathML Core's presentation elements (no ``annotation-xml``, which may carry HTML, no
#: ``maction``); ``mstyle``, ``menclose`` and ``mlabeledtr`` are what latex2mathml also writes.
ELEMENTS = frozenset({
    "math", "mi", "mn", "mo", "ms", "mspace", "mtext", "mrow", "mfrac", "msqrt", "mroot",
    "mstyle", "merror", "mpadded", "mphantom", "msub", "msup", "msubsup", "munder", "mover",
    "munderover", "mmultiscripts", "mprescripts", "none", "mtable", "mtr", "mtd", "mlabeledtr",
    "menclose", "semantics",
})
#: Presentation attributes; ``href``, ``style``, event handlers and the like are dropped.
ATTRIBUTES = frozenset({
    "display", "displaystyle", "scriptlevel", "mathvariant", "mathcolor", "mathbackground",
    "mathsize", "stretchy", "fence", "separator", "form", "lspace", "rspace", "largeop",
    "movablelimits", "symmetric", "minsize", "maxsize", "accent", "accentunder",
    "linethickness", "width", "height", "depth", "voffset", "columnalign", "columnspacing",
    "columnlines", "rowspacing", "rowlines", "rowalign", "frame", "framespacing", "columnspan",
    "rowspan", "notation", "align", "equalrows", "equalcolumns", "linebreak",
})


def to_mathml(latex: str, display: bool = False) -> str | None:
    """``<math>`` markup for ``latex``, or None when it cannot be converted safely."""
    try:
        converted = convert(latex, display="block" if display else "inline")
        return _write(ElementTree.fromstring(converted))
    except Exception:  # latex2mathml's errors, RecursionError, a parse error, a foreign element
        return None


def _write(element: ElementTree.Element) -> str:
    tag = element.tag.rpartition("}")[2]
    if tag not in ELEMENTS:
        raise ValueError(f"not a MathML element: {tag}")
    attributes = "".join(f' {name}="{html.escape(value)}"' for name, value in element.attrib.items()
                         if name in ATTRIBUTES)
    inner = html.escape(element.text or "", quote=False) + "".join(
        _write(child) + html.escape(child.tail or "", quote=False) for child in element)
    return f"<{tag}{attributes}>{inner}</{tag}>"
