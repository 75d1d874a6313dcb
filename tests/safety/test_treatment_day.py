"""Treatment date extraction: the many ways patients say when they were treated."""

from datetime import date, timedelta

import pytest

from safety.reading.treatment_day import extract_treatment_date, treatment_day

TODAY = date(2026, 11, 24)  # a Tuesday


def day_of(message: str) -> int | None:
    """The treatment day the message implies, seen from TODAY."""
    found = extract_treatment_date(message, TODAY)
    return None if found is None else treatment_day(found, TODAY)


@pytest.mark.parametrize(
    ("message", "expected_day"),
    [
        # "day N": the patient counts for us
        ("day 2 and my cheeks feel tight", 2),
        ("Day two, still a bit pink", 2),
        ("is it ok to moisturise on day 3", 3),
        ("it's day 5 and i'm peeling", 5),
        ("day 3 after and the redness is calmer", 3),
        ("d2, skin feels rough", 2),
        ("im on day4 now", 4),
        ("day 1 - face feels warm", 1),
        ("day 0 here, super red", 0),
        ("DAY 10 and still flaky", 10),
        ("día 3 y me pica", 3),
        # counted time after the treatment
        ("i had it done 2 days ago", 2),
        ("two days ago i had my session", 2),
        ("3 days after my treatment my chin broke out", 3),
        ("3 days post and itchy", 3),
        ("4 days out, skin looks good", 4),
        ("3days ago my forehead was treated", 3),
        ("a couple of days ago my forehead got treated", 2),
        ("couple days ago", 2),
        ("had microneedling a few days ago", 3),
        ("my session was a week ago", 7),
        ("1 week out and glowing", 7),
        ("2wks later still some pink", 14),
        ("3 weeks after the treatment I see better texture", 21),
        ("had it a month ago", 30),
        ("about ten days since my microneedling", 10),
        ("twenty-one days post", 21),
        # hours and minutes, floored to whole days
        ("48 hrs ago", 2),
        ("48 hours after and my skin is tight", 2),
        ("24hrs later, still flushed", 1),
        ("72h post, flaking", 3),
        ("36 hours post treatment", 1),
        ("36 hours", 1),
        ("it was 3 hours ago", 0),
        ("had my session an hour ago", 0),
        ("maybe 20 mins after the needling my lips tingled", 0),
        # named days
        ("i got microneedled yesterday", 1),
        ("treatment was last night", 1),
        ("yday treatment, face tight", 1),
        ("had it done the day before yesterday", 2),
        ("Had it done today", 0),
        ("session this morning, face is hot", 0),
        ("came in this afternoon for needling", 0),
        ("face is hot tonight", 0),
        ("my treatment was at 9am", 0),
        ("after this mornings session my skin is tight", 0),
        # weekdays: the most recent past one (TODAY is a Tuesday)
        ("had it done on Monday", 1),
        ("on monday i had it done", 1),
        ("last tuesday", 7),
        ("had it done on Tuesday", None),  # said on a Tuesday: today or a week ago? unknown
        ("had it done last Tuesday", 7),
        ("had it done this Tuesday", 0),
        ("had it done this tuesday morning", 0),
        ("itchy since monday's session", 1),
        ("treatment was friday", 4),
        ("last Thurs", 5),
        ("i went in on wed for microneedling", 6),
        ("Microneedling Monday, today it's peeling", 1),
        # calendar dates
        ("2026-11-20", 4),
        ("had it on 20/11", 4),
        ("had it on 11/20", 4),
        ("treated 11/10", 14),
        ("Nov 20", 4),
        ("treatment on 20 November", 4),
        ("it was November 20th", 4),
        ("Nov. 20th, 2026 was my session", 4),
        ("on the 20th", 4),
        ("on the 30th", 25),
        ("the 3rd of november", 21),
        # Spanish basics
        ("me lo hice ayer", 1),
        ("hoy me hicieron el tratamiento", 0),
        ("hace 3 días", 3),
        ("hace una semana del microneedling", 7),
        ("ya pasaron 2 semanas", 14),
        # weak hints, used when nothing better is said
        ("it's been 4 days and the skin is flaky", 4),
        ("9 days now and still pink", 9),
        ("5 days in and it itches", 5),
        # competing mentions: the explicit treatment anchor wins
        ("still pink on day 2 but better than yesterday", 2),
        ("puffy this morning, treatment was yesterday", 1),
        ("fever since yesterday, the microneedling was 3 days ago", 3),
        ("peeling was over by day 3 but now day 7 it's red", 7),
        ("worse on day 4 than on day 2", 4),
        ("it's day 2, will it calm down by day 5?", 2),
        ("woke up swollen this morning after my treatment yesterday", 1),
        ("had my first session 2 weeks ago, next appointment is next week", 14),
    ],
)
def test_treatment_day_from_message(message: str, expected_day: int) -> None:
    assert day_of(message) == expected_day


