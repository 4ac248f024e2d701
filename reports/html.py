"""Renders the report's blocks (see :mod:`reports.report`) as one self-contained HTML page.

No dependency: the page has its own small stylesheet, images by relative path (open the file
locally), and a converter for the markdown subset the figure modules write (tables, paragraphs,
lists, headings, ``code``, **bold**, [links](url), images).
"""

from __future__ import annotations

import html as _html
import re

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

_LINK = re.compile(r"(!?)\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_ITALIC = re.compile(r"(?<![*\w])\*(\S[^*]*?)\*(?![*\w])")


def _plain(text: str) -> str:
    """Code spans (left alone), then bold and italics, HTML-escaped."""
    out = []
    for part in re.split(r"(`[^`]*`)", text):
        if len(part) >= 2 and part.startswith("`") and part.endswith("`"):
            out.append(f"<code>{_html.escape(part[1:-1])}</code>")
        else:
            out.append(_ITALIC.sub(r"<em>\1</em>", _BOLD.sub(r"<strong>\1</strong>", _html.escape(part, quote=False))))
    return "".join(out)


def inline(text: str) -> str:
    """Inline markdown to HTML: links and images first (their labels may hold code), then the rest."""
    text, out, pos = str(text), [], 0
    for m in _LINK.finditer(text):
        out.append(_plain(text[pos:m.start()]))
        bang, label, url = m.groups()
        url = _html.escape(url)
        out.append(f'<img alt="{_html.escape(label)}" src="{url}">' if bang else f'<a href="{url}">{_plain(label)}</a>')
        pos = m.end()
    out.append(_plain(text[pos:]))
    return "".join(out)


def _split_row(line: str) -> list[str]:
    s = line.strip()
    s = s[1:] if s.startswith("|") else s
    s = s[:-1] if s.endswith("|") and not s.endswith("\\|") else s
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", s)]


def _table(columns, rows) -> str:
    head = "".join(f"<th>{inline(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{inline(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def markdown(text: str) -> str:
    """The markdown subset used by figure modules' .md files, as HTML."""
    out, para, lines = [], [], str(text).splitlines()

    def flush():
        if para:
            out.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("|"):
            flush()
            block = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                block.append(lines[i])
                i += 1
            rows = [_split_row(b) for b in block if not re.fullmatch(r"\|?[\s:|-]+\|?", b.strip())]
            if rows:
                out.append(_table(rows[0], rows[1:]))
            continue
        if stripped.startswith(("- ", "* ")):
            flush()
            items = []
            while i < len(lines) and lines[i].strip().startswith(("- ", "* ")):
                items.append(f"<li>{inline(lines[i].strip()[2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        m = re.match(r"(#{1,6})\s+(.*)", stripped)
        if m:
            flush()
            level = min(len(m.group(1)) + 2, 6)  # nested under the figure's own heading
            out.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
        elif not stripped:
            flush()
        else:
            para.append(stripped)
        i += 1
    flush()
    return "\n".join(out)


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
