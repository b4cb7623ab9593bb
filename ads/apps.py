from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate


class AdsConfig(AppConfig):
    name = "ads"
    verbose_name = "Ads"

    def ready(self) -> None:
        from accounts.landing import landing_register
        from ads.selectors import draft_jobs_report, studio_landing_for, training_runs_report
        from ops.registry import jobs_register

        checks.register(check_ad_limits)
        landing_register(studio_landing_for)  # a member signs in to the studio
        # The ops page and /metrics list and count these jobs.
        jobs_register(kind="drafts", label="Ad drafts", report=draft_jobs_report)
        jobs_register(kind="training", label="Training runs", report=training_runs_report)
        # A fresh install drafts with the adapter Plaza ships (ads.services.default_adapter).
        post_migrate.connect(install_default_adapter, sender=self)


def install_default_adapter(sender, apps=None, using="default", **kwargs) -> None:
    """post_migrate (and flush, which sends it without `apps`): the shipped default
    adapter's row, made once per database."""
    from ads.services.default_adapter import default_adapter_install

    if apps is None:
        from django.apps import apps
    try:
        adapter_model = apps.get_model("ads", "Adapter")
    except LookupError:  # migrated back before the ads tables
        return
    default_adapter_install(adapter_model=adapter_model, using=using)


def check_ad_limits(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """PLAZA_AD_LIMITS must build a CreativeLimits: a typo stops start-up with its name
    (manage.py check, runserver, migrate), not the first drafting job."""
    from django.conf import settings

    from ads.creative.limits import CreativeLimits

    try:
        CreativeLimits.from_mapping(settings.PLAZA_AD_LIMITS)
    except (TypeError, ValueError) as exc:
        return [checks.Error(f"PLAZA_AD_LIMITS: {exc}", id="ads.E001")]
    return []
