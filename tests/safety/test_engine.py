"""The triage engine: the rules and the learned layer together, the highest level wins; what counts before a
treatment and in messages that are not about health; unsure reports; the conversation read as one report.

The learned layer here is the real `LearnedLayer` (heads, thresholds, nearest examples) over a hand-made
embedder (tests/safety/handmade.py) that puts its probabilities where each case needs them.
"""

from __future__ import annotations

import copy
import logging
from datetime import date

import pytest

from knowledge.clinic import load_clinic_profile
from safety.engine import NO_TRIAGE, Triage, TriageEngine
from tests.safety.handmade import EXAMPLES, BrokenEmbedder, HandMadeEmbedder, learned_layer

CLINIC = load_clinic_profile()
TODAY = date(2026, 3, 2)

URGENT = "there is yellow pus coming out of my chin"
EMERGENCY = "my lips are swelling and my throat feels tight"
ROUTINE = "my face is a bit red today"
NO_SYMPTOM_WORD = "something feels very wrong"
ALL_NEGATED = "no fever and no swelling"
BEFORE_TREATMENT = "my session is on the 14th, I have a cold sore, should I still come?"
BEFORE_TREATMENT_EMERGENCY = "my session is on the 14th and my throat feels tight and my lips are swelling"
PAINT = "the paint is peeling off my fence"  # everyday words the protocol would read as dryness
SKIN = "my skin is peeling"
SOURDOUGH = "my sourdough collapsed in the oven"  # "collapsed" is an emergency word


@pytest.fixture(scope="module")
def rules_only() -> TriageEngine:
    return TriageEngine(CLINIC)


@pytest.fixture
def engine_with(rules_only: TriageEngine):
    """The engine with a learned layer that says `verdicts` (word -> probabilities) about what it reads."""

    def make(verdicts: dict[str, tuple[float, float, float]] | None = None, broken: bool = False):
        engine = copy.copy(rules_only)
        embedder = (BrokenEmbedder if broken else HandMadeEmbedder)(verdicts or {})
        engine.learned = learned_layer(embedder)
        return engine

    return make


# --- the rules ----------------------------------------------------------------------------------------


def test_a_red_flag_gets_its_sign_and_the_protocol_reply_with_the_clinics_phone(rules_only) -> None:
    triage = rules_only.assess(URGENT)

    assert (triage.level, triage.signs[0]) == ("urgent", "local_infection")
    assert triage.reply == rules_only.reply_for("local_infection")
    assert CLINIC.phone in triage.reply and "{" not in triage.reply
    assert triage.escalates and not triage.unsure
    assert triage.layers == {"rules": "urgent"}


def test_an_emergency_leads_with_its_most_severe_sign(rules_only) -> None:
    triage = rules_only.assess(EMERGENCY)

    assert triage.level == "emergency" and triage.signs[0] == "airway_breathing"
    assert triage.reply.startswith(f"Call {CLINIC.emergency_number}")


def test_an_expected_effect_is_routine_and_does_not_escalate(rules_only) -> None:
    triage = rules_only.assess(ROUTINE)

    assert (triage.level, triage.signs) == ("routine", ("expected_redness",))
    assert triage.reply and not triage.escalates


def test_a_message_without_a_sign_has_no_level_and_no_reply(rules_only) -> None:
    triage = rules_only.assess("can I wear makeup tomorrow?")

    assert (triage.level, triage.signs, triage.reply, triage.escalates) == ("none", (), None, False)


def test_the_known_treatment_day_turns_late_redness_into_a_red_flag(rules_only) -> None:
    assert rules_only.assess("my face is a bit red", day=2).level == "routine"
    late = rules_only.assess("my face is a bit red", day=6)
    assert (late.level, late.signs) == ("urgent", ("prolonged_effects",))


def test_the_patients_language_is_kept_for_the_reply(rules_only) -> None:
    assert rules_only.assess("me sale pus de la barbilla desde ayer").language == "es"
    assert rules_only.assess(URGENT).language == "en"


