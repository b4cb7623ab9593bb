from __future__ import annotations

import hashlib
from pathlib import Path

from django import forms
from django.conf import settings

from ads.models import Advertiser

MAX_DATASET_BYTES = 20 * 1024 * 1024


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
