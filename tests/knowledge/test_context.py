"""What a question says about the conversation: its stage, whether it leans on the previous question, and a
patient correcting the stage of what they just asked."""

from __future__ import annotations

import pytest

from knowledge.context import AFTER, BEFORE, corrected_stage, is_follow_up, question_stage


@pytest.mark.parametrize(
    ("text", "stage"),
    [
        ("can I wear makeup the day after?", AFTER),
        ("should I stop retinol before my appointment?", BEFORE),
        ("can I wear makeup?", None),
        # a correction's bare word is its stage
        ("sorry, I meant before", BEFORE),
        ("no wait, after", AFTER),
        # without a correction, a bare "before" says nothing about the treatment ("before bed")
        ("before bed?", None),
    ],
)
def test_the_stage_a_question_is_about(text, stage) -> None:
    assert question_stage(text) == stage


@pytest.mark.parametrize(
    ("text", "stage"),
    [
        ("sorry I meant after", AFTER),
        ("oops, I meant before my treatment", BEFORE),
        ("actually before", BEFORE),
        # not bare: a question of its own is answered as one
        ("sorry I meant before, should I stop my glycolic pads and my retinol too?", None),
        # not a correction
        ("before my appointment?", None),
        ("sorry to bother you", None),
    ],
)
def test_a_bare_correction_gives_the_stage(text, stage) -> None:
    assert corrected_stage(text) == stage


def test_a_long_stage_correction_is_a_follow_up() -> None:
    text = "no wait, I mean in the weeks before, I'm off to Greece before my appointment"
    assert is_follow_up(text)
    assert not is_follow_up("I'm off to Greece in the weeks before my appointment, what should I pack")
