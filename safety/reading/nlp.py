"""The one spaCy pipeline every language-processing step starts from.

No trained spaCy model is installed: the product runs offline on `spacy.blank("en")` (tokenizer, lexical
attributes) plus a rule-based sentencizer and the project's own matchers.
"""

from functools import lru_cache

import spacy
from spacy.language import Language


@lru_cache(maxsize=1)
def blank_english() -> Language:
    """Return the shared blank English pipeline with sentence boundaries."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp
