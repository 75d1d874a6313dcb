"""How a message is read around a symptom word: negation, questions vs reports, figures of speech.

Given the tokens of a message and the protocol's `reading` lists (already matched by the pattern set),
`MessageReading` answers one question for the detector: does this match count as something the patient
(or the person they write about) has right now?
"""

from __future__ import annotations

from dataclasses import dataclass

from spacy.tokens import Doc

from safety.patterns import Match

CLAUSE_PUNCT = {",", ";", ":", "(", ")", "-", "--", "—", "–", "/"}
HARD_STOPS = {".", "!", "?", ";", ":", "(", ")", "..."}
CONJUNCTIONS = {"and", "y", "&"}
NEGATION_SCOPE = 8  # words a "no"/"not" reaches forward
# A negation inside a symptom's own words belongs to the symptom ("can not breathe", "no puedo respirar").
INNER_NEGATIONS = {"not", "no", "nao", "pas", "ne", "nunca", "never", "sem", "sin", "sans", "without"}
AFTER_NEGATION_REACH = 4  # words between a symptom and "fine"/"gone"
LITTLE_WORDS = {
    *("in", "a", "an", "the", "any", "of", "on", "like", "really", "very", "all", "at"),
    *("en", "un", "una", "um", "uma", "de", "le", "la", "como", "comme"),
}
WH_WORDS = {"what", "how", "when", "why", "which", "who", "where"}
# after a question word, these (and the auxiliaries of `interrogatives`) make it a question
WH_FOLLOWERS = {
    *("long", "much", "many", "often", "soon", "bad", "common", "normal", "likely", "to", "about", "else"),
    *(
        "kind",
        "sort",
        "type",
        "happens",
        "happened",
        "causes",
        "helps",
        "works",
        "if",
        "am",
        "has",
        "have",
        "had",
    ),
}


# The patient speaking of themselves (in a clause about an animal, the patient is hurt too).
PATIENT_WORDS = {"i", "me", "my", "im", "myself", "mine", "yo", "mi", "je", "j", "moi", "mon", "ma", "eu",
                 "meu", "minha"}  # fmt: skip


@dataclass
class Clause:
    start: int
    end: int
    sentence: int
    interrogative: bool = False
    hypothetical_from: int | None = None  # token from which the clause is hypothetical
    hearsay: bool = False
    animal: bool = False  # about an animal, never the patient
    history: bool = False
    present: bool = False
    happening: bool = False  # dated in the recent past ("came on a few minutes ago"): not a hypothetical

    def is_report(self, position: int, sentence_anchored: bool) -> bool:
        hypothetical = self.hypothetical_from is not None and position >= self.hypothetical_from
        if self.animal or (hypothetical and not self.happening):
            return False
        if (self.hearsay or self.history) and not self.present:
            return False
        return not (self.interrogative and not sentence_anchored)


