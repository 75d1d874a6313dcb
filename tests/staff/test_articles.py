"""The article workflow: versions, draft -> in review -> published by a clinician only, sign-off of the exact
version, review-by dates, history with diffs, rollback, and the Markdown export/import round trip."""

from __future__ import annotations

import io
import zipfile
from datetime import date, timedelta

from sqlalchemy import select

from bot.staff.audit import entries
from bot.staff.models import SignOff
from tests.staff.conftest import Staff

ARTICLE = "makeup-after-treatment"
NEW_SENTENCE = "Mineral makeup is the gentlest choice once the clinic says your skin is ready."


def draft_of(staff: Staff, article_id: str = ARTICLE, extra: str = NEW_SENTENCE, **changes) -> dict:
    head = staff.client.get(f"/admin/articles/{article_id}", headers=staff.api("editor")).json()["head"]
    body = {k: head[k] for k in ("title", "topic", "stage", "days", "source_section", "body")}
    body["body"] = head["body"] + "\n\n" + extra if extra else head["body"]
    body.update(changes, base_version=head["version"])
    return body


def save(staff: Staff, body: dict, article_id: str = ARTICLE, role: str = "editor"):
    return staff.client.put(f"/admin/articles/{article_id}", json=body, headers=staff.api(role))


def submit(staff: Staff, version: int, article_id: str = ARTICLE):
    return staff.client.post(
        f"/admin/articles/{article_id}/submit", json={"version": version}, headers=staff.api("editor")
    )


def publish(staff: Staff, version: int, article_id: str = ARTICLE, role: str = "clinician", **extra):
    body = {"version": version, **extra}
    return staff.client.post(f"/admin/articles/{article_id}/publish", json=body, headers=staff.api(role))


def test_every_save_is_a_new_version_and_the_published_one_stays_live(staff) -> None:
    saved = save(staff, draft_of(staff))
    assert saved.status_code == 200, saved.text
    article = saved.json()
    assert (article["status"], article["head_version"], article["published_version"]) == ("draft", 2, 1)
    assert NEW_SENTENCE not in staff.services.answerer.answer("can I wear makeup after microneedling?").text

    again = save(staff, draft_of(staff, extra=""))
    assert again.json()["head_version"] == 2, "saving the same text makes no new version"


def test_a_save_based_on_an_old_version_is_refused_not_lost(staff) -> None:
    body = draft_of(staff)
    assert save(staff, body).status_code == 200
    stale = save(staff, {**body, "body": body["body"] + " More."})
    assert stale.status_code == 409 and "since you opened version 1" in stale.json()["detail"]


def test_invalid_content_is_refused_with_the_reasons(staff) -> None:
    refused = save(staff, draft_of(staff, stage="someday", topic="Not Snake", days=[9, 2]))
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert (
        "unknown stage 'someday'" in detail
        and "snake_case" in detail
        and "first day is after the last" in detail
    )


def test_only_a_clinician_publishes_and_only_what_was_submitted(staff) -> None:
    version = save(staff, draft_of(staff)).json()["head_version"]
    assert publish(staff, version).status_code == 422, "not submitted for review yet"
    assert submit(staff, version).json()["status"] == "in_review"
    assert publish(staff, version, role="editor").status_code == 403
    assert publish(staff, version, role="admin").status_code == 403
    assert publish(staff, version - 1).status_code == 409, "only the exact version that is in review"
    assert publish(staff, version + 1).status_code == 422, "no such version"

    done = publish(staff, version, review_by=(date.today() + timedelta(days=90)).isoformat())
    assert done.status_code == 200, done.text
    article = done.json()["article"]
    assert (article["status"], article["published_version"], article["signed_off_by"]) == (
        "published",
        2,
        "Clinician One",
    )
    assert done.json()["gate"]["passed"] is True


def test_the_sign_off_names_the_exact_version_and_its_content(staff) -> None:
    version = save(staff, draft_of(staff)).json()["head_version"]
    submit(staff, version)
    publish(staff, version)
    with staff.services.db.session() as session:
        signoff = session.scalars(
            select(SignOff).where(SignOff.article_id == ARTICLE, SignOff.version == 2)
        ).one()
    state = staff.articles.state(ARTICLE)
    assert signoff.content_hash == state.published.content_hash == state.head.content.digest
    assert signoff.review_by == staff.articles.new_review_by(date.today())


def test_publishing_goes_live_and_answers_name_the_version_they_quote(staff) -> None:
    old_body = draft_of(staff, extra="")["body"]
    first, rest = old_body.split("\n\n", 1)
    version = save(staff, draft_of(staff, extra="", body=f"{first} {NEW_SENTENCE}\n\n{rest}")).json()[
        "head_version"
    ]
    submit(staff, version)
    publish(staff, version)
    wait_for(
        lambda: NEW_SENTENCE in staff.services.answerer.answer("can I wear makeup after microneedling?").text
    )
    answer = staff.services.answerer.answer("can I wear makeup after microneedling?")
    assert answer.sources[0] == {"id": ARTICLE, "title": "Wearing makeup after microneedling", "version": 2}
    state = staff.client.get("/admin/knowledge", headers=staff.api("editor")).json()
    assert state["in_step"] and state["latest_release"] == 2


