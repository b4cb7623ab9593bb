"""Advertisers, their campaigns (the brief), LoRA adapters and the runs that train them."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxLengthValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from ops.jobs import Job


class RegulatedCategory(models.TextChoices):
    """Categories whose ads need care: blocked, or sent to extra review (ads.creative)."""

    NONE = "", "none"
    HOUSING = "housing"
    EMPLOYMENT = "employment"
    CREDIT = "credit"
    POLITICS = "politics", "politics and elections"
    HEALTH = "health"
    PHARMA = "pharma"
    FINANCIAL = "financial", "financial services"


class Advertiser(models.Model):
    """An organisation that advertises; its member users see its data and nobody else's."""

    name = models.CharField(max_length=200, unique=True)
    industry = models.CharField(
        max_length=100, blank=True, help_text="Picks the industry adapter, e.g. 'internet'."
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="advertisers", through="Membership"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's place in an advertiser: a member drafts and reviews its ads; an admin also
    invites new members (ads.members)."""

    class Role(models.TextChoices):
        MEMBER = "member"
        ADMIN = "admin"

    advertiser = models.ForeignKey(Advertiser, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="advertiser_memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        # The table Django made for the plain many-to-many field this model replaced.
        db_table = "ads_advertiser_members"
        unique_together = [("advertiser", "user")]
        ordering = ["advertiser", "user"]

    def __str__(self) -> str:
        return f"{self.user} in {self.advertiser} ({self.role})"


# The longest post text an advertiser may give a brief to rewrite (characters).
OWN_BODY_MAX_LENGTH = 1000


class Campaign(models.Model):
    """A brief: what is advertised, to whom, how, and what must never be said."""

    # The fields a brief is written in (the studio's form, the demo seed).
    BRIEF_FIELDS = (
        "product", "description", "audience", "tone", "language", "objective", "keywords",
        "landing_url", "banned_terms", "category",
    )  # fmt: skip

    advertiser = models.ForeignKey(Advertiser, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=200)
    product = models.CharField(max_length=200, blank=True)
    description = models.TextField(help_text="What the product is and does.")
    audience = models.CharField(max_length=300, blank=True)
    tone = models.CharField(max_length=100, blank=True)
    language = models.CharField(max_length=16, default="en", help_text="BCP 47 code, e.g. en.")
    objective = models.CharField(max_length=100, blank=True, help_text="e.g. sign-ups, sales.")
    keywords = models.JSONField(default=list, blank=True)
    landing_url = models.URLField(blank=True)
    banned_terms = models.JSONField(default=list, blank=True)
    category = models.CharField(
        max_length=16,
        choices=RegulatedCategory.choices,
        default="",
        blank=True,
        help_text="The regulated category the ads fall in, if any.",
    )
    # The advertiser's own text ("rewrite my text"): drafting writes variations of it.
    own_headline = models.CharField(
        max_length=200,
        blank=True,
        help_text="Your own headline: Plaza drafts variations of it that keep its facts.",
    )
    own_body = models.TextField(
        blank=True,
        validators=[MaxLengthValidator(OWN_BODY_MAX_LENGTH)],
        help_text="Your own post text: Plaza drafts variations of it that keep its facts.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.advertiser})"


def default_adapter_tasks() -> list[str]:
    """An adapter's tasks when its run did not say: the headline prompt alone."""
    return ["headline"]


class Adapter(models.Model):
    """A LoRA adapter over a base model, for everyone, an industry or one advertiser.

    At most one adapter is active per scope (and industry or advertiser): drafting uses
    the advertiser's active adapter, else its industry's, else the global one.
    """

    class Scope(models.TextChoices):
        GLOBAL = "global"
        INDUSTRY = "industry"
        ADVERTISER = "advertiser"

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        ACTIVE = "active"
        RETIRED = "retired"

    name = models.SlugField(max_length=100, unique=True)
    base_model = models.CharField(max_length=300)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.GLOBAL)
    industry = models.CharField(max_length=100, blank=True)
    advertiser = models.ForeignKey(
        Advertiser, null=True, blank=True, on_delete=models.CASCADE, related_name="adapters"
    )
    lora = models.JSONField(default=dict, blank=True)  # r, alpha, dropout, target modules
    dataset_hash = models.CharField(max_length=64, blank=True)  # of the training snapshot
    dataset_size = models.PositiveIntegerField(default=0)  # training examples
    metrics = models.JSONField(default=dict, blank=True)  # eval loss, perplexity, base's
    # The prompts it was trained on: a subset of "headline", "body", "rewrite".
    tasks = models.JSONField(default=default_adapter_tasks, blank=True)
    path = models.CharField(max_length=500, blank=True)  # PEFT folder under the data dir
    size_bytes = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(scope="global", industry="", advertiser__isnull=True)
                    | (Q(scope="industry", advertiser__isnull=True) & ~Q(industry=""))
                    | Q(scope="advertiser", industry="", advertiser__isnull=False)
                ),
                name="adapter_scope_fields",
            ),
            models.UniqueConstraint(
                fields=["scope", "industry", "advertiser"],
                condition=Q(status="active", advertiser__isnull=False),
                name="one_active_adapter_per_advertiser",
            ),
            models.UniqueConstraint(
                fields=["scope", "industry"],
                condition=Q(status="active", advertiser__isnull=True),
                name="one_active_adapter_per_scope",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class TrainingRun(Job):
    """One LoRA training job: its parameters, progress and loss as it trains, the result.
    Status, timestamps, error, cancel flag and attempts are the job's (ops.jobs.Job)."""

    # A running run writes its row every second and at each checkpoint; loading the base
    # model and its first evaluation on a slow CPU take minutes. Silent this long, its
    # worker is taken for dead.
    STALE_AFTER = timedelta(minutes=30)
    STALE_ERROR = "the worker stopped before finishing this run; start a new run"

    adapter_name = models.SlugField(max_length=100, help_text="The adapter this run writes.")
    base_model = models.CharField(max_length=300)
    scope = models.CharField(max_length=16, choices=Adapter.Scope.choices, default="global")
    industry = models.CharField(max_length=100, blank=True)
    advertiser = models.ForeignKey(
        Advertiser, null=True, blank=True, on_delete=models.CASCADE, related_name="training_runs"
    )
    parent = models.ForeignKey(Adapter, null=True, blank=True, on_delete=models.SET_NULL)
    dataset = models.CharField(
        max_length=500, help_text="A CSV path, or 'creatives' (approved creatives by CTR)."
    )
    parameters = models.JSONField(default=dict, blank=True)  # steps, batch, lr, lora ...
    step = models.PositiveIntegerField(default=0)
    steps = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    loss_history = models.JSONField(default=list, blank=True)  # [[step, loss], ...]
    checkpoint_step = models.PositiveIntegerField(default=0)
    resumed_from_step = models.PositiveIntegerField(default=0)
    results = models.JSONField(default=dict, blank=True)  # eval losses, speed, sizes
    dataset_hash = models.CharField(max_length=64, blank=True)
    train_examples = models.PositiveIntegerField(default=0)
    eval_examples = models.PositiveIntegerField(default=0)
    adapter = models.OneToOneField(
        Adapter, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_run"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    def __str__(self) -> str:
        return f"{self.adapter_name} ({self.status} {self.step}/{self.steps})"

    @property
    def progress(self) -> float:
        return self.step / self.steps if self.steps else 0.0


class DraftJob(Job):
    """One request to draft creatives for a campaign: run by a gpu worker, progress on the
    row, the creatives it kept as `AdCreative` drafts. Status, timestamps, error, cancel
    flag and attempts are the job's (ops.jobs.Job)."""

    # A running job writes its progress every second while candidates arrive (loading the
    # model takes well under a minute): one silent this long lost its worker.
    STALE_AFTER = timedelta(minutes=10)
    STALE_ERROR = "the worker stopped before finishing this job; draft again"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="draft_jobs")
    n = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])  # drafts wanted
    adapter = models.ForeignKey(
        Adapter, null=True, blank=True, on_delete=models.SET_NULL, related_name="draft_jobs"
    )
    base_model = models.CharField(max_length=300, blank=True)
    backend = models.CharField(max_length=32, blank=True)  # llama_cpp / transformers
    decoding = models.JSONField(default=dict, blank=True)  # temperature, top_p, seed, tokens
    generated = models.PositiveIntegerField(default=0)  # candidates the model wrote so far
    kept = models.PositiveIntegerField(default=0)  # drafts saved so far
    results = models.JSONField(default=dict, blank=True)  # dropped by reason, timings
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    def __str__(self) -> str:
        return f"draft job {self.pk} for {self.campaign} ({self.status})"


