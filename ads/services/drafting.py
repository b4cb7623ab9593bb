"""Drafting ad creatives: a brief → the worker's resident base model with the campaign's
LoRA adapter → candidates → hard checks, repair, near-duplicates dropped, ranked → drafts.

    brief = Brief.from_campaign(campaign)
    outcome = draft_creatives(brief=brief, n=8, adapter=adapter_for_campaign(...))
    outcome.drafts      # [KeptDraft(headline, body, cta, checks, reasons, ...)], best first
    outcome.dropped     # {"banned_terms": 2, "near_duplicate": 1}: what never became a draft

    job = draft_job_create(campaign=campaign, user=user, n=8)   # queued for a gpu worker
    draft_job_execute(job_id=job.id)                            # what the worker runs

A brief in a blocked regulated category raises `DraftBlocked` before any model runs; one
in a review category drafts, and every draft is marked for extra review. The headline and
the post under it are written by the adapter where it learned them (`Adapter.tasks`,
asked with its training prompt, ads.prompts), else by the base model after worked
examples; with the advertiser's own text (`own_headline`, `own_body`) they are
variations of it. The call to action is picked from the allowed list by the brief's
objective. A candidate is repaired where that is safe (limits at a word boundary, the
product's spelling) and must then pass every hard check (ads.creative.check) and every
faithfulness check (ads.creative.faithful), else it is dropped and another round
generated (at most `MAX_ROUNDS`). Kept drafts are ranked with their relevance to the brief
(the retrieval encoder) and chosen so that at least `PRODUCT_NAMED_SHARE` name the
product.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ads.briefs import (
    Brief,
    BriefError,
    DraftBlocked,
    campaign_decision,
    faithfulness_dict,
    limits,
)
from ads.creative.categories import brief_category
from ads.creative.check import Creative
from ads.creative.faithful import (
    PRODUCT_NAMED_SHARE,
    BriefFacts,
    check_faithful,
    repair_product_name,
)
from ads.creative.limits import CreativeLimits
from ads.creative.rank import cta_for_objective, drop_near_duplicates
from ads.creative.rank import rank as rank_candidates
from ads.creative.repair import prepare_creative
from ads.creative.text import find_banned_terms, find_markup, fold
from ads.models import Adapter, AdCreative, Campaign, CreativeEvent, DraftJob
from ads.prompts import (
    body_prompt,
    body_prompt_with_examples,
    headline_prompt,
    headline_prompt_with_examples,
)
from ads.selectors import adapter_for_campaign
from ads.services.default_adapter import shipped_folder
from ml.drafting import MAX_VARIATIONS, Draft, DraftModelConfig, DraftParams, get_draft_model
from ml.embeddings import EncoderConfig, get_encoder
from ops.jobs import ProgressWriter, job_finish, job_should_stop, job_start, jobs_fail_stale

logger = logging.getLogger(__name__)

MAX_DRAFTS = 50  # per job
MAX_SEED = 2**30  # a job's seed; its rounds and variations add to it below llama.cpp's 2**31
MAX_ROUNDS = 6  # generate again while fewer than n candidates pass (or name the product)
OVERSAMPLE = 2.0  # candidates asked for per draft still wanted
BODIES_PER_HEADLINE = 2  # posts decoded together under a headline; the first that passes wins
# Faithfulness checks a headline fails on its own, whatever post follows it.
HEADLINE_ALONE_CHECKS = ("product", "invented", "claims", "repetition")
HEADLINE_TOKENS = 32
BODY_TOKENS = 96
DUPLICATE_COSINE = 0.92  # of the retrieval encoder's vectors: closer is the same ad
HEADLINE_DECODING = {"temperature": 0.9, "top_p": 0.95}
BODY_DECODING = {"temperature": 0.7, "top_p": 0.9}
PROGRESS_SAVE_EVERY_S = 1.0
STALE_AFTER = DraftJob.STALE_AFTER  # a running job silent this long lost its worker
MIN_HEADLINE_WORDS = 2
MIN_BODY_WORDS = 5


@dataclass
class KeptDraft:
    """A candidate that passed every check and was kept: it becomes an `AdCreative` draft."""

    headline: str
    body: str
    cta: str
    checks: dict  # every check's report: hard (passed, checks) and faithfulness
    repairs: list[str]
    seed: int
    prompt: str  # the headline prompt
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)
    named: bool = False  # names the product as the brief writes it
    relevance: float = 0.0  # cosine of the draft's and the brief's encoder vectors

    @property
    def status(self) -> str:
        return AdCreative.Status.DRAFT


@dataclass
class DraftOutcome:
    drafts: list[KeptDraft]  # best first, at most n
    generated: int  # candidates the model wrote
    dropped: dict[str, int]  # why candidates never became drafts
    rounds: int
    adapter: str  # adapter name, "" for the base model alone
    base_model: str
    backend: str
    decoding: dict
    seconds: float
    category: dict  # the brief's category decision
    named: int = 0  # drafts that name the product


def _model_config(base_model: str) -> DraftModelConfig:
    return DraftModelConfig(
        base=base_model,
        device=settings.PLAZA_DEVICE,
        threads=settings.PLAZA_GENERATION_THREADS,
        cache_dir=str(settings.PLAZA_MODEL_CACHE),
        max_adapters=settings.PLAZA_AD_ADAPTER_SLOTS,
    )


def adapter_folder(adapter: Adapter) -> Path:
    """Where an adapter's PEFT files are: under the data dir, or shipped with Plaza."""
    return shipped_folder(adapter.path) or Path(settings.DATA_DIR) / adapter.path