def test_reply_for_gives_the_protocols_advice_and_the_learned_layers_own(rules_only) -> None:
    protocol_reply = rules_only.reply_for("local_infection")
    learned_emergency = rules_only.reply_for("learned_emergency")
    learned_urgent = rules_only.reply_for("learned_urgent")

    assert protocol_reply == CLINIC.fill(rules_only.protocol.sign("local_infection").reply)
    assert learned_emergency == CLINIC.fill(rules_only.protocol.wording["learned_emergency"])
    assert learned_urgent == CLINIC.fill(rules_only.protocol.wording["learned_urgent"])
    assert learned_emergency.startswith(f"Call {CLINIC.emergency_number} now")
    assert CLINIC.phone in learned_urgent and learned_urgent != learned_emergency


# --- the learned layer: it may raise, never lower -----------------------------------------------------


def test_the_learned_layer_raises_a_report_the_rules_have_no_words_for(engine_with) -> None:
    engine = engine_with({"wrong": (0.9, 0.05, 0.01)})
    triage = engine.assess(NO_SYMPTOM_WORD)

    assert (triage.level, triage.signs) == ("urgent", ("learned_urgent",))
    assert triage.reply == engine.reply_for("learned_urgent")
    assert triage.layers == {"rules": "none", "learned": "urgent"}


def test_the_learned_layer_reads_only_what_the_message_reports(engine_with) -> None:
    engine = engine_with()
    engine.assess("I can breathe fine, no throat tightness, it's just puffy")

    [read] = engine.learned.embedder.seen
    assert "puffy" in read and "breathe" not in read and "tightness" not in read


def test_the_learned_layer_cannot_lower_the_rules(engine_with) -> None:
    triage = engine_with().assess(EMERGENCY)

    assert (triage.level, triage.signs[0]) == ("emergency", "airway_breathing")
    assert triage.layers == {"rules": "emergency", "learned": "none"}


def test_a_learned_emergency_outranks_an_urgent_rule_and_keeps_both_signs(engine_with) -> None:
    engine = engine_with({"pus": (0.95, 0.9, 0.01)})
    triage = engine.assess(URGENT)

    assert triage.level == "emergency"
    assert triage.signs == ("learned_emergency", "local_infection")
    assert triage.reply == engine.reply_for("learned_emergency")


def test_a_learned_urgent_under_an_emergency_rule_adds_its_sign_after(engine_with) -> None:
    triage = engine_with({"throat": (0.9, 0.1, 0.01)}).assess(EMERGENCY)

    assert triage.level == "emergency" and triage.signs[0] == "airway_breathing"
    assert triage.signs[-1] == "learned_urgent"
    assert triage.reply == engine_with().reply_for("airway_breathing")


def test_symptoms_the_patient_denies_cannot_be_raised_by_the_learned_layer(engine_with) -> None:
    engine = engine_with({"": (0.9, 0.9, 0.01)})  # whatever it reads, the layer would say emergency

    assert engine.assess(ALL_NEGATED).level == "none"
    assert engine.assess(NO_SYMPTOM_WORD).level == "emergency", "no symptom words at all: it may raise"


def test_a_failing_learned_layer_leaves_the_rules_verdict_and_logs_no_patient_text(
    engine_with, caplog
) -> None:
    with caplog.at_level(logging.ERROR, logger="safety.engine"):
        triage = engine_with(broken=True).assess(URGENT)

    assert (triage.level, triage.signs) == ("urgent", ("local_infection",))
    assert [r.getMessage() for r in caplog.records] == ["learned triage layer failed: RuntimeError"]


# --- before a treatment only emergencies count --------------------------------------------------------


def test_before_the_treatment_an_urgent_sign_is_not_a_complication(rules_only) -> None:
    before = rules_only.assess(BEFORE_TREATMENT, today=TODAY)

    assert (before.level, before.signs, before.reply) == ("none", (), None)
    assert rules_only.assess(BEFORE_TREATMENT, day=3, today=TODAY).level == "urgent", "a known day wins"


def test_before_the_treatment_an_emergency_still_counts(engine_with) -> None:
    triage = engine_with().assess(BEFORE_TREATMENT_EMERGENCY, today=TODAY)

    assert triage.level == "emergency" and triage.signs[0] == "airway_breathing"


