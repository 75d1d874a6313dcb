"""What a question is about: products, activities, drinks, medicines, treatments, body areas (things.yml).

A question names things ("can I have a coffee after?" names coffee); an article says which things it gives
guidance on (its `covers` front matter). The answerer uses this to refuse near misses: a question about a
thing no article covers gets "I don't have the clinic's guidance on <thing>", never the nearest article.

Matching is on the patient's text after the shared clean-up (`safety.reading.normalise_text`): whole words,
longest phrase first, plurals, and one typo for words of six letters or more.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from safety.reading import normalise_text
from safety.reading.normalise import english_words

THINGS_FILE = Path(__file__).with_name("things.yml")
FUZZY_MIN_LENGTH = 6
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Thing:
    """One thing of the lexicon; `name` is what the "no guidance on <thing>" reply says."""

    name: str
    category: str


@dataclass(frozen=True)
class _Phrase:
    words: tuple[str, ...]
    thing: Thing | None  # None: a neutral phrase, consumed but never a thing


def words_of(text: str) -> list[str]:
    """The patient's words as the lexicon sees them (lower case, SMS spellings expanded, no apostrophes)."""
    return _WORD.findall(normalise_text(text).replace("'", "").replace("\u2019", ""))


class ThingReader:
    """Finds the lexicon's things in a text."""

    def __init__(self, things: dict[str, dict], neutral: Iterable[str] = ()) -> None:
        phrases: list[_Phrase] = []
        self.things: dict[str, Thing] = {}
        for name, entry in things.items():
            thing = Thing(name, str(entry.get("category", "thing")))
            self.things[name] = thing
            phrases += [_Phrase(tuple(words_of(str(word))), thing) for word in entry.get("words") or ()]
        phrases += [_Phrase(tuple(words_of(phrase)), None) for phrase in neutral]
        self._by_first: dict[str, list[_Phrase]] = {}
        for phrase in sorted((p for p in phrases if p.words), key=lambda p: -len(p.words)):
            self._by_first.setdefault(phrase.words[0], []).append(phrase)
        self._fuzzy = _DeleteIndex(word for word in self._by_first if len(word) >= FUZZY_MIN_LENGTH)
        self._phrases = phrases

    def words_of_things(self, names: set[str]) -> set[str]:
        """Every word the lexicon uses for the named things."""
        return {
            word
            for phrase in self._phrases
            if phrase.thing and phrase.thing.name in names
            for word in phrase.words
        }

    def things_in(self, text: str) -> tuple[Thing, ...]:
        """The things `text` names, in order of first mention, each once."""
        words = words_of(text)
        found: dict[str, Thing] = {}
        i = 0
        while i < len(words):
            phrase = self._longest_at(words, i)
            if phrase is None:
                i += 1
                continue
            if phrase.thing is not None:
                found.setdefault(phrase.thing.name, phrase.thing)
            i += len(phrase.words)
        return tuple(found.values())

    def _longest_at(self, words: list[str], i: int) -> _Phrase | None:
        best: _Phrase | None = None
        for first in self._first_word_candidates(words[i]):
            for phrase in self._by_first[first]:
                if (best is None or len(phrase.words) > len(best.words)) and _matches(phrase.words, words, i):
                    best = phrase
        return best

    def _first_word_candidates(self, word: str) -> list[str]:
        candidates = [form for form in _singular_forms(word) if form in self._by_first]
        # A real word is not a typo of another ("change" is not "charge").
        if not candidates and len(word) >= FUZZY_MIN_LENGTH and word not in english_words():
            candidates = [near for near in self._fuzzy.near(word) if _typo_of(near, word)]
        return candidates


def _singular_forms(word: str) -> list[str]:
    forms = [word]
    if word.endswith("ies") and len(word) > 4:
        forms.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        forms.append(word[:-2])
    if word.endswith("s") and len(word) > 2:
        forms.append(word[:-1])
    return forms


def _same_word(lexicon_word: str, word: str) -> bool:
    if word == lexicon_word or lexicon_word in _singular_forms(word):
        return True
    return word not in english_words() and _typo_of(lexicon_word, word)


def _typo_of(lexicon_word: str, word: str) -> bool:
    """One typo in a long word; the same first letter and not just one more letter at the end, which is
    another word more often than a typo ("scratchy", "tablet" for "table")."""
    if min(len(lexicon_word), len(word)) < FUZZY_MIN_LENGTH or lexicon_word[0] != word[0]:
        return False
    if word.startswith(lexicon_word) or lexicon_word.startswith(word):
        return False
    return _within_one_edit(lexicon_word, word)


def _matches(phrase: tuple[str, ...], words: list[str], i: int) -> bool:
    if i + len(phrase) > len(words):
        return False
    return all(_same_word(expected, words[i + k]) for k, expected in enumerate(phrase))


def _within_one_edit(a: str, b: str) -> bool:
    """One insertion, deletion, substitution or swap of neighbours apart."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return a == b
    if len(a) == len(b):
        diffs = [k for k in range(len(a)) if a[k] != b[k]]
        swapped = len(diffs) == 2 and diffs[1] == diffs[0] + 1 and a[diffs[0]] == b[diffs[1]]
        return len(diffs) == 1 or (swapped and a[diffs[1]] == b[diffs[0]])
    shorter, longer = (a, b) if len(a) < len(b) else (b, a)
    return any(longer[:k] + longer[k + 1 :] == shorter for k in range(len(longer)))


class _DeleteIndex:
    """Words within one edit of a word, found through their one-letter deletions (symmetric delete)."""

    def __init__(self, words: Iterable[str]) -> None:
        self._index: dict[str, set[str]] = {}
        for word in words:
            for key in {word, *_deletes(word)}:
                self._index.setdefault(key, set()).add(word)

    def near(self, word: str) -> list[str]:
        found = {w for key in {word, *_deletes(word)} for w in self._index.get(key, ())}
        return sorted(w for w in found if _within_one_edit(w, word))


def _deletes(word: str) -> set[str]:
    return {word[:k] + word[k + 1 :] for k in range(len(word))}


@lru_cache(maxsize=4)
def load_things(path: Path = THINGS_FILE) -> ThingReader:
    """The lexicon of `things.yml` (read once per process)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data.get("things"), dict):
        raise ValueError(f"{path}: needs a `things:` mapping")
    for name, entry in data["things"].items():
        if not isinstance(entry, dict) or not entry.get("words"):
            raise ValueError(f"{path}: thing {name!r} needs `words`")
    return ThingReader(data["things"], data.get("neutral") or ())
