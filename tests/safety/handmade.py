"""A real `LearnedLayer` over a hand-made embedder, so a test puts the layer's probabilities exactly where the
behaviour under test needs them (STYLE.md: learned and retrieval code is unit-tested with a tiny embedder;
the real model is exercised through the product in tests/e2e and measured by `make eval`)."""

from __future__ import annotations

import math

import numpy as np

from safety.bank import Example
from safety.learned import LearnedLayer, Thresholds, _Head

Verdict = tuple[float, float, float]  # (P(urgent or emergency), P(emergency), P(off-topic))
CALM: Verdict = (0.01, 0.01, 0.01)  # an ordinary message
THRESHOLDS = Thresholds(escalate=0.6, emergency=0.6, unsure=0.3)
EXAMPLES = [
    Example("e1", "lips and throat swelling", "airway_breathing", "emergency"),
    Example("e2", "pus on my cheek", "local_infection", "urgent"),
    Example("e3", "my car broke down", "offtopic", "none"),
]


def logit(p: float) -> float:
    return math.log(p / (1 - p))


class HandMadeEmbedder:
    """Embeds a text as the logits of the verdict given for the first word of `verdicts` it contains
    (`CALM` if none); the heads of `learned_layer` read one dimension each, so the layer's probabilities
    are exactly the verdict's. Remembers what it was asked to embed."""

    model_name = "hand-made"

    def __init__(self, verdicts: dict[str, Verdict] | None = None) -> None:
        self.verdicts = verdicts or {}
        self.seen: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.seen += texts
        rows = []
        for text in texts:
            verdict = next((v for word, v in self.verdicts.items() if word in text), CALM)
            rows.append([logit(p) for p in verdict])
        return np.array(rows, dtype=np.float32)


class BrokenEmbedder(HandMadeEmbedder):
    """The model file went missing after start-up."""

    def encode(self, texts: list[str]) -> np.ndarray:
        raise RuntimeError("the model file is gone")


def learned_layer(embedder: HandMadeEmbedder) -> LearnedLayer:
    heads = {
        name: _Head(np.eye(3, dtype=np.float32)[i : i + 1], np.ones(1, dtype=np.float32), 0.0)
        for i, name in enumerate(("escalate", "emergency", "offtopic"))
    }
    vectors = np.eye(3, dtype=np.float32)  # the bank's examples, one along each dimension
    return LearnedLayer(embedder, heads, THRESHOLDS, EXAMPLES, vectors)
