"""Template filters for search results.

    {% load search_extras %}
    {{ hit.post.text|highlight:hit.matched_terms }}

Words are found and folded as BM25 finds and folds them (ml.bm25), so a word is marked
exactly when the index matched it. The text is escaped piece by piece: only the <mark>
and <br> tags this filter writes are HTML.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import normalize_newlines

from ml.bm25 import fold, words

register = template.Library()

_WORD = re.compile(r"\w+", re.UNICODE)  # the word pattern of ml.bm25.words


def _marked(word: str, terms: set[str]) -> bool:
    # One word of the text may fold into several (ligatures, fractions): mark it if any match.
    return fold(word) in terms or any(w in terms for w in words(word))


@register.filter(is_safe=True)
def highlight(text: str, terms: Iterable[str] | None) -> SafeString:
    """The text escaped, line breaks as <br>, words whose folded form is in `terms` in <mark>."""
    text = normalize_newlines(str(text))
    wanted = {fold(term) for term in terms or ()}
    pieces: list[str] = []
    end = 0
    for match in _WORD.finditer(text):
        pieces.append(escape(text[end : match.start()]))
        word = match.group()
        if wanted and _marked(word, wanted):
            pieces.append(f"<mark>{escape(word)}</mark>")
        else:
            pieces.append(escape(word))
        end = match.end()
    pieces.append(escape(text[end:]))
    return mark_safe("".join(pieces).replace("\n", "<br>"))  # noqa: S308 - every piece escaped