@dataclass(frozen=True)
class _Prompts:
    """How one job asks the model: with the adapter for what it learned, else the base
    model after worked examples."""

    brief: Brief
    adapter_path: str | None
    tasks: frozenset[str]

    def _fields(self) -> dict:
        brief = self.brief
        return {
            "description": brief.description,
            "product": brief.product,
            "keywords": brief.keywords,
            "industry": brief.industry,
            "language": brief.language,
        }

    def _uses_adapter(self, task: str, rewriting: bool) -> bool:
        return self.adapter_path is not None and (
            "rewrite" in self.tasks if rewriting else task in self.tasks
        )

    def headline(self) -> tuple[str, str | None]:
        original = self.brief.own_headline
        fields = self._fields() | {"original": original}
        if self._uses_adapter("headline", bool(original.strip())):
            return headline_prompt(**fields), self.adapter_path
        return headline_prompt_with_examples(**fields), None

    def body(self, headline: str) -> tuple[str, str | None]:
        original = self.brief.own_body
        fields = self._fields() | {
            "headline": headline,
            "audience": self.brief.audience,
            "tone": self.brief.tone,
            "original": original,
            "original_headline": self.brief.own_headline,
        }
        if self._uses_adapter("body", bool(original.strip())):
            return body_prompt(**fields), self.adapter_path
        return body_prompt_with_examples(**fields), None


