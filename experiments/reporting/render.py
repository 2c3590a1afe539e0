"""Every table and page the suite shows, rendered from one description per format: Markdown,
HTML and console text. User text (names, descriptions, labels) is escaped for its format here
and nowhere else.

A table is a DataFrame; its values become text once (`cell_text`: numbers to `digits`
significant digits, missing or blank as `-`), and each format escapes that text: `|`, `\\`, `*`,
`~`, backticks, the `](` of a link, `_` at a word's edge and `<`, `>`, `&` in Markdown; entities
in HTML (pandas `to_html`); control characters on the console. A page is a list of blocks
(headings, paragraphs of text and inline markup, bullet lists, tables, images) written to
Markdown and to HTML by the same code path.
"""

import html
import math
import numbers
import re
from dataclasses import dataclass
from urllib.parse import quote

from experiments.records import store

STYLE = ("body{font-family:sans-serif;max-width:75em;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;font-size:90%;margin:0.5em 0}"
         "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}img{max-width:100%}")


# -- inline markup ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bold:
    text: str


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Link:
    text: str
    href: str


# -- escaping -----------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_MD_SPECIAL = re.compile(r"([\\`*|~]|\](?=[(\[]))")  # `](` and `][` are what make a link
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")  # he_normal stays readable
# what starts a block at the start of a line: a heading, a list item, a setext underline
_MD_LINE_START = re.compile(r"^(\s*)(#{1,6}(?=\s|$)|[+\-](?=\s)|\d+[.)](?=\s)|[=\-]+\s*$|\[)", re.MULTILINE)


def console_text(text):
    """Text safe for a terminal: control characters (escape sequences) shown as `\\x..`."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def markdown_text(text, block=False):
    """Text that Markdown shows as written: no markup, no raw HTML, no table cell breaks; `block`:
    also no heading or list where the text starts a line."""
    text = _MD_SPECIAL.sub(r"\\\1", console_text(text))
    text = _MD_UNDERSCORE.sub(r"\\_", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_LINE_START.sub(_escape_marker, text) if block else text


def _escape_marker(match):
    marker = match.group(2)
    if marker[0].isdigit():  # only punctuation can be escaped: `1\.`
        return match.group(1) + marker[:-1] + "\\" + marker[-1]
    return match.group(1) + "\\" + marker


def html_text(text):
    return html.escape(console_text(text), quote=True)


def cell_text(value, digits=4):
    """A table value as text: numbers to `digits` significant digits, missing or blank as `-`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        return "-" if math.isnan(value) else f"{value:.{digits}g}"
    try:
        import pandas as pd

        if pd.isna(value):
            return "-"
    except (TypeError, ValueError):
        pass
    text = " ".join(str(value).split("\n"))
    return text if text.strip() else "-"  # blank is missing, as a CSV reads it back


def table_cells(frame, digits=4):
    """(header, rows, numeric columns) of a DataFrame as text, before any escaping."""
    header = [str(c) for c in frame.columns]
    rows = [[cell_text(v, digits) for v in row] for row in frame.itertuples(index=False, name=None)]
    numeric = [frame[c].dtype.kind in "iuf" for c in frame.columns]
    return header, rows, numeric


# -- tables -------------------------------------------------------------------------------------


def markdown_table(frame, digits=4):
    """A pipe table; every header and cell escaped (`|` in a label cannot split a row)."""
    from tabulate import tabulate

    header, rows, numeric = table_cells(frame, digits)
    if not header:
        return ""
    escape = lambda text: markdown_text(text).replace("\n", " ")  # noqa: E731
    return tabulate([[escape(c) for c in row] for row in rows], headers=[escape(h) for h in header],
                    tablefmt="pipe", disable_numparse=True,
                    colalign=["right" if n else "left" for n in numeric])


def html_table(frame, digits=4):
    """An HTML table (pandas `to_html`, entities escaped) of the same cell text."""
    import pandas as pd

    header, rows, _ = table_cells(frame, digits)
    return pd.DataFrame(rows, columns=header, dtype=object).to_html(index=False, escape=True, border=0)


def console_table(frame, digits=4):
    """Columns aligned with spaces under a dashed rule; no separator character a label could hold."""
    from tabulate import tabulate

    header, rows, numeric = table_cells(frame, digits)
    return tabulate([[console_text(c) for c in row] for row in rows], headers=[console_text(h) for h in header],
                    tablefmt="simple", disable_numparse=True, colalign=["right" if n else "left" for n in numeric])


