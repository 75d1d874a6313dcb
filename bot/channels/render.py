"""The pipeline's reply messages as one text message: SMS within a segment budget, WhatsApp within 4,096
characters (or as reply buttons), plain text, the red-flag instruction first.

SMS is paid per segment and long concatenated messages arrive out of order on some phones, so a long answer
is shortened at a sentence boundary (with a note saying so) rather than split into many parts; the red-flag
instruction, a source title and the numbered choices are never cut. GSM-7 fits 160 characters in one segment
(153 per part of a longer message); one character outside GSM-7, such as an emoji, makes the whole message
UCS-2: 70 UTF-16 units in one segment, 67 per part. Typographic punctuation in the clinic's own texts is sent
as its GSM-7 look-alike so a curly apostrophe never halves the budget.

Buttons become "1: Talk to a person ... Reply 1 or 2." (the numbers are mapped back by the texting service),
so a payload is never shown. All wording comes from knowledge/replies.yml.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from bot.schemas import Button, ChatMessage
from knowledge.replies import Replies

# 3GPP TS 23.038: the GSM 7-bit default alphabet, and its extension table (each of those costs two septets).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67
TWILIO_MAX_CHARS = 1600  # Twilio refuses longer bodies (error 21617)
WHATSAPP_MAX_CHARS = 4096
WHATSAPP_BUTTON_BODY_CHARS = 1024
WHATSAPP_BUTTONS = 3
WHATSAPP_BUTTON_TITLE_CHARS = 20

# The clinic's texts are typeset; SMS is not.
_GSM_LOOKALIKES = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
        "\u2212": "-", "\u2022": "-", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2026": "...",
        "\u00d7": "x",
    }
)  # fmt: skip
_MARKDOWN = [
    (re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)"), r"\1"),  # images: their description
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r"\1 (\2)"),  # links: text (address)
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"\1"),
    (re.compile(r"`([^`]+)`"), r"\1"),
    (re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE), ""),
    (re.compile(r"^\s*[*+]\s+", re.MULTILINE), "- "),
]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9¿¡])")


@dataclass(frozen=True)
class Segments:
    encoding: str  # GSM-7 | UCS-2
    count: int
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)


def sms_segments(text: str) -> Segments:
    """How many segments `text` takes as one SMS, the way carriers count them (a two-septet GSM escape or a
    surrogate pair is never split between parts)."""
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text):
        costs = [2 if c in GSM_EXTENSION else 1 for c in text]
        return Segments("GSM-7", _count(costs, GSM_SINGLE, GSM_PART), sum(costs))
    costs = [2 if ord(c) > 0xFFFF else 1 for c in text]
    return Segments("UCS-2", _count(costs, UCS2_SINGLE, UCS2_PART), sum(costs))


def _count(costs: list[int], single: int, part: int) -> int:
    total = sum(costs)
    if total <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > part:
            segments, used = segments + 1, 0
        used += cost
    return segments


def plain_text(text: str) -> str:
    """No Markdown markup: bold, links, headings and bullets as plain words."""
    for pattern, replacement in _MARKDOWN:
        text = pattern.sub(replacement, text)
    return text


def gsm_friendly(text: str) -> str:
    """Typographic quotes, dashes, ellipses and spaces as their GSM-7 look-alikes (emoji stay)."""
    return text.translate(_GSM_LOOKALIKES)


@dataclass(frozen=True)
class Wording:
    """The fixed texts rendering adds (knowledge/replies.yml, in the patient's language when it has them)."""

    citation: str  # "Source: {title}"
    option: str  # "{number}: {title}"
    choose: str  # "Reply {numbers}."
    or_word: str  # "or"
    shortened: str  # the note that the answer was shortened
    # A red flag's instruction in a few words, put first when the protocol's reply names the phone late.
    leads: dict[str, str] = field(default_factory=dict)  # triage level -> "Please call ... today."
    numbers: tuple[str, ...] = ()  # the clinic's phone and the emergency number: what an instruction names

    @classmethod
    def from_replies(cls, replies: Replies, language: str = "en") -> Wording:
        # Clinic facts are filled in; the per-message placeholders stay for `cite` and `choices`.
        return cls(
            citation=replies.text("citation", language),
            option=replies.text("texting_option", language),
            choose=replies.text("texting_choose", language),
            or_word=replies.text("texting_or", language),
            shortened=replies.text("texting_shortened", language),
            leads={
                "emergency": replies.text("texting_emergency_lead", language),
                "urgent": replies.text("texting_urgent_lead", language),
            },
            numbers=(replies.clinic.phone, replies.clinic.emergency_number),
        )

    def instruction_first(self, message: ChatMessage, text: str) -> str:
        """The red-flag text with its instruction (a number to call) within the first segment."""
        if any(number in text[:GSM_PART] for number in self.numbers if number):
            return text
        lead = self.leads.get(message.triage) or self.leads.get("urgent", "")
        return f"{lead} {text}" if lead else text

    def cite(self, title: str) -> str:
        return self.citation.replace("{title}", title)

    def choices(self, buttons: Sequence[Button]) -> str:
        """ "1: Yes", "2: No", "Reply 1 or 2." """
        lines = [
            self.option.replace("{number}", str(n)).replace("{title}", b.title)
            for n, b in enumerate(buttons, 1)
        ]
        numbers = [str(n) for n in range(1, len(buttons) + 1)]
        spoken = (
            numbers[0] if len(numbers) == 1 else f"{', '.join(numbers[:-1])} {self.or_word} {numbers[-1]}"
        )
        return "\n".join([*lines, self.choose.replace("{numbers}", spoken)])


@dataclass(frozen=True)
class SmsStyle:
    max_segments: int = 4
    name: str = "sms"


@dataclass(frozen=True)
class WhatsAppStyle:
    interactive: bool = True  # reply buttons (Cloud API); Twilio's WhatsApp gets numbered choices
    max_chars: int = WHATSAPP_MAX_CHARS
    name: str = "whatsapp"


Style = SmsStyle | WhatsAppStyle


@dataclass(frozen=True)
class Rendered:
    text: str
    buttons: tuple[Button, ...] = ()  # the choices offered, in number order (1, 2, ...)
    interactive: bool = False  # WhatsApp reply buttons: `text` is the body, the buttons are separate
    shortened: bool = False
    segments: Segments | None = None  # SMS only


@dataclass
class _Block:
    """One reply message: fixed (the red-flag instruction) or sentences that may be shortened."""

    sentences: list[str]
    citations: list[str] = field(default_factory=list)
    fixed: bool = False

    def text(self) -> str:
        return "\n".join(part for part in (" ".join(self.sentences), *self.citations) if part)


def render(messages: Sequence[ChatMessage], style: Style, wording: Wording) -> Rendered:
    """One text message for the channel from the pipeline's reply messages."""
    ordered = sorted(messages, key=lambda m: m.kind != "escalation")  # stable: the instruction first
    blocks = [_block(message, wording) for message in ordered]
    buttons = tuple(dict((b.payload, b) for m in ordered for b in m.buttons).values())
    if isinstance(style, WhatsAppStyle) and style.interactive and _fits_buttons(buttons):
        # Reply buttons only when the whole reply fits their 1,024-character body; a longer reply keeps its
        # words and offers numbered choices instead.
        body, shortened = _fit(blocks, "", wording, lambda t: len(t) <= WHATSAPP_BUTTON_BODY_CHARS)
        if not shortened and len(body) <= WHATSAPP_BUTTON_BODY_CHARS:
            return Rendered(body, buttons, interactive=True)
    choices = wording.choices(buttons) if buttons else ""
    if isinstance(style, SmsStyle):

        def fits(text: str) -> bool:
            return sms_segments(text).count <= style.max_segments

        text, shortened = _fit(blocks, choices, wording, fits)
        text = _hard_cut(text, TWILIO_MAX_CHARS)
        return Rendered(text, buttons, shortened=shortened, segments=sms_segments(text))
    text, shortened = _fit(blocks, choices, wording, lambda t: len(t) <= style.max_chars)
    return Rendered(_hard_cut(text, style.max_chars), buttons, shortened=shortened)


def render_staff_reply(text: str, style: Style) -> str:
    """A staff member's own words, as they wrote them: plain, and only cut at the provider's hard limit."""
    text = plain_text(text).strip()
    if isinstance(style, SmsStyle):
        return _hard_cut(gsm_friendly(text), TWILIO_MAX_CHARS)
    return _hard_cut(text, style.max_chars)


def _block(message: ChatMessage, wording: Wording) -> _Block:
    text = gsm_friendly(plain_text(message.text)).strip()
    if message.kind == "escalation":
        text = wording.instruction_first(message, text)
    cited = {gsm_friendly(wording.cite(source.title)) for source in message.sources}
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    sentences: list[str] = []
    citations: list[str] = []
    for paragraph in paragraphs:
        if paragraph in cited:
            if paragraph not in citations:
                citations.append(paragraph)
            continue
        sentences += [s.strip() for s in _SENTENCE_END.split(" ".join(paragraph.split())) if s.strip()]
    return _Block(sentences, citations, fixed=message.kind == "escalation")


def _fit(blocks: list[_Block], choices: str, wording: Wording, fits) -> tuple[str, bool]:  # noqa: ANN001
    """Drop sentences from the end of the last shortenable block until the whole text fits; a block with
    no sentence left goes with its citations. Fixed blocks and the choices always stay."""
    blocks = [replace(block, sentences=list(block.sentences)) for block in blocks]
    note = gsm_friendly(wording.shortened)
    shortened = False
    while True:
        parts = [block.text() for block in blocks if block.sentences or block.fixed]
        text = "\n\n".join(p for p in (*parts, note if shortened else "", choices) if p)
        if fits(text):
            return text, shortened
        movable = [block for block in blocks if not block.fixed and block.sentences]
        if not movable:
            return text, shortened  # only the instruction and the choices: sent whole, whatever they cost
        movable[-1].sentences.pop()
        shortened = True


def _fits_buttons(buttons: Sequence[Button]) -> bool:
    return 0 < len(buttons) <= WHATSAPP_BUTTONS and all(
        len(b.title) <= WHATSAPP_BUTTON_TITLE_CHARS for b in buttons
    )


def _hard_cut(text: str, limit: int) -> str:
    """The provider's own limit: cut at a word with an ellipsis (only a fixed text this long gets here)."""
    if len(text) <= limit:
        return text
    return text[: limit - 3].rsplit(" ", 1)[0] + "..."