@pytest.mark.parametrize(
    "text",
    [
        "I get cold sores now and then and I have one now. Should I take tablets before my appointment?",
        "booked in for friday, my cheek has a cold sore, can I keep using retinol?",
        "microneedling is on friday, my cheek has a cold sore",
    ],
)
def test_a_treatment_still_to_come_is_read_against_the_date_given(rules_only, text) -> None:
    triage = rules_only.assess(text, today=TODAY)

    assert not triage.escalates, "before a treatment a cold sore is not a complication"


def test_before_the_treatment_the_learned_layer_raises_emergencies_only(engine_with) -> None:
    text = "my session is on the 14th and I feel off"
    urgent = engine_with({"off": (0.9, 0.1, 0.01)}).assess(text, today=TODAY)
    unsure = engine_with({"off": (0.4, 0.1, 0.01)}).assess(text, today=TODAY)
    emergency = engine_with({"off": (0.9, 0.9, 0.01)}).assess(text, today=TODAY)

    assert (urgent.level, urgent.unsure) == ("none", False)
    assert urgent.layers == {"rules": "none", "learned": "none"}, "the learned layer was asked and kept quiet"
    assert (unsure.level, unsure.unsure) == ("none", False)
    assert (emergency.level, emergency.signs) == ("emergency", ("learned_emergency",))


# --- messages that are not about health ----------------------------------------------------------------


def test_everyday_words_are_not_symptoms_when_the_message_is_not_about_health(engine_with) -> None:
    assert engine_with({"paint": (0.01, 0.01, 0.6)}).assess(PAINT).level == "none"
    assert engine_with({"paint": (0.01, 0.01, 0.4)}).assess(PAINT).level == "routine", "unsure: rules stand"


def test_a_health_word_keeps_the_symptoms_unless_the_layer_is_sure_it_is_off_topic(engine_with) -> None:
    assert engine_with({"skin": (0.01, 0.01, 0.6)}).assess(SKIN).level == "routine"
    assert engine_with({"skin": (0.01, 0.01, 0.9)}).assess(SKIN).level == "none"


def test_a_known_treatment_day_means_the_message_is_read_for_symptoms(engine_with) -> None:
    assert engine_with({"paint": (0.01, 0.01, 0.99)}).assess(PAINT, day=2).level == "routine"


def test_an_off_topic_emergency_word_is_dropped_only_when_the_layer_is_all_but_certain(engine_with) -> None:
    certain = engine_with({"sourdough": (0.01, 0.01, 0.97)}).assess(SOURDOUGH)
    fairly_sure = engine_with({"sourdough": (0.01, 0.01, 0.9)}).assess(SOURDOUGH)
    sees_an_emergency = engine_with({"sourdough": (0.01, 0.2, 0.97)}).assess(SOURDOUGH)

    assert (certain.level, certain.signs) == ("none", ())
    assert fairly_sure.level == "emergency" and fairly_sure.signs == ("seizure_collapse",)
    assert sees_an_emergency.level == "emergency"


def test_an_emergency_in_a_message_about_health_is_never_dropped(engine_with) -> None:
    triage = engine_with({"throat": (0.01, 0.01, 0.99)}).assess(EMERGENCY)

    assert triage.level == "emergency" and triage.signs == ("airway_breathing",)


# --- unsure reports ------------------------------------------------------------------------------------


def test_a_symptom_report_no_layer_can_place_is_unsure(engine_with) -> None:
    triage = engine_with({"weird": (0.4, 0.05, 0.1)}).assess("i feel weird")

    assert (triage.level, triage.unsure, triage.reply) == ("none", True, None)
    assert triage.layers == {"rules": "none", "learned": "none"}


def test_a_message_that_only_says_when_the_treatment_was_is_not_weighed_by_the_learned_layer(
    engine_with,
) -> None:
    engine = engine_with({"microneedling": (0.95, 0.9, 0.01), "tired": (0.95, 0.9, 0.01)})

    assert engine.assess("I had microneedling 3 days ago", today=TODAY) == Triage(
        "none", language="en", layers={"rules": "none"}
    )
    # Anything more than when, and the learned layer reads it.
    assert engine.assess("I had microneedling 3 days ago and I feel tired", today=TODAY).escalates


def test_a_grey_zone_message_that_is_probably_off_topic_is_not_unsure(engine_with) -> None:
    assert engine_with({"weird": (0.4, 0.05, 0.55)}).assess("i feel weird").unsure is False
    assert engine_with({"weird": (0.1, 0.05, 0.1)}).assess("i feel weird").unsure is False