# -- pages --------------------------------------------------------------------------------------


def _inline_markdown(spans, block=True):
    out = []
    for span in spans:
        if isinstance(span, Bold):
            out.append(f"**{markdown_text(span.text)}**")
        elif isinstance(span, Code):
            text = console_text(span.text).replace("`", "'")
            out.append(f"`{text}`")
        elif isinstance(span, Link):
            out.append(f"[{markdown_text(span.text)}]({quote(span.href, safe='/.:#?=&-_~')})")
        else:
            out.append(markdown_text(span, block=block and not out))  # only the first span starts a line
    return "".join(out)


def _inline_html(spans):
    out = []
    for span in spans:
        if isinstance(span, Bold):
            out.append(f"<strong>{html_text(span.text)}</strong>")
        elif isinstance(span, Code):
            out.append(f"<code>{html_text(span.text)}</code>")
        elif isinstance(span, Link):
            out.append(f'<a href="{html_text(quote(span.href, safe="/.:#?=&-_~"))}">{html_text(span.text)}</a>')
        else:
            out.append(html_text(span).replace("\n", "<br>\n"))
    return "".join(out)


def _spans(content):
    return list(content) if isinstance(content, list | tuple) else [content]


class Page:
    """A report page: add blocks in order, then `write` it (or take `markdown()` and `html()`)."""

    def __init__(self, title):
        self.title = title
        self.blocks = [("heading", 1, [title])]

    def heading(self, text, level=2):
        self.blocks.append(("heading", level, _spans(text)))

    def paragraph(self, *spans):
        self.blocks.append(("paragraph", list(spans)))

    def text(self, text):
        """User prose (a description): a paragraph per blank-line-separated block."""
        for block in re.split(r"\n\s*\n", str(text or "").strip()):
            if block.strip():
                self.paragraph(" ".join(block.split()))

    def bullets(self, items):
        """Items are spans or `(spans, [sub-items as spans])`."""
        self.blocks.append(("bullets", [item if isinstance(item, tuple) else (item, []) for item in items]))

    def table(self, frame, digits=4, empty="none"):
        if frame is None or frame.empty:
            self.paragraph(empty)
        else:
            self.blocks.append(("table", frame, digits))

    def image(self, src, alt):
        self.blocks.append(("image", src, alt))

    def write(self, stem):
        """`<stem>.md` and `<stem>.html`, each written atomically."""
        store.write_atomic(stem.with_suffix(".md"), self.markdown())
        store.write_atomic(stem.with_suffix(".html"), self.html())

    def markdown(self):
        out = []
        for kind, *rest in self.blocks:
            if kind == "heading":
                flat = [" ".join(s.split()) if isinstance(s, str) else s for s in rest[1]]  # one line
                out.append("#" * rest[0] + " " + _inline_markdown(flat, block=False))
            elif kind == "paragraph":
                out.append(_inline_markdown(rest[0]))
            elif kind == "bullets":
                out.append("\n".join(f"- {_inline_markdown(_spans(item))}" +
                                     "".join(f"\n  - {_inline_markdown(_spans(sub))}" for sub in subs)
                                     for item, subs in rest[0]))
            elif kind == "table":
                out.append(markdown_table(rest[0], rest[1]))
            elif kind == "image":
                out.append(f"![{markdown_text(rest[1])}]({quote(rest[0], safe='/.-_')})")
        return "\n\n".join(out) + "\n"

    def html(self):
        out = []
        for kind, *rest in self.blocks:
            if kind == "heading":
                out.append(f"<h{rest[0]}>{_inline_html(rest[1])}</h{rest[0]}>")
            elif kind == "paragraph":
                out.append(f"<p>{_inline_html(rest[0])}</p>")
            elif kind == "bullets":
                items = []
                for item, subs in rest[0]:
                    nested = "".join(f"<li>{_inline_html(_spans(s))}</li>" for s in subs)
                    items.append(f"<li>{_inline_html(_spans(item))}" + (f"<ul>{nested}</ul>" if subs else "") + "</li>")
                out.append("<ul>\n" + "\n".join(items) + "\n</ul>")
            elif kind == "table":
                out.append(html_table(rest[0], rest[1]))
            elif kind == "image":
                out.append(f'<p><img src="{html_text(quote(rest[0], safe="/.-_"))}" alt="{html_text(rest[1])}"></p>')
        return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html_text(self.title)}"
                f"</title><style>{STYLE}</style></head>\n<body>\n" + "\n".join(out) + "\n</body></html>\n")