class MessageReading:
    """Per-token facts about one message: sentence, clause, negation scope, figures of speech."""

    def __init__(
        self,
        doc: Doc,
        lowers: list[str],
        sentence_of: list[int],
        found: dict[str, list[Match]],
        reading: dict[str, tuple[str, ...]],
        describing: bool = False,
    ):
        """`describing`: the text describes signs rather than reports them (an article's "if your throat
        feels tight, call 911"), so questions, hypotheticals and stories count too; negations still do not."""
        self.doc = doc
        self._describing = describing
        self._found = found
        self._reading = reading
        self._lower = lowers
        self.sentence_of = sentence_of
        self._counts: dict[Match, bool] = {}
        self.clauses: list[Clause] = []
        self.clause_of = [0] * len(doc)
        self._split_clauses()
        self.segment_of = self._segments()
        self._mark_clauses()
        self._anchored = self._anchored_sentences()
        self._figure_tokens = self._tokens_of("figures_of_speech")
        self._pre_cues = self._negation_cues()
        self._neg_scope = self._negation_scopes()
        cancelled = {m.start for p in reading.get("not_negation_after", ()) for m in found.get(p, [])}
        self._post_cue_starts = {
            m.start for p in reading["negation_after"] for m in found.get(p, []) if m.start not in cancelled
        }

    # --- structure ----------------------------------------------------------------------------------
    def _matches(self, list_name: str) -> list[Match]:
        return [m for p in self._reading[list_name] for m in self._found.get(p, [])]

    def _tokens_of(self, list_name: str) -> set[int]:
        return {i for m in self._matches(list_name) for i in range(m.start, m.end)}

    def _split_clauses(self) -> None:
        breaks = {m.start for m in self._matches("clause_breaks")}
        start = 0
        for i in range(len(self.doc)):
            new_sentence = i > 0 and self.sentence_of[i] != self.sentence_of[i - 1]
            after_punct = i > 0 and self._lower[i - 1] in CLAUSE_PUNCT
            if i > start and (new_sentence or after_punct or i in breaks):
                self.clauses.append(Clause(start, i, self.sentence_of[start]))
                start = i
            self.clause_of[i] = len(self.clauses)
        if len(self.doc):
            self.clauses.append(Clause(start, len(self.doc), self.sentence_of[start]))

    def _segments(self) -> list[int]:
        """Per token, its segment: sentences, split again where the message turns ("but", "however")."""
        turns = {m.start for m in self._matches("clause_breaks")}
        segments, segment = [], 0
        for i in range(len(self.doc)):
            if i > 0 and (self.sentence_of[i] != self.sentence_of[i - 1] or i in turns):
                segment += 1
            segments.append(segment)
        return segments

    def _first_word(self, clause: Clause) -> tuple[int, str] | None:
        fillers = set(self._reading["fillers"])
        for i in range(clause.start, clause.end):
            word = self._lower[i]
            if self.doc[i].is_punct or word in fillers:
                continue
            return i, word
        return None

    def _starts_like_question(self, clause: Clause, interrogatives: set[str]) -> bool:
        """ "is it ...", "can I ...", "how long ...", "where is ..."; but not "where they put the cream,
        the skin burns" or "when I woke up": a question word opens a question only before a verb."""
        first = self._first_word(clause)
        if first is None or first[1] not in interrogatives:
            return False
        following = self._lower[first[0] + 1] if first[0] + 1 < len(self.doc) else ""
        if following == "not":
            return False
        return first[1] not in WH_WORDS or following in interrogatives or following in WH_FOLLOWERS

    def _mark_clauses(self) -> None:
        interrogatives = set(self._reading["interrogatives"])
        for clause in self.clauses:
            ends_with_question = any(self._lower[i] == "?" for i in range(clause.start, clause.end))
            clause.interrogative = ends_with_question or self._starts_like_question(clause, interrogatives)
        uncertain = self._tokens_of("uncertainty")
        for m in self._matches("hypothetical"):
            if m.start in uncertain:
                continue
            clause = self.clauses[self.clause_of[m.start]]
            # "what if ..." makes the whole clause hypothetical; an "if ..." only what follows it
            # ("pus comes out if I squeeze" is still a report).
            begins = m.start if self._lower[m.start] in ("if", "si") else clause.start
            if clause.hypothetical_from is None or begins < clause.hypothetical_from:
                clause.hypothetical_from = begins
        self._conditional_questions()
        counted = self._tokens_of("not_history")
        for flag in ("hearsay", "history"):
            for m in self._matches(flag):
                if flag == "history" and any(i in counted for i in range(m.start, m.end)):
                    continue
                setattr(self.clauses[self.clause_of[m.start]], flag, True)
        animal_words = self._tokens_of("animals")
        for m in self._matches("animals"):
            clause = self.clauses[self.clause_of[m.start]]
            # "my dog scratched my face and it's bleeding": the patient is in the clause too
            words = range(clause.start, clause.end)
            patient = any(self._lower[i] in PATIENT_WORDS and i not in animal_words for i in words)
            clause.animal = not patient
        for m in self._matches("present_time"):
            self.clauses[self.clause_of[m.start]].present = True
        for m in self._matches("happening"):
            clause = self.clauses[self.clause_of[m.start]]
            clause.happening = clause.present = True
        self._carry_stories_forward()

    def _conditional_questions(self) -> None:
        """A sentence that opens with "if ..." and then asks is hypothetical as a whole: "if I get a fever
        of 38 after, is that an infection?" ("if I press it, pus comes out" still reports)."""
        openers = {"if", "si", "se"}
        for previous, clause in zip(self.clauses, self.clauses[1:], strict=False):
            if clause.sentence != previous.sentence or previous.hypothetical_from is None:
                continue
            opens_sentence = previous.start == 0 or self.sentence_of[previous.start - 1] != previous.sentence
            first = self._first_word(previous)
            if opens_sentence and first is not None and first[1] in openers and clause.interrogative:
                clause.hypothetical_from = clause.start

    def _carry_stories_forward(self) -> None:
        """Someone else's story or a past episode goes on in the clauses after it ("my friend got an
        infection last year, pus and everything"), until the patient speaks for themselves again ("I ...",
        "my ..."), a clause turns ("but this time ..."), something is said to be current ("now"), or the
        sentence ends."""
        subjects = {"i", "my", "me", "mine", "im", "yo", "mi", "je", "j", "mon", "ma", "eu", "meu", "minha"}
        breaks = {m.start for m in self._matches("clause_breaks")}
        for previous, clause in zip(self.clauses, self.clauses[1:], strict=False):
            if clause.sentence != previous.sentence or clause.present or clause.start in breaks:
                continue
            # The patient speaking for themselves ends someone else's story, not their own past one
            # ("ages ago, like 2010, I passed out at a piercing shop").
            first = self._first_word(clause)
            if first is None or first[1] not in subjects:
                clause.hearsay = clause.hearsay or previous.hearsay
            clause.history = clause.history or previous.history

    def _anchored_sentences(self) -> set[int]:
        anchored = {self.sentence_of[m.start] for m in self._matches("report_anchors")}
        units = {"day", "days", "week", "weeks", "hours", "dia", "dias", "semana", "semanas"}
        for i, token in enumerate(self.doc):
            if token.like_num and (
                (i + 1 < len(self.doc) and self._lower[i + 1] in units)
                or (i > 0 and self._lower[i - 1] in {"day", "dia"})
            ):
                anchored.add(self.sentence_of[i])
        # A question is a report when the message around it reports something: "how long do blisters take
        # to heal? I've got two on my cheek".
        return set(self.sentence_of) if anchored else anchored

    # --- negation -----------------------------------------------------------------------------------
    def _negation_cues(self) -> dict[int, Match]:
        pseudo = self._tokens_of("pseudo_negation")
        cues: dict[int, Match] = {}
        for m in self._matches("negation_before"):
            if any(i in pseudo for i in range(m.start, m.end)):
                continue
            if m.end < len(self.doc) and self.doc[m.end].is_punct:
                continue  # "No, my throat is closing": an answer, not a negation of what follows
            if m.start not in cues or cues[m.start].end < m.end:
                cues[m.start] = m
        return cues

    def _negation_scopes(self) -> list[int | None]:
        """For each token, the position of the negation cue whose scope covers it (or None)."""
        scope: list[int | None] = [None] * len(self.doc)
        list_words = set(self._reading["negation_list_words"])
        ends = set(self._reading["negation_scope_ends"])
        subjects = set(self._reading["subject_words"])
        for cue_start, cue in sorted(self._pre_cues.items()):
            keeps_through_lists = self._lower[cue_start] in list_words
            words = 0
            i = cue.end
            while i < len(self.doc) and words < NEGATION_SCOPE:
                word = self._lower[i]
                if self.sentence_of[i] != self.sentence_of[cue_start] or word in HARD_STOPS or word in ends:
                    break
                if word in CLAUSE_PUNCT or word in CONJUNCTIONS:
                    following = self._lower[i + 1] if i + 1 < len(self.doc) else ""
                    if following in subjects or (word in CLAUSE_PUNCT and not keeps_through_lists):
                        break
                    if following in ends:
                        break
                if not self.doc[i].is_punct:
                    words += 1
                if scope[i] is None:
                    scope[i] = cue_start
                i += 1
        return scope

    def _negated_after(self, position: int, content: set[int]) -> bool:
        """A "fine"/"normal"/"gone" after the symptom word, with only filler words in between."""
        fillers = set(self._reading["negation_after_fillers"])
        clause = self.clause_of[position]
        for step in range(1, AFTER_NEGATION_REACH + 1):
            j = position + step
            if j >= len(self.doc) or self.clause_of[j] != clause:
                return False
            if j in self._post_cue_starts and j not in content:
                return True
            if j not in content and self._lower[j] not in fillers:
                return False
        return False

    def negated_right_before(self, match: Match) -> bool:
        """A negation just before the match, maybe across little words ("not in a group", "no en grupito",
        "not a big patch"): it says the opposite."""
        for cue in self._pre_cues.values():
            i = cue.end
            while i < match.start and self._lower[i] in LITTLE_WORDS:
                i += 1
            if i == match.start and cue.end <= match.start:
                return True
        return False

    def is_negated(self, match: Match) -> bool:
        content = set(match.content)
        first = match.content[0]
        cue = self._neg_scope[first]
        if cue is not None and cue not in content:
            return True
        for i in range(match.start, match.end):
            if i not in content and i in self._pre_cues:
                return True
        if any(i in self._pre_cues or self._lower[i] in INNER_NEGATIONS for i in match.content):
            return False  # "can't breathe well" / "no puedo respirar bien": the match already says no
        return any(self._negated_after(i, content) for i in match.content)

    # --- the question the detector asks -------------------------------------------------------------
    def counts(self, match: Match) -> bool:
        """True when the match is a current, affirmed report (not negated, hypothetical or figurative)."""
        if match not in self._counts:
            self._counts[match] = self._counts_uncached(match)
        return self._counts[match]

    def _counts_uncached(self, match: Match) -> bool:
        if any(i in self._figure_tokens for i in match.content):
            return False
        first = match.content[0]
        clause = self.clauses[self.clause_of[first]]
        if not self._describing and not clause.is_report(first, self.sentence_of[first] in self._anchored):
            return False
        return not self.is_negated(match)

    # --- what the message reports, for the learned layer --------------------------------------------
    def reported_tokens(self, symptom_matches: list[Match]) -> list[bool]:
        """Per token: whether it is part of what the patient reports as current.

        Tokens of questions (without a report anchor), hypotheticals, other people's stories, past episodes
        and figures of speech are not; nor are negation cues and the words they negate ("no fever",
        "vision normal"). A symptom that carries its own negation ("can't breathe") is kept whole. The
        learned layer reads only the reported words, so "I can breathe fine, no throat tightness, it's just
        puffy" reads as "it's just puffy".
        """
        keep = [True] * len(self.doc)
        for i in range(len(self.doc)):
            clause = self.clauses[self.clause_of[i]]
            if (
                not clause.is_report(i, self.sentence_of[i] in self._anchored)
                or i in self._figure_tokens
                or i in self._pre_cues
                or self._neg_scope[i] is not None
            ):
                keep[i] = False
        for match in symptom_matches:
            content = range(match.start, match.end)
            if self.is_negated(match):
                for i in content:
                    keep[i] = False
                for j in range(match.end, min(len(self.doc), match.end + AFTER_NEGATION_REACH + 1)):
                    if j in self._post_cue_starts:
                        keep[j] = False
            elif self.counts(match):
                for i in content:
                    keep[i] = True
        return keep
