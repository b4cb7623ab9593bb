"""The creative rules: what every ad creative must satisfy before it is a draft.

Plain Python, no Django; the ads services build the limits from settings and call in.

- `limits`: `CreativeLimits`, every limit and policy, with Plaza's defaults.
- `text`: grapheme counting, normalising, and finding links, emoji, hashtags, banned
  phrases and markup.
- `categories`: regulated categories, detected from keywords or declared.
- `check`: `Creative` and `check_creative`, every hard check in one report.
- `repair`: `prepare_creative`, what can be mended without changing what the ad says.
- `rank`: the objective's CTA, near-duplicates dropped, candidates ranked with reasons.
"""
