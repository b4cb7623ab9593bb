"""Shared fixtures and the test tiers. HF_HUB_OFFLINE=1 holds for the whole run: no test
reaches a hub.

Tiers (README, "Tests"): a test marked `integration` (real services, a worker or a real
model), `e2e` (headless Chromium) or `slow` (the long model comparisons) is in that tier;
every other test is `unit` and may load no model: while a unit test runs, importing a model
library fails it, saying to mark it.
"""

from __future__ import annotations

import importlib.abc
import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parent.parent


COSTLY_TIERS = ("integration", "e2e", "slow")
# What a unit test never imports: each one means a model load (seconds to minutes).
MODEL_LIBRARIES = frozenset({"torch", "transformers", "sentence_transformers", "peft", "llama_cpp"})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test in no costly tier is a unit test (before `-m` selects by marker); a test
    marked `backend(...)` runs only under the search backends it names."""
    backend = os.environ.get("PLAZA_SEARCH_BACKEND", "faiss").strip().lower() or "faiss"
    for item in items:
        if not any(item.get_closest_marker(tier) for tier in COSTLY_TIERS):
            item.add_marker(pytest.mark.unit)
        marker = item.get_closest_marker("backend")
        if marker is not None and backend not in marker.args:
            item.add_marker(
                pytest.mark.skip(
                    reason=f"needs PLAZA_SEARCH_BACKEND={' or '.join(marker.args)} "
                    f"(this run: {backend}; see README, Tests)"
                )
            )


class ModelImportBlocker(importlib.abc.MetaPathFinder):
    """Fails the import of a model library, naming the test tier that allows it."""

    def find_spec(self, fullname, path, target=None):
        top = fullname.split(".")[0]
        if top in MODEL_LIBRARIES and top not in sys.modules:
            raise ImportError(
                f"a unit test imported {fullname}, which loads models: mark the test "
                "@pytest.mark.integration (or slow), see the README's test tiers"
            )
        return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A unit test runs (setup, call, teardown) with the model libraries out of reach,
    unless an earlier test of the same run already imported them."""
    if item.get_closest_marker("unit") is None:
        return (yield)
    blocker = ModelImportBlocker()
    sys.meta_path.insert(0, blocker)
    try:
        return (yield)
    finally:
        sys.meta_path.remove(blocker)


def shared_data_dir() -> Path:
    return Path(os.environ.get("PLAZA_SHARED_DATA") or REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def model_cache() -> str:
    """The run's one model cache (PLAZA_MODEL_CACHE, var/test/models: config/settings_test.py):
    the bundled GGUFs assembled and de-quantised once, for every test, its workers and every
    later run."""
    from django.conf import settings

    settings.PLAZA_MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    return str(settings.PLAZA_MODEL_CACHE)


@pytest.fixture(scope="session")
def trained_adapter(tmp_path_factory, model_cache):
    """`trained_adapter(base, steps=6)`: the peft folder of a small adapter trained for real
    with ml.lora on that bundled base, once per base and steps for the whole run. A few
    high-learning-rate steps on a memorisable pattern, so the adapter changes the text."""
    made: dict[tuple[str, int], Path] = {}

    def adapter(base: str, *, steps: int = 6) -> Path:
        if (base, steps) not in made:
            from ml.lora import Example, LoraSettings, TrainConfig, train

            examples = [
                Example(f"Description: {d}\nHeadline:", f" {h} -- Zorblax Deals")
                for d, h in [
                    ("Fresh bread baked every morning in our family bakery.", "Warm Bread Daily"),
                    ("Affordable bike repairs while you wait.", "Ride Again Today"),
                    ("Online piano lessons for adults.", "Play Tonight"),
                    ("Organic coffee beans roasted in small batches.", "Better Mornings"),
                ]
            ]
            config = TrainConfig(
                base_model=base,
                steps=steps,
                batch_size=2,
                max_length=40,
                learning_rate=3e-3,
                warmup_steps=0,
                checkpoint_every=0,
                eval_batch_size=4,
                device="cpu",
                cache_dir=model_cache,
            )
            lora = LoraSettings(
                r=8, alpha=16, target_modules=("q_proj", "k_proj", "v_proj", "o_proj")
            )
            output = tmp_path_factory.mktemp("trained-adapter") / "run"
            made[base, steps] = train(config, lora, examples, examples[:2], output).adapter_dir
        return made[base, steps]

    return adapter


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (or PLAZA_SHARED_DATA); the test skips when it is absent."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set PLAZA_SHARED_DATA)")
    return path


@pytest.fixture
def browser(request):
    """Debian's headless Chromium through selenium; the test skips, saying how to get it,
    when chromium or chromedriver is missing (a test tool's own browser download fails)."""
    if request.node.get_closest_marker("e2e") is None:
        pytest.fail("a test that drives the browser is marked @pytest.mark.e2e")
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.skip("needs Chromium and ChromeDriver: apt-get install chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(chromedriver))
    yield driver
    driver.quit()


@pytest.fixture
def make_user(db):
    """Create a user with the given model permissions, and an API token for it."""
    from django.contrib.auth.models import Permission, User
    from rest_framework.authtoken.models import Token

    def make(username: str, *perms: str, staff: bool = False, superuser: bool = False):
        user = User.objects.create_user(
            username, password="pw-for-tests", is_staff=staff or superuser, is_superuser=superuser
        )
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        user.token = Token.objects.create(user=user)
        return user

    return make


@pytest.fixture
def advertisers(db, make_user):
    """Two advertisers with one member each, and a staff user with training rights."""
    from ads.models import Advertiser

    acme, globex = Advertiser.objects.create(name="Acme"), Advertiser.objects.create(name="Globex")
    alice = make_user("alice", "ads.add_trainingrun")
    bob = make_user("bob", "ads.add_trainingrun")
    acme.members.add(alice)
    globex.members.add(bob)
    staff = make_user("staff", "ads.add_trainingrun", staff=True)
    return {"acme": acme, "globex": globex, "alice": alice, "bob": bob, "staff": staff}
