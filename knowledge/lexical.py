"""Lexical scoring: BM25 (the `bm25s` library) over the same rows as the dense index.

Embeddings say "same neighbourhood"; words say whether the question's own terms are there. Rows (passages
and listed questions) and questions are reduced to terms the same way: the shared clean-up of patient text
(SMS spellings, accents), stop words dropped, a light stem so "moisturiser", "moisturising" and
"moisturise" meet. Scores are normalised by what the question's terms could score at most (the sum of their
IDF), so 1.0 means every known term of the question is in the row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import bm25s
import numpy as np

from knowledge.things import words_of
from safety.reading.normalise import stem

K1 = 1.2
B = 0.75
# Words that say nothing about what a question is about (the treatment itself included: every row has it).
STOP_WORDS = frozenset(
    (  # noqa: SIM905 - a word list reads better as text
        "a an the and or but if so of to in on at by for from with without about into onto over under up "
        "down out off than then too very just really still also even only again ever never not no yes ok "
        "okay i me my mine myself you your yours we our us they them their he him his she her it its this "
        "that these those there here what whats which who whom whose when where why how hows is am are "
        "was were be been being do does did doing done have has had having can could should shall will "
        "would may might must need needs get gets got getting go goes going gone come coming im ive id "
        "youre theyre dont doesnt didnt cant wont isnt arent wasnt shouldnt wouldnt couldnt please pls "
        "thanks thank hi hello hey lol tho though like much many any some all every microneedling "
        "microneedle microneedled needling treatment treatments session sessions appointment appt "
        "procedure after before day days week weeks "
    ).split()
)


def terms(text: str) -> list[str]:
    """The stemmed content words of a text, in order."""
    return [stem(word) for word in words_of(text) if word not in STOP_WORDS and len(word) > 1]


class LexicalIndex:
    """BM25 over a fixed list of texts (one per index row); cheap enough to build on every load."""

    def __init__(self, texts: Sequence[str]) -> None:
        corpus = [terms(text) or ["-"] for text in texts]
        self._count = len(corpus)
        self._bm25 = bm25s.BM25(k1=K1, b=B)
        if corpus:
            self._bm25.index(corpus, show_progress=False)
        document_frequency: dict[str, int] = {}
        for row in corpus:
            for term in set(row):
                document_frequency[term] = document_frequency.get(term, 0) + 1
        self._idf = {
            term: math.log(1 + (self._count - df + 0.5) / (df + 0.5))
            for term, df in document_frequency.items()
        }
        self.max_idf = max(self._idf.values(), default=1.0)

    def knows(self, term: str) -> bool:
        return term in self._idf

    def idf(self, term: str) -> float:
        """How telling a term is; a term no row has counts as the most telling of all."""
        return self._idf.get(term, self.max_idf)

    def scores(self, query_terms: Sequence[str]) -> np.ndarray:
        """Normalised BM25 of every row for the question's terms (0 when it shares none)."""
        known = [term for term in dict.fromkeys(query_terms) if term in self._idf]
        if not known or not self._count:
            return np.zeros(self._count, dtype=np.float32)
        raw = np.asarray(self._bm25.get_scores(known), dtype=np.float32)
        return raw / sum(self._idf[term] for term in known)

    def unknown_share(self, query_terms: Sequence[str], also_known: frozenset[str] = frozenset()) -> float:
        """The IDF-weighted share of the question's terms that no row contains and that are not in
        `also_known` (0 when it has no terms)."""
        distinct = [term for term in dict.fromkeys(query_terms) if not term.isdigit()]  # "72 hours", "spf 50"
        if not distinct:
            return 0.0
        total = sum(self.idf(term) for term in distinct)
        unknown = [term for term in distinct if term not in self._idf and term not in also_known]
        return sum(self.idf(term) for term in unknown) / total
