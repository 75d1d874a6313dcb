"""Guidance documents into draft articles: Markdown, plain text, HTML, PDF (pypdf) and DOCX (python-docx).

Each format is read into the same blocks (headings with their level, paragraphs, list items); the document
is then split at its main heading level (the shallowest level that occurs more than once), one draft per
section, deeper headings kept inside the body. Drafts get topic and stage `general` and the heading path as
their source section: staff set the rest in the editor before a clinician reviews them. Nothing imported
is ever published by the import itself.
"""

from __future__ import annotations

import io
import re
import statistics
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePath

from knowledge.articles import Article

FORMATS = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".html": "html", ".htm": "html",
           ".pdf": "pdf", ".docx": "docx"}  # fmt: skip
MAX_TITLE = 120
MAX_ID = 60
HEADING_FONT_RATIO = 1.2  # a PDF line this much larger than the body text is a heading
ATX_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
SETEXT = re.compile(r"^(=+|-+)\s*$")
LIST_ITEM = re.compile(r"^\s*(?:[-*+•▪◦]|\d+[.)])\s+")


class DocumentError(ValueError):
    """The document cannot be read; the message says why."""


@dataclass(frozen=True)
class Block:
    kind: str  # heading | paragraph | item
    text: str
    level: int = 0


@dataclass(frozen=True)
class Section:
    title: str
    path: tuple[str, ...]  # the headings above it, for the source section
    body: str


def read_document(filename: str, data: bytes) -> list[Section]:
    """The sections of an uploaded guidance document."""
    suffix = PurePath(filename).suffix.lower()
    kind = FORMATS.get(suffix)
    if kind is None:
        raise DocumentError(
            f"'{suffix or filename}' files cannot be imported (use {', '.join(sorted(FORMATS))})"
        )
    readers = {"markdown": _markdown, "text": _text, "html": _html, "pdf": _pdf, "docx": _docx}
    blocks = readers[kind](data)
    sections = split_sections(blocks, PurePath(filename).stem)
    if not sections:
        raise DocumentError("no text with headings was found in the document")
    return sections


def drafts(sections: Iterable[Section], taken_ids: Iterable[str]) -> list[Article]:
    """One draft article per section, with ids that are new (suffix -2, -3 ... when taken)."""
    taken = set(taken_ids)
    result = []
    for section in sections:
        article_id = _unique(slugify(section.title), taken)
        taken.add(article_id)
        source = " > ".join(section.path + (section.title,))
        result.append(
            Article(
                id=article_id,
                title=section.title[:MAX_TITLE],
                topic="general",
                stage="general",
                days=None,
                source_section=source[:200],
                review_status="draft",
                reviewer="unreviewed",
                version=1,
                body=section.body,
            )
        )
    return result


def split_sections(blocks: list[Block], fallback_title: str) -> list[Section]:
    """Sections at the main heading level; text before the first heading is a section of its own."""
    levels = [b.level for b in blocks if b.kind == "heading"]
    if not levels:
        body = _body([b for b in blocks if b.kind != "heading"])
        return [Section(_title(fallback_title), (), body)] if body else []
    split = min((lvl for lvl in set(levels) if levels.count(lvl) > 1), default=min(levels))
    sections: list[Section] = []
    path: dict[int, str] = {}
    title, content = None, []
    for block in blocks + [Block("heading", "", split)]:
        if block.kind == "heading" and block.level <= split:
            if content and (title or _body(content)):
                parents = tuple(path[lvl] for lvl in sorted(path) if lvl < split)
                heading = title or (parents[-1] if parents else _title(fallback_title))
                body = _body(content)
                if body:
                    sections.append(Section(heading, parents if title else parents[:-1], body))
            if block.level < split:
                path = {lvl: text for lvl, text in path.items() if lvl < block.level}
                path[block.level] = block.text
                title, content = None, []
            else:
                title, content = block.text, []
            continue
        content.append(block)
    return sections


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:MAX_ID].strip("-")
    return slug or "imported-section"


