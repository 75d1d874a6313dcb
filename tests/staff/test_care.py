"""Escalations and handoffs in the admin UI: by severity and age, acknowledged, replied to, handed back."""

from __future__ import annotations

from bot.staff.audit import entries
from tests.api.test_staff import patient_says
from tests.escalation.stubs import EMERGENCY_TEXT, URGENT_TEXT


def test_escalations_are_listed_most_severe_first_and_acknowledged_by_the_signed_in_user(staff) -> None:
    urgent = patient_says(staff.client, URGENT_TEXT)
    emergency = patient_says(staff.client, EMERGENCY_TEXT)
    csrf = staff.login("clinician")
    page = staff.client.get("/admin/care/escalations")
    assert page.text.index(EMERGENCY_TEXT) < page.text.index(URGENT_TEXT), "emergency first"
    assert "0 min" in page.text
    [row] = [e for e in staff.services.escalations.recent("open") if e.conversation_id == urgent]
    done = staff.client.post(f"/admin/care/escalations/{row.id}/acknowledge", data={"csrf_token": csrf})
    assert done.status_code == 200 and "Escalation acknowledged." in done.text
    assert staff.services.escalations.recent("acknowledged")[0].acknowledged_by == "Clinician One"
    assert URGENT_TEXT not in staff.client.get("/admin/care/escalations").text, "open ones only by default"
    assert [e.target_id for e in entries(staff.services.db, action="escalation_acknowledged")] == [
        str(row.id)
    ]
    assert emergency


def test_staff_read_a_handed_off_conversation_reply_and_hand_it_back(staff) -> None:
    session = patient_says(staff.client, "hello there")
    csrf = staff.login("clinician")
    replied = staff.client.post(
        f"/admin/care/conversations/{session}/reply",
        data={"csrf_token": csrf, "text": "Hi, this is the clinic."},
    )
    assert replied.status_code == 200 and "Hi, this is the clinic." in replied.text
    listed = staff.client.get("/admin/care/handoffs").text
    assert "staff reply" in listed
    page = staff.client.get(f"/admin/care/conversations/{session}")
    assert "hello there" in page.text and "Clinician One" in page.text
    back = staff.client.post(f"/admin/care/conversations/{session}/hand-back", data={"csrf_token": csrf})
    assert "Nobody is waiting." in back.text
    actions = [e.action for e in entries(staff.services.db, target_id=session)]
    assert actions == ["handed_back", "staff_replied"]


def test_an_unknown_conversation_is_a_clear_not_found_page(staff) -> None:
    staff.login("clinician")
    page = staff.client.get("/admin/care/conversations/api-does-not-exist")
    assert page.status_code == 404 and "There is nothing here." in page.text


def test_patient_words_are_shown_as_text_never_as_markup(staff) -> None:
    session = patient_says(staff.client, URGENT_TEXT + " <script>alert('x')</script>")
    staff.login("clinician")
    page = staff.client.get("/admin/care/escalations").text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "<script>alert" not in staff.client.get(f"/admin/care/conversations/{session}").text
