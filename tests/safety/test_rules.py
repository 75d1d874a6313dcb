"""Safety triage: the red-flag protocol and its detector.

Every message here is written for these tests (not taken from any evaluation set). Each case names the level
the detector must give and, where it matters, the concept that must lead the result.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from knowledge.clinic import load_clinic_profile
from safety.protocol import DEFAULT_PROTOCOL, ProtocolError, load_protocol
from safety.reading.normalise import TypoCorrector, mentioned_treatment_day, normalise_text, stem
from safety.rules import LEVELS, RedFlagDetector, TriageResult

CLINIC = load_clinic_profile()


@pytest.fixture(scope="module")
def detector() -> RedFlagDetector:
    return RedFlagDetector()


def check(
    detector: RedFlagDetector, text: str, level: str, concept: str | None = None, day: int | None = None
) -> TriageResult:
    result = detector.assess(text, day=day)
    assert result.level == level, f"{text!r}: expected {level}, got {result.level} {result.concepts}"
    if concept is not None:
        assert result.concepts and result.concepts[0] == concept, (
            f"{text!r}: leading concept {result.concepts}"
        )
    return result


# --- every concept --------------------------------------------------------------------------------------

EMERGENCIES = [
    ("my throat feels like it's closing up", "allergy_airway"),
    ("it's getting really hard to breathe since the session", "allergy_airway"),
    ("short of breath and my face is swelling up", "allergy_airway"),
    ("my tongue feels huge and swollen", "allergy_airway"),
    ("lips swelled up and I can barely talk", "allergy_airway"),
    ("can't catch my breath", "allergy_airway"),
    ("having trouble swallowing and my throat is tight", "allergy_airway"),
    ("my voice is hoarse and my throat feels swollen", "allergy_airway"),
    ("gasping for air", "allergy_airway"),
    ("breathing is really labored", "allergy_airway"),
    ("i think im having anaphylaxis", "allergy_airway"),
    ("feels like something is squeezing my throat", "allergy_airway"),
    ("breathing is getting difficult and my neck is covered in hives", "allergy_airway"),
    ("wheezy and chesty since my facial", "allergy_airway"),
    ("sharp pain in my chest since I got home", "chest_pain"),
    ("my chest feels heavy and tight", "chest_pain"),
    ("I fainted in the car park after the appointment", "collapse_confusion"),
    ("she passed out in the bathroom", "collapse_confusion"),
    ("my mom is confused and not making sense after her treatment", "collapse_confusion"),
    ("my face is drooping on one side", "collapse_confusion"),
    ("temperature of 39.5 and shivering uncontrollably, cheek is red and swollen", "sepsis_signs"),
    ("high fever and chills and the redness is spreading fast", "sepsis_signs"),
    ("fever of 103 and the redness keeps spreading across my face", "sepsis_signs"),
    ("the bleeding won't stop even though I've been pressing for 20 minutes", "heavy_bleeding"),
    ("blood keeps pouring from one spot on my cheek", "heavy_bleeding"),
    ("I'm bleeding and feel lightheaded and clammy", "heavy_bleeding"),
    ("bleeding really heavily from my forehead, soaked through a towel", "heavy_bleeding"),
    ("my vision went blurry right after the eye area was done", "vision_change"),
    ("I can't see out of my left eye", "vision_change"),
    ("everything looks double", "vision_change"),
    ("sudden dark spot in my vision", "vision_change"),
    ("my eye hurts and things look blurry", "vision_change"),
    ("my vision is going dark", "vision_change"),
]

URGENT = [
    ("I've broken out in hives on my neck", "allergy_skin"),
    ("itchy red welts all over my cheeks", "allergy_skin"),
    ("my face is covered in an itchy rash", "allergy_skin"),
    ("my upper lip is swollen but I can breathe fine", "allergy_skin"),
    ("eyelids are puffy and itchy", "allergy_skin"),
    ("I think I'm reacting to the serum you used, my skin is blotchy and itches like crazy", "allergy_skin"),
    ("hives but no trouble breathing", "allergy_skin"),
    ("there's yellow pus coming out of a few spots", "infection"),
    ("golden crusty patches on my chin", "infection"),
    ("glands in my neck are swollen and sore", "infection"),
    ("the red area is getting bigger and feels hot", "infection"),
    ("red streaks going down my neck", "infection"),
    ("I have a fever of 38 and my cheek is hot", "infection"),
    ("my cheek smells bad and is weeping", "infection"),
    ("there's a weird smell from my cheek and yellow goo", "infection"),
    ("I think I'm getting a cold sore on my lip", "cold_sore"),
    ("tiny blisters in a cluster on my upper lip", "cold_sore"),
    ("my lip is tingling and there's a small blister forming", "cold_sore"),
    ("sores around my nose and mouth that sting", "cold_sore"),
    ("fever blisters on my lips", "cold_sore"),
    ("my skin has blistered on my forehead", "burn_blistering"),
    ("the skin is peeling off in big sheets, day 4", "burn_blistering"),
    ("skin is raw and weeping on my cheek", "burn_blistering"),
    ("white patches that feel numb", "burn_blistering"),
    ("forehead looks burned and has blisters", "burn_blistering"),
    ("one spot keeps bleeding on and off, day 2", "bleeding_recurrent"),
    ("it stops but then starts bleeding again whenever I touch it", "bleeding_recurrent"),
    ("I'm on blood thinners and it's still oozing", "bleeding_recurrent"),
    ("a few of the dots on my neck are leaking clear fluid", "weeping_skin"),
    ("the pain is unbearable", "severe_pain"),
    ("my cheek hurts more every day, it's day 5", "severe_pain"),
    ("took ibuprofen and it's not helping at all with the pain", "severe_pain"),
    ("Pain is 8/10", "severe_pain"),
    ("my eye feels scratchy and won't stop watering", "eye_irritation"),
    ("feels like grit in my left eye", "eye_irritation"),
    ("my eye is red and sore but vision is fine", "eye_irritation"),
    ("the swelling is getting worse, day 4", "redness_swelling_worsening"),
    ("redness came back on day 5 after it had faded", "redness_swelling_worsening"),
    ("it was fine but now my face is swelling up again on day 5", "redness_swelling_worsening"),
    ("day 8 and still red", "redness_swelling_lasting"),
    ("two weeks out and still pink", "redness_swelling_lasting"),
    ("still swollen a week later", "redness_swelling_lasting"),
    ("new brown patches on my cheeks a month after", "pigment_change"),
    ("my skin is getting darker where you treated", "pigment_change"),
    ("lighter spots appeared on my chin", "pigment_change"),
    ("I see dark lines in a grid on my forehead", "pigment_change"),
    ("looks like melasma is coming up on my upper lip", "pigment_change"),
    ("I can feel small hard lumps under the skin 5 weeks later", "lumps_nodules"),
    ("firm bumps on my jaw that won't go away", "lumps_nodules"),
    ("bumps under the skin that feel hard, 6 weeks later", "lumps_nodules"),
    ("I feel really dizzy and lightheaded", "feeling_faint"),
]

ROUTINE = [
    ("my face is red like a sunburn tonight", "expected_redness_warmth"),
    ("skin is warm to the touch, treatment this afternoon", "expected_redness_warmth"),
    ("sooo red omg 🍅 day 0", "expected_redness_warmth"),
    ("skin is a bit swollen day 1", "expected_swelling"),
    ("Face is swollen and I look like a chipmunk lol, day 1", "expected_swelling"),
    ("very dry and peeling on day 4", "expected_dryness_flaking"),
    ("few tiny scabs on my forehead", "expected_dryness_flaking"),
    ("my cheeks feel rough", "expected_dryness_flaking"),
    ("feels tight and tender", "expected_discomfort"),
    ("mild stinging when I apply moisturiser", "expected_discomfort"),
    ("it hurts when I smile", "expected_discomfort"),
    ("bled a little during the session but it stopped", "expected_pinpoint_bleeding"),
    ("a couple of drops of blood when I washed, stopped right away", "expected_pinpoint_bleeding"),
]


@pytest.mark.parametrize(("text", "concept"), EMERGENCIES)
def test_emergencies(detector, text, concept):
    check(detector, text, "emergency", concept)


@pytest.mark.parametrize(("text", "concept"), URGENT)
def test_urgent_reports(detector, text, concept):
    check(detector, text, "urgent", concept)


@pytest.mark.parametrize(("text", "concept"), ROUTINE)
def test_expected_healing_is_routine(detector, text, concept):
    check(detector, text, "routine", concept)


def test_every_concept_is_exercised_by_a_case():
    covered = {concept for _, concept in EMERGENCIES + URGENT + ROUTINE}
    assert covered == {c.id for c in load_protocol().concepts}


# --- the replies ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "concept"), EMERGENCIES[::3])
def test_emergency_reply_sends_to_emergency_number_first(detector, text, concept):
    reply = detector.assess(text).reply
    assert reply is not None
    assert reply.startswith(f"Call {CLINIC.emergency_number} now")
    assert CLINIC.emergency_number in reply[:160]


@pytest.mark.parametrize(("text", "concept"), URGENT[::3])
def test_urgent_reply_gives_clinic_phone_and_says_team_alerted(detector, text, concept):
    reply = detector.assess(text).reply
    assert reply is not None
    assert CLINIC.phone in reply
    assert "clinic team has been alerted" in reply


def test_every_reply_is_filled_short_and_fits_its_severity(detector):
    for concept in detector.protocol.concepts:
        reply = CLINIC.fill(concept.reply)
        assert "{" not in reply and "}" not in reply, concept.id
        assert len(reply) <= 400, (concept.id, len(reply))
        assert CLINIC.phone in reply, concept.id
        if concept.severity == "emergency":
            assert reply.startswith(f"Call {CLINIC.emergency_number} now"), concept.id
        if concept.severity == "urgent":
            assert "alerted" in reply, concept.id
        if concept.severity == "routine":
            assert re.search(r"expected|normal|common", reply), concept.id


def test_no_red_flag_means_no_reply(detector):
    result = detector.assess("how many weeks go between my sessions?")
    assert result == TriageResult(level="none", concepts=[], reply=None)
    assert not result.escalates


def test_replies_use_the_clinic_profile_given(tmp_path):
    profile = CLINIC.__class__(**{**CLINIC.__dict__, "phone": "(555) 010-9999", "emergency_number": "112"})
    local = RedFlagDetector(clinic=profile)
    assert local.assess("my throat is closing").reply.startswith("Call 112 now")
    assert "(555) 010-9999" in local.assess("there is pus in the spots").reply


def test_concepts_are_listed_most_severe_first(detector):
    result = detector.assess("my face is red and itchy with hives and now my throat feels tight")
    assert result.concepts[0] == "allergy_airway"
    ranks = [
        LEVELS.index(next(c.severity for c in detector.protocol.concepts if c.id == cid))
        for cid in result.concepts
    ]
    assert ranks == sorted(ranks, reverse=True)
    assert "allergy_skin" in result.concepts


# --- negation -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("no fever and no pus, just a little red, day 2", "routine"),
        ("not bleeding anymore", "none"),
        ("there's no rash or lip swelling", "none"),
        ("without any pus or crusting", "none"),
        ("nothing like hives or welts", "none"),
        ("I don't have a fever", "none"),
        ("i dont have pus or fever or anything like that", "none"),
        ("there isn't any swelling", "none"),
        ("none of the bad stuff like pus or blisters", "none"),
        ("zero redness today 🙌", "none"),
        ("No, I'm not having trouble breathing", "none"),
        ("breathing is fine, face is a bit puffy", "routine"),
        ("my throat is not tight, my face is just red", "routine"),
        ("no trouble breathing at all, just tight skin", "routine"),
        ("respiro bien, solo un poco roja", "routine"),
        ("no tengo fiebre, solo un poco de ardor", "routine"),
        ("temperature is normal, just red", "routine"),
        ("red but not painful", "routine"),
        ("no blisters but lots of pus", "urgent"),
        ("not itchy, no hives, but my eyelid is swollen shut", "urgent"),
        ("it's not just red, it's oozing yellow stuff", "urgent"),
        ("not sure if this is normal, but there's yellow crust on my chin", "urgent"),
        ("not to be dramatic but my throat is closing", "emergency"),
        ("no puedo respirar bien y tengo la cara hinchada", "emergency"),
        ("I can't breathe properly", "emergency"),
    ],
)
def test_negation(detector, text, level):
    check(detector, text, level)


# --- questions, hypotheticals, other people, the past, figures of speech ---------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "what should I do if I get a rash?",
        "is it normal to bleed during microneedling?",
        "can microneedling cause cold sores?",
        "how will I know if it's infected?",
        "what does an infection look like?",
        "could I have an allergic reaction to the numbing cream?",
        "are allergic reactions common?",
        "is there a risk of infection with microneedling?",
        "what if it gets infected",
        "if my lips swell, what do I do?",
        "if I see pus should I call?",
        "Hypothetically, if my throat got tight, should I call 911?",
        "Before my treatment I want to know: what are the chances of a bad reaction?",
        "How would I know if I'm having an allergic reaction?",
        "What should I do if my skin starts peeling in sheets?",
        "I read that some people get infections, how common is that?",
        "people online say it can cause infections, true?",
        "My friend said her face was swollen for a week, is that normal?",
        "my sister got hives from a facial once, should I worry?",
        "my mom had microneedling last year and got an infection, I'm nervous",
        "I usually get cold sores when stressed, should I take something before?",
        "my cousin got burned by a laser once, is microneedling safer?",
        "Is bleeding during the session normal?",
        "Does it usually bleed a lot?",
        "do you have an emergency number in case something goes wrong?",
        "my skin is so glowy I can't breathe",
        "I'm dying to know when I can wear makeup",
        "my skin is glowing, I'm dead 😂",
        "the price gave me a heart attack lol",
        "I can't breathe through my nose because of a cold, can I still come?",
        "Thank you! No more redness and my skin feels great",
        "all healed, no scabs or redness left",
    ],
)
def test_questions_hypotheticals_and_figures_are_not_reports(detector, text):
    check(detector, text, "none")


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("can I wear makeup tomorrow? also there's pus", "urgent"),
        ("thanks for the tips! btw my throat feels tight", "emergency"),
        ("when can I go to the gym? my lip has little blisters", "urgent"),
        ("booking my next session, also I have hives on my neck", "urgent"),
        ("is this an allergic reaction? hives all over my neck", "urgent"),
        ("should I be worried about these yellow crusts on my chin?", "urgent"),
        ("how long will these blisters last?", "urgent"),
        ("why is my face still red 10 days later?", "urgent"),
        ("Is it normal that my lips are swollen and my throat feels tight?", "emergency"),
        ("what do I do about the bleeding, it won't stop", "emergency"),
        ("blister or pimple?? tingly spot on my lip with tiny blisters grouped together", "urgent"),
        ("what cream helps the itch? I've got a rash on both cheeks", "urgent"),
        ("dry and peeling, can I use a scrub? day 4", "routine"),
    ],
)
def test_questions_that_carry_a_report(detector, text, level):
    check(detector, text, level)


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("my daughter had her treatment today and she's struggling to breathe", "emergency"),
        ("husband had microneedling this morning, now his lips are huge and he's wheezing", "emergency"),
        ("Asking for my sister: she had it done yesterday and her throat feels tight", "emergency"),
        ("My son (17) had the treatment today, his eye is watering and red", "urgent"),
        ("my friend had microneedling at your clinic and now she has pus bumps", "urgent"),
        ("last time I had a reaction but this time my face is covered in hives", "urgent"),
    ],
)
def test_reports_about_the_patient_by_someone_else_count(detector, text, level):
    check(detector, text, level)


# --- typos, SMS style, Spanish ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("cant breath!!", "emergency"),
        ("pls help cant breathe", "emergency"),
        ("my throaat is tigth", "emergency"),
        ("swolen tounge", "emergency"),
        ("wheezng", "emergency"),
        ("im sooo dizzy and my lips r swollen n tingly and its hard to breath", "emergency"),
        ("blistres on my lip", "urgent"),
        ("infecton on my cheek i think", "urgent"),
        ("hievs everywhere", "urgent"),
        ("i think im allergik to the serum, face is blotchy and itchy", "urgent"),
        ("face is sooooo red 😭😭", "routine"),
    ],
)
def test_typos_and_sms_spelling(detector, text, level):
    check(detector, text, level)


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("me cuesta respirar", "emergency"),
        ("siento la garganta cerrada y no puedo tragar", "emergency"),
        ("me siento mareada, se me hincha la lengua", "emergency"),
        ("tengo dolor en el pecho", "emergency"),
        ("me desmayé", "emergency"),
        ("veo borroso desde ayer", "emergency"),
        ("no para de sangrar", "emergency"),
        ("tengo ronchas en la cara", "urgent"),
        ("tengo fiebre", "urgent"),
        ("me salieron granitos con pus", "urgent"),
        ("tengo ampollitas en el labio y me arde", "urgent"),
        ("dolor insoportable", "urgent"),
        ("tengo la cara muy roja e hinchada desde hace 10 días", "urgent"),
        ("la piel está seca y se está pelando", "routine"),
        ("tengo la cara un poco hinchada, me lo hice ayer", "routine"),
        ("¿es normal tener la cara roja?", "none"),
    ],
)
def test_spanish(detector, text, level):
    check(detector, text, level)


# --- treatment-day rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day", "level"),
    [
        ("red and puffy", 2, "routine"),
        ("red and puffy", 9, "urgent"),
        ("red and puffy", None, "routine"),
        ("swelling is getting worse", 1, "routine"),
        ("swelling is getting worse", 4, "urgent"),
        ("swelling is getting worse", None, "urgent"),
        ("whiteheads on my cheeks", 1, "none"),
        ("whiteheads on my cheeks", 4, "urgent"),
        ("bleeding from a couple of spots", 0, "routine"),
        ("bleeding from a couple of spots", 2, "urgent"),
        ("the pain gets worse each day", 0, "routine"),
        ("the pain gets worse each day", 3, "urgent"),
        ("slightly puffy on day 3 but getting better", None, "routine"),
        ("the swelling hasn't gone down at all", 5, "routine"),
    ],
)
def test_day_rules_with_known_treatment_day(detector, text, day, level):
    check(detector, text, level, day=day)


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("it's been 10 days and my face is still puffy", "urgent"),
        ("1 week post and still red", "urgent"),
        ("a fortnight later still pink", "urgent"),
        ("Week 2 and still red", "urgent"),
        ("nearly 2 weeks and my face is still red", "urgent"),
        ("3 weeks since microneedling and my cheeks are still red", "urgent"),
        ("face puffy this morning, had it done yesterday", "routine"),
        ("my face is swollen, treatment 5 hours ago", "routine"),
    ],
)
def test_day_rules_with_day_in_the_message(detector, text, level):
    check(detector, text, level)


def test_day_from_the_conversation_wins_over_the_message(detector):
    assert detector.assess("still red, day 2", day=12).level == "urgent"


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("day 6 and still pink", 6),
        ("day-3 now", 3),
        ("3 weeks later", 21),
        ("a week out", 7),
        ("1 week out", 7),
        ("2 days ago", 2),
        ("had it done yesterday", 1),
        ("treatment this morning", 0),
        ("my session was today", 0),
        ("48 hrs later", 2),
        ("it's been 4 days", 4),
        ("since 10 days", 10),
        ("a couple weeks after", 14),
        ("hace 3 días me lo hice", 3),
        ("me lo hice ayer", 1),
        ("redness started 2 days ago, treatment was 2 weeks ago", 14),
        ("fever since yesterday", None),
        ("my appointment is next week", None),
        ("how long should i wait", None),
    ],
)
def test_day_mentioned_in_text(text, day):
    assert mentioned_treatment_day(normalise_text(text)) == day


# --- text clean-up and typo tolerance -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Cnt breathe 🆘🆘", "can not breathe"),
        ("I'm sooooo itchy", "i am so itchy"),
        ("throat itchy n tight", "throat itchy and tight"),
        ("face swolen w/ hives", "face swollen with hives"),
        ("doesn't hurt, won't stop", "does not hurt, will not stop"),
        ("fever 40°C", "fever 40"),
        ("día 3, me duele muchísimo", "dia 3, me duele muchisimo"),
        ("fluid-filled bumps, pink/red", "fluid filled bumps, pink / red"),
    ],
)
def test_normalise_text(raw, clean):
    assert normalise_text(raw) == clean


@pytest.mark.parametrize(
    "forms",
    [
        ("swell", "swelling", "swollen", "swells", "swelled"),
        ("breathe", "breathing", "breath", "breathed"),
        ("itch", "itchy", "itching", "itches", "itchiness"),
        ("blister", "blisters", "blistering", "blistered"),
        ("flaky", "flakey", "flaking", "flakes"),
        ("ooze", "oozing", "oozed"),
        ("tingle", "tingly", "tingling"),
        ("puffy", "puffiness", "puffed"),
        ("crust", "crusty", "crusted", "crusts"),
    ],
)
def test_inflections_share_a_stem(forms):
    assert len({stem(word) for word in forms}) == 1, {word: stem(word) for word in forms}


def test_different_words_keep_different_stems():
    assert stem("weeks") != stem("weeps")
    assert stem("tender") != stem("tend")
    assert stem("bleed") != stem("blood")


def test_typo_corrector_only_fixes_near_misses_of_protocol_words():
    corrector = TypoCorrector(surface_words={"allergic", "blisters", "swelling", "tight", "swell", "mouth"})
    assert corrector.correct("allergick") == "allergic"
    assert corrector.correct("blistres") == "blisters"
    assert corrector.correct("swellng") == "swelling"
    assert corrector.correct("tigth") == "tight"
    assert corrector.correct("light") is None  # a real word, and a different first letter
    assert corrector.correct("smell") is None  # common word one letter from "swell"
    assert corrector.correct("months") is None  # two edits from "mouth"
    assert corrector.correct("pus") is None  # too short to guess
    assert corrector.correct("xyzzyq") is None


# --- the protocol file ----------------------------------------------------------------------------------


def test_bundled_protocol_is_valid_and_ordered():
    protocol = load_protocol()
    ids = [c.id for c in protocol.concepts]
    assert len(ids) == len(set(ids))
    assert {"allergy_airway", "infection", "cold_sore", "expected_redness_warmth"} <= set(ids)
    severities = [c.severity for c in protocol.concepts]
    assert severities == sorted(severities, key=["emergency", "urgent", "routine"].index)
    assert DEFAULT_PROTOCOL.read_text(encoding="utf-8").startswith("#")


def _write_protocol(tmp_path: Path, mutate) -> Path:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    data = yaml.load(DEFAULT_PROTOCOL.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
    mutate(data)
    path = tmp_path / "redflags.yml"
    path.write_text(yaml.dump(data, Dumper=dumper, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["concepts"][0].update(severity="critical"), "severity"),
        (lambda d: d["concepts"][0].update(reply="Please rest. {clinic_phone}"), "emergency reply"),
        (lambda d: d["concepts"][6].update(reply="This may be an allergy."), "clinic_phone"),
        (lambda d: d["concepts"][0]["rules"][0]["any"].append("<no_such_group>"), "unknown word group"),
        (lambda d: d["concepts"][0].update(reply="Call {emergency_number} now {doctor}"), "placeholders"),
        (lambda d: d["concepts"][1].update(id=d["concepts"][0]["id"]), "duplicate"),
        (lambda d: d["concepts"][0]["rules"].append({"any": ["rash"], "within": "paragraph"}), "within"),
        (lambda d: d["word_groups"]["lips"].append("<mouths>"), "unknown word group"),
        (lambda d: d["reading"].update(negations=["no"]), "unknown lists"),
        (lambda d: d["concepts"][0]["rules"].append({"any": ["rash"], "from_day": -1}), "from_day"),
        (lambda d: d["concepts"][0]["rules"].append({"every": ["rash"]}), "unknown keys"),
    ],
)
def test_invalid_protocol_is_refused_with_a_clear_message(tmp_path, mutate, message):
    with pytest.raises(ProtocolError, match=message):
        load_protocol(_write_protocol(tmp_path, mutate))


def test_a_clinician_edit_takes_effect(tmp_path):
    def add_concept(data):
        data["concepts"].insert(
            6,
            {
                "id": "nausea",
                "label": "Nausea or vomiting",
                "severity": "urgent",
                "rules": [{"any": ["nausea|nauseous|vomiting|vomit"]}],
                "reply": "Feeling sick after treatment should be checked. Call {clinic_phone}; "
                "the clinic team has been alerted.",
            },
        )

    edited = RedFlagDetector(protocol_path=_write_protocol(tmp_path, add_concept))
    result = edited.assess("been vomiting since I got home")
    assert (result.level, result.concepts) == ("urgent", ["nausea"])


# --- speed ----------------------------------------------------------------------------------------------


def test_assessment_is_fast(detector):
    messages = [text for text, _ in EMERGENCIES + URGENT + ROUTINE]
    detector.assess(messages[0])
    started = time.perf_counter()
    for text in messages:
        detector.assess(text)
    per_message_ms = 1000 * (time.perf_counter() - started) / len(messages)
    assert per_message_ms < 20, per_message_ms  # typically ~3 ms; generous for slow CI machines
