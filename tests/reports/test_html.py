"""The HTML report (issue 13: markdown-it-py replaced the hand-written converter): the page is parsed
back with ``html.parser`` and every table (its shape and cells), image and heading of the report's
markdown twin (``REPORT.md``, made from the same blocks) must be there."""

import re
from html.parser import HTMLParser
from pathlib import Path

from reports import html, report

PLOTS = Path(__file__).resolve().parents[2] / "reports" / "plots"
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


class _Page(HTMLParser):
    """Tables (rows of cell texts), image sources and heading texts of a page; checks nesting."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self.images, self.headings, self.stack = [], [], [], []
        self._cell = self._heading = None

    def handle_starttag(self, tag, attrs):
        if tag not in ("img", "meta", "br", "hr"):
            self.stack.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"])
        elif re.fullmatch(r"h[1-6]", tag):
            self._heading = []

    def handle_startendtag(self, tag, attrs):  # <img ... />: a void element, nothing to close
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        if tag in ("td", "th"):
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif re.fullmatch(r"h[1-6]", tag):
            self.headings.append(" ".join("".join(self._heading).split()))
            self._heading = None

    def handle_data(self, data):
        for part in (self._cell, self._heading):
            if part is not None:
                part.append(data)


def _text(md: str) -> str:
    """The visible text of inline markdown (independent of the library): links and images to their
    labels, no code ticks, no emphasis stars, escaped pipes as pipes."""
    md = re.sub(r"!?\[([^\]]*)\]\([^)\s]*\)", r"\1", md.replace("\\|", "|"))
    return " ".join(md.replace("`", "").replace("*", "").split())


def _markdown_parts(md: str):
    """(tables as rows of cell texts, image sources, heading texts) of markdown, read line by line."""
    tables, images, headings, lines = [], [], [], md.splitlines()
    i, fenced = 0, False
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\|?[\s:|-]+\|?", lines[i + 1].strip()):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                if not re.fullmatch(r"\|?[\s:|-]+\|?", lines[i].strip()):
                    cells = re.split(r"(?<!\\)\|", lines[i].strip().strip("|"))
                    rows.append([_text(c) for c in cells])
                i += 1
            tables.append(rows)
            continue
        elif not fenced:
            m = re.match(r"#{1,6}\s+(.*)", line)
            if m:
                headings.append(_text(m.group(1)))
            images += [src for _, src in IMAGE.findall(line)]
        i += 1
    return tables, images, headings


def _check(blocks):
    page, md = html.render(blocks, title="t"), report.to_markdown(blocks)
    parsed = _Page()
    parsed.feed(page)
    assert parsed.stack == [], f"unclosed tags: {parsed.stack}"
    tables, images, headings = _markdown_parts(md)
    assert len(parsed.tables) == len(tables) > 0
    for got, want in zip(parsed.tables, tables):
        assert [[_text(c) for c in row] for row in got] == want
    assert parsed.images == images
    assert [_text(h) for h in parsed.headings] == headings
    return parsed


def test_every_table_image_and_heading_survives():
    blocks = [report.H(1, "The report"),
              report.P("Made by `make figures`, see [the figure](#fig-a) and **bold** *italic* text."),
              report.H(2, "Section `one`", "sec-one"),
              report.table(["figure", "value | pipe", "note"], [["`a`", "1.5", "[link](plots/a.md)"],
                                                                 ["b", "<b>not html</b>", ""]]),
              ("img", "plots/a.png", "A picture"),
              ("md", "# Inner heading\n\n| x | y |\n|---|--:|\n| 1 | 2 |\n| 3 | 4 |\n\n![inner](plots/b.png)\n\n"
                     "- a list *item*\n- and `code`\n"),
              report.H(3, "Last")]
    parsed = _check(blocks)
    assert parsed.images == ["plots/a.png", "plots/b.png"]
    assert parsed.tables[0][2][1] == "<b>not html</b>"  # raw HTML is escaped, shown as text
    page = html.render(blocks)
    assert "<h3>Inner heading</h3>" in page  # a figure's own headings nest under the figure's
    assert '<nav><a href="#sec-one">Section <code>one</code></a></nav>' in page


def test_the_committed_figure_tables_survive():
    """Every committed markdown table of reports/plots/ goes through the page whole."""
    files = sorted(PLOTS.glob("*.md"))
    assert files, "no committed figure tables under reports/plots/"
    blocks = [report.H(1, "plots")]
    for f in files:
        blocks += [report.H(2, f.stem, f.stem), ("md", f.read_text())]
    _check(blocks)


def test_drawn_files_live_apart_from_the_modules(tmp_path):
    """Issue 13: modules in reports/figures/, their PNG/MD in reports/plots/; a cache stamp written
    before the move (naming reports/figures/X.png) still finds the moved file, so nothing is redrawn."""
    from reports import pipeline

    code = Path(pipeline.__file__).with_name("figures")
    assert pipeline.FIGURE_DIR == code.with_name("plots")
    assert not [p.name for p in code.iterdir() if p.suffix in (".png", ".md")]
    assert not list(pipeline.FIGURE_DIR.glob("*.py")) and list(pipeline.FIGURE_DIR.glob("*.png"))
    layout = pipeline.Layout(cache=tmp_path / "cache", figures=tmp_path / "plots", committed=tmp_path / "results")
    layout.figures.mkdir()
    (layout.figures / "x.png").write_bytes(b"png")
    old = pipeline.OLD_FIGURE_DIR / "x.png"
    assert pipeline._moved(old, layout) == layout.figures / "x.png"
    assert pipeline._moved(old.with_name("gone.png"), layout) == old.with_name("gone.png")
