"""Ad text as people see it: normalising, counting characters, and finding links,
emoji, hashtags, banned phrases and markup.

Characters are counted as people see them: grapheme clusters of the NFC text (`regex`'s
`\\X`), so a ZWJ family, a flag or a thumbs-up with a skin tone is one character and one
emoji. A link in the body counts as `link_chars` (23, as X's t.co wrapping does).

    text_length("Cafe\u0301")                              # 4: one é
    body_length(body, landing_url=url, link_chars=23)     # as X counts the post
    find_banned_terms("Risk-Free trial", ["risk free"])   # ["risk free"]

Phrases match as `fold` folds them: whole words, case-, accent-, spacing- and
punctuation-insensitive. Plain Python, no Django.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import urlsplit

import regex

# Invisible characters dropped on the way in (zero-width space, word joiner, BOM, soft
# hyphen). ZWJ (U+200D) stays: emoji sequences need it.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad"))
GRAPHEME = regex.compile(r"\X")
EMOJI_IN_CLUSTER = regex.compile(
    r"\p{Emoji_Presentation}|\p{Extended_Pictographic}[\uFE0F\p{Emoji_Modifier}]"
    r"|\u200D\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20E3"
)
_TLDS = "com|net|org|io|co|es|uk|de|fr|it|eu|us|app|dev|ai|info|biz|me|shop|store|online|site"
_URL = re.compile(
    rf"(?:https?://|www\.)[^\s<>\"']+|\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:{_TLDS})\b(?:/[^\s<>\"']*)?",
    re.IGNORECASE,
)
SPACED_URL = re.compile(rf"([ \t]*)({_URL.pattern})", re.IGNORECASE)  # to drop with its space
URL_TRAILING = ".,;:!?)]}'\"…"
HASHTAG = re.compile(r"(?<![\w&/#])#(?=\w*[^\W\d_])\w+")


def normalize_text(text: str, *, multiline: bool = False) -> str:
    """NFC, invisible characters dropped, whitespace collapsed (newlines kept if multiline)."""
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not multiline:
        return " ".join(text.split())
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def text_length(text: str) -> int:
    """Characters as people see them: grapheme clusters of the NFC text."""
    return len(GRAPHEME.findall(unicodedata.normalize("NFC", text)))


def find_urls(text: str) -> list[str]:
    """Links in the text (http(s)://, www. or a bare domain with a common TLD)."""
    return [match.rstrip(URL_TRAILING) for match in _URL.findall(text)]


def body_length(body: str, *, landing_url: str = "", link_chars: int = 23) -> int:
    """The body as X counts it: every link is `link_chars`, plus the landing URL appended
    (unless the body already links to the landing URL's host)."""
    length = text_length(body)
    for url in find_urls(body):
        length += link_chars - text_length(url)
    if landing_url and not links_to_landing(body, landing_url):
        length += link_chars
    return length


def _host(url: str) -> str:
    if "://" not in url:
        url = "http://" + url
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def same_site(url: str, landing_url: str) -> bool:
    """Whether the link is on the landing page's site (its host or a subdomain)."""
    host, landing = _host(url), _host(landing_url)
    return bool(host and landing) and (host == landing or host.endswith("." + landing))


def links_to_landing(body: str, landing_url: str) -> bool:
    """Whether the body already links to the landing page's site."""
    return any(same_site(url, landing_url) for url in find_urls(body))


def find_emoji(text: str) -> list[str]:
    """Emoji as people see them: one per grapheme cluster (ZWJ sequences, flags, skin
    tones, keycaps). Text-style symbols such as ™ or ✔ without U+FE0F are not emoji."""
    return [c for c in GRAPHEME.findall(text) if EMOJI_IN_CLUSTER.search(c)]


def find_hashtags(text: str) -> list[str]:
    """Hashtags, "#word" (at least one letter; "#1" is not a tag), ignoring links' #fragments."""
    return HASHTAG.findall(mask_urls(text))


def mask_urls(text: str) -> str:
    """The text with every link blanked out, its length kept (offsets stay valid)."""
    return _URL.sub(lambda m: " " * len(m.group()), text)


def fold(text: str) -> str:
    """Case-, accent- and punctuation-folded words, space-separated and space-padded, so
    a phrase matches as `f" {phrase} " in folded` on word boundaries only."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " " + " ".join(re.sub(r"[\W_]+", " ", stripped).split()) + " "


def phrase_in(folded_text: str, phrase: str) -> bool:
    """Whether the phrase occurs in `fold`ed text as whole words (or run together)."""
    folded = fold(phrase)
    if folded.strip() and folded in folded_text:
        return True
    words = folded.split()
    return len(words) > 1 and f" {''.join(words)} " in folded_text


def find_banned_terms(text: str, terms: Iterable[str]) -> list[str]:
    """The terms that occur in the text as whole words or phrases, in `terms` order.
    Case, accents, spacing and punctuation are ignored: "risk free" hits "Risk-Free" and
    "riskfree", "free" does not hit "freedom"."""
    folded = fold(text)
    found: list[str] = []
    for term in terms:
        if term not in found and phrase_in(folded, term):
            found.append(term)
    return found


_TAG = re.compile(r"<\s*/?\s*[A-Za-z!?][^<>]*>")
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-f]+|[a-z][a-z0-9]{1,31});", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{[^{}\n]{0,60}\}|\[[^\[\]\n]{1,60}\]")
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def find_markup(text: str) -> list[str]:
    """What in the text is not plain ad copy: HTML tags or entities, template placeholders
    ("[Product]", "{name}"), control, bidi-override or private-use characters."""
    found = [f"tag {m!r}" for m in _TAG.findall(text)]
    found += [f"entity {m!r}" for m in _ENTITY.findall(text)]
    found += [f"placeholder {m!r}" for m in _PLACEHOLDER.findall(text)]
    for char in dict.fromkeys(text):
        kind = unicodedata.category(char)
        if (kind == "Cc" and char not in "\n\t") or kind in ("Co", "Cs") or char in _BIDI_CONTROLS:
            found.append(f"character U+{ord(char):04X}")
    return found
