"""Advertisers, their campaigns (the brief), LoRA adapters and the runs that train them."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q


class RegulatedCategory(models.TextChoices):
    """Categories whose ads need care: blocked, or sent to extra review (see ads.checks)."""

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
        settings.AUTH_USER_MODEL, blank=True, related_name="advertisers"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    """A brief: what is advertised, to whom, how, and what must never be said."""

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
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.advertiser})"


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


class TrainingRun(models.Model):
    """One LoRA training job: its parameters, progress and loss as it trains, the result."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

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
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    step = models.PositiveIntegerField(default=0)
    steps = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    loss_history = models.JSONField(default=list, blank=True)  # [[step, loss], ...]
    checkpoint_step = models.PositiveIntegerField(default=0)
    resumed_from_step = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    results = models.JSONField(default=dict, blank=True)  # eval losses, speed, sizes
    dataset_hash = models.CharField(max_length=64, blank=True)
    train_examples = models.PositiveIntegerField(default=0)
    eval_examples = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    adapter = models.OneToOneField(
        Adapter, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_run"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.adapter_name} ({self.status} {self.step}/{self.steps})"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def progress(self) -> float:
        return self.step / self.steps if self.steps else 0.0
