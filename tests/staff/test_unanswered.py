"""What the bot could not answer: redacted, grouped by similarity with counts, linked or drafted, gone."""

from __future__ import annotations

import pytest

from bot.records import record_unanswered
from bot.staff.redaction import redact
from bot.staff.unanswered import UnansweredQuestions
from tests.conftest import start_conversation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my number is 07700 900123, text me", "my number is [phone], text me"),
        ("call +1 (555) 010-0142 pls", "call [phone] pls"),
        ("email me at jo.smith+skin@mail.example.com", "email me at [email]"),
        ("My name is Sarah Jones, can I swim?", "My name is [name], can I swim?"),
        ("Hi, I'm Priya. Is retinol ok?", "Hi, I'm [name]. Is retinol ok?"),
        ("this is Karen here, how long am I red", "this is [name] here, how long am I red"),
        ("Dr Patel said to ask you", "Dr [name] said to ask you"),
        ("my daughter Emma had it done", "my daughter [name] had it done"),
        ("can i run tomorrow? thanks, Jo", "can i run tomorrow? thanks, [name]"),
        ("I'm Black with deep brown skin, is it safe?", "I'm Black with deep brown skin, is it safe?"),
        ("temp 38.5 on day 3, done 2026-11-20 at 10:30", "temp 38.5 on day 3, done 2026-11-20 at 10:30"),
    ],
)
def test_redaction_removes_phone_numbers_email_addresses_and_names(text, expected) -> None:
    assert redact(text) == expected


def test_questions_are_stored_redacted(db) -> None:
    conversation = start_conversation(db)
    record_unanswered(
        db, conversation, "my name is Dana Cole, do you do fillers? 07700 900123", "out_of_scope", None
    )
    [group] = UnansweredQuestions(db).groups()
    assert group.representative == "my name is [name], do you do fillers? [phone]"


def test_similar_questions_are_grouped_with_counts(db, embedder) -> None:
    conversation = start_conversation(db)
    for text in (
        "do you do lip fillers?",
        "can I get lip filler at your clinic",
        "do you offer lip fillers too?",
        "how much does botox cost?",
        "what is the price of botox",
        "can I bring my dog to the appointment?",
    ):
        record_unanswered(db, conversation, text, "out_of_scope", None, "out_of_scope")
    groups = UnansweredQuestions(db, embedder).groups()
    assert [group.count for group in groups] == [3, 2, 1]
    assert groups[0].representative == "do you do lip fillers?"
    assert set(groups[1].examples) == {"how much does botox cost?", "what is the price of botox"}
    assert groups[0].reasons == {"out_of_scope": 3}


def test_linking_a_group_to_an_article_removes_it_and_new_questions_start_a_new_group(
    staff, embedder
) -> None:
    db = staff.services.db
    conversation = start_conversation(db)
    asked = ("can I drink alcohol after microneedling?", "can I have a glass of wine after microneedling?")
    for text in asked:
        record_unanswered(db, conversation, text, "nlu_fallback", 0.2)
    csrf = staff.login("editor")
    page = staff.client.get("/admin/questions")
    assert "2×" in page.text and "can I drink alcohol after microneedling?" in page.text
    [group] = staff.runtime.unanswered.groups()
    linked = staff.client.post(
        f"/admin/questions/{group.id}/link",
        data={"csrf_token": csrf, "article_id": "aftercare-essentials"},
        follow_redirects=False,
    )
    assert "notice=linked" in linked.headers["location"]
    assert "can I drink alcohol" not in staff.client.get("/admin/questions").text, "resolved groups disappear"

    record_unanswered(
        db, conversation, "can I have a glass of wine after microneedling?", "nlu_fallback", 0.2
    )
    [fresh] = staff.runtime.unanswered.groups()
    assert fresh.count == 1 and fresh.id != group.id


def test_a_new_draft_started_from_a_group_resolves_it_when_saved(staff) -> None:
    db = staff.services.db
    record_unanswered(
        db, start_conversation(db), "can I dye my hair after microneedling?", "nlu_fallback", 0.1
    )
    [group] = staff.runtime.unanswered.groups()
    csrf = staff.login("editor")
    form = staff.client.get(f"/admin/kb/new?from_group={group.id}")
    assert 'value="can I dye my hair after microneedling?"' in form.text, "the title starts as the question"
    created = staff.client.post(
        "/admin/kb/new",
        data={
            "csrf_token": csrf,
            "from_group": str(group.id),
            "id": "hair-dye-after-treatment",
            "title": "Hair dye after microneedling",
            "topic": "general",
            "stage": "aftercare",
            "source_section": "Aftercare",
            "body": "Wait a week before dyeing your hair near the treated skin.",
        },
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    assert staff.articles.state("hair-dye-after-treatment").status == "draft"
    assert staff.runtime.unanswered.groups() == []
