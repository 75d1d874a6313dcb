"""How a message is read, case by case: each reading rule with a message it decides, and its opposite.

The cases are the project's own words for the families of `labelled/README.md`; the rule they exercise is
named in each test (the rule layer is `safety.rules`, the reading `safety.context` and `safety.reading`).
"""

from __future__ import annotations

from datetime import date

import pytest

from knowledge.clinic import load_clinic_profile
from safety.engine import TriageEngine
from safety.reading import detect_language, says_only_when, stated_day, treatment_upcoming
from safety.reading.normalise import english_words, normalise_text
from safety.reading.numbers import temperatures
from safety.rules import RuleLayer

TODAY = date(2026, 12, 1)  # a Tuesday


@pytest.fixture(scope="module")
def rules() -> RuleLayer:
    return RuleLayer(known_words=english_words())


def level(rules: RuleLayer, text: str, day: int | None = None) -> str:
    return rules.assess(text, day if day is not None else stated_day(text, TODAY)).level


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a question word opens a question only before a verb
        ("where they put the numbing cream the skin is burning and raised in welts", "urgent"),
        ("where is the numbing cream from?", "none"),
        # a sentence that opens with "if" and then asks is hypothetical as a whole
        ("if I get a fever of 38 after, is that an infection?", "none"),
        ("if I press on my chin, yellow pus comes out", "urgent"),
        # what is said after a turn ("but now") is the newer news
        ("my swelling was going down but now it's puffier and sorer again", "urgent"),
        ("my swelling was puffier yesterday but now it's going down", "routine"),
        # a negation carries through little words and along an `unless` phrase
        ("a few blisters on my chin, not grouped together, just here and there", "urgent"),
        ("blisters on my cheek, not like a cold sore, just random big ones", "urgent"),
        ("a tight cluster of small blisters on the edge of my lip", "urgent"),
        # a one-word label asked and denied is a denial ("Fever? No."), a real question is not
        ("Fever? No. Pus? No. Redness? Gone.", "none"),
        ("Why is my top lip so swollen? No problem breathing though.", "urgent"),
        # counted events are not a past episode ("vomited once, dizzy")
        ("nauseous, vomited once, a bit dizzy, face red as expected, no rash", "urgent"),
        ("I fainted once years ago at the dentist, is that relevant?", "none"),
        # the patient's own past story goes on through "I ..."
        ("ages ago, like 2010, I passed out at a piercing shop. Never since.", "none"),
        # a device's vision is not the patient's
        ("my doorbell camera's night vision is blurry, how do I fix it?", "none"),
        ("everything out of my left eye is smudgy, like looking through a steamed up window", "emergency"),
        # "stroke" the word is not a stroke
        ("that was a real stroke of luck, I won the raffle", "none"),
        ("I think I'm having a stroke, my face is drooping", "emergency"),
        # skin feeling rough is dryness, the patient feeling rough is malaise
        ("the redness is down, my skin is dry and feels rough, day 3", "routine"),
    ],
)
def test_reading_rules(rules, text: str, expected: str) -> None:
    assert level(rules, text) == expected


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Nauseous, vomited once, a bit dizzy, face red as expected, no rash.", "en"),
        ("Do nada fiquei sem enxergar de um olho, ficou tudo escuro.", "pt"),
        ("tengo la cara roja e hinchada desde ayer", "es"),
        ("J'ai les paupières un peu gonflées ce matin", "fr"),
    ],
)
def test_a_message_of_english_words_is_english_whatever_its_short_words(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_negations_of_other_languages_are_read_even_when_the_language_is_unclear(rules) -> None:
    assert level(rules, "plus de rougeur, plus de tiraillement, jour 7", 7) == "none"
    assert level(rules, "sem enxergar de um olho, tudo escuro") == "emergency"


@pytest.mark.parametrize(
    ("text", "celsius"),
    [("temprature 103 and spreading", 39.4), ("tempreture 39", 39.0), ("my temple is sore 39", None)],
)
def test_temperature_words_are_read_through_typos(text: str, celsius: float | None) -> None:
    found = temperatures(normalise_text(text))
    assert (found[0].celsius if found else None) == celsius


def test_a_misspelling_missing_one_letter_is_read_as_the_word_it_misses(rules) -> None:
    assert level(rules, "the bruse under my eye is getting bigger and darker every day") == "urgent"


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("It's been a full week since the session.", 7),
        ("had it done last Tuesday", 7),
        ("had it done this Tuesday", 0),
        ("had it done on Tuesday", None),  # said on a Tuesday: today or a week ago?
        ("my session is on the 14th, do I stop retinol?", None),  # a date of a treatment to come
        # a count of days right after a date restates it, and is the more precise of the two
        ("treatment was on Monday, 8 days ago", 8),
        ("sorry, I meant it was done on the 20th, so that's 9 days ago", 9),
        ("had it done on Friday and the redness started 2 days ago", 4),  # not a restatement
        ("done on Friday. 2 days ago I noticed pus", 4),
    ],
)
def test_treatment_day(text: str, day: int | None) -> None:
    assert stated_day(text, TODAY) == day


