"""Parsers of what the suite rendered, for tests that compare a page's cells with the CSVs:
Markdown pipe tables, HTML tables (`html.parser`), console tables, and the tables a real browser
shows; each returns a list of tables, each a (header, rows) pair of unescaped text."""

import html
import re
from html.parser import HTMLParser

_UNESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~>])")


def markdown_unescape(text):
    return html.unescape(_UNESCAPE.sub(r"\1", text))


def _split_row(line):
    """The cells of a pipe-table row: split on `|` not preceded by a backslash."""
    cells, current, escaped = [], "", False
    for ch in line.strip()[1:-1] if line.strip().endswith("|") else line.strip()[1:]:
        if ch == "|" and not escaped:
            cells.append(current)
            current = ""
        else:
            current += ch
        escaped = ch == "\\" and not escaped
    cells.append(current)
    return [markdown_unescape(c.strip()) for c in cells]


def markdown_tables(text):
    """Every pipe table: a header line, an alignment line, then rows while lines start with `|`."""
    lines, tables, i = text.splitlines(), [], 0
    while i < len(lines) - 1:
        if lines[i].startswith("|") and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i + 1].strip()):
            header, rows, i = _split_row(lines[i]), [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_split_row(lines[i]))
                i += 1
            tables.append((header, rows))
        else:
            i += 1
    return tables


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self.row, self.cell = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(self.cell.strip())
            self.cell = None
        elif tag == "tr":
            self.tables[-1].append(self.row)

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def html_tables(text):
    parser = _Tables()
    parser.feed(text)
    return [(rows[0], rows[1:]) for rows in parser.tables]


def _cut(line, starts):
    return [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]


def console_tables(text):
    """tabulate's `simple` tables: columns start where the dashes of the rule under the header do."""
    lines, tables, i = text.splitlines(), [], 1
    while i < len(lines):
        if re.fullmatch(r"-+(  -+)*", lines[i].strip()) and lines[i].strip():
            starts = [m.start() for m in re.finditer(r"-+", lines[i])]
            header, rows, i = _cut(lines[i - 1], starts), [], i + 1
            while i < len(lines) and lines[i].strip():
                rows.append(_cut(lines[i], starts))
                i += 1
            tables.append((header, rows))
        else:
            i += 1
    return tables


def html_text(text):
    """The visible text of an HTML page (tags dropped, entities decoded)."""
    class Text(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.parts = []

        def handle_data(self, data):
            self.parts.append(data)

    parser = Text()
    parser.feed(text)
    return "".join(parser.parts)


_SHOWN_TABLES = """
return Array.from(document.querySelectorAll('table')).map(table => {
  const rows = Array.from(table.querySelectorAll('tr')).map(
    row => Array.from(row.querySelectorAll('th, td')).map(cell => cell.innerText.trim()));
  return [rows[0], rows.slice(1)];
});
"""
_IMAGES = """
return Array.from(document.images).map(image => [image.getAttribute('src'), image.complete && image.naturalWidth > 0]);
"""


def shown_tables(driver, path):
    """The tables a browser shows on the page at `path` (header and rows of their visible text),
    and its images as (src, loaded) pairs."""
    driver.get(path.resolve().as_uri())
    tables = [(header, rows) for header, rows in driver.execute_script(_SHOWN_TABLES)]
    return tables, [tuple(image) for image in driver.execute_script(_IMAGES)]


# TensorBoard's pages, as a browser shows them; its older dashboards keep their elements inside
# shadow roots, which a plain querySelector does not enter
_WALK = """
function walk(node, visit) {
  visit(node);
  if (node.shadowRoot) walk(node.shadowRoot, visit);
  for (const child of node.childNodes || []) walk(child, visit);
}
"""


def _walked(driver, body, *args):
    return driver.execute_script(_WALK + body, *args)


def hparams_cells(driver):
    """The HParams table's shown cells (a vaadin-grid: header, then rows), in document order; the
    grid keeps, unrendered, the cells of rows a filter hid."""
    return _walked(driver, """const out = [];
walk(document.body, n => { if (n.tagName === 'VAADIN-GRID-CELL-CONTENT' && n.getClientRects().length)
  out.push(n.innerText.trim()); });
return out;""")


def click_checkbox(driver, text):
    """Click the (paper) checkbox labelled `text`; whether there was one."""
    return _walked(driver, """const want = arguments[0]; let hit = null;
walk(document.body, n => { if (n.tagName === 'PAPER-CHECKBOX' && n.innerText.trim() === want) hit = n; });
if (hit) hit.click();
return !!hit;""", text)


def click_tab(driver, text):
    """Click the (paper) tab labelled `text`, case-insensitively; whether there was one."""
    return _walked(driver, """const want = arguments[0].toLowerCase(); let hit = null;
walk(document.body, n => { if (n.tagName === 'PAPER-TAB' && n.innerText.trim().toLowerCase() === want) hit = n; });
if (hit) hit.click();
return !!hit;""", text)


def margin_matches(driver):
    """The Custom Scalars charts' "Matches (n)" lines: how many runs each chart draws."""
    return _walked(driver, r"""const out = [];
walk(document.body, n => { if (n.nodeType === 3 && /^Matches \(\d+\)$/.test(n.textContent.trim()))
  out.push(n.textContent.trim()); });
return out;""")


def tensorboard_cards(driver):
    """Time Series' scalar cards: (title, their text with the legend's runs, curve elements drawn)."""
    return driver.execute_script(r"""return Array.from(document.querySelectorAll('scalar-card')).map(card => [
  card.querySelector('.heading') ? card.querySelector('.heading').innerText.replace(/\s+/g, '') : '',
  card.innerText, card.querySelectorAll('line-chart canvas, line-chart svg path').length]);""")
