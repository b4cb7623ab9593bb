from __future__ import annotations

import hashlib
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib.auth.validators import UnicodeUsernameValidator

from ads import selectors
from ads.models import OWN_BODY_MAX_LENGTH, Advertiser, Campaign, Membership

MAX_DATASET_BYTES = 20 * 1024 * 1024
OWN_TEXT_HINT = "Plaza drafts variations that keep your facts."


class TrainingRunForm(forms.Form):
    """Start a training run: an uploaded CSV (or the demo set), a name, a few settings.
    A run for everyone (no advertiser) is for staff; members train for their advertiser."""

    name = forms.SlugField(max_length=100, help_text="The adapter's name, e.g. shoes-v2.")
    advertiser = forms.ModelChoiceField(
        queryset=Advertiser.objects.none(), required=False, empty_label="everyone (global)"
    )
    dataset = forms.FileField(
        required=False, help_text="CSV with desc and output columns; empty: the demo set."
    )
    steps = forms.IntegerField(min_value=1, max_value=20_000, initial=200)
    learning_rate = forms.FloatField(min_value=1e-6, max_value=1e-2, initial=2e-4)
    rank = forms.IntegerField(min_value=1, max_value=256, initial=8, label="LoRA rank")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        advertisers = Advertiser.objects.all()
        if not user.is_staff:
            advertisers = advertisers.filter(members=user)
            self.fields["advertiser"].required = True
            self.fields["advertiser"].empty_label = None
        self.fields["advertiser"].queryset = advertisers

    def clean_dataset(self):
        upload = self.cleaned_data.get("dataset")
        if upload is not None and upload.size > MAX_DATASET_BYTES:
            raise forms.ValidationError(
                f"{upload.name}: {upload.size // 1024} KiB; "
                f"at most {MAX_DATASET_BYTES // 2**20} MiB"
            )
        return upload

    def dataset_source(self) -> str:
        """'demo', or the uploaded file saved under the data dir by its content hash."""
        upload = self.cleaned_data.get("dataset")
        if upload is None:
            return "demo"
        content = upload.read()
        folder = Path(settings.DATA_DIR) / "datasets"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(content).hexdigest()[:16]}.csv"
        path.write_bytes(content)
        return str(path)


class CampaignForm(forms.ModelForm):
    """A brief. Keywords and banned terms are typed one per line or comma-separated; the
    advertiser's own headline and post text, both optional, are drafted into variations."""

    landing_url = forms.URLField(required=False, assume_scheme="https")
    # The hint under the headline covers both fields: one line, said once.
    own_headline = forms.CharField(
        required=False, max_length=200, label="Your headline (optional)", help_text=OWN_TEXT_HINT
    )
    own_body = forms.CharField(
        required=False,
        max_length=OWN_BODY_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Your post text (optional)",
    )
    keywords = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    banned_terms = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Words the ads must never use, one per line or comma-separated.",
    )

    class Meta:
        model = Campaign
        fields = ["advertiser", "name", *Campaign.BRIEF_FIELDS, "own_headline", "own_body"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["advertiser"].queryset = selectors.advertisers_of(user=user)
        self.fields["advertiser"].empty_label = None
        for name in ("keywords", "banned_terms"):
            if self.instance.pk:
                self.initial[name] = "\n".join(getattr(self.instance, name) or [])

    @staticmethod
    def _terms(text: str) -> list[str]:
        parts = (p.strip() for line in text.splitlines() for p in line.split(","))
        return list(dict.fromkeys(p for p in parts if p))[:100]

    def clean_keywords(self) -> list[str]:
        return self._terms(self.cleaned_data.get("keywords") or "")

    def clean_banned_terms(self) -> list[str]:
        return self._terms(self.cleaned_data.get("banned_terms") or "")


class DraftForm(forms.Form):
    n = forms.IntegerField(min_value=1, max_value=50, initial=8, label="drafts")


class CreativeEditForm(forms.Form):
    headline = forms.CharField(max_length=200)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    cta = forms.ChoiceField(choices=(), label="call to action")
    note = forms.CharField(required=False, max_length=500)

    def __init__(self, *args, ctas: tuple[str, ...], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cta"].choices = [(cta, cta) for cta in ctas]


class PerformanceForm(forms.Form):
    file = forms.FileField(help_text="CSV: creative_id, impressions, clicks, optional day.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_DATASET_BYTES:
            raise forms.ValidationError(f"{upload.name}: at most {MAX_DATASET_BYTES // 2**20} MiB")
        try:
            return upload.name, upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError(
                f"{upload.name}: not UTF-8 text; save it as UTF-8 CSV"
            ) from None


class MemberInviteForm(forms.Form):
    """Invite a member into one of the advertisers the user administers."""

    advertiser = forms.ModelChoiceField(queryset=Advertiser.objects.none(), empty_label=None)
    username = forms.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="The name they sign in with: letters, digits and @ . + - _ only.",
    )
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["advertiser"].queryset = selectors.advertisers_administered(user=user)
