"""The safety gate on publishing, with the real model, the real protocol rules and the labelled questions:
it shows what changes and refuses a change that breaks an emergency reply or makes a red-flag article
unreachable; a refused change is not published."""

from __future__ import annotations

from bot.staff.audit import entries
from tests.staff.conftest import Staff
from tests.staff.test_articles import draft_of, publish, save, submit

CALM_EMERGENCY = (
    "If your throat feels tight or your lips swell after treatment, apply a cold compress and rest; "
    "it usually settles within a day."
)
SAFE_EMERGENCY = "If your throat feels tight or your lips swell after treatment, call 911 now."


def submitted(staff: Staff, article_id: str, **changes) -> int:
    saved = save(staff, draft_of(staff, article_id, **changes), article_id)
    assert saved.status_code == 200, saved.text
    version = saved.json()["head_version"]
    assert submit(staff, version, article_id).status_code == 200
    return version


def test_advice_that_contradicts_an_emergency_reply_is_refused_and_not_published(staff) -> None:
    version = submitted(staff, "swelling-after-treatment", extra=CALM_EMERGENCY)
    review = staff.client.get(
        "/admin/articles/swelling-after-treatment/review", headers=staff.api("clinician")
    )
    gate = review.json()
    assert gate["passed"] is False
    assert any("emergency reply broken: 'swelling-after-treatment'" in r for r in gate["refusals"])
    [conflict] = [c for c in gate["emergency_conflicts"] if not c["already_live"]]
    assert "airway_breathing" in conflict["signs"]

    refused = publish(staff, version, "swelling-after-treatment")
    assert refused.status_code == 409 and refused.json()["gate"]["passed"] is False
    state = staff.articles.state("swelling-after-treatment")
    assert (state.status, state.published.version) == ("in_review", 1), "nothing was published"
    [line] = entries(staff.services.db, action="publish_refused")
    assert (line.actor, line.target_id, line.version) == (
        "Clinician One",
        "swelling-after-treatment",
        version,
    )


def test_the_same_sign_with_the_emergency_instruction_passes(staff) -> None:
    version = submitted(staff, "swelling-after-treatment", extra=SAFE_EMERGENCY)
    done = publish(staff, version, "swelling-after-treatment")
    assert done.status_code == 200, done.text
    assert done.json()["gate"]["emergency_conflicts"] == []


def test_a_change_that_makes_a_red_flag_article_unreachable_is_refused(staff) -> None:
    unrelated = (
        "Parking is free in the car park behind the clinic, and the entrance is on the left.\n\n"
        "There are two spaces for blue badge holders next to the door; ask reception to reserve one."
    )
    version = submitted(
        staff, "infection-and-allergy-risk", title="Parking at the clinic", body=unrelated, extra=""
    )
    refused = publish(staff, version, "infection-and-allergy-risk")
    assert refused.status_code == 409
    gate = refused.json()["gate"]
    [reach] = [r for r in gate["red_flag_articles"] if r["id"] == "infection-and-allergy-risk"]
    assert reach["before"] > 0 and reach["after"] == 0 and reach["broken"]
    assert any("red-flag article unreachable: 'infection-and-allergy-risk'" in r for r in gate["refusals"])
    assert gate["lost_answers"] > 0 or any(
        c["before"] == "infection-and-allergy-risk" for c in gate["changes"]
    )
    assert staff.articles.state("infection-and-allergy-risk").published.version == 1


def test_retiring_a_red_flag_article_is_refused_but_others_can_retire(staff) -> None:
    refused = staff.client.post("/admin/articles/redness-that-lasts/retire", headers=staff.api("clinician"))
    assert refused.status_code == 409
    assert "would no longer be published" in refused.json()["detail"]
    assert staff.articles.state("redness-that-lasts").status == "published"

    retired = staff.client.post("/admin/articles/stretch-marks/retire", headers=staff.api("clinician"))
    assert retired.status_code == 200, retired.text
    assert staff.articles.state("stretch-marks").status == "retired"


def test_a_harmless_change_passes_and_lists_the_questions_whose_reply_changes(staff) -> None:
    version = submitted(
        staff, "makeup-after-treatment", title="Makeup, concealer and foundation after treatment"
    )
    gate = staff.client.get(
        "/admin/articles/makeup-after-treatment/review", headers=staff.api("clinician")
    ).json()
    assert gate["passed"] is True and gate["refusals"] == []
    assert gate["questions"] > 400, "the project's own labelled questions"
    assert all({"question", "before", "after", "verdict"} <= set(change) for change in gate["changes"])
    assert publish(staff, version, "makeup-after-treatment").status_code == 200


def test_a_conflict_already_live_is_a_warning_not_a_refusal(staff) -> None:
    # The seed's pinpoint-bleeding article says "contact the clinic" for bleeding that does not stop, which
    # the protocol treats as an emergency: the gate shows it whenever the article changes.
    version = submitted(
        staff, "pinpoint-bleeding", extra="Rest and keep your skin clean on the first evening."
    )
    gate = staff.client.get("/admin/articles/pinpoint-bleeding/review", headers=staff.api("clinician")).json()
    assert gate["passed"] is True
    assert [c["already_live"] for c in gate["emergency_conflicts"]] == [True]
    assert publish(staff, version, "pinpoint-bleeding").status_code == 200


def test_the_review_page_shows_the_refusal_and_disables_publishing(staff) -> None:
    submitted(staff, "swelling-after-treatment", extra=CALM_EMERGENCY)
    staff.login("clinician")
    page = staff.client.get("/admin/kb/swelling-after-treatment/review")
    assert page.status_code == 200
    assert "Refused" in page.text and "NEW: refused" in page.text
    assert "<ins>" + CALM_EMERGENCY + "</ins>" in page.text
    assert "Sign off and publish v2</button>" in page.text and "disabled" in page.text
