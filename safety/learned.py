"""The learned layer of triage: what the protocol's words miss, read from sentence embeddings.

Messages are embedded with the bundled sentence-transformers model (the one the knowledge base uses) and
three heads trained on the project's own labelled bank (`labelled/train`) give probabilities. Each head is a
support vector machine with an RBF kernel over the embeddings (its decision value made a probability by a
sigmoid fitted on cross-validated decisions): in 5-fold cross-validation on the train half it raised 80 % of
the escalating messages at 2 % false raises, where a linear (logistic-regression) head raised 56 %. They give:

- P(urgent or emergency) and P(emergency): the layer raises a message to that level when the probability
  clears a threshold that cross-validation on the bank chose so that at most `TARGET_FALSE_RAISE` of the
  bank's expected effects and non-reports would be raised. The layer may raise a level, never lower it.
- P(off-topic): whether the message is about a body, a treatment or health at all. The rule layer uses it to
  not read everyday words ("the paint is peeling") as symptoms, and the knowledge base as its domain gate.
- the nearest labelled examples, so `python -m safety explain` can show a clinician why it fired.

Training takes half a minute; the trained heads are saved beside the knowledge index, keyed by a hash of
the bank and the embedding model, and are retrained whenever either changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC

from safety.bank import OFF_TOPIC, Example, fingerprint, training_examples

log = logging.getLogger(__name__)

RANK = {"none": 0, "routine": 1, "urgent": 2, "emergency": 3}
REGULARISATION = 8.0  # the support vector machines' C, chosen by 5-fold cross-validation on the training bank
TARGET_FALSE_RAISE = 0.02  # share of non-escalating bank messages the layer may raise in cross-validation
TARGET_UNSURE = 0.10  # share of them that may be flagged "unsure" (safety-netting, staff review)
MIN_THRESHOLD = 0.5
MIN_UNSURE = 0.2
NEIGHBOURS = 3
FORMAT = 2


Reader = Callable[[str], str]  # a message -> the words it reports as current


class Embedder:  # the part of knowledge.embedding.Embedder this layer uses
    model_name: str

    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Neighbour:
    text: str
    label: str
    level: str
    similarity: float


@dataclass(frozen=True)
class LearnedFinding:
    level: str  # the level this layer raises the message to: none, urgent or emergency
    p_escalate: float  # P(urgent or emergency)
    p_emergency: float
    p_offtopic: float
    unsure: bool  # P(urgent or emergency) is in the grey zone below the raising threshold
    neighbours: tuple[Neighbour, ...] = ()


@dataclass(frozen=True)
class _Head:
    """P(class | message vector): `dual` weights on the similarity of the vector to each support vector,
    plus `intercept`, is the decision value; `slope` and `offset` turn it into a probability (Platt scaling).
    The similarity is an RBF kernel, exp(-gamma * squared distance); with gamma 0 it is the dot product, so a
    single support vector makes a linear head (the hand-made layer of the tests)."""

    support: np.ndarray  # (n, dimension)
    dual: np.ndarray  # (n,)
    intercept: float
    gamma: float = 0.0
    slope: float = 1.0
    offset: float = 0.0

    def __post_init__(self) -> None:
        # The support vectors' squared lengths, once rather than on every message.
        object.__setattr__(self, "_support_lengths", (self.support**2).sum(axis=1)[None, :])

    def decision(self, vectors: np.ndarray) -> np.ndarray:
        similarity = vectors @ self.support.T
        if self.gamma:
            squared = (vectors**2).sum(axis=1)[:, None] - 2 * similarity + self._support_lengths
            similarity = np.exp(-self.gamma * np.maximum(squared, 0.0))
        return similarity @ self.dual + self.intercept

    def probability(self, vectors: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.slope * self.decision(vectors) + self.offset)))

    @classmethod
    def fit(cls, vectors: np.ndarray, target: np.ndarray) -> tuple[_Head, np.ndarray]:
        """The machine on all the vectors, with its probability scale fitted on 5-fold cross-validated
        decisions; and those cross-validated probabilities (what the thresholds are chosen on)."""
        decisions = np.zeros(len(target))
        for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(vectors, target):
            decisions[test] = cls._machine(vectors[train], target[train]).decision(vectors[test])
        scale = LogisticRegression(C=1e4).fit(decisions[:, None], target)
        slope, offset = float(scale.coef_[0][0]), float(scale.intercept_[0])
        machine = cls._machine(vectors, target)
        head = cls(machine.support, machine.dual, machine.intercept, machine.gamma, slope, offset)
        return head, 1.0 / (1.0 + np.exp(-(slope * decisions + offset)))

    @classmethod
    def _machine(cls, vectors: np.ndarray, target: np.ndarray) -> _Head:
        model = SVC(C=REGULARISATION, kernel="rbf", gamma="scale").fit(vectors, target)
        return cls(
            model.support_vectors_.astype(np.float32),
            model.dual_coef_[0].astype(np.float32),
            float(model.intercept_[0]),
            float(model._gamma),  # noqa: SLF001 - the numeric gamma "scale" resolved to
        )


@dataclass(frozen=True)
class Thresholds:
    escalate: float
    emergency: float
    unsure: float


class LearnedLayer:
    """Three trained heads over sentence embeddings, plus the bank's vectors for nearest examples."""

    def __init__(
        self,
        embedder: Embedder,
        heads: dict[str, _Head],
        thresholds: Thresholds,
        examples: list[Example],
        vectors: np.ndarray,
    ) -> None:
        self.embedder = embedder
        self.heads = heads
        self.thresholds = thresholds
        self.examples = examples
        self.vectors = vectors

    # --- use ----------------------------------------------------------------------------------------
    def assess(self, reported_text: str, explain: bool = False) -> LearnedFinding:
        """The layer's verdict on the words a message reports (`RuleLayer.reported_text`)."""
        if not any(ch.isalpha() for ch in reported_text):
            return LearnedFinding("none", 0.0, 0.0, 0.0, False)
        vector = self.embedder.encode([reported_text])
        return self.assess_vector(vector, explain)

    def assess_vector(self, vector: np.ndarray, explain: bool = False) -> LearnedFinding:
        p_escalate = float(self.heads["escalate"].probability(vector)[0])
        p_emergency = float(self.heads["emergency"].probability(vector)[0])
        p_offtopic = float(self.heads["offtopic"].probability(vector)[0])
        t = self.thresholds
        if p_emergency >= t.emergency:
            level = "emergency"
        elif p_escalate >= t.escalate:
            level = "urgent"
        else:
            level = "none"
        unsure = level == "none" and p_escalate >= t.unsure
        neighbours = self.nearest(vector[0]) if explain else ()
        return LearnedFinding(level, p_escalate, p_emergency, p_offtopic, unsure, neighbours)

    def nearest(self, vector: np.ndarray, count: int = NEIGHBOURS) -> tuple[Neighbour, ...]:
        similarities = self.vectors @ vector
        best = np.argsort(-similarities)[:count]
        return tuple(
            Neighbour(
                self.examples[i].text, self.examples[i].label, self.examples[i].level, float(similarities[i])
            )
            for i in best
        )

    # --- training -----------------------------------------------------------------------------------
    @classmethod
    def train(cls, embedder: Embedder, reader: Reader, examples: list[Example] | None = None) -> LearnedLayer:
        """Fit the heads on the bank and pick the thresholds by cross-validation (a few seconds).

        `reader` turns a message into the words it reports (see `RuleLayer.reported_text`): the layer
        learns from what it will later be shown.
        """
        examples = examples if examples is not None else training_examples()
        vectors = embedder.encode([reader(example.text) or "." for example in examples])
        fitted = {name: _Head.fit(vectors, target) for name, target in _targets(examples).items()}
        heads = {name: head for name, (head, _) in fitted.items()}
        validated = {name: probabilities for name, (_, probabilities) in fitted.items()}
        thresholds = _calibrate(validated, np.array([RANK[e.level] for e in examples]))
        log.info(
            "learned triage layer trained on %d examples: thresholds "
            "escalate=%.2f emergency=%.2f unsure=%.2f",
            len(examples),
            thresholds.escalate,
            thresholds.emergency,
            thresholds.unsure,
        )
        return cls(embedder, heads, thresholds, examples, vectors)

    @classmethod
    def load_or_train(
        cls,
        embedder: Embedder,
        reader: Reader,
        folder: Path,
        reader_version: str,
        examples: list[Example] | None = None,
        retrain: bool = False,
    ) -> LearnedLayer:
        """The saved layer for this bank, reader and model, or a freshly trained (and saved) one.

        `reader_version` changes whenever the reader does (a hash of the protocol file).
        """
        examples = examples if examples is not None else training_examples()
        version = hashlib.sha256(f"{fingerprint(examples)}|{reader_version}".encode()).hexdigest()[:16]
        key = f"{version}-{_slug(embedder.model_name)}"
        path = folder / f"learned-{key}.npz"
        if path.is_file() and not retrain:
            try:
                return cls._load(path, embedder, examples)
            except (OSError, ValueError, KeyError) as error:
                log.warning(
                    "learned triage layer at %s unreadable (%s): retraining", path, type(error).__name__
                )
        layer = cls.train(embedder, reader, examples)
        layer._save(path)
        return layer

    def _save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "thresholds": self.thresholds.__dict__}
        arrays = {}
        for name, head in self.heads.items():
            arrays[f"{name}_support"], arrays[f"{name}_dual"] = head.support, head.dual
            arrays[f"{name}_scalars"] = np.array([head.intercept, head.gamma, head.slope, head.offset])
        temporary = path.with_suffix(".tmp.npz")
        np.savez(temporary, vectors=self.vectors, meta=np.array(json.dumps(meta)), **arrays)
        temporary.replace(path)  # atomic: another process never reads half a file

    @classmethod
    def _load(cls, path: Path, embedder: Embedder, examples: list[Example]) -> LearnedLayer:
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != FORMAT or data["vectors"].shape[0] != len(examples):
                raise ValueError("format or size mismatch")
            heads = {
                name: _Head(
                    data[f"{name}_support"], data[f"{name}_dual"], *map(float, data[f"{name}_scalars"])
                )
                for name in ("escalate", "emergency", "offtopic")
            }
            vectors = data["vectors"]
        return cls(embedder, heads, Thresholds(**meta["thresholds"]), examples, vectors)