def test_a_signed_off_article_is_flagged_for_review_after_its_review_by_date(staff) -> None:
    with staff.services.db.session() as session:
        signoff = session.scalars(select(SignOff).where(SignOff.article_id == ARTICLE)).one()
        signoff.review_by = date.today() - timedelta(days=1)
    due = staff.client.get("/admin/articles?review=due", headers=staff.api("editor")).json()
    assert [a["id"] for a in due] == [ARTICLE] and due[0]["review_due"] is True
    staff.login("editor")
    page = staff.client.get("/admin/kb?review=due")
    assert "review due" in page.text and "Wearing makeup after microneedling" in page.text
    assert "Acne scars" not in page.text


def test_the_article_list_searches_and_filters(staff) -> None:
    def ids(query: str) -> list[str]:
        return [
            a["id"] for a in staff.client.get(f"/admin/articles?{query}", headers=staff.api("admin")).json()
        ]

    assert ids("q=concealer") == ["makeup-after-treatment", "tinted-products-and-concealer"]
    assert ids("q=foundation concealer") == ["makeup-after-treatment"], "every word must match"
    assert set(ids("topic=sun")) == {
        "sun-after-treatment",
        "sunscreen-after-treatment",
        "sun-and-tanning-before",
    }
    assert set(ids("stage=during")) >= {"pinpoint-bleeding", "needle-depth"}
    save(staff, draft_of(staff))
    assert ids("status=draft") == [ARTICLE]
    assert len(ids("status=published")) == 53


def test_a_clinician_sends_a_draft_back_with_a_note(staff) -> None:
    version = save(staff, draft_of(staff)).json()["head_version"]
    submit(staff, version)
    back = staff.client.post(
        f"/admin/articles/{ARTICLE}/send-back",
        json={"version": version, "note": "cite the guidance"},
        headers=staff.api("clinician"),
    )
    assert back.json()["status"] == "draft"
    [line] = entries(staff.services.db, action="sent_back")
    assert (line.actor, line.version, line.detail) == (
        "Clinician One",
        version,
        {"note": "cite the guidance"},
    )


def test_history_shows_a_readable_diff_between_versions(staff) -> None:
    save(staff, draft_of(staff, title="Makeup after microneedling: when and what"))
    staff.login("editor")
    page = staff.client.get(f"/admin/kb/{ARTICLE}/history?a=1&b=2")
    assert page.status_code == 200
    assert f"<ins>{NEW_SENTENCE}</ins>" in page.text
    assert "Makeup after microneedling: when and what" in page.text and 'class="changed"' in page.text


def test_a_clinician_rolls_back_in_one_click_and_it_is_live(staff) -> None:
    version = save(staff, draft_of(staff)).json()["head_version"]
    submit(staff, version)
    publish(staff, version)
    wait_for(lambda: staff.articles.state(ARTICLE).published.version == 2)

    csrf = staff.login("clinician")
    done = staff.client.post(
        f"/admin/kb/{ARTICLE}/rollback",
        data={"csrf_token": csrf, "to_version": "1", "publish": "yes"},
        follow_redirects=False,
    )
    assert "rolled_back_live" in done.headers["location"]
    state = staff.articles.state(ARTICLE)
    assert (state.head.version, state.published.version, state.status) == (3, 3, "published")
    assert state.head.content == staff.articles.version(ARTICLE, 1).content
    assert staff.articles.version(ARTICLE, 3).origin == "rollback"
    wait_for(
        lambda: (
            NEW_SENTENCE not in staff.services.answerer.answer("can I wear makeup after microneedling?").text
        )
    )
    assert [e.action for e in entries(staff.services.db, target_id=ARTICLE)][:3] == [
        "gate_passed",
        "published",
        "rolled_back",
    ]


def test_an_editor_rollback_is_a_draft_and_an_editor_cannot_roll_back_live(staff) -> None:
    save(staff, draft_of(staff))
    csrf = staff.login("editor")
    forbidden = staff.client.post(
        f"/admin/kb/{ARTICLE}/rollback", data={"csrf_token": csrf, "to_version": "1", "publish": "yes"}
    )
    assert forbidden.status_code == 403
    staff.client.post(f"/admin/kb/{ARTICLE}/rollback", data={"csrf_token": csrf, "to_version": "1"})
    state = staff.articles.state(ARTICLE)
    assert (state.head.version, state.status, state.published.version) == (3, "draft", 1)


