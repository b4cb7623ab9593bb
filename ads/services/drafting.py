"""Drafting ad creatives: a brief → the worker's resident base model with the campaign's
LoRA adapter → candidates → hard checks, repair, near-duplicates dropped, ranked → drafts.

    brief = Brief.from_campaign(campaign)
    outcome = draft_creatives(brief=brief, n=8, adapter=adapter_for_campaign(...))
    outcome.drafts      # [KeptDraft(headline, body, cta, checks, reasons, ...)], best first
    outcome.dropped     # {"banned_terms": 2, "near_duplicate": 1}: what never became a draft

    job = draft_job_create(campaign=campaign, user=user, n=8)   # queued for a gpu worker
    draft_job_execute(job_id=job.id)                            # what the worker runs

A brief in a blocked regulated category raises `DraftBlocked` before any model runs; one
in a review category drafts, and every draft is marked for extra review. The headline is
written by the adapter (trained on the same prompt, ads.prompts); the body by the same
resident model under its headline; the call to action is picked from the allowed list by
the brief's objective. A candidate that breaks a limit is repaired at a word boundary when
it can be, else dropped and another round generated (at most `MAX_ROUNDS`).
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

from ads.briefs import Brief, BriefError, DraftBlocked, campaign_decision, limits
from ads.creative.categories import brief_category
from ads.creative.check import Creative
from ads.creative.limits import CreativeLimits
from ads.creative.rank import cta_for_objective, drop_near_duplicates
from ads.creative.rank import rank as rank_candidates
from ads.creative.repair import prepare_creative
from ads.creative.text import find_banned_terms, find_markup
from ads.models import Adapter, AdCreative, Campaign, CreativeEvent, DraftJob
from ads.prompts import (
    body_prompt,
    headline_prompt,
    headline_prompt_with_examples,
    product_text,
)
from ads.selectors import adapter_for_campaign
from ml.drafting import MAX_VARIATIONS, DraftModelConfig, DraftParams, get_draft_model
from ml.embeddings import EncoderConfig, get_encoder
from ops.jobs import ProgressWriter, job_finish, job_should_stop, job_start, jobs_fail_stale

logger = logging.getLogger(__name__)

MAX_DRAFTS = 50  # per job
MAX_SEED = 2**30  # a job's seed; its rounds and variations add to it below llama.cpp's 2**31
MAX_ROUNDS = 4  # generate again while fewer than n candidates pass
OVERSAMPLE = 1.5  # candidates asked for per draft still wanted
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
    checks: dict  # the report of every check (passed, needs_review, checks)
    repairs: list[str]
    seed: int
    prompt: str  # the headline prompt
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)

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


def _model_config(base_model: str) -> DraftModelConfig:
    return DraftModelConfig(
        base=base_model,
        device=settings.PLAZA_DEVICE,
        threads=settings.PLAZA_GENERATION_THREADS,
        cache_dir=str(settings.PLAZA_MODEL_CACHE),
        max_adapters=settings.PLAZA_AD_ADAPTER_SLOTS,
    )


def draft_creatives(
    *,
    brief: Brief,
    n: int,
    adapter: Adapter | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DraftOutcome:
    """Up to n drafts that pass every hard check (see the module docstring); raises
    DraftBlocked for a blocked category. `progress(generated, kept)` after each candidate."""
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
    adapter_path = str(Path(settings.DATA_DIR) / adapter.path) if adapter else None
    model = get_draft_model(_model_config(base_model))
    description = product_text(product=brief.product, description=brief.description)
    if adapter is not None:  # asked exactly as it was trained
        prompt = headline_prompt(description=description, industry=brief.industry)
    else:
        prompt = headline_prompt_with_examples(description=description, industry=brief.industry)
    cta = cta_for_objective(brief.objective, rules)
    # The retrieval encoder judges near-duplicates.
    encoder = get_encoder(
        EncoderConfig(model=settings.PLAZA_EMBED_MODEL, device=settings.PLAZA_DEVICE)
    )
    encode = encoder.encode
    kept: list[KeptDraft] = []
    kept_vectors: list[np.ndarray] = []  # (d,) each, of the kept drafts
    dropped: Counter[str] = Counter()
    generated = rounds = 0
    while len(kept) < n and rounds < MAX_ROUNDS and not (should_stop and should_stop()):
        ask = min(MAX_VARIATIONS, max(2, math.ceil((n - len(kept)) * OVERSAMPLE)))
        headlines = model.generate(
            prompt,
            adapter=adapter_path,
            params=DraftParams(
                n=ask,
                max_tokens=HEADLINE_TOKENS,
                seed=seed + rounds * 1000,
                stop=("\n",),
                **HEADLINE_DECODING,
            ),
        )
        rounds += 1
        for headline in headlines:
            if should_stop and should_stop():
                break
            unusable = _unusable_headline(_unquoted(headline.text), brief, rules)
            if unusable:  # no post is written under a headline that can never pass
                generated += 1
                dropped[unusable] += 1
                if progress:
                    progress(generated, len(kept))
                continue
            [body] = model.generate(
                body_prompt(
                    description=description,
                    headline=headline.text,
                    audience=brief.audience,
                    tone=brief.tone,
                    language=brief.language,
                ),
                adapter=None,  # adapters learn headlines; the post follows the examples
                params=DraftParams(
                    n=1, max_tokens=BODY_TOKENS, seed=headline.seed, stop=("\n",), **BODY_DECODING
                ),
            )
            generated += 1
            headline_text, body_text = _unquoted(headline.text), _unquoted(body.text)
            if _words(headline_text) < MIN_HEADLINE_WORDS or _words(body_text) < MIN_BODY_WORDS:
                dropped["too_short"] += 1  # "1/2/2018" is not a post
                if progress:
                    progress(generated, len(kept))
                continue
            creative, report, repairs = prepare_creative(
                Creative(headline=headline_text, body=body_text, cta=cta),
                limits=rules,
                banned_terms=brief.banned_terms,
                landing_url=brief.landing_url,
                category=decision,
                objective=brief.objective,
            )
            if creative is None:
                dropped[report.failed[0] if report.failed else "unknown"] += 1
            else:
                draft = KeptDraft(
                    headline=creative.headline,
                    body=creative.body,
                    cta=creative.cta,
                    checks=report.as_dict(),
                    repairs=repairs,
                    seed=headline.seed,
                    prompt=prompt,
                )
                vector = encode([_dedup_text(draft)])[0]  # (d,): each draft encoded once
                if _is_near_duplicate(draft, vector, kept, kept_vectors):
                    dropped["near_duplicate"] += 1
                else:
                    kept.append(draft)
                    kept_vectors.append(vector)
            if progress:
                progress(generated, len(kept))
    ranked = rank_candidates(
        [Creative(d.headline, d.body, d.cta) for d in kept],
        brief_keywords=brief.keywords,
        product=brief.product,
        objective=brief.objective,
        repairs=[d.repairs for d in kept],
        limits=rules,
        landing_url=brief.landing_url,
    )
    drafts = []
    for index, score, reasons in ranked[:n]:
        kept[index].score, kept[index].reasons = score, reasons
        drafts.append(kept[index])
    dropped["over_n"] = max(0, len(kept) - n)
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
            "body": BODY_DECODING | {"max_tokens": BODY_TOKENS},
            "seed": seed,
        },
        seconds=time.perf_counter() - started,
        category=decision.as_dict(),
    )


def _unusable_headline(text: str, brief: Brief, rules: CreativeLimits) -> str:
    """Why a headline alone already fails a check no repair mends, or ""."""
    if _words(text) < MIN_HEADLINE_WORDS:
        return "too_short"
    if find_banned_terms(text, (*brief.banned_terms, *rules.banned_terms)):
        return "banned_terms"
    if find_markup(text):
        return "markup"
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
