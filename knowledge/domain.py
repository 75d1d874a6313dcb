"""The domain gate: is a question about the patient's skin treatment at all?

"How do I wash my car?" is close to the face-washing article in embedding space and must still never be
answered from it. A logistic regression over the question's sentence embedding (the model the index uses),
trained on the project's labelled train half (`labelled/train`: the off-topic everyday requests against the
patient questions and symptom reports), gives P(not about the treatment). The answerer replies "I can only
help with your microneedling treatment" above the calibrated `answers.off_topic` threshold.

The trained weights are a small text file, `knowledge/domain_gate.json`, written by
`python -m knowledge train-gate` together with the fingerprint of the messages it learned from; a test
checks that the fingerprint still matches the train half, so a grown bank cannot silently go unlearned.
The gate only applies to the embedding model it was trained for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from knowledge.chunking import without_treatment_name
from safety.bank import OFF_TOPIC, Example, fingerprint, training_examples

GATE_FILE = Path(__file__).with_name("domain_gate.json")
REGULARISATION = 4.0  # logistic regression C
FOLDS = 5
# Share of the in-domain train questions the gate may turn away in cross-validation (it picks the threshold).
MAX_QUESTIONS_GATED = 0.01


@dataclass(frozen=True)
class DomainGate:
    """P(off-topic) for a normalised question embedding."""

    model_name: str
    bank: str  # fingerprint of the labelled messages it was trained on
    coef: np.ndarray
    intercept: float

    def __call__(self, vector: np.ndarray) -> float:
        logit = float(np.asarray(vector, dtype=np.float32).reshape(-1) @ self.coef + self.intercept)
        return float(1.0 / (1.0 + np.exp(-logit)))

    def to_json(self) -> str:
        data = {
            "model_name": self.model_name,
            "bank": self.bank,
            "intercept": round(self.intercept, 6),
            "coef": [round(float(value), 6) for value in self.coef],
        }
        return json.dumps(data, indent=1) + "\n"


@dataclass(frozen=True)
class GateTraining:
    gate: DomainGate
    threshold: float  # chosen by cross-validation (MAX_QUESTIONS_GATED)
    questions_gated: float  # share of in-domain questions at or above it, cross-validated
    off_topic_caught: float  # share of off-topic messages at or above it, cross-validated


def train_domain_gate(embedder, examples: list[Example] | None = None) -> GateTraining:
    """Fit the gate on the labelled train half and choose its threshold by cross-validation."""
    examples = examples if examples is not None else training_examples()
    vectors = embedder.encode([without_treatment_name(example.text) for example in examples])
    target = np.array([example.label == OFF_TOPIC for example in examples], dtype=int)
    is_question = np.array([example.id[1:2] == "Q" for example in examples])
    cross_validated = np.zeros(len(examples))
    for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(vectors, target):
        model = LogisticRegression(C=REGULARISATION, max_iter=5000).fit(vectors[train], target[train])
        cross_validated[test] = model.predict_proba(vectors[test])[:, 1]
    in_domain_questions = cross_validated[is_question & (target == 0)]
    threshold = (
        float(np.quantile(in_domain_questions, 1.0 - MAX_QUESTIONS_GATED))
        if len(in_domain_questions)
        else 0.5
    )
    threshold = round(min(0.99, max(0.5, threshold)), 3)
    model = LogisticRegression(C=REGULARISATION, max_iter=5000).fit(vectors, target)
    gate = DomainGate(embedder.model_name, fingerprint(examples), model.coef_[0].astype(np.float32),
                      float(model.intercept_[0]))  # fmt: skip
    return GateTraining(
        gate,
        threshold,
        float((in_domain_questions >= threshold).mean()) if len(in_domain_questions) else 0.0,
        float((cross_validated[target == 1] >= threshold).mean()) if target.any() else 0.0,
    )


def read_domain_gate(path: Path = GATE_FILE) -> DomainGate | None:
    """The saved gate, or None when there is none."""
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return DomainGate(
        str(data["model_name"]),
        str(data["bank"]),
        np.array(data["coef"], dtype=np.float32),
        float(data["intercept"]),
    )


@lru_cache(maxsize=4)
def load_domain_gate(model_name: str, path: Path = GATE_FILE) -> DomainGate | None:
    """The saved gate when it was trained for this embedding model, else None (no gate)."""
    gate = read_domain_gate(path)
    return gate if gate is not None and gate.model_name == model_name else None
