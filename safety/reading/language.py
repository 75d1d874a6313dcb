"""Which language a patient wrote in, well enough to answer in it or to say we cannot read it.

Short messages defeat statistical detectors, so this is a vote of function words and common patient words
per language (the words that carry no meaning of their own and that every message has: articles, pronouns,
prepositions, "is", "my", "I have"), plus the writing system for languages that do not use the Latin alphabet.
English wins ties and unclear cases: most patients write English, and a wrong "not English" verdict would
withhold an answer. A message whose longer words are mostly English words (the embedding model's vocabulary)
is English whatever its short words say ("a bit dizzy, face red as expected, no rash" has "a", "as", "no").
"""

from __future__ import annotations

import re
import unicodedata

from safety.reading.normalise import english_words

# Words frequent in patient messages of each language and rare in the others (accents stripped).
_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        """
        the my i is it and have has was with are you your can what when how why do does did not
        this that its im got been after before there should will would just still really very
        """.split()  # noqa: SIM905 - a word list reads better as text
    ),
    "es": frozenset(
        """
        el la los las mi mis me tengo es esta estoy que por para con una uno del pero muy cara
        despues puedo hace hoy ayer tratamiento duele siento como cuando donde porque tambien
        todo nada sin hinchada hinchado roja rojo piel ojos garganta fiebre dolor sangre hola
        gracias buenas buenos
        sesiones sesion necesito cicatrices protector solar uso voy ver resultados quiero pedir cita
        consulta maquillaje maquillarme dejar cuanto cuantas cuantos dias manchas oscuras crema hidratante
        playa gimnasio esperar embarazada enrojecimiento dura lavarme noche recomiendan sirve molesta
        hablo ingles alguien habla espanol hacerse perdon
        """.split()  # noqa: SIM905 - a word list reads better as text
    ),
    "fr": frozenset(
        """
        le la les mon ma mes je j ai est et une des du pas pour avec sur que qui ce cette tres
        mais peau visage depuis apres hier aujourd hui traitement mal gorge fievre sang yeux
        respirer rouge gonfle gonflee peux dois suis avoir bonjour merci salut bonsoir
        """.split()  # noqa: SIM905 - a word list reads better as text
    ),
    "pt": frozenset(
        """
        o a os as meu minha eu tenho esta estou que com uma um do da nao para mas muito rosto
        pele depois ontem hoje tratamento dor garganta febre sangue olhos respirar vermelha
        vermelho inchada inchado posso devo sinto ficou ola obrigado obrigada oi sem tudo
        tranquilo inchaco ja estao voce
        maquiagem microagulhamento preciso parar acido sessao sessoes quantas cicatrizes fazer fica tempo
        quanto doi pavor agulha sol praia fim
        """.split()  # noqa: SIM905 - a word list reads better as text
    ),
    "de": frozenset(
        """
        ich mein meine ist und nicht der die das habe hat mit ein eine auf fur wie was seit nach
        gesicht haut schmerzen rot geschwollen behandlung heute gestern kann hallo danke
        """.split()  # noqa: SIM905 - a word list reads better as text
    ),
    "it": frozenset(
        """
        il lo la mio mia io ho sono e non che con una uno del della per ma molto viso pelle dopo
        ieri oggi trattamento dolore gola febbre sangue occhi gonfio gonfia rosso rossa posso
        ciao grazie
        """.split()  # noqa: SIM905 - a word list reads better as text
    ),
}
# Words shared by several Latin languages never count as evidence ("a", "que", "la", "e", "o").
_SHARED = frozenset(
    w for lang, words in _WORDS.items() for w in words if sum(w in other for other in _WORDS.values()) > 1
)
_SCRIPTS = (
    ("zh", ("CJK UNIFIED",)),
    ("ja", ("HIRAGANA", "KATAKANA")),
    ("ko", ("HANGUL",)),
    ("ru", ("CYRILLIC",)),
    ("ar", ("ARABIC",)),
    ("he", ("HEBREW",)),
    ("el", ("GREEK",)),
    ("hi", ("DEVANAGARI",)),
    ("th", ("THAI",)),
)
_WORD = re.compile(r"[a-z]+")
MIN_EVIDENCE = 2
ENGLISH_SHARE = 0.6  # of the words of three letters or more


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if unicodedata.category(c) != "Mn")


def _script_language(text: str) -> str | None:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return None
    counts: dict[str, int] = {}
    for char in letters:
        name = unicodedata.name(char, "")
        for language, prefixes in _SCRIPTS:
            if name.startswith(prefixes):
                counts[language] = counts.get(language, 0) + 1
                break
    if not counts:
        return None
    language, count = max(counts.items(), key=lambda item: item[1])
    if language == "zh" and counts.get("ja"):
        language = "ja"  # Japanese mixes kanji with kana
    return language if count >= len(letters) / 2 else None


def detect_language(text: str) -> str:
    """A language code: en, es, fr, pt, de, it, or a script-based guess (zh, ja, ko, ru, ar, ...).

    "en" when the message is too short or too mixed to tell.
    """
    by_script = _script_language(text)
    if by_script:
        return by_script
    words = _WORD.findall(_fold(text))
    if not words:
        return "en"
    longer = [w for w in words if len(w) >= 3]
    vocabulary = english_words()
    if vocabulary and longer and sum(w in vocabulary for w in longer) >= ENGLISH_SHARE * len(longer):
        return "en"
    scores = {
        language: sum(1 for w in words if w in vocabulary and w not in _SHARED)
        for language, vocabulary in _WORDS.items()
    }
    best = max(scores, key=lambda language: (scores[language], language == "en"))
    # One telling word is enough in a very short message with no English in it ("hola", "fiebre 39").
    needed = 1 if len(words) <= 3 and scores["en"] == 0 else MIN_EVIDENCE
    if best == "en" or scores[best] < needed or scores[best] <= scores["en"]:
        return "en"
    return best
