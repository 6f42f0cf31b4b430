"""What the English encoder can read: its script (Latin letters; other scripts are noise to it) and its language
(English well, other languages written in Latin letters only by the odd shared word)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

# @handles, #tags and links: Latin letters whatever language the message is in.
_HANDLES_AND_LINKS = re.compile(r"[@#]\w+|https?://\S+")
# Words of three letters or more: shorter ones ("de", "la", "to", "no") are words of every language.
_WORD = re.compile(r"[^\W\d_]{3,}")
ENGLISH = "en"
# The language of a message shows in its opening; the identifier's time grows with the text (about 50 µs at 100
# characters, 110 µs at 1,000, 1.5 ms at 20,000), and it runs on the event loop.
OPENING = 1_000
MIN_WORDS = 3  # fewer words than this say too little of their language: the model's reading stands
ENGLISH_BELOW = 0.1  # the identifier's probability of English under which a text may be another language
KNOWN_BELOW = 0.75  # and the share of its words whole in the encoder's vocabulary under which it is
NAMED_FROM = 0.6  # below this probability of its best guess langid's name for the language is noise: "und"
UNDETERMINED = "und"  # ISO 639-2: another language, which langid can't name (Urdu or Punjabi in Latin letters)


def in_latin_script(text: str) -> bool:
    """Whether most of the text's letters are Latin. The encoder's vocabulary is English: it reads other scripts
    as noise (an Urdu greeting came out as a threat at 0.26, a Korean size question as an injection at 0.58). A
    text without letters (emoji, digits) counts as Latin: the model's reading of it is its own."""
    letters = [char for char in _HANDLES_AND_LINKS.sub("", text) if char.isalpha()]
    latin = sum(1 for char in letters if char < "\u0250" or "\u1e00" <= char < "\u1f00")
    return latin * 2 >= len(letters)


class Languages:
    """The language a message is written in: English, or the one langid names when the encoder can't read it.

    Neither signal is enough alone. langid (py3langid, its model in the package) reads short English messages as
    other languages ("Is a Mastercard debit card fine?" as Latin), and the encoder's vocabulary lacks English
    words ("fleece", "debit") as it holds Spanish and Italian ones. A text counts as another language only when
    langid gives English less than ENGLISH_BELOW and fewer than KNOWN_BELOW of its words are whole in the
    vocabulary (with their accents: the encoder strips them, so "está" is only "esta" to it). That takes 1 of
    Banking77's 10,003 training texts, 4 of CLINC150's 15,100 and 4 of Bitext's 6,480 for another language."""

    def __init__(self, vocabulary: Iterable[str]) -> None:
        self.vocabulary = frozenset(vocabulary)
        self._identifier = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)

    def of(self, text: str) -> str:
        """English ("en") unless the text is surely another language (mixed texts, with English the model reads,
        are English); then langid's code for it (ISO 639-1 where there is one), or "und" where langid isn't sure
        which: it takes Urdu written in Latin letters for Javanese or Hausa, and reviewers read the code."""
        opening = _HANDLES_AND_LINKS.sub("", text[:OPENING])
        words = _WORD.findall(opening.lower())
        if len(words) < MIN_WORDS or sum(word in self.vocabulary for word in words) >= KNOWN_BELOW * len(words):
            return ENGLISH
        ranked = self._identifier.rank(opening)
        if dict(ranked).get(ENGLISH, 0.0) >= ENGLISH_BELOW:
            return ENGLISH
        best, probability = ranked[0]
        return str(best) if probability >= NAMED_FROM else UNDETERMINED