def test_an_unsure_expected_effect_stays_routine_and_unsure(engine_with) -> None:
    triage = engine_with({"red": (0.4, 0.05, 0.1)}).assess(ROUTINE)

    assert (triage.level, triage.unsure, triage.signs) == ("routine", True, ("expected_redness",))


def test_a_red_flag_is_never_unsure(engine_with) -> None:
    triage = engine_with({"pus": (0.4, 0.05, 0.1)}).assess(URGENT)

    assert (triage.level, triage.unsure) == ("urgent", False)


# --- the conversation read as one report ----------------------------------------------------------------


def test_a_symptom_and_its_worrying_feature_in_two_messages_are_one_red_flag(rules_only) -> None:
    messages = ["my face is really red.", "it's hot and the red is spreading down my neck"]
    triage = rules_only.assess_conversation(messages, None)

    assert (triage.level, triage.signs[0]) == ("urgent", "local_infection")
    assert triage.reply == rules_only.reply_for("local_infection")
    assert triage.layers == {"conversation": "urgent"}
    assert rules_only.assess(messages[0]).level == "routine", "neither message alone says it"


def test_the_conversation_applies_the_known_day_and_the_last_messages_language(rules_only) -> None:
    late = rules_only.assess_conversation(["hi", "my face is a bit red"], day=6)
    spanish = rules_only.assess_conversation(
        ["hello", "it was done on monday", "me sale pus de la barbilla desde ayer"], None
    )

    assert late.signs == ("prolonged_effects",)
    assert spanish.language == "es"


def test_a_conversation_with_no_messages_is_no_triage(rules_only) -> None:
    assert rules_only.assess_conversation([], None) == NO_TRIAGE
    assert NO_TRIAGE.level == "none" and not NO_TRIAGE.escalates


def test_the_message_level_leaves_out_what_only_the_conversation_adds(rules_only) -> None:
    history = ["my face is really red"]
    text = "it's hot and the red is spreading down my neck"
    alone = rules_only.assess(text)
    together = alone.raised_by(rules_only.assess_conversation([*history, text], None))

    assert together.level == "urgent"
    assert together.message_level == alone.level
    assert Triage("urgent", layers={"conversation": "urgent"}).message_level == "none"


def test_raising_keeps_the_signs_of_both_once_and_the_reply_of_the_higher() -> None:
    urgent = Triage("urgent", ("local_infection", "fever"), "call today", layers={"rules": "urgent"})
    emergency = Triage("emergency", ("airway", "fever"), "call 911", layers={"learned": "emergency"})

    raised = urgent.raised_by(emergency)
    assert raised.level == "emergency"
    assert raised.signs == ("airway", "fever", "local_infection")
    assert raised.reply == "call 911"
    assert raised.layers == {"rules": "urgent", "learned": "emergency"}
    assert emergency.raised_by(urgent).signs == raised.signs


def test_raising_by_a_level_without_advice_keeps_the_advice_there_is() -> None:
    routine = Triage("routine", ("expected_redness",), "this is normal", layers={"rules": "routine"})
    clarified = Triage("urgent", ("x",), None, layers={"clarifying": "urgent"})

    assert routine.raised_by(clarified).reply == "this is normal"
    assert routine.raised_by(Triage("none", unsure=True)).unsure is True
    assert routine.raised_by(Triage("none", unsure=True)).level == "routine"


def test_the_same_layer_reported_twice_keeps_the_higher_verdict() -> None:
    lower = Triage("routine", layers={"rules": "routine"})
    higher = Triage("urgent", ("x",), "r", layers={"rules": "urgent"})

    assert lower.raised_by(higher).layers == {"rules": "urgent"}
    assert higher.raised_by(lower).layers == {"rules": "urgent"}


def test_the_patients_language_is_the_one_of_the_message_being_raised() -> None:
    spanish = Triage("none", language="es")
    assert spanish.raised_by(Triage("urgent", ("x",), "r")).language == "es"


# --- explaining -----------------------------------------------------------------------------------------


def test_explain_shows_each_layers_verdict_the_words_behind_it_and_the_nearest_examples(engine_with) -> None:
    engine = engine_with({"pus": (0.9004, 0.1004, 0.0204)})  # shown to three decimals
    explained = engine.explain(URGENT)

    assert (explained["level"], explained["signs"]) == ("urgent", ["local_infection", "learned_urgent"])
    assert explained["unsure"] is False and explained["language"] == "en"
    assert explained["rules"]["level"] == "urgent" and explained["rules"]["signs"] == ["local_infection"]
    assert explained["rules"]["about_health"] is True
    assert any(
        line.startswith("local_infection: ") and "pus" in line for line in explained["rules"]["because"]
    )
    assert explained["reported_words"] == URGENT
    learned = explained["learned"]
    assert learned["level"] == "urgent"
    assert (learned["p_urgent_or_emergency"], learned["p_emergency"], learned["p_off_topic"]) == (
        0.9,
        0.1,
        0.02,
    )
    assert learned["thresholds"] == {"escalate": 0.6, "emergency": 0.6, "unsure": 0.3}
    # The bank's vectors lie along the three dimensions, so the similarities are the message's own logits.
    nearest = learned["nearest_examples"]
    assert [(n["text"], n["label"], n["level"]) for n in nearest] == [
        (e.text, e.label, e.level) for e in (EXAMPLES[0], EXAMPLES[1], EXAMPLES[2])
    ]
    assert [n["similarity"] for n in nearest] == [2.202, -2.193, -3.872]
    assert explained["reply"] == engine.reply_for("local_infection")


def test_explain_without_a_learned_layer_says_so(rules_only) -> None:
    explained = rules_only.explain(ROUTINE, day=2)

    assert explained["learned"] is None
    assert (explained["level"], explained["signs"]) == ("routine", ["expected_redness"])


def test_explain_reads_the_message_with_the_treatment_day(engine_with) -> None:
    explained = engine_with().explain(ROUTINE, day=6)

    assert explained["rules"]["level"] == "urgent" and explained["level"] == "urgent"
    assert explained["signs"][0] == "prolonged_effects"


# --- building the engine ------------------------------------------------------------------------------


def test_an_engine_uses_the_protocol_and_layer_it_is_given_and_fills_in_the_clinic(engine_with) -> None:
    from safety.protocol import load_protocol

    protocol, layer = load_protocol(), engine_with().learned
    engine = TriageEngine(CLINIC, protocol, layer)

    assert engine.protocol is protocol and engine.rules.protocol is protocol and engine.learned is layer
    for sign in ("learned_urgent", "learned_emergency"):
        assert CLINIC.phone in engine.reply_for(sign) or CLINIC.emergency_number in engine.reply_for(sign)
    # The rules know everyday English, so typo tolerance does not turn "breeding" into "bleeding".
    assert engine.rules.assess("my kids are breeding hamsters").level == "none"


def test_loading_the_learned_layer_trains_it_once_per_protocol_and_it_then_raises(
    tmp_path, monkeypatch
) -> None:
    from dataclasses import replace

    from safety.learned import LearnedLayer
    from safety.protocol import load_protocol
    from tests.safety.test_learned import WordEmbedder, bank

    monkeypatch.setattr("safety.learned.training_examples", bank)  # a tiny bank and embedder
    trained = []
    train = LearnedLayer.train.__func__
    monkeypatch.setattr(
        LearnedLayer, "train", classmethod(lambda cls, *a, **k: trained.append(1) or train(cls, *a, **k))
    )
    engine = TriageEngine(CLINIC)
    engine.load_learned_layer(WordEmbedder(), tmp_path)
    again = TriageEngine(CLINIC)
    again.load_learned_layer(WordEmbedder(), tmp_path)

    assert len(trained) == 1, "the second engine loads the saved layer"
    assert engine.learned is not None and again.learned is not None
    assert engine.learned.examples == bank()
    assert again.learned.thresholds == engine.learned.thresholds
    assert "learned_emergency" in engine.assess("my throat is closing").signs
    # An edited protocol reads messages differently: its layer is trained anew.
    edited = TriageEngine(CLINIC, replace(load_protocol(), fingerprint="edited"))
    edited.load_learned_layer(WordEmbedder(), tmp_path)
    assert len(trained) == 2 and len(list(tmp_path.glob("learned-*.npz"))) == 2