class AdCreative(models.Model):
    """A drafted ad (headline, post body, call to action). Generated means not live: it
    stays `draft` until a person approves it; every edit and decision is audited."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        APPROVED = "approved"
        REJECTED = "rejected"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="creatives")
    job = models.ForeignKey(
        DraftJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="creatives"
    )
    headline = models.CharField(max_length=200)
    body = models.TextField()
    cta = models.CharField(max_length=40)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    needs_review = models.BooleanField(default=False)  # a regulated category: extra review
    checks = models.JSONField(default=dict, blank=True)  # every check's result (ads.creative)
    repairs = models.JSONField(default=list, blank=True)  # what was repaired, e.g. shortened
    rank = models.PositiveIntegerField(default=0)  # 1 = best of its job
    score = models.FloatField(default=0.0)
    reasons = models.JSONField(default=list, blank=True)  # why it ranks where it does
    # Provenance: what wrote it and how.
    adapter = models.ForeignKey(
        Adapter, null=True, blank=True, on_delete=models.SET_NULL, related_name="creatives"
    )
    adapter_name = models.CharField(max_length=100, blank=True)  # kept if the adapter goes
    base_model = models.CharField(max_length=300, blank=True)
    prompt = models.TextField(blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    decoding = models.JSONField(default=dict, blank=True)
    # Performance, summed from CreativePerformance rows.
    impressions = models.PositiveBigIntegerField(default=0)
    clicks = models.PositiveBigIntegerField(default=0)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviewed_creatives",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "-created_at", "rank"]
        indexes = [models.Index(fields=["campaign", "status"])]
        permissions = [("approve_regulated", "Can approve creatives in a regulated category")]

    def __str__(self) -> str:
        return f"{self.headline[:60]} ({self.status})"

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None


class CreativeEvent(models.Model):
    """The audit trail of a creative: who did what, when, and the fields it changed."""

    class Action(models.TextChoices):
        CREATED = "created"
        EDITED = "edited"
        APPROVED = "approved"
        REJECTED = "rejected"

    creative = models.ForeignKey(AdCreative, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=16, choices=Action.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    changes = models.JSONField(default=dict, blank=True)  # {field: [before, after]}
    note = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.action} by {self.user or 'system'} at {self.at:%Y-%m-%d %H:%M}"


class CreativePerformance(models.Model):
    """Impressions and clicks of a creative on one day; importing the same day again
    replaces it, so an import can be repeated."""

    creative = models.ForeignKey(AdCreative, on_delete=models.CASCADE, related_name="performance")
    day = models.DateField()
    impressions = models.PositiveBigIntegerField()
    clicks = models.PositiveBigIntegerField()
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["creative", "day"]
        constraints = [
            models.UniqueConstraint(fields=["creative", "day"], name="one_performance_row_per_day"),
            models.CheckConstraint(
                condition=Q(clicks__lte=F("impressions")), name="clicks_within_impressions"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.creative_id} on {self.day}: {self.clicks}/{self.impressions}"
