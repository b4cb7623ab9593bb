"""The search page's form: the query box and the filter fields beside it."""

from __future__ import annotations

from datetime import UTC, date, datetime

from django import forms
from django.core.validators import RegexValidator

from search.query import MAX_QUERY_CHARS, ParsedQuery, parse_query

LANG_RE = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"  # as the lang: operator takes it
PAGE_SIZE = 10
MAX_PAGE = 100  # search_posts digs deeper for each page; nobody reads page 1000


def _midnight(day: date | None) -> datetime | None:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=MAX_QUERY_CHARS, label="Search")
    author = forms.CharField(required=False, max_length=64, label="Author")
    lang = forms.CharField(
        required=False,
        max_length=16,
        label="Language",
        validators=[RegexValidator(LANG_RE, "A language code, e.g. es or en.")],
    )
    since = forms.DateField(required=False, label="Since", help_text="On or after this day.")
    until = forms.DateField(required=False, label="Until", help_text="Before this day.")
    recency = forms.BooleanField(required=False, label="Newest boost")
    page = forms.IntegerField(required=False, min_value=1, max_value=MAX_PAGE)

    def is_empty(self) -> bool:
        """Nothing to search for: no words and no filter (the page shows just the form)."""
        data = self.cleaned_data
        fields = ("author", "lang", "since", "until")
        return not data["q"].strip() and not any(data[name] for name in fields)

    @property
    def parsed_query_text(self) -> str:
        """The query with the filter fields written as operators (the answer's question)."""
        data = self.cleaned_data
        parts = [data["q"].strip()]
        if data["author"].strip():
            parts.append(f"from:{data['author'].strip().removeprefix('@')}")
        if data["lang"].strip():
            parts.append(f"lang:{data['lang'].strip().lower()}")
        for name in ("since", "until"):
            if data[name]:
                parts.append(f"{name}:{data[name].isoformat()}")
        return " ".join(part for part in parts if part)

    def parsed_query(self) -> ParsedQuery:
        """The query with the filter fields folded in; raises search.query.QueryError."""
        data = self.cleaned_data
        author = data["author"].strip().removeprefix("@")
        return parse_query(
            data["q"],
            since=_midnight(data["since"]),
            until=_midnight(data["until"]),
            lang=data["lang"].strip().lower() or None,
            authors=[author] if author else None,
        )

    @property
    def page_number(self) -> int:
        return self.cleaned_data.get("page") or 1
