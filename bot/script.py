"""Which script a text is written in, as far as the English encoder is concerned: it reads Latin letters (well in
English, partly in other languages) and nothing else."""

from __future__ import annotations

import re

# @handles, #tags and links: Latin letters whatever language the message is in.
_HANDLES_AND_LINKS = re.compile(r"[@#]\w+|https?://\S+")


def in_latin_script(text: str) -> bool:
    """Whether most of the text's letters are Latin. The encoder's vocabulary is English: it reads other scripts
    as noise (an Urdu greeting came out as a threat at 0.26, a Korean size question as an injection at 0.58). A
    text without letters (emoji, digits) counts as Latin: the model's reading of it is its own."""
    letters = [char for char in _HANDLES_AND_LINKS.sub("", text) if char.isalpha()]
    latin = sum(1 for char in letters if char < "\u0250" or "\u1e00" <= char < "\u1f00")
    return latin * 2 >= len(letters)