def test_export_then_import_changes_nothing_and_exports_the_same_bytes(staff) -> None:
    save(staff, draft_of(staff))  # one article with an unpublished draft: exported as a draft
    first = staff.client.get("/admin/articles-export", headers=staff.api("admin")).content
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        names = archive.namelist()
        makeup = archive.read(f"articles/{ARTICLE}.md").decode()
        acne = archive.read("articles/acne-scars.md").decode()
    assert len(names) == 54
    assert "review_status: draft" in makeup and "version: 2" in makeup and NEW_SENTENCE in makeup
    assert "review_status: approved" in acne and "reviewer: demo-clinician" in acne

    imported = staff.client.post("/admin/articles-import", content=first, headers=staff.api("editor")).json()
    assert imported == {"created": [], "updated": [], "unchanged": sorted(n[9:-3] for n in names)}
    assert staff.client.get("/admin/articles-export", headers=staff.api("admin")).content == first


def test_an_imported_file_that_changed_becomes_a_draft_and_a_new_one_is_created(staff) -> None:
    exported = staff.client.get("/admin/articles-export", headers=staff.api("admin")).content
    with zipfile.ZipFile(io.BytesIO(exported)) as archive:
        acne = archive.read("articles/acne-scars.md").decode()
    changed = acne.replace("acne scars", "acne scarring", 1)
    new = acne.replace("id: acne-scars", "id: acne-scars-on-the-back").replace("title: ", "title: Back ", 1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("acne-scars.md", changed)
        archive.writestr("nested/acne-scars-on-the-back.md", new)
    result = staff.client.post(
        "/admin/articles-import", content=buffer.getvalue(), headers=staff.api("editor")
    ).json()
    assert result == {"created": ["acne-scars-on-the-back"], "updated": ["acne-scars"], "unchanged": []}
    assert staff.articles.state("acne-scars").status == "draft", "importing never publishes"
    assert staff.articles.state("acne-scars-on-the-back").published is None


def test_an_invalid_file_in_an_import_imports_nothing(staff) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        good = (
            "---\nid: good\ntitle: Good\ntopic: general\nstage: general\nsource_section: S\n"
            "review_status: draft\nreviewer: x\nversion: 1\n---\n\nA body.\n"
        )
        archive.writestr("good.md", good)
        archive.writestr("bad.md", "---\nid: bad\ntitle: Bad\n---\n\nNo front matter to speak of.\n")
    refused = staff.client.post(
        "/admin/articles-import", content=buffer.getvalue(), headers=staff.api("editor")
    )
    assert refused.status_code == 422 and "missing field 'topic'" in refused.json()["detail"]
    assert staff.articles.state("good") is None
    not_zip = staff.client.post("/admin/articles-import", content=b"garbage", headers=staff.api("editor"))
    assert not_zip.status_code == 422 and "neither a .zip" in not_zip.json()["detail"]


def test_the_editor_form_saves_previews_and_submits(staff) -> None:
    csrf = staff.login("editor")
    state = staff.articles.state(ARTICLE)
    content = state.head.content
    form = {
        "csrf_token": csrf,
        "base_version": "1",
        "title": content.title,
        "topic": content.topic,
        "stage": content.stage,
        "days_first": "",
        "days_last": "",
        "source_section": content.source_section,
        "body": content.body + "\n\n**Bold** advice <script>alert(1)</script>",
        "note": "bold advice",
    }
    preview = staff.client.post(f"/admin/kb/{ARTICLE}/edit", data={**form, "action": "preview"})
    assert "<strong>Bold</strong>" in preview.text
    assert "<script>alert(1)</script>" not in preview.text, "raw HTML in the text is escaped"
    assert staff.articles.state(ARTICLE).head.version == 1, "a preview saves nothing"
    live = staff.client.post(
        "/admin/kb/preview", json={"body": "# Hi"}, headers={"X-CSRF-Token": csrf}
    ).json()["html"]
    assert live.strip() == "<h1>Hi</h1>"
    saved = staff.client.post(
        f"/admin/kb/{ARTICLE}/edit", data={**form, "action": "submit"}, follow_redirects=False
    )
    assert "notice=submitted" in saved.headers["location"]
    state = staff.articles.state(ARTICLE)
    assert (state.head.version, state.status, staff.articles.version(ARTICLE, 2).note) == (
        2,
        "in_review",
        "bold advice",
    )


def wait_for(condition, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def head_article(staff: Staff, article_id: str = ARTICLE):
    return next(article for article in staff.articles.working_articles() if article.id == article_id)


def test_what_an_article_answers_survives_the_store_and_an_edit_but_not_a_retitle(staff) -> None:
    seeded = next(article for article in staff.articles.published_articles() if article.id == ARTICLE)
    assert seeded.questions and "makeup" in seeded.covers, "the seed keeps questions and covers"
    assert save(staff, draft_of(staff)).status_code == 200
    edited = head_article(staff)
    assert (edited.version, edited.questions, edited.covers) == (2, seeded.questions, seeded.covers)
    assert save(staff, draft_of(staff, extra="", title="Brushes and sponges")).status_code == 200
    retitled = head_article(staff)
    assert (retitled.version, retitled.questions, retitled.covers) == (3, (), ())