def _unique(slug: str, taken: set[str]) -> str:
    candidate, number = slug, 2
    while candidate in taken:
        candidate = f"{slug[: MAX_ID - 4]}-{number}"
        number += 1
    return candidate


def _title(text: str) -> str:
    return " ".join(text.replace("_", " ").split())[:MAX_TITLE] or "Imported section"


def _body(blocks: list[Block]) -> str:
    """Markdown: paragraphs apart, list items together, deeper headings as `###`."""
    parts: list[str] = []
    for block in blocks:
        if block.kind == "item":
            if parts and parts[-1].startswith("- "):
                parts[-1] += "\n- " + block.text
            else:
                parts.append("- " + block.text)
        elif block.kind == "heading":
            parts.append("### " + block.text)
        else:
            parts.append(block.text)
    return "\n\n".join(part for part in parts if part.strip()).strip()


def _clean(text: str) -> str:
    return " ".join(text.split())


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(encoding).replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError:
            continue
    raise DocumentError("the file is not text")


# --- Markdown and plain text ---------------------------------------------------------------------------
def _markdown(data: bytes) -> list[Block]:
    blocks: list[Block] = []
    paragraph: list[str] = []
    lines = _decode(data).split("\n")

    def flush() -> None:
        if paragraph:
            blocks.append(Block("paragraph", "\n".join(paragraph).strip()))
            paragraph.clear()

    for index, line in enumerate(lines):
        heading = ATX_HEADING.match(line)
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if heading:
            flush()
            blocks.append(Block("heading", _clean(heading.group(2)), len(heading.group(1))))
        elif line.strip() and SETEXT.match(following) and not paragraph:
            blocks.append(Block("heading", _clean(line), 1 if following.startswith("=") else 2))
        elif SETEXT.match(line) and blocks and blocks[-1].kind == "heading" and not paragraph:
            continue
        elif not line.strip():
            flush()
        else:
            paragraph.append(line.rstrip())
    flush()
    return blocks


def _text(data: bytes) -> list[Block]:
    return _text_blocks(_decode(data).split("\n"))


def _text_blocks(lines: list[str]) -> list[Block]:
    """Plain text: a short line that stands alone (no sentence end, followed by text) is a heading; an
    ALL-CAPS one is a level above the others."""
    blocks: list[Block] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Block("paragraph", _clean(" ".join(paragraph))))
            paragraph.clear()

    for index, raw in enumerate(lines):
        line = raw.strip()
        after = next((lines[j].strip() for j in range(index + 1, len(lines)) if lines[j].strip()), "")
        if not line:
            flush()
        elif LIST_ITEM.match(line):
            flush()
            blocks.append(Block("item", _clean(LIST_ITEM.sub("", line))))
        elif not paragraph and _looks_like_heading(line, after):
            flush()
            level = 1 if line.isupper() and any(ch.isalpha() for ch in line) else 2
            blocks.append(
                Block(
                    "heading",
                    _clean(line.rstrip(":")).title() if level == 1 else _clean(line.rstrip(":")),
                    level,
                )
            )
        else:
            paragraph.append(line)
    flush()
    return blocks


def _looks_like_heading(line: str, after: str) -> bool:
    words = line.split()
    return (
        bool(after)
        and len(line) <= 80
        and len(words) <= 12
        and not line.endswith((".", ",", ";", "!", "?"))
        and (line[0].isupper() or line[0].isdigit())
        and not LIST_ITEM.match(line)
    )


# --- HTML ----------------------------------------------------------------------------------------------
class _HtmlBlocks(HTMLParser):
    SKIP = {"script", "style", "noscript", "template", "svg", "title", "head"}
    BLOCKS = {"p", "div", "section", "article", "blockquote", "td", "th", "dd", "dt", "figcaption"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self._text: list[str] = []
        self._kind: tuple[str, int] = ("paragraph", 0)
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs) -> None:  # noqa: ANN001
        if tag in self.SKIP:
            self._skipping += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._kind = ("heading", int(tag[1]))
        elif tag == "li":
            self._flush()
            self._kind = ("item", 0)
        elif tag in self.BLOCKS or tag == "br":
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif re.fullmatch(r"h[1-6]", tag) or tag == "li" or tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._text.append(data)

    def _flush(self) -> None:
        text = _clean("".join(self._text))
        if text:
            kind, level = self._kind
            self.blocks.append(Block(kind, text, level))
        self._text, self._kind = [], ("paragraph", 0)


