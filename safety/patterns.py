"""Matching the protocol's patterns in a message.

Each pattern string ("<throat> ~ tight", "can't see properly|clearly", "=fainted") is compiled into a sequence
of token slots over the stems that `safety.reading` puts in each spaCy token's NORM, and matched by a small
slot matcher indexed on the first word. (spaCy's own `Matcher` needs every word-group combination spelled out
as a separate pattern; with this protocol that is thousands of patterns and ~27 ms a message, against ~1 ms
here.)
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from spacy.language import Language

from safety.protocol import Protocol, ProtocolError
from safety.reading.normalise import normalise_text, stem

# Tokens a "..." or "~" gap may not cross: the end of a sentence.
SENTENCE_END = frozenset({".", "!", "?", ";", "..."})


Token = tuple[str, str]  # ("NORM", stem) or ("LOWER", exact word)
Alternative = tuple[Token, ...]  # one way to fill a slot: a sequence of tokens


@dataclass(frozen=True, eq=False)
class Slot:
    """One position of a pattern: a word from a set (by stem or exact form), a multi-word phrase, or a gap."""

    norms: frozenset[str] = frozenset()
    lowers: frozenset[str] = frozenset()
    phrases: tuple[Alternative, ...] = ()
    subpatterns: tuple[tuple[Slot, ...], ...] = ()  # from word groups whose entries use "~" or "..."
    gap: int = 0  # > 0: up to this many other words (not crossing the end of a sentence)

    @classmethod
    def of(cls, alternatives: list[Alternative], subpatterns: list[tuple[Slot, ...]]) -> Slot:
        norms = {alt[0][1] for alt in alternatives if len(alt) == 1 and alt[0][0] == "NORM"}
        lowers = {alt[0][1] for alt in alternatives if len(alt) == 1 and alt[0][0] == "LOWER"}
        phrases = tuple(dict.fromkeys(alt for alt in alternatives if len(alt) > 1))
        return cls(frozenset(norms), frozenset(lowers), phrases, tuple(subpatterns))

    def __post_init__(self) -> None:
        # Multi-word alternatives indexed by their first word, so matching tries only the plausible ones.
        index: dict[Token, list[Alternative]] = {}
        for phrase in self.phrases:
            index.setdefault(phrase[0], []).append(phrase)
        object.__setattr__(self, "phrase_index", {k: tuple(v) for k, v in index.items()})

    def first_words(self) -> set[Token]:
        words = {("NORM", n) for n in self.norms} | {("LOWER", w) for w in self.lowers}
        words |= {phrase[0] for phrase in self.phrases}
        for sub in self.subpatterns:
            words |= sub[0].first_words()
        return words


@dataclass(frozen=True, eq=False)
class CompiledPattern:
    source: str
    slots: tuple[Slot, ...]


class PatternCompiler:
    """Turns protocol pattern strings into slot sequences (word groups expanded, "~" in both orders)."""

    def __init__(self, nlp: Language, groups: dict[str, tuple[str, ...]], near_window: int, gap_window: int):
        self._nlp = nlp
        self._groups = groups
        self._near = near_window
        self._gap = gap_window
        self._group_cache: dict[str, list[Alternative]] = {}
        self._word_cache: dict[tuple[str, bool], Alternative] = {}
        self.surface_words: set[str] = set()

    def _word_tokens(self, word: str, exact: bool) -> Alternative:
        """A protocol word, cleaned up and tokenised exactly like a message ("can't" -> can, not)."""
        key = (word, exact)
        if key not in self._word_cache:
            tokens = []
            for tok in self._nlp.make_doc(normalise_text(word)):
                lower = tok.lower_
                self.surface_words.add(lower)
                if exact:
                    tokens.append(("LOWER", lower))
                else:
                    tokens.append(("NORM", stem(lower)))
            if not tokens:
                raise ProtocolError(f"empty word in pattern: {word!r}")
            self._word_cache[key] = tuple(tokens)
        return self._word_cache[key]

    def _phrase(self, phrase: str, stack: tuple[str, ...]) -> list[Alternative]:
        """A group entry (no operators): its words in order, each possibly with alternatives."""
        slots = []
        for item in phrase.split():
            alternatives, subpatterns = self._item(item, stack)
            if subpatterns:
                raise ProtocolError(
                    f"{phrase!r}: a group whose entries use ~ or ... cannot be part of a phrase "
                    "inside another group; use it directly in a rule pattern"
                )
            slots.append(alternatives)
        return [tuple(itertools.chain.from_iterable(combo)) for combo in itertools.product(*slots)]

    def _has_operators(self, name: str) -> bool:
        return any("~" in entry.split() or "..." in entry.split() for entry in self._groups[name])

    def _group(self, name: str, stack: tuple[str, ...]) -> list[Alternative]:
        if name in stack:
            raise ProtocolError(f"word group <{name}> refers to itself")
        if name not in self._group_cache:
            alternatives: list[Alternative] = []
            for entry in self._groups[name]:
                alternatives.extend(self._phrase(entry, stack + (name,)))
            self._group_cache[name] = list(dict.fromkeys(alternatives))
        return self._group_cache[name]

    def _item(self, item: str, stack: tuple[str, ...]) -> tuple[list[Alternative], list[tuple[Slot, ...]]]:
        alternatives: list[Alternative] = []
        subpatterns: list[tuple[Slot, ...]] = []
        for option in item.split("|"):
            if not option:
                continue
            match = re.fullmatch(r"<(\w+)>", option)
            if match and self._has_operators(match.group(1)):
                name = match.group(1)
                if name in stack:
                    raise ProtocolError(f"word group <{name}> refers to itself")
                for entry in self._groups[name]:
                    if "~" in entry.split() or "..." in entry.split():
                        subpatterns.extend(c.slots for c in self._compile(entry, stack + (name,)))
                    else:
                        alternatives.extend(self._phrase(entry, stack + (name,)))
            elif match:
                alternatives.extend(self._group(match.group(1), stack))
            elif option.startswith("="):
                alternatives.append(self._word_tokens(option[1:], exact=True))
            else:
                alternatives.append(self._word_tokens(option, exact=False))
        if not alternatives and not subpatterns:
            raise ProtocolError(f"empty pattern item {item!r}")
        return alternatives, subpatterns

    def compile(self, pattern: str) -> list[CompiledPattern]:
        """The slot sequences for one protocol pattern string."""
        return self._compile(pattern, ())

    def _compile(self, pattern: str, stack: tuple[str, ...]) -> list[CompiledPattern]:
        sides: list[list[str]] = [[]]
        for word in pattern.split():
            if word == "~":
                sides.append([])
            else:
                sides[-1].append(word)
        if any(not side or side[0] == "..." or side[-1] == "..." for side in sides):
            raise ProtocolError(f"pattern {pattern!r}: '~' and '...' need words on both sides")
        side_slots = [
            [Slot(gap=self._gap) if item == "..." else Slot.of(*self._item(item, stack)) for item in side]
            for side in sides
        ]
        compiled = []
        for order in itertools.permutations(side_slots):
            slots: list[Slot] = []
            for i, side in enumerate(order):
                if i:
                    slots.append(Slot(gap=self._near))
                slots.extend(side)
            compiled.append(CompiledPattern(pattern, tuple(slots)))
        return compiled


@dataclass(frozen=True)
class Match:
    """Where a protocol pattern was found: token span and the symptom-word (non-gap) token positions."""

    start: int
    end: int
    content: tuple[int, ...]


class PatternSet:
    """Every protocol pattern, indexed by the words it can start with; `find(doc)` lists the matches."""

    def __init__(self, nlp: Language, protocol: Protocol):
        compiler = PatternCompiler(nlp, protocol.word_groups, protocol.near_window, protocol.gap_window)
        self._by_first_word: dict[Token, list[CompiledPattern]] = {}
        self._count = 0
        for pattern in sorted(protocol.all_patterns()):
            for compiled in compiler.compile(pattern):
                self._count += 1
                for word in compiled.slots[0].first_words():
                    self._by_first_word.setdefault(word, []).append(compiled)
        self.surface_words = compiler.surface_words
        self.symptom_words = self._symptom_words(nlp, protocol)
        # The patterns of the signs' rules (not the reading lists): what counts as a symptom mention.
        self.symptom_patterns = sorted(
            {
                p
                for s in protocol.signs
                for r in s.rules
                for e in r.any + r.all
                for p in e
                if not p.startswith("$")
            }
        )

    @staticmethod
    def _symptom_words(nlp: Language, protocol: Protocol) -> set[str]:
        """Words of the word groups and concept rules: what a typo may be corrected into."""
        texts = [entry for entries in protocol.word_groups.values() for entry in entries]
        texts += [
            p
            for s in protocol.signs
            for r in s.rules
            for element in r.any + r.all
            for p in element
            if not p.startswith("$")
        ]
        words: set[str] = set()
        for text in texts:
            for item in text.split():
                for option in item.split("|"):
                    if option in ("~", "...") or option.startswith("<"):
                        continue
                    words.update(tok.lower_ for tok in nlp.make_doc(normalise_text(option.lstrip("="))))
        return words

    def __len__(self) -> int:
        return self._count

    def find(self, norms: list[str], lowers: list[str], sentence: list[int]) -> dict[str, list[Match]]:
        """All matches of all patterns, keyed by pattern string; content stays within one sentence.

        `norms`, `lowers` and `sentence` are per token: stem, lower-case form and sentence number.
        """
        found: dict[str, dict[tuple[int, ...], Match]] = {}
        for start in range(len(norms)):
            candidates = self._by_first_word.get(("NORM", norms[start]), []) + self._by_first_word.get(
                ("LOWER", lowers[start]), []
            )
            for compiled in dict.fromkeys(candidates):
                for end, content in _match_slots(compiled.slots, 0, start, (), norms, lowers):
                    if sentence[content[0]] == sentence[content[-1]]:
                        found.setdefault(compiled.source, {})[content] = Match(start, end, content)
        return {source: list(matches.values()) for source, matches in found.items()}


def _match_slots(
    slots: tuple[Slot, ...], k: int, pos: int, content: tuple[int, ...], norms: list[str], lowers: list[str]
):
    """Every way slots[k:] match from token `pos`: yields (end, content positions)."""
    if k == len(slots):
        yield pos, content
        return
    slot = slots[k]
    n = len(norms)
    if slot.gap:
        for skip in range(slot.gap + 1):
            if skip and (pos + skip - 1 >= n or lowers[pos + skip - 1] in SENTENCE_END):
                break
            yield from _match_slots(slots, k + 1, pos + skip, content, norms, lowers)
        return
    if pos < n and (norms[pos] in slot.norms or lowers[pos] in slot.lowers):
        yield from _match_slots(slots, k + 1, pos + 1, content + (pos,), norms, lowers)
    for sub in slot.subpatterns:
        for end, sub_content in _match_slots(sub, 0, pos, (), norms, lowers):
            yield from _match_slots(slots, k + 1, end, content + sub_content, norms, lowers)
    if pos >= n or not slot.phrases:
        return
    index = slot.phrase_index  # type: ignore[attr-defined]
    for phrase in index.get(("NORM", norms[pos]), ()) + index.get(("LOWER", lowers[pos]), ()):
        end = pos + len(phrase)
        if end <= n and all(
            (norms if attr == "NORM" else lowers)[pos + i] == value for i, (attr, value) in enumerate(phrase)
        ):
            yield from _match_slots(slots, k + 1, end, content + tuple(range(pos, end)), norms, lowers)
