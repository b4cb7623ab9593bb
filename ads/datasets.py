"""Training data for ad adapters: rows from CSV files and approved creatives, cleaned,
de-duplicated, split reproducibly into train and eval, and turned into prompt → completion
examples with the prompts drafting uses (ads.prompts).

    dataset = dataset_from_csv(Path("slogans.csv"))   # Dataset(train, eval, errors, ...)
    dataset.errors                                    # ["slogans.csv:12: output: empty"]
    dataset.train_examples()                          # headlines, posts and rewrites
    dataset.tasks                                     # ("headline", "body", "rewrite")

A CSV needs the columns `desc` (what the product is) and `output` (the real headline);
`product`, `keywords` (separated by ";"), `language`, `body` (the post under the
headline), `variant_headline` and `variant_body` (the same headline and post reworded,
every fact kept), `industry`, `type` and `weight` are optional. A row with a body also
teaches the post; one with a variant teaches rewriting (the row into its variant and
back). A bad row is reported with its line and field and left out; the good rows beside
it are kept.
"""

from __future__ import annotations

import csv
import hashlib
import io
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ads.prompts import body_prompt, headline_prompt
from ml.lora import Example

REQUIRED_COLUMNS = ("desc", "output")
COLUMNS = ("desc", "output", "product", "keywords", "language", "body", "variant_headline",
           "variant_body", "industry", "type", "weight")  # fmt: skip
DESC_CHARS = (20, 1000)  # a description shorter says too little; longer, a page pasted in
OUTPUT_CHARS = (3, 120)  # a headline; longer ones are paragraphs, not headlines
BODY_CHARS = (20, 600)  # a post under the headline
EVAL_PERCENT = 10
TASKS = ("headline", "body", "rewrite")


class DatasetError(ValueError):
    """The file as a whole cannot be read: missing, not CSV, or missing a column."""


@dataclass(frozen=True)
class Row:
    desc: str
    output: str  # the headline
    industry: str = ""
    type: str = ""
    weight: float = 1.0  # how many times it counts (creatives: by CTR)
    product: str = ""
    keywords: tuple[str, ...] = ()
    language: str = "en"
    body: str = ""  # the post under the headline, when the row has one
    variant_headline: str = ""  # the headline and post reworded, every fact kept
    variant_body: str = ""

    @property
    def brief(self) -> dict:
        return {
            "description": self.desc,
            "product": self.product,
            "keywords": self.keywords,
            "industry": self.industry,
            "language": self.language,
        }

    def example(self) -> Example:
        """The headline example: the drafting prompt, the headline as the completion."""
        return Example(prompt=headline_prompt(**self.brief), completion=" " + self.output)

    def examples(self) -> list[Example]:
        """The headline example, and the post's under it when the row has a body."""
        examples = [self.example()]
        if self.body:
            prompt = body_prompt(**self.brief, headline=self.output)
            examples.append(Example(prompt=prompt, completion=" " + self.body))
        return examples

    def rewrite_examples(self) -> list[Example]:
        """Rewriting the row's headline and post into its variant, and the variant back."""
        if not self.variant_headline:
            return []
        examples = []
        for (headline, body), (new_headline, new_body) in (
            ((self.output, self.body), (self.variant_headline, self.variant_body)),
            ((self.variant_headline, self.variant_body), (self.output, self.body)),
        ):
            prompt = headline_prompt(**self.brief, original=headline)
            examples.append(Example(prompt=prompt, completion=" " + new_headline))
            if body and new_body:
                prompt = body_prompt(
                    **self.brief, headline=new_headline, original=body, original_headline=headline
                )
                examples.append(Example(prompt=prompt, completion=" " + new_body))
        return examples