def _html(data: bytes) -> list[Block]:
    parser = _HtmlBlocks()
    parser.feed(_decode(data))
    parser.close()
    parser._flush()
    return parser.blocks


# --- PDF -----------------------------------------------------------------------------------------------
def _pdf(data: bytes) -> list[Block]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        lines: list[tuple[str, float]] = []
        for page in reader.pages:
            lines += _pdf_lines(page)
    except (PdfReadError, ValueError, KeyError, TypeError) as error:
        raise DocumentError(f"the PDF cannot be read ({type(error).__name__})") from error
    if not any(text for text, _ in lines):
        raise DocumentError("the PDF has no text layer (a scan?); import its text instead")
    sizes = [size for text, size in lines for _ in text if size > 0]
    if not sizes:
        return _text_blocks([text for text, _ in lines])
    body = statistics.median(sizes)
    heading_sizes = sorted(
        {round(s, 1) for t, s in lines if s >= body * HEADING_FONT_RATIO and len(t) <= 100}, reverse=True
    )
    blocks: list[Block] = []
    paragraph: list[str] = []
    longest = max((len(t) for t, s in lines if s < body * HEADING_FONT_RATIO), default=1)

    def flush() -> None:
        if paragraph:
            blocks.append(Block("paragraph", _clean(" ".join(paragraph))))
            paragraph.clear()

    for text, size in lines:
        if not text:
            flush()
        elif round(size, 1) in heading_sizes:
            flush()
            blocks.append(Block("heading", _clean(text), heading_sizes.index(round(size, 1)) + 1))
        elif LIST_ITEM.match(text):
            flush()
            blocks.append(Block("item", _clean(LIST_ITEM.sub("", text))))
        else:
            paragraph.append(text)
            if text.endswith((".", "!", "?")) and len(text) < 0.75 * longest:
                flush()
    flush()
    return blocks


def _pdf_lines(page) -> list[tuple[str, float]]:  # noqa: ANN001 - a pypdf page
    """(text, font size) per line of a page, read with pypdf's text visitor."""
    lines: list[tuple[str, float]] = []
    pieces: list[str] = []
    size = 0.0
    last_y: list[float | None] = [None]

    def end_line() -> None:
        nonlocal size
        text = _clean("".join(pieces))
        lines.append((text, size))
        pieces.clear()
        size = 0.0

    def visit(text: str, cm, tm, font, font_size) -> None:  # noqa: ANN001
        nonlocal size
        y = tm[5] if tm else None
        if last_y[0] is not None and y is not None and abs(y - last_y[0]) > 1 and pieces:
            end_line()
        if y is not None:
            last_y[0] = y
        for index, part in enumerate(text.split("\n")):
            if index:
                end_line()
            if part.strip():
                pieces.append(part)
                scale = abs(tm[3]) if tm and tm[3] else 1.0
                size = max(size, float(font_size or 0) * scale)

    page.extract_text(visitor_text=visit)
    if pieces:
        end_line()
    return lines


# --- DOCX ----------------------------------------------------------------------------------------------
def _docx(data: bytes) -> list[Block]:
    import zipfile

    from docx import Document

    try:
        document = Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        raise DocumentError(f"the DOCX file cannot be read ({type(error).__name__})") from error
    blocks = []
    for paragraph in document.paragraphs:
        text = _clean(paragraph.text)
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        heading = re.match(r"Heading (\d)", style)
        if style == "Title":
            blocks.append(Block("heading", text, 1))
        elif heading:
            blocks.append(Block("heading", text, int(heading.group(1)) + 1))
        elif "List" in style:
            blocks.append(Block("item", text))
        else:
            blocks.append(Block("paragraph", text))
    return blocks
