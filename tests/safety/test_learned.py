"""The learned layer's heads and their training, on a tiny bank and a tiny embedder (the real model's
figures come from `make eval`)."""

from __future__ import annotations

import zlib

import numpy as np

from safety.bank import Example
from safety.learned import LearnedLayer, _Head

WORDS = ("throat", "closing", "pus", "yellow", "red", "pink", "car", "bank")


class WordEmbedder:
    """A text as the normalised counts of a few words, plus a little noise so no two vectors coincide."""

    model_name = "words"

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = []
        for text in texts:
            counts = np.array([text.count(word) for word in WORDS], dtype=np.float32) + 0.05
            counts += np.random.default_rng(zlib.crc32(text.encode())).normal(0, 0.02, len(WORDS))
            rows.append(counts / np.linalg.norm(counts))
        return np.array(rows, dtype=np.float32)


def bank() -> list[Example]:
    examples = []
    for i in range(12):
        examples.append(Example(f"e{i}", f"throat closing {i}", "airway_breathing", "emergency"))
        examples.append(Example(f"u{i}", f"yellow pus {i}", "local_infection", "urgent"))
        examples.append(Example(f"r{i}", f"a bit red and pink {i}", "expected_redness", "routine"))
        examples.append(Example(f"o{i}", f"my car and my bank {i}", "offtopic", "none"))
    return examples


def test_a_kernel_head_separates_what_a_line_cannot_and_its_probabilities_are_scaled() -> None:
    rng = np.random.default_rng(0)
    # The positive class sits between two negative clusters: no single line separates them.
    centres = {0: [(-2.0, 0.0), (2.0, 0.0)], 1: [(0.0, 0.0)]}
    vectors, target = [], []
    for label, points in centres.items():
        for centre in points:
            for _ in range(30):
                vectors.append(rng.normal(centre, 0.3))
                target.append(label)
    vectors, target = np.array(vectors, dtype=np.float32), np.array(target)

    head, validated = _Head.fit(vectors, target)

    probability = head.probability(np.array([[0.0, 0.0], [-2.0, 0.0], [2.0, 0.0]], dtype=np.float32))
    assert probability[0] > 0.9 and probability[1] < 0.1 and probability[2] < 0.1
    assert validated.shape == target.shape and ((validated >= 0.5) == target).mean() > 0.9
    assert head.gamma > 0 and head.support.shape[1] == 2


def test_a_head_with_gamma_zero_is_linear() -> None:
    head = _Head(np.array([[1.0, -1.0]], dtype=np.float32), np.ones(1, dtype=np.float32), 0.5)
    assert head.decision(np.array([[2.0, 1.0]], dtype=np.float32))[0] == 1.5


def test_training_saves_a_layer_that_loads_with_the_same_verdicts(tmp_path) -> None:
    embedder, examples = WordEmbedder(), bank()
    layer = LearnedLayer.load_or_train(embedder, str, tmp_path, "v1", examples=examples)
    assert len(list(tmp_path.glob("learned-*.npz"))) == 1
    loaded = LearnedLayer.load_or_train(embedder, str, tmp_path, "v1", examples=examples)

    for text in ("my throat is closing", "yellow pus here", "my car"):
        assert loaded.assess(text) == layer.assess(text)
    assert layer.assess("my throat is closing").level == "emergency"
    assert layer.assess("yellow pus here").level == "urgent"
    assert layer.assess("my car and my bank").p_offtopic > 0.5
    assert loaded is not layer and loaded.thresholds == layer.thresholds