@dataclass
class Dataset:
    train: list[Row]
    eval: list[Row]
    errors: list[str] = field(default_factory=list)
    duplicates: int = 0
    read: int = 0  # rows read, before cleaning

    @property
    def snapshot_hash(self) -> str:
        """Names exactly these examples, in this split: an adapter records it."""
        digest = hashlib.sha256()
        for part, rows in (("train", self.train), ("eval", self.eval)):
            for row in rows:
                digest.update(f"{part}\t{row.desc}\t{row.output}\t{row.weight}\n".encode())
        return digest.hexdigest()

    @property
    def tasks(self) -> tuple[str, ...]:
        """What an adapter trained on this set learns to write."""
        rows = self.train + self.eval
        learned = {"headline"}
        if any(row.body for row in rows):
            learned.add("body")
        if any(row.variant_headline for row in rows):
            learned.add("rewrite")
        return tuple(task for task in TASKS if task in learned)

    def train_examples(self) -> list[Example]:
        """Each row's examples (headline, post, rewrites) once per whole unit of weight
        (at least once)."""
        return _examples(self.train, weighted=True)

    def eval_examples(self) -> list[Example]:
        return _examples(self.eval, weighted=False)


def _examples(rows: list[Row], *, weighted: bool) -> list[Example]:
    examples = []
    for row in rows:
        times = max(1, round(row.weight)) if weighted else 1
        examples += (row.examples() + row.rewrite_examples()) * times
    return examples


def _clean(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text or "").split())


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def _in_eval(row: Row, eval_percent: int) -> bool:
    """By a hash of the description: the same product never sits on both sides, and the
    split does not move when rows are added or reordered."""
    bucket = int(hashlib.sha256(_fold(row.desc).encode()).hexdigest()[:8], 16) % 100
    return bucket < eval_percent


def dataset_from_rows(
    rows: list[Row], *, errors: list[str] | None = None, eval_percent: int = EVAL_PERCENT
) -> Dataset:
    """Rows de-duplicated (case and spacing folded; the heaviest copy kept) and split."""
    if not 0 < eval_percent < 100:
        raise ValueError(f"eval_percent={eval_percent}: between 1 and 99")
    unique: dict[tuple[str, str], Row] = {}
    for row in rows:
        key = (_fold(row.desc), _fold(row.output))
        if key not in unique or row.weight > unique[key].weight:
            unique[key] = row
    kept = sorted(unique.values(), key=lambda r: (_fold(r.desc), _fold(r.output)))
    return Dataset(
        train=[r for r in kept if not _in_eval(r, eval_percent)],
        eval=[r for r in kept if _in_eval(r, eval_percent)],
        errors=list(errors or []),
        duplicates=len(rows) - len(unique),
        read=len(rows),
    )


def rows_from_csv(path: Path) -> tuple[list[Row], list[str]]:
    """Good rows and one `path:line: field: reason` per bad one."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    rows, errors = [], []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(
                    f"{path}: missing column(s) {', '.join(missing)}; "
                    f"a training CSV has desc and output ({', '.join(COLUMNS[2:])} optional)"
                )
            for record in reader:
                line = reader.line_num
                weight, problem = _weight(record.get("weight"))
                row = Row(
                    desc=_clean(record.get("desc")),
                    output=_clean(record.get("output")),
                    industry=_clean(record.get("industry")),
                    type=_clean(record.get("type")),
                    weight=weight,
                    product=_clean(record.get("product")),
                    keywords=_keywords(record.get("keywords")),
                    language=_clean(record.get("language")).lower() or "en",
                    body=_clean(record.get("body")),
                    variant_headline=_clean(record.get("variant_headline")),
                    variant_body=_clean(record.get("variant_body")),
                )
                problem = problem or _row_problem(row)
                if problem:
                    errors.append(f"{path}:{line}: {problem}")
                else:
                    rows.append(row)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DatasetError(f"{path}: not a readable CSV ({exc})") from None
    return rows, errors


def _weight(value: str | None) -> tuple[float, str | None]:
    """The optional `weight` column (how many times a row counts, e.g. by CTR)."""
    if value is None or not value.strip():
        return 1.0, None
    try:
        weight = float(value)
    except ValueError:
        return 1.0, f"weight: {value[:20]!r} is not a number"
    if not 0 < weight <= 100:
        return 1.0, f"weight: {weight} is outside (0, 100]"
    return weight, None


def _keywords(value: str | None) -> tuple[str, ...]:
    return tuple(k for k in (_clean(part) for part in (value or "").split(";")) if k)


def rows_to_csv(rows: list[Row]) -> str:
    """Rows as a training CSV (with weights) that rows_from_csv reads back."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(
            [row.desc, row.output, row.product, "; ".join(row.keywords), row.language,
             row.body, row.variant_headline, row.variant_body, row.industry, row.type,
             row.weight]
        )  # fmt: skip
    return out.getvalue()


