"""All articles as Markdown files with front matter, for clinics that review content in git.

`export_archive` writes one `<id>.md` per article (the same format as knowledge/articles/) into a zip whose
bytes depend only on the articles: names sorted, fixed timestamps. `read_archive` takes such a zip, or a
single `.md` file, and returns the articles, refusing the whole upload if any file is invalid (so an import
never half-happens). Exporting, importing and exporting again gives the same bytes.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from pathlib import PurePath

import frontmatter
import yaml

from knowledge.articles import Article, ArticleError, article_from_text, article_to_text, check_unique_ids

FIXED_TIME = (2000, 1, 1, 0, 0, 0)
MAX_FILES = 2000
MAX_FILE_BYTES = 1_000_000


def export_archive(articles: Iterable[Article]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for article in sorted(articles, key=lambda a: a.id):
            info = zipfile.ZipInfo(f"articles/{article.id}.md", date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, article_to_text(article).encode("utf-8"))
    return buffer.getvalue()


def read_archive(filename: str, data: bytes) -> list[Article]:
    """The articles of an uploaded zip (every `.md` in it) or of one `.md` file."""
    single = PurePath(filename).suffix.lower() == ".md"
    files = [(filename, data)] if single else _zip_members(data)
    articles, problems = [], []
    for name, raw in files:
        try:
            articles.append(read_article(name, raw))
        except ArticleError as error:
            problems.append(str(error))
    if problems:
        raise ArticleError("nothing was imported:\n  " + "\n  ".join(problems))
    if not articles:
        raise ArticleError("the upload holds no .md article files")
    check_unique_ids(articles)
    return articles


def read_article(name: str, raw: bytes) -> Article:
    try:
        text = raw.decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError as error:
        raise ArticleError(f"{name}: not UTF-8 text") from error
    try:
        declared = frontmatter.loads(text).metadata.get("id")
    except yaml.YAMLError as error:
        raise ArticleError(f"{name}: front matter is not valid YAML") from error
    expected = declared if isinstance(declared, str) else PurePath(name).stem
    try:
        return article_from_text(expected, text)
    except ArticleError as error:
        raise ArticleError(f"{PurePath(name).name}: {error}") from error


def _zip_members(data: bytes) -> list[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise ArticleError("the upload is neither a .zip archive nor a .md file") from error
    members = [info for info in archive.infolist() if not info.is_dir() and info.filename.endswith(".md")]
    if len(members) > MAX_FILES:
        raise ArticleError(f"the archive holds more than {MAX_FILES} articles")
    files = []
    for info in members:
        if info.file_size > MAX_FILE_BYTES:  # the declared size; a zip bomb is refused before reading
            raise ArticleError(f"{info.filename}: larger than {MAX_FILE_BYTES} bytes")
        with archive.open(info) as member:
            files.append((info.filename, member.read(MAX_FILE_BYTES + 1)[: MAX_FILE_BYTES + 1]))
    return files