def draft_creatives(
    *,
    brief: Brief,
    n: int,
    adapter: Adapter | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DraftOutcome:
    """Up to n drafts that pass every hard and faithfulness check (see the module
    docstring); raises DraftBlocked for a blocked category. `progress(generated, kept)`
    after each candidate."""
    if not 1 <= n <= MAX_DRAFTS:
        raise BriefError(f"n: expected 1 to {MAX_DRAFTS}, got {n}")
    if not 0 <= seed <= MAX_SEED:
        raise BriefError(f"seed: expected 0 to {MAX_SEED}, got {seed}")
    started = time.perf_counter()
    rules = limits()
    decision = brief_category(declared=brief.category, text=brief.text, limits=rules)
    if decision.action == "block":
        raise DraftBlocked(decision)
    base_model = adapter.base_model if adapter else settings.PLAZA_AD_BASE_MODEL
    prompts = _Prompts(
        brief=brief,
        adapter_path=str(adapter_folder(adapter)) if adapter else None,
        tasks=frozenset(getattr(adapter, "tasks", None) or ("headline",)),
    )
    model = get_draft_model(_model_config(base_model))
    facts = brief.facts
    cta = cta_for_objective(brief.objective, rules)
    # The retrieval encoder judges near-duplicates and relevance to the brief.
    encoder = get_encoder(
        EncoderConfig(model=settings.PLAZA_EMBED_MODEL, device=settings.PLAZA_DEVICE)
    )
    [brief_vector] = encoder.encode([_brief_text(brief)])  # (d,)
    want_named = math.ceil(PRODUCT_NAMED_SHARE * n) if brief.product.strip() else 0
    kept: list[KeptDraft] = []
    kept_vectors: list[np.ndarray] = []  # (d,) each, of the kept drafts
    dropped: Counter[str] = Counter()
    generated = rounds = 0

    def enough() -> bool:
        return len(kept) >= n and sum(d.named for d in kept) >= want_named

    def stopped() -> bool:
        return bool(should_stop and should_stop())

    def note(reason: str | None) -> None:
        if reason:
            dropped[reason] += 1
        if progress:
            progress(generated, len(kept))

    while not enough() and rounds < MAX_ROUNDS and not stopped():
        missing = max(n - len(kept), want_named - sum(d.named for d in kept))
        ask = min(MAX_VARIATIONS, max(2, math.ceil(missing * OVERSAMPLE)))
        prompt, headline_adapter = prompts.headline()
        # From the second round on, while too few drafts name the product, half the
        # headlines start with its name (the rest stay free: variety).
        lead = brief.product.strip() if rounds and sum(d.named for d in kept) < want_named else ""
        headlines = model.generate(
            prompt,
            adapter=headline_adapter,
            params=_headline_params(ask if not lead else max(1, ask - ask // 2), seed, rounds),
        )
        if lead:
            led = model.generate(
                f"{prompt} {lead}",
                adapter=headline_adapter,
                params=_headline_params(ask // 2 or 1, seed + 500, rounds),
            )
            headlines += [_led(lead, d) for d in led]
        rounds += 1
        for headline in headlines:
            if stopped():
                break
            generated += 1
            headline_text = repair_product_name(_unquoted(headline.text), facts)
            unusable = _unusable_headline(headline_text, brief, rules, facts)
            if unusable:  # no post is written under a headline that can never pass
                note(unusable)
                continue
            body_prompt_text, body_adapter = prompts.body(headline_text)
            bodies = model.generate(
                body_prompt_text,
                adapter=body_adapter,
                params=DraftParams(
                    n=BODIES_PER_HEADLINE,
                    max_tokens=BODY_TOKENS,
                    seed=headline.seed,
                    stop=("\n",),
                    **BODY_DECODING,
                ),
            )
            best, reason = None, None
            for body in bodies:  # the first post that passes every check
                best, reason = _candidate(
                    headline_text, body.text, cta=cta, brief=brief, facts=facts,
                    rules=rules, decision=decision,
                )  # fmt: skip
                if best is not None:
                    break
            if best is None:
                note(reason)
                continue
            creative, checks, repairs = best
            draft = KeptDraft(
                headline=creative.headline,
                body=creative.body,
                cta=creative.cta,
                checks=checks,
                repairs=repairs,
                seed=headline.seed,
                prompt=prompt,
                named=checks["faithfulness"]["product"]["named"],
            )
            vector = encoder.encode([_dedup_text(draft)])[0]  # (d,): each draft encoded once
            draft.relevance = round(float(vector @ brief_vector), 4)
            if _is_near_duplicate(draft, vector, kept, kept_vectors):
                note("near_duplicate")
            else:
                kept.append(draft)
                kept_vectors.append(vector)
                note(None)
    ranked = rank_candidates(
        [Creative(d.headline, d.body, d.cta) for d in kept],
        brief_keywords=brief.keywords,
        product=brief.product,
        objective=brief.objective,
        repairs=[d.repairs for d in kept],
        limits=rules,
        landing_url=brief.landing_url,
        relevance=[d.relevance for d in kept],
    )
    for index, score, reasons in ranked:
        kept[index].score, kept[index].reasons = score, reasons
    drafts = _choose(
        [kept[index] for index, _, _ in ranked], n=n, share=PRODUCT_NAMED_SHARE if want_named else 0
    )
    dropped["over_n"] = max(0, len(kept) - len(drafts))
    return DraftOutcome(
        drafts=drafts,
        generated=generated,
        dropped={k: v for k, v in dropped.items() if v},
        rounds=rounds,
        adapter=adapter.name if adapter else "",
        base_model=base_model,
        backend=model.backend,
        decoding={
            "headline": HEADLINE_DECODING | {"max_tokens": HEADLINE_TOKENS},
            "body": BODY_DECODING | {"max_tokens": BODY_TOKENS, "n": BODIES_PER_HEADLINE},
            "seed": seed,
            "adapter_tasks": sorted(prompts.tasks) if adapter else [],
        },
        seconds=time.perf_counter() - started,
        category=decision.as_dict(),
        named=sum(d.named for d in drafts),
    )


def _headline_params(n: int, seed: int, round_: int) -> DraftParams:
    return DraftParams(
        n=n, max_tokens=HEADLINE_TOKENS, seed=seed + round_ * 1000, stop=("\n",),
        **HEADLINE_DECODING,
    )  # fmt: skip


def _led(lead: str, draft: Draft) -> Draft:
    """A headline decoded after the product's name, with the name in front again."""
    rest = draft.text
    joined = f"{lead}{rest}" if rest[:1] in ":,.!?'’" else f"{lead} {rest}"
    return Draft(joined.strip(), draft.seed, draft.tokens, draft.finish_reason)


def _brief_text(brief: Brief) -> str:
    return " ".join([brief.product, brief.description, *brief.keywords])


def _candidate(
    headline: str,
    body: str,
    *,
    cta: str,
    brief: Brief,
    facts: BriefFacts,
    rules: CreativeLimits,
    decision,
) -> tuple[tuple[Creative, dict, list[str]] | None, str]:
    """A headline and post repaired and checked: ((creative, checks, repairs), "") when
    every hard and faithfulness check passes, else (None, the first check that failed)."""
    body = repair_product_name(_unquoted(body), facts)
    if _words(headline) < MIN_HEADLINE_WORDS or _words(body) < MIN_BODY_WORDS:
        return None, "too_short"  # "1/2/2018" is not a post
    if _same(headline, brief.own_headline) or _same(body, brief.own_body):
        return None, "same_as_original"  # a variation, not the advertiser's text again
    creative, report, repairs = prepare_creative(
        Creative(headline=headline, body=body, cta=cta),
        limits=rules,
        banned_terms=brief.banned_terms,
        landing_url=brief.landing_url,
        category=decision,
        objective=brief.objective,
    )
    if creative is None:
        return None, report.failed[0] if report.failed else "unknown"
    faithful = check_faithful(creative, facts)
    failed = [name for name, result in faithful.items() if not result.ok]
    if failed:
        return None, failed[0]
    return (creative, report.as_dict() | faithfulness_dict(faithful), repairs), ""


def _choose(ranked: list[KeptDraft], *, n: int, share: float) -> list[KeptDraft]:
    """The best n, keeping at least `share` of them naming the product: the named ones
    best first, then an unnamed one only while the share holds."""
    named = [d for d in ranked if d.named][:n]
    chosen = list(named)
    for draft in ranked:
        if len(chosen) >= n:
            break
        if not draft.named and sum(d.named for d in chosen) >= share * (len(chosen) + 1):
            chosen.append(draft)
    return sorted(chosen, key=lambda d: ranked.index(d))


def _unusable_headline(text: str, brief: Brief, rules: CreativeLimits, facts: BriefFacts) -> str:
    """Why a headline alone already fails a check no repair or post mends, or ""."""
    if _words(text) < MIN_HEADLINE_WORDS:
        return "too_short"
    if brief.product.strip() and _words(text.replace(brief.product.strip(), "")) < 2:
        return "too_short"  # the product's name alone says nothing about it
    if find_banned_terms(text, (*brief.banned_terms, *rules.banned_terms)):
        return "banned_terms"
    if find_markup(text):
        return "markup"
    alone = check_faithful(Creative(headline=text, body="", cta=""), facts)
    for name in HEADLINE_ALONE_CHECKS:
        if not alone[name].ok:
            return name
    return ""


def _unquoted(text: str) -> str:
    """A base model often wraps what it writes in quotes: they are not part of the ad."""
    text = text.strip()
    for left, right in (('"', '"'), ("“", "”"), ("'", "'"), ("«", "»")):
        if len(text) > 2 and text.startswith(left) and text.endswith(right):
            inner = text[1:-1]
            if left not in inner and right not in inner:
                return inner.strip()
    return text


def _same(text: str, original: str) -> bool:
    return bool(original.strip()) and fold(text) == fold(original)


def _words(text: str) -> int:
    """Words with a letter in them: dates, numbers and symbols do not count."""
    return sum(any(ch.isalpha() for ch in word) for word in text.split())


def _dedup_text(draft: KeptDraft) -> str:
    return f"{draft.headline}\n{draft.body}"


def _is_near_duplicate(
    draft: KeptDraft, vector: np.ndarray, kept: list[KeptDraft], kept_vectors: list[np.ndarray]
) -> bool:
    """Whether the new draft repeats a kept one (the kept ones never repeat each other)."""
    texts = [*map(_dedup_text, kept), _dedup_text(draft)]
    vectors = np.stack([*kept_vectors, vector])  # (len(kept) + 1, d)
    return len(drop_near_duplicates(texts, vectors, threshold=DUPLICATE_COSINE)) <= len(kept)


# --- jobs ----------------------------------------------------------------------------------


def draft_job_create(
    *, campaign: Campaign, user=None, n: int = 8, seed: int | None = None, enqueue: bool = True
) -> DraftJob:
    """A queued job for a gpu worker (enqueue=False: the caller runs draft_job_execute).
    Raises DraftBlocked for a blocked category (no job is created) and BriefError for a
    brief that cannot be drafted."""
    if not 1 <= n <= MAX_DRAFTS:
        raise BriefError(f"n: expected 1 to {MAX_DRAFTS}, got {n}")
    Brief.from_campaign(campaign)  # a brief too thin to draft is refused here, by field
    decision = campaign_decision(campaign)
    if decision.action == "block":
        raise DraftBlocked(decision)
    seed = seed if seed is not None else int(time.time_ns() % MAX_SEED)
    job = DraftJob.objects.create(
        campaign=campaign, n=n, requested_by=user, decoding={"seed": seed}
    )
    if enqueue:
        transaction.on_commit(lambda: draft_job_enqueue(job_id=job.pk))
    return job


def draft_job_enqueue(*, job_id: int) -> None:
    if settings.PLAZA_DRAFT_MODE == "inline":
        draft_job_execute(job_id=job_id)
        return
    from ads.tasks import draft_job_execute as draft_job_execute_task

    draft_job_execute_task.apply_async((job_id,))


def draft_job_cancel(*, job: DraftJob) -> DraftJob:
    DraftJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    DraftJob.objects.filter(pk=job.pk, status=DraftJob.Status.QUEUED).update(
        status=DraftJob.Status.CANCELLED, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def draft_job_execute(*, job_id: int) -> DraftJob:
    """Draft the job's creatives and save them as `draft` rows; idempotent (a finished
    job is left as it is; a retried one replaces the drafts of its earlier attempt; one
    the stale sweep failed while it ran stops and stays failed)."""
    job = DraftJob.objects.select_related("campaign__advertiser").get(pk=job_id)
    if job.finished:
        return job
    campaign = job.campaign
    adapter = adapter_for_campaign(campaign=campaign)
    base_model = adapter.base_model if adapter else settings.PLAZA_AD_BASE_MODEL
    job = job_start(job, adapter=adapter, base_model=base_model, generated=0, kept=0)
    write = ProgressWriter(job, every_s=PROGRESS_SAVE_EVERY_S)

    def progress(generated: int, kept: int) -> None:
        write(generated=generated, kept=min(kept, job.n))

    try:
        outcome = draft_creatives(
            brief=Brief.from_campaign(campaign),
            n=job.n,
            adapter=adapter,
            seed=int(job.decoding.get("seed", 0)),
            progress=progress,
            should_stop=lambda: job_should_stop(job),
        )
    except (DraftBlocked, BriefError) as exc:
        return job_finish(job, DraftJob.Status.FAILED, error=str(exc))
    except Exception as exc:  # the row says why; the worker log has the traceback
        logger.exception("draft job %s failed", job.pk)
        return job_finish(job, DraftJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
    stopped = job_should_stop(job)
    if stopped:
        job.refresh_from_db(fields=["status", "error", "finished_at", "cancel_requested"])
        if job.finished:  # the stale sweep ended it while it ran: it stays as the sweep left it
            return job
    with transaction.atomic():
        job.creatives.filter(status=AdCreative.Status.DRAFT).delete()  # an earlier attempt's
        for rank, draft in enumerate(outcome.drafts, start=1):
            creative = AdCreative.objects.create(
                campaign=campaign,
                job=job,
                headline=draft.headline,
                body=draft.body,
                cta=draft.cta,
                needs_review=draft.checks["needs_review"],
                checks=draft.checks,
                repairs=draft.repairs,
                rank=rank,
                score=draft.score,
                reasons=draft.reasons,
                adapter=adapter,
                adapter_name=outcome.adapter,
                base_model=outcome.base_model,
                prompt=draft.prompt,
                seed=draft.seed,
                decoding=outcome.decoding,
            )
            CreativeEvent.objects.create(
                creative=creative,
                action=CreativeEvent.Action.CREATED,
                user=None,
                note=f"drafted by job {job.pk}",
            )
        status = DraftJob.Status.CANCELLED if stopped else DraftJob.Status.SUCCEEDED
        return job_finish(
            job,
            status,
            backend=outcome.backend,
            decoding=outcome.decoding,
            generated=outcome.generated,
            kept=len(outcome.drafts),
            results={
                "dropped": outcome.dropped,
                "rounds": outcome.rounds,
                "named": outcome.named,
                "seconds": round(outcome.seconds, 2),
                "category": outcome.category,
            },
        )


def draft_jobs_fail_stale() -> int:
    """Fail the running jobs whose worker died: no write for DraftJob.STALE_AFTER. Returns
    how many.

    A worker whose child is killed hands the job back at once and it runs again (the row
    is written anew); one killed outright leaves the message with the broker until the
    visibility timeout, hours away. A job failed here stays failed if it is delivered
    again (draft_job_execute leaves a finished job as it is); drafting again makes a new job.
    """
    return jobs_fail_stale(DraftJob)