@pytest.mark.parametrize(
    "message",
    [
        "",
        "hi there",
        "how long does swelling usually last",
        # the treatment is still to come
        "my appointment is next week",
        "booked for Friday, what should I avoid?",
        "my treatment is in 2 days",
        "treatment is tomorrow, can I wear makeup today?",
        "my treatment is thursday, can i sit in the sun on saturday?",
        "i stopped my retinol 5 days ago and my session is next week",
        "can i come in on 2026-12-03?",
        # durations and hypotheticals, not treatment dates
        "the redness lasted 2 days",
        "i've been bleeding for an hour",
        "can i exfoliate 3 days after?",
        "should i wait 2 days after before working out",
        "will i be healed by day 5",
        "can i go back to work the day after",
        "a week before my microneedling I waxed my lip",
        # numbers that are not dates
        "vitamin d3 ok after?",
        "is your chat 24/7?",
        "the 2nd session went fine",
        "is 2.5mm too deep",
        "getting better every day a little",
        "3 days in a row i forgot sunscreen",
        "I may 3 times a day apply it",
    ],
)
def test_no_treatment_date(message: str) -> None:
    assert extract_treatment_date(message, TODAY) is None


def test_returns_the_date_itself() -> None:
    assert extract_treatment_date("had it done 2 days ago", TODAY) == date(2026, 11, 22)


def test_is_case_insensitive() -> None:
    assert day_of("HAD IT DONE YESTERDAY") == day_of("had it done yesterday") == 1


def test_an_explicit_date_in_the_future_is_never_returned() -> None:
    assert extract_treatment_date("treatment on 2026-11-25", TODAY) is None


def test_numeric_date_far_in_the_past_without_a_year_is_too_ambiguous() -> None:
    assert extract_treatment_date("had it on 3/5", TODAY) is None


def test_numeric_date_with_a_year_is_taken_as_written() -> None:
    assert extract_treatment_date("had it on 20/11/2026", TODAY) == date(2026, 11, 20)


@pytest.mark.parametrize(
    ("treated", "expected"),
    [
        (TODAY, 0),
        (TODAY - timedelta(days=1), 1),
        (TODAY - timedelta(days=30), 30),
        (date(2026, 10, 31), 24),
        (TODAY + timedelta(days=1), 0),  # clock skew across time zones: never negative
    ],
)
def test_treatment_day_counts_days_since(treated: date, expected: int) -> None:
    assert treatment_day(treated, TODAY) == expected


def test_day_one_is_the_day_after_the_treatment() -> None:
    treated = extract_treatment_date("day 1", TODAY)
    assert treated == TODAY - timedelta(days=1)
    assert treated is not None and treatment_day(treated, TODAY) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("can I wear makeup tonight?", None),
        ("is it ok to go in the sun today", None),
        ("redness started yesterday", None),
        ("actually I had the treatment yesterday", TODAY - timedelta(days=1)),
        ("it's day 5 now", TODAY - timedelta(days=5)),
    ],
)
def test_explicit_only_ignores_hints_that_do_not_name_the_treatment(text: str, expected: date | None) -> None:
    assert extract_treatment_date(text, TODAY, explicit_only=True) == expected
