from django.apps import AppConfig
from django.core import checks


class AdsConfig(AppConfig):
    name = "ads"
    verbose_name = "Ads"

    def ready(self) -> None:
        from accounts.landing import landing_register
        from ads.selectors import studio_landing_for

        checks.register(check_ad_limits)
        landing_register(studio_landing_for)  # a member signs in to the studio


def check_ad_limits(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """PLAZA_AD_LIMITS must build a CreativeLimits: a typo stops start-up with its name
    (manage.py check, runserver, migrate), not the first drafting job."""
    from django.conf import settings

    from ads.checks import CreativeLimits

    try:
        CreativeLimits.from_mapping(settings.PLAZA_AD_LIMITS)
    except (TypeError, ValueError) as exc:
        return [checks.Error(f"PLAZA_AD_LIMITS: {exc}", id="ads.E001")]
    return []