def test_a_correction_moves_a_known_date_but_a_weak_hint_does_not() -> None:
    from safety.reading import extract_treatment_date

    def corrected(text: str) -> int | None:
        found = extract_treatment_date(text, TODAY, explicit_only=True)
        return (TODAY - found).days if found else None

    assert corrected("nah scratch that it was last wk") == 7
    assert corrected("the date is wrong, I actually came in 8 days ago, not yesterday") == 8
    assert corrected("sorry, can I wear makeup tonight?") is None
    assert corrected("can I wear makeup tonight?") is None


@pytest.mark.parametrize(
    ("text", "upcoming"),
    [
        ("My session is on the 14th, do my salicylic pads need to stop?", True),
        ("I get cold sores now and then. Should I take tablets before my appointment?", True),
        ("booked in for friday, can I keep using retinol?", True),
        ("I had my first session last week and my next appointment is in 4 weeks", False),
        ("since my treatment my face is red, my next appointment is on the 20th", False),
        ("after a few weeks I have dark spots, new, not before the treatment", False),
        ("my face is swollen", False),
    ],
)
def test_a_treatment_still_to_come(text: str, upcoming: bool) -> None:
    assert treatment_upcoming(text, TODAY) is upcoming


@pytest.mark.parametrize(
    ("text", "only_when"),
    [
        ("I had microneedling 2 days ago", True),
        ("had it done yesterday!", True),
        ("my treatment was on Monday", True),
        ("it was done 6 days ago", True),
        ("treatment was 3 days ago, still red", False),
        ("I feel sick, had it done yesterday", False),
        ("can I wear makeup?", False),  # no time phrase at all
    ],
)
def test_a_message_that_only_says_when_the_treatment_was(text, only_when) -> None:
    assert says_only_when(text) is only_when


def test_before_a_treatment_only_emergencies_are_escalated() -> None:
    engine = TriageEngine(load_clinic_profile())
    before = engine.assess(
        "I'm on antibiotics for a chest infection. Can I still have my session on Thursday?"
    )
    assert not before.escalates, before
    emergency = engine.assess("my appointment is tomorrow and my throat is closing, I can't breathe")
    assert emergency.level == "emergency"
    after = engine.assess("I'm on antibiotics for a chest infection since my session, the chin has pus")
    assert after.escalates


def test_explain_names_the_words_behind_each_sign() -> None:
    engine = TriageEngine(load_clinic_profile())
    explained = engine.explain("there is yellow pus coming out of my chin")
    assert explained["level"] == "urgent"
    assert any(
        reason.startswith("local_infection:") and "pus" in reason for reason in explained["rules"]["because"]
    )


@pytest.mark.parametrize(
    ("text", "celsius", "stated_unit"),
    [
        ("38.5 celsius", 38.5, True),
        ("39 centigrade", 39.0, True),
        ("38.2c", 38.2, True),
        ("101 fahrenheit", 38.3, True),
        ("100.4f", 38.0, True),
        ("34 c", 34.0, True),  # the edges of a plausible body temperature count
        ("43.5 c", 43.5, True),
        ("93.2 f", 34.0, True),  # ... in either scale: the same range, converted
        ("110.3 f", 43.5, True),
        ("33.9 c", None, None),  # just outside: not a body temperature
        ("43.6 c", None, None),
        ("93 f", None, None),  # 33.9 c
        ("110.5 f", None, None),  # 43.6 c
        ("100 c", None, None),  # the stated scale wins over a guess from the value (100 would be °F)
        ("100 celsius", None, None),
        ("100 centigrade", None, None),
        ("39 f", None, None),  # (39 would be °C)
        ("39 fahrenheit", None, None),
        ("39 degrees", 39.0, True),  # a unit without a scale: guessed from the value
        ("34 degrees", 34.0, True),  # ... at the edges of either scale
        ("43.5 degrees", 43.5, True),
        ("93.2 degrees", 34.0, True),
        ("110.3 degrees", 43.5, True),
        ("110.5 degrees", None, None),
        ("102 degrees", 38.9, True),
        ("40 c in the oven", 40.0, True),
        ("my fever is 39.4", 39.4, False),
        ("fever of 102", 38.9, False),
    ],
)
def test_a_temperature_is_read_in_its_unit_within_the_range_of_a_body(text, celsius, stated_unit) -> None:
    expected = [] if celsius is None else [(celsius, stated_unit)]
    assert [(t.celsius, t.stated_unit) for t in temperatures(text)] == expected
