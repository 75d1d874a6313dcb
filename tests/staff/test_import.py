"""Guidance documents of every format become draft articles, one per section; nothing is published."""

from __future__ import annotations

import pytest

from bot.staff.audit import entries
from knowledge.importing import DocumentError, drafts, read_document, slugify
from tests.staff import documents

FORMATS = {
    "guide.md": documents.markdown,
    "guide.txt": documents.text,
    "guide.html": documents.html,
    "guide.pdf": documents.pdf,
    "guide.docx": documents.docx,
}


@pytest.mark.parametrize("filename", FORMATS)
def test_a_document_is_split_by_its_headings(filename) -> None:
    sections = read_document(filename, FORMATS[filename]())
    titles = [section.title for section in sections]
    assert [t.lower() for t in titles[-3:]] == [heading.lower() for heading, _ in documents.SECTIONS]
    for section, (_, text) in zip(sections[-3:], documents.SECTIONS, strict=True):
        assert section.body.startswith(text), (section.title, section.body)
        assert section.path[0].lower() == documents.TITLE.lower(), "the document title is the parent heading"
    assert "alert(1)" not in " ".join(s.body for s in sections), "scripts are not text"


@pytest.mark.parametrize("filename", FORMATS)
def test_an_uploaded_document_becomes_draft_articles(staff, filename) -> None:
    csrf = staff.login("editor")
    response = staff.client.post(
        "/admin/kb/import/document",
        data={"csrf_token": csrf},
        files={"document": (filename, FORMATS[filename](), "application/octet-stream")},
    )
    assert response.status_code == 200, response.text
    made = staff.articles.state("makeup-after-treatment-2")
    assert made is not None, "the id of an existing article is not reused"
    assert (made.status, made.published, made.head.origin) == ("draft", None, "document")
    assert made.head.content.source_section.lower() == "aftercare guide > makeup after treatment"
    assert staff.articles.state("exercise-after-treatment-2").head.content.body.startswith("Avoid strenuous")
    assert staff.articles.state("sun-protection").head.content.topic == "general"
    assert {e.action for e in entries(staff.services.db, actor="Editor One")} >= {"created"}
    assert staff.services.answerer.answer("can I wear makeup after microneedling?").sources[0]["id"] != (
        "makeup-after-treatment-2"
    ), "drafts are not live"


def test_deeper_headings_stay_inside_their_section() -> None:
    sections = read_document("guide.md", documents.markdown())
    assert sections[-1].body.endswith("### Swimming\n\nChlorine can sting: wait a few days before swimming.")


def test_unreadable_documents_get_a_clear_error(staff) -> None:
    with pytest.raises(DocumentError, match="cannot be imported"):
        read_document("guide.exe", b"MZ")
    with pytest.raises(DocumentError, match="PDF cannot be read"):
        read_document("guide.pdf", b"%PDF-1.4 not really")
    with pytest.raises(DocumentError, match="DOCX file cannot be read"):
        read_document("guide.docx", b"not a zip")
    csrf = staff.login("editor")
    refused = staff.client.post(
        "/admin/kb/import/document",
        data={"csrf_token": csrf},
        files={"document": ("x.pdf", b"junk", "application/pdf")},
    )
    assert refused.status_code == 422 and "PDF cannot be read" in refused.text


def test_draft_ids_are_kebab_case_and_never_taken() -> None:
    sections = read_document("guide.md", documents.markdown())
    made = drafts(sections + sections[-1:], taken_ids=["sun-protection"])
    ids = [article.id for article in made]
    assert ids[-2:] == ["sun-protection-2", "sun-protection-3"]
    assert slugify("Café & Crème: après-soin!") == "cafe-creme-apres-soin"