def _row_problem(row: Row) -> str | None:
    for name, value, (low, high) in (
        ("desc", row.desc, DESC_CHARS),
        ("output", row.output, OUTPUT_CHARS),
    ):
        if not value:
            return f"{name}: empty"
        if not low <= len(value) <= high:
            return f"{name}: {len(value)} characters, expected {low} to {high}"
    for name, value, (low, high) in (
        ("body", row.body, BODY_CHARS),
        ("variant_headline", row.variant_headline, OUTPUT_CHARS),
        ("variant_body", row.variant_body, BODY_CHARS),
    ):
        if value and not low <= len(value) <= high:
            return f"{name}: {len(value)} characters, expected {low} to {high}"
    if row.variant_body and not (row.body and row.variant_headline):
        return "variant_body: a post's variant needs the post and the headline's variant"
    if not (row.language.isascii() and row.language.isalpha() and 2 <= len(row.language) <= 3):
        return f"language: {row.language!r} is not a language code such as en or es"
    return None


def dataset_from_csv(path: Path, *, eval_percent: int = EVAL_PERCENT) -> Dataset:
    rows, errors = rows_from_csv(path)
    return dataset_from_rows(rows, errors=errors, eval_percent=eval_percent)


DEMO_CSV = Path(__file__).resolve().parent / "demo" / "creatives.csv"
# Plaza's own writing, English and Spanish briefs with headlines and posts: what the
# shipped default adapter is trained on (`train_adapter --dataset default`).
DEFAULT_SET_CSV = Path(__file__).resolve().parent / "demo" / "adapter_set.csv"


CTR_PRIOR_IMPRESSIONS = 200  # a creative's CTR is pulled toward the mean by this much data
MAX_CTR_WEIGHT = 5.0


@dataclass(frozen=True)
class CreativeRecord:
    """An approved creative with its performance, as plain values."""

    desc: str
    headline: str
    industry: str
    impressions: int
    clicks: int
    body: str = ""
    product: str = ""
    keywords: tuple[str, ...] = ()
    language: str = "en"


def rows_from_creatives(records: list[CreativeRecord]) -> list[Row]:
    """Approved creatives as training rows weighted by CTR: each creative's smoothed CTR
    (clicks + prior) / (impressions + prior impressions) over the mean CTR, capped at
    MAX_CTR_WEIGHT; a creative with no impressions yet counts once."""
    shown = [r for r in records if r.impressions > 0]
    mean = sum(r.clicks for r in shown) / max(1, sum(r.impressions for r in shown))
    rows = []
    for record in records:
        weight = 1.0
        if record.impressions > 0 and mean > 0:
            smoothed = (record.clicks + mean * CTR_PRIOR_IMPRESSIONS) / (
                record.impressions + CTR_PRIOR_IMPRESSIONS
            )
            weight = min(MAX_CTR_WEIGHT, smoothed / mean)
        row = Row(
            desc=_clean(record.desc),
            output=_clean(record.headline),
            industry=_clean(record.industry),
            type="creative",
            weight=round(weight, 3),
            product=_clean(record.product),
            keywords=tuple(_clean(k) for k in record.keywords if _clean(k)),
            language=_clean(record.language) or "en",
            body=_clean(record.body),
        )
        if _row_problem(row) is None:
            rows.append(row)
    return rows
