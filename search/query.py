"""Search queries as people type them on X: words plus operators.

    parse_query('vacunas "tercera dosis" -covid from:el_pais lang:es since:2021-06-01')

Operators (case-insensitive names, any order, all combined with AND):
    from:handle        posts by that author (the @ is optional); several from: mean any of them
    lang:es            posts in that language
    since:YYYY-MM-DD   posted on or after that day (UTC)
    until:YYYY-MM-DD   posted before that day (UTC), as on X
    "exact phrase"     posts that contain these words in this order
    -word, -"phrase"   posts that do not contain the word or phrase

Anything else is text to rank by. A word with a colon that is not an operator (a URL, a
time, "re:") is text too. Mistakes in an operator's value are reported, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

MAX_QUERY_CHARS = 500
_HANDLE = re.compile(r"^@?([^\s@:\"]{1,64})$")
_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
# A token: an optional minus, then a quoted phrase (closed or not) or a bare word.
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


class QueryError(ValueError):
    """A query operator with a value that cannot be used; says which and why."""


@dataclass
class ParsedQuery:
    text: str = ""  # what ranking sees: the free words and the phrases
    phrases: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)  # words and phrases to leave out
    authors: list[str] = field(default_factory=list)
    lang: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def has_filters(self) -> bool:
        return bool(
            self.phrases or self.excluded or self.authors or self.lang or self.since or self.until
        )

    @property
    def filters(self) -> dict:
        """The operators as plain values (for the API's echo and the answer log)."""
        return {
            "phrases": self.phrases,
            "excluded": self.excluded,
            "authors": self.authors,
            "lang": self.lang,
            "since": self.since.date().isoformat() if self.since else None,
            "until": self.until.date().isoformat() if self.until else None,
        }


def _day(value: str, operator: str) -> datetime:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise QueryError(
            f"{operator}:{value}: not a date; write it as YYYY-MM-DD, e.g. {operator}:2022-01-31"
        ) from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def parse_query(
    query: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    lang: str | None = None,
    authors: list[str] | None = None,
) -> ParsedQuery:
    """Split a query into text and filters. Keyword filters (from a form's fields) are
    combined with the operators in the text; raises QueryError naming the bad operator."""
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"q: at most {MAX_QUERY_CHARS} characters, got {len(query)}")
    parsed = ParsedQuery(since=since, until=until, lang=lang, authors=list(authors or []))
    words: list[str] = []
    for match in _TOKEN.finditer(query):
        minus, phrase, word = match.groups()
        if word is None:  # a quoted phrase
            phrase = " ".join(phrase.split())
            if not phrase:
                continue
            if minus:
                parsed.excluded.append(phrase)
            else:
                parsed.phrases.append(phrase)
                words.append(phrase)
            continue
        name, colon, value = word.partition(":")
        name = name.lower()
        if colon and name in {"from", "lang", "since", "until"}:
            if not value:
                raise QueryError(f"{name}: needs a value, e.g. {_EXAMPLES[name]}")
            if name == "from":
                handle = _HANDLE.match(value)
                if not handle:
                    raise QueryError(f"from:{value}: not an author handle")
                parsed.authors.append(handle.group(1))
            elif name == "lang":
                if not _LANG.match(value):
                    raise QueryError(f"lang:{value}: not a language code; use e.g. lang:es")
                parsed.lang = value.lower()
            else:
                setattr(parsed, name, _day(value, name))
            continue
        if word.startswith("-") and len(word) > 1:
            parsed.excluded.append(word[1:])
            continue
        words.append(word)
    parsed.text = " ".join(words)
    if parsed.since and parsed.until and parsed.since >= parsed.until:
        raise QueryError(
            f"since:{parsed.since.date()} is not before until:{parsed.until.date()}: "
            "no post can match"
        )
    return parsed


_EXAMPLES = {
    "from": "from:el_pais",
    "lang": "lang:es",
    "since": "since:2022-01-31",
    "until": "until:2022-02-28",
}
