"""Numbers with units in a patient's message: body temperatures, pulse, breathing rate and other measures.

Patients give a temperature as "38.6", "101.2F", "39 degrees", "temp of 102", "fiebre de 39" or "39°C"; this
module turns each into degrees Celsius. A number counts as a temperature when it has a temperature unit, or
when a temperature word is next to it, or when it has a decimal point and lies in the range of a human body
temperature (37.5-43.0 C or 99.5-109.4 F) and no other unit follows it ("38.5 mm" is not a temperature).
Bare whole numbers without a unit or a temperature word ("39", "101") are not read as temperatures: they
are too often something else (a day, an age, a price).

Works on the output of `normalise_text` (lower case, degree signs dropped, "38c" split into "38 c").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CELSIUS_RANGE = (34.0, 43.5)  # a plausible body temperature, whatever unit the patient wrote it in
# A decimal number with no unit is read as a temperature only inside these (a fever-range reading).
BARE_CELSIUS = (37.5, 43.0)
BARE_FAHRENHEIT = (99.5, 109.4)

_NUMBER = r"(\d{2,3}(?:[.,]\d{1,2})?)"
# "temp", "temps", "temperature" and its common misspellings ("temprature", "tempreture", "tempature").
_TEMPERATURE_WORD = r"temps?|temp[a-z]{0,3}tures?"
_UNIT_AFTER = re.compile(
    _NUMBER + r"\s*(?:(c|celsius|centigrade|f|fahrenheit)\b|(degrees?|deg|grados?|degres?|graus?)\b)"
)
_WORD_BEFORE = re.compile(
    r"\b(?:" + _TEMPERATURE_WORD + r"|temperatura|fever|feverish|fiebre|fievre|febre|thermometer|"
    r"termometro|thermometre|running|reads?|reading|said|says|showed|shows|hit|hits|of|at|is|was|de|a|um|uma|"
    r"spiked to|up to|around|about)\s+(?:a\s+|an\s+|of\s+|at\s+|is\s+|was\s+|de\s+)?" + _NUMBER + r"\b"
)
_TEMPERATURE_WORDS = re.compile(
    r"\b(?:" + _TEMPERATURE_WORD + r"|temperatura|fever|feverish|fiebre|fievre|febre|thermometer|termometro|"
    r"thermometre|calentura|febril|febrile)\b"
)
_BARE_DECIMAL = re.compile(
    r"(?<!\d)(?<!\d[.,])(\d{2,3}[.,]\d{1,2})(?!\d)(?![.,]\d)(?!\s*(?:%|mm|cm|kg|lb|lbs|mg|ml|"
    r"dollars?|usd|eur|euros?|pounds?|hours?|days?|weeks?|years?|minutes?|am|pm)\b)"
)
_NON_TEMPERATURE_UNIT = re.compile(r"^\s*(?:%|mm|cm|kg|lb|lbs|mg|ml|dollars?|years?|yrs?|am|pm)\b")


# The weather's temperature, not the patient's: "it's going to be 38 degrees here on Saturday". Readings in a
# message about the weather count only when the message also speaks of a body's temperature.
_WEATHER = re.compile(
    r"\b(?:weather|forecast|outside|heat ?wave|sunny|sunshine|in the sun|the shade|beach|holiday|abroad|"
    r"here on|out there|hot out|degrees out|clima|tiempo|calor|playa|meteo|chaleur|plage|praia)\b"
)
_BODY_TEMPERATURE = re.compile(
    r"\b(?:fever|feverish|fiebre|fievre|febre|thermometer|termometro|thermometre|chills|shivery|shivering|"
    r"my temp|my temperature|mi temperatura|ma temperature|minha temperatura|i am at|i am running|"
    r"i have|i ve got|i got|running)\b"
)


@dataclass(frozen=True)
class Temperature:
    celsius: float
    stated_unit: bool  # "39 c", "101 f", "39 degrees": the patient said it is a temperature


def _to_float(text: str) -> float:
    return float(text.replace(",", "."))


def _from_fahrenheit(value: float) -> float:
    return round((value - 32) * 5 / 9, 1)


def _celsius(value: float, unit: str | None) -> float | None:
    """The value in Celsius if it is a plausible body temperature in the given (or guessed) unit: a value
    that is no body temperature in Celsius is tried as Fahrenheit."""
    stated_celsius = unit in ("c", "celsius", "centigrade")
    in_celsius_range = CELSIUS_RANGE[0] <= value <= CELSIUS_RANGE[1]
    fahrenheit = unit in ("f", "fahrenheit") or not (stated_celsius or in_celsius_range)
    celsius = _from_fahrenheit(value) if fahrenheit else value
    return celsius if CELSIUS_RANGE[0] <= celsius <= CELSIUS_RANGE[1] else None


def temperatures(text: str) -> list[Temperature]:
    """Every body temperature the message states, in Celsius, in the order they appear."""
    if _WEATHER.search(text) and not _BODY_TEMPERATURE.search(text):
        return []
    found: dict[int, Temperature] = {}
    for match in _UNIT_AFTER.finditer(text):
        unit = match.group(2)
        value = _celsius(_to_float(match.group(1)), unit)
        if value is not None:
            found[match.start(1)] = Temperature(value, stated_unit=True)
    mentions_temperature = bool(_TEMPERATURE_WORDS.search(text))
    for match in _WORD_BEFORE.finditer(text):
        if match.start(1) in found or _NON_TEMPERATURE_UNIT.match(text[match.end(1) :]):
            continue
        word = match.group(0).split()[0]
        if not (mentions_temperature or _TEMPERATURE_WORDS.fullmatch(word)):
            continue  # "at 39" alone is no temperature; "fever ... at 39" is
        value = _celsius(_to_float(match.group(1)), None)
        if value is not None:
            found[match.start(1)] = Temperature(value, stated_unit=False)
    for match in _BARE_DECIMAL.finditer(text):
        if match.start(1) in found:
            continue
        number = _to_float(match.group(1))
        if BARE_CELSIUS[0] <= number <= BARE_CELSIUS[1] or BARE_FAHRENHEIT[0] <= number <= BARE_FAHRENHEIT[1]:
            value = _celsius(number, None)
            if value is not None:
                found[match.start(1)] = Temperature(value, stated_unit=False)
    return [found[position] for position in sorted(found)]


def highest_temperature(text: str) -> float | None:
    """The highest body temperature the message states, in Celsius, or None."""
    readings = temperatures(text)
    return max((reading.celsius for reading in readings), default=None)


_PULSE = re.compile(
    r"\b(?:pulse|heart ?rate|heartbeat|hr|pulso|frecuencia cardiaca|pouls|frequence cardiaque|batimentos)"
    r"\D{0,15}?(\d{2,3})\b|\b(\d{2,3})\s*(?:bpm|beats a minute|beats per minute)\b"
)
_BREATHING_RATE = re.compile(
    r"\b(?:breathing|breaths?|breathe|respirations?|respiro|respirando)\D{0,20}?(\d{2})\s*"
    r"(?:times\s+|breaths\s+)?(?:a|per|/|por|par)\s*min"
)


_SIZED = re.compile(r"(\d+(?:[.,]\d+)?)\s*(cm|mm|inch|inches|centimetres?|centimeters?|/10|out of 10)\b")
_COUNTED = re.compile(
    r"(\d{1,3})\s+(bumps?|spots?|blisters?|pimples?|marks?|lumps?|granos|granitos|boutons|espinhas)\b"
)
_DAY_SCORE = re.compile(r"\bday\s*\d{1,2}\s*[:=-]\s*(\d{1,3})\b")


def rising(text: str) -> bool:
    """Whether the message gives two or more readings of one measure and the last is the larger:
    "2 cm on day 1, 5 cm now", "pain 4/10, then 6/10, now 8/10", "3 bumps ... now 30 bumps"."""
    series: dict[str, list[float]] = {}
    for value, unit in _SIZED.findall(text):
        kind = "size" if unit not in ("/10", "out of 10") else "score"
        series.setdefault(kind, []).append(float(value.replace(",", ".")))
    for value, thing in _COUNTED.findall(text):
        series.setdefault(thing.rstrip("s"), []).append(float(value))
    scores = [float(value) for value in _DAY_SCORE.findall(text)]
    if scores:
        series.setdefault("day score", []).extend(scores)
    return any(len(values) >= 2 and values[-1] > values[0] for values in series.values())


def measures(text: str) -> dict[str, float]:
    """What the message measures: `temperature` (Celsius, the highest), `temperature_below` (the same,
    for "below" facts), `pulse` and `breathing_rate` (a minute), and `rising` (1.0 when a measure grows
    across the message). A measure the message does not state is absent.
    """
    found: dict[str, float] = {}
    temperature = highest_temperature(text)
    if temperature is not None:
        found["temperature"] = temperature
        found["temperature_below"] = temperature
    if rising(text):
        found["rising"] = 1.0
    pulses = [int(a or b) for a, b in _PULSE.findall(text)]
    if pulses and max(pulses) <= 250:
        found["pulse"] = float(max(pulses))
    rates = [int(rate) for rate in _BREATHING_RATE.findall(text)]
    if rates and max(rates) <= 80:
        found["breathing_rate"] = float(max(rates))
    return found
