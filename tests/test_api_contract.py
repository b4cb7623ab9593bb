"""The API does what its OpenAPI schema (/api/schema) says, and the schema says all it does.

schemathesis runs every operation of the schema with every check of `schemathesis run
<url>/api/schema --checks all` (no server error; every status, media type, body and header
documented; what the schema allows accepted, what it forbids refused; a deleted post gone;
credentials checked), in process through the WSGI app: anonymously, and as a staff user
whose token the schema is fetched with (the schema lists the caller's advertisers). Each
operation gets a bounded number of generated cases (coverage and fuzzing, positive and
negative), then a short stateful run follows links from one answer to the next call (a
created post read back, deleted, read again). The data is real: posts in a live index
(the bundled encoder), an advertiser's campaign, a job and creatives.

The full run is schemathesis's CLI against a running Plaza (README, after /api/docs); this
bounded one keeps the contract from regressing.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis.stateful import run_state_machine_as_test

from tests.search.conftest import corpus_rows

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

BOUNDED = hypothesis.settings(
    max_examples=8,
    deadline=None,
    derandomize=True,  # the same cases at every run: a failure here is a regression
    database=None,
    suppress_health_check=list(HealthCheck),
)
STATEFUL = hypothesis.settings(BOUNDED, max_examples=4, stateful_step_count=6)


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request):
    """schemathesis 4's fixture-loaded schemas read (and rename, for the report) pytest's
    private Node._nodeid, which pytest 9.2 no longer has: give it one."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.fixture
def app():
    """Django's WSGI app, run in the test's thread and transaction: as Django's test client
    does, requests leave the test's database connection open."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(settings, tmp_path, monkeypatch, advertisers, make_user):
    """Posts in a live index, Acme's campaign with a job and creatives, a staff superuser;
    an answer's event stream ends after a second (no worker writes answers here)."""
    from ads.models import AdCreative, Campaign, DraftJob
    from posts.services import post_upsert_many
    from search import indexes
    from search.api import answers as answers_api
    from search.services import index_sync as services

    indexes.close_all()
    settings.DATA_DIR = tmp_path
    monkeypatch.setattr(answers_api, "STREAM_MAX_S", 1)
    post_upsert_many(rows=corpus_rows())
    services.index_flush()
    campaign = Campaign.objects.create(
        advertiser=advertisers["acme"],
        name="Spring boots",
        description="Waterproof boots for spring walks",
        landing_url="https://acme.example/boots",
    )
    job = DraftJob.objects.create(campaign=campaign, n=2, status=DraftJob.Status.SUCCEEDED)
    for rank, status in enumerate(AdCreative.Status.values, start=1):
        AdCreative.objects.create(
            campaign=campaign,
            job=job,
            headline=f"Boots for rain {rank}",
            body="Dry feet all spring.",
            cta="Shop now",
            status=status,
            rank=rank,
        )
    yield {"staff": make_user("api-staff", superuser=True)}
    indexes.close_all()


@pytest.fixture
def anonymous_schema(app, world):
    """The schema as the signed-out read it. Fuzzing only: every operation answers them
    alike whatever the values (a 401, or an answer's 404), so the coverage phase's
    boundary values would add time and nothing else."""
    schema = schemathesis.openapi.from_wsgi("/api/schema", app)
    schema.config.phases.coverage.enabled = False
    return schema


@pytest.fixture
def staff_headers(world) -> dict:
    return {"Authorization": f"Token {world['staff'].token.key}"}


@pytest.fixture
def staff_schema(app, staff_headers):
    """The schema as staff read it, every call sending their token (as the CLI's -H does,
    so the ignored_auth check knows what to leave out)."""
    schema = schemathesis.openapi.from_wsgi("/api/schema", app, headers=staff_headers)
    schema.config.update(headers=staff_headers)
    return schema


anonymous = schemathesis.pytest.from_fixture("anonymous_schema")
staff = schemathesis.pytest.from_fixture("staff_schema")


@anonymous.parametrize()
@BOUNDED
def test_every_operation_keeps_the_contract_signed_out(case):
    """Without credentials every operation answers as documented (401s, the answers'
    404s), never a 500, an undocumented status or a body the schema does not describe."""
    case.call_and_validate()


@staff.parametrize()
@BOUNDED
def test_every_operation_keeps_the_contract_for_staff(case):
    """As staff (every permission, every advertiser), generated valid requests are taken
    and invalid ones refused with a documented error, each answer as the schema says."""
    case.call_and_validate()


def test_linked_calls_keep_the_contract_for_staff(staff_schema):
    """Calls that follow each other by the ids they answer (create, read, edit, delete,
    read again) keep the contract too: what was created is there, what was deleted gone."""
    run_state_machine_as_test(staff_schema.as_state_machine(), settings=STATEFUL)
