"""Renders the report's blocks (see :mod:`reports.report`) as one self-contained HTML page.

Markdown goes through a kept library, ``markdown-it-py`` (CommonMark plus GFM tables; issue 13
replaced the hand-written converter): the figure modules' ``.md`` files and every inline text
(``code``, **bold**, *italics*, [links](url), images). Raw HTML in the markdown is escaped, not
passed through. The page has its own small stylesheet and images by relative path (open the file
locally). ``tests/reports/test_html.py`` parses the page and checks that every table, image and
heading survived.
"""

from __future__ import annotations

import html as _html
from functools import lru_cache

CSS = """
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #222;
       max-width: 1180px; margin: 0 auto; padding: 1.5em 2em 4em; }
h1 { font-size: 1.7em; border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { font-size: 1.35em; margin-top: 2.2em; border-bottom: 1px solid #eee; padding-bottom: .2em; }
h3 { font-size: 1.1em; margin-top: 1.8em; }
code { font: 12.5px/1.4 Menlo, Consolas, monospace; background: #f5f5f5; padding: 1px 4px; border-radius: 3px;
       overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: .8em 0; font-size: 13px; display: block; overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 4px 8px; vertical-align: top; text-align: left; }
th { background: #f3f5f8; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; height: auto; border: 1px solid #eee; margin: .5em 0; }
nav { background: #f7f7f9; border: 1px solid #eee; padding: .6em 1em; border-radius: 4px; font-size: 14px; }
nav a { margin-right: 1em; }
strong { color: #111; }
"""


@lru_cache(maxsize=1)
def _parser():
    from markdown_it import MarkdownIt

    # CommonMark, GFM tables; raw HTML off (escaped): a figure's text cannot inject markup
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def inline(text: str) -> str:
    """Inline markdown (code, bold, italics, links, images) to HTML, without a paragraph around it."""
    return _parser().renderInline(str(text))


def _table(columns, rows) -> str:
    head = "".join(f"<th>{inline(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{inline(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def markdown(text: str, shift: int = 2) -> str:
    """A figure module's markdown as HTML; its headings move ``shift`` levels down (nested under the
    figure's own heading, at most h6)."""
    md = _parser()
    tokens = md.parse(str(text))
    for tok in tokens:
        if tok.type in ("heading_open", "heading_close"):
            tok.tag = f"h{min(int(tok.tag[1]) + shift, 6)}"
    return md.renderer.render(tokens, md.options, {}).strip()


def render(blocks: list, title: str = "report") -> str:
    """The whole page: a navigation bar over the level-2 headings, then every block."""
    body, nav = [], []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            level, text, anchor = b[1], b[2], b[3]
            ident = f' id="{_html.escape(anchor)}"' if anchor else ""
            body.append(f"<h{level}{ident}>{inline(text)}</h{level}>")
            if level == 2 and anchor:
                nav.append(f'<a href="#{_html.escape(anchor)}">{inline(text)}</a>')
        elif kind == "p":
            body.append(f"<p>{inline(b[1])}</p>")
        elif kind == "img":
            src = _html.escape(str(b[1]).replace("\\", "/"))
            body.append(f'<a href="{src}"><img src="{src}" alt="{_html.escape(b[2])}" loading="lazy"></a>')
        elif kind == "md":
            body.append(markdown(b[1]))
        elif kind == "table":
            body.append(_table(b[1], b[2]))
    if nav and body:
        body.insert(1, "<nav>" + " ".join(nav) + "</nav>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