def _targets(examples: list[Example]) -> dict[str, np.ndarray]:
    ranks = np.array([RANK[e.level] for e in examples])
    return {
        "escalate": (ranks >= RANK["urgent"]).astype(int),
        "emergency": (ranks == RANK["emergency"]).astype(int),
        "offtopic": np.array([e.label == OFF_TOPIC for e in examples], dtype=int),
    }


def _calibrate(validated: dict[str, np.ndarray], ranks: np.ndarray) -> Thresholds:
    """Thresholds at which the cross-validated heads raise at most the target share of calm messages."""
    calm = ranks <= RANK["routine"]
    not_emergency = ranks < RANK["emergency"]
    p_escalate, p_emergency = validated["escalate"], validated["emergency"]

    def threshold(scores: np.ndarray, share: float) -> float:
        return max(MIN_THRESHOLD, float(np.quantile(scores, 1.0 - share)))

    escalate = threshold(p_escalate[calm], TARGET_FALSE_RAISE)
    unsure = float(np.quantile(p_escalate[calm], 1.0 - TARGET_UNSURE))
    return Thresholds(
        escalate=escalate,
        emergency=threshold(p_emergency[not_emergency], TARGET_FALSE_RAISE),
        unsure=min(escalate, max(MIN_UNSURE, unsure)),
    )


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)[-40:]
