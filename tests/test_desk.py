"""The desk over HTTP: sign-in and sessions, CSRF, roles, the pages, and the actions the API gained with it
(filters, hand-over and release, learning figures)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient
from yarl import URL

from bot.app import BRAND
from bot.config import Settings
from bot.keys import STORE, USERS
from bot.models import Action, CaseState, Classification, Draft, Priority, RiskFlag, Status
from bot.policy.decide import decide
from bot.policy.load import load_policy
from bot.review.users import Role
from tests.conftest import TOKEN, message, open_case

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def sign_in(client: TestClient, name: str, role: Role = Role.REVIEWER) -> str:
    """Create the user, sign in through the form, and return the session's CSRF token."""
    _, password, _ = await client.app[USERS].add(name, role)
    page = await client.get("/desk/login")
    [login_csrf] = CSRF.findall(await page.text())
    answer = await client.post(
        "/desk/login", data={"csrf": login_csrf, "name": name, "password": password}, allow_redirects=False
    )
    assert answer.status == 303 and answer.headers["Location"] == "/desk/"
    [token] = CSRF.findall(await (await client.get("/desk/")).text())
    return token


async def metric(client: TestClient, prefix: str) -> float:
    text = await (await client.get("/metrics")).text()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


async def test_sign_in_sets_a_strict_http_only_cookie_and_wrong_passwords_are_slow_and_counted(
    client: TestClient,
) -> None:
    _, password, _ = await client.app[USERS].add("rita", Role.REVIEWER)
    page = await client.get("/desk/login")
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    [login_csrf] = CSRF.findall(await page.text())
    form = {"csrf": login_csrf, "name": "rita"}
    started = datetime.now(UTC)
    wrong = await client.post("/desk/login", data=form | {"password": "guess"})
    assert wrong.status == 401 and "Wrong name or password." in await wrong.text()
    assert datetime.now(UTC) - started >= timedelta(seconds=0.45)
    assert await metric(client, 'autoresponder_auth_failures_total{kind="password"}') == 1
    no_csrf = await client.post("/desk/login", data={"name": "rita", "password": password}, allow_redirects=False)
    assert no_csrf.status == 403 and "desk_session" not in no_csrf.cookies
    [login_csrf] = CSRF.findall(await no_csrf.text())  # each form carries a fresh token
    right = await client.post(
        "/desk/login?next=/desk/learning", data=form | {"csrf": login_csrf, "password": password}, allow_redirects=False
    )
    assert right.status == 303 and right.headers["Location"] == "/desk/learning"
    cookie = right.cookies["desk_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert (await client.get("/desk/", allow_redirects=False)).status == 200


async def test_pages_and_the_api_need_a_session_or_a_token(client: TestClient) -> None:
    for path in ("/desk/", "/desk/cases/c-m1", "/desk/learning", "/desk/audit", "/desk/queue"):
        answer = await client.get(path, allow_redirects=False)
        assert answer.status == 303 and answer.headers["Location"].startswith("/desk/login?next=/desk/")
    forged = await client.post("/desk/cases/c-m1", data={"action": "approve"}, allow_redirects=False)
    assert forged.status == 303 and "login" in forged.headers["Location"]
    client.session.cookie_jar.update_cookies({"desk_session": "made-up"}, URL(str(client.make_url("/"))))
    assert (await client.get("/api/reviews")).status == 401
    assert (await client.get("/desk/", allow_redirects=False)).status == 303
    assert (await client.app[STORE].case("c-m1")).state is CaseState.PENDING  # type: ignore[union-attr]


async def test_forms_and_cookie_calls_to_the_api_need_the_csrf_token(client: TestClient) -> None:
    csrf = await sign_in(client, "rita")
    refused = await client.post("/desk/cases/c-m1", data={"action": "approve"})
    assert refused.status == 403 and "CSRF" in await refused.text()
    wrong = await client.post("/api/reviews/c-m1/approve", headers={"X-CSRF-Token": "nope"})
    assert wrong.status == 403 and (await wrong.json())["error"] == "csrf"
    assert await metric(client, 'autoresponder_auth_failures_total{kind="csrf"}') == 2
    assert (await client.app[STORE].case("c-m1")).state is CaseState.PENDING  # type: ignore[union-attr]
    listed = await client.get("/api/reviews")  # reading with the cookie needs no token
    assert [c["case_id"] for c in (await listed.json())["cases"]] == ["c-m2", "c-m1"]
    done = await client.post("/api/reviews/c-m1/approve", headers={"X-CSRF-Token": csrf})
    assert done.status == 200 and (await done.json())["resolved_by"] == "rita"


async def test_the_queue_page_lists_and_filters_and_the_case_page_shows_what_a_reviewer_needs(
    client: TestClient,
) -> None:
    store = client.app[STORE]
    flag = RiskFlag(name="legal_threat", priority="urgent", evidence="my lawyer")
    known = client.app[BRAND].passages[0]  # any passage of the demo brand will do
    passage_id = known.id
    loud = message("My lawyer will hear of this", id="m3", channel="x_mention", public=True, followers=90_000)
    await open_case(
        store, loud, intent="legal_threat", priority=Priority.URGENT, flags=(flag,), retrieved=(passage_id,)
    )
    await sign_in(client, "rita")
    page = await (await client.get("/desk/")).text()
    assert page.index("c-m3") < page.index("c-m1") and "claimed by" not in page
    assert "@hiker_jo (90000 followers)" in page and "x_mention" in page
    only = await (await client.get("/desk/?channel=x_mention&priority=urgent")).text()
    assert "c-m3" in only and "c-m2" not in only and "c-m1" not in only
    assert (await client.get("/desk/?priority=whenever")).status == 400
    rows = await (await client.get("/desk/queue?intent=compensation_demand")).text()
    assert "<html" not in rows and "c-m1" in rows and "c-m3" not in rows

    case = await (await client.get("/desk/cases/c-m3")).text()
    for shown in ("legal_threat", "my lawyer", "intent_mode:legal_threat", "90000 followers", "Sorry to hear that.",
                  known.title, "negative", "My lawyer will hear of this"):  # fmt: skip
        assert shown in case, shown
    assert (await client.get("/desk/cases/nope")).status == 404


async def test_editing_and_approving_on_the_page_sends_the_edit_and_the_audit_is_for_admins(
    client: TestClient,
) -> None:
    csrf = await sign_in(client, "rita")
    claimed = await client.post("/desk/cases/c-m1", data={"csrf": csrf, "action": "claim"})
    assert "The case is yours" in await claimed.text() and "claimed by rita" in await claimed.text()
    edit = "So sorry, Jo. A refund is on its way."
    sent = await client.post("/desk/cases/c-m1", data={"csrf": csrf, "action": "approve", "text": f" {edit} "})
    assert sent.url.path == "/desk/" and "Approved: the reply is on its way." in await sent.text()
    state = await client.app[STORE].message_state("generic", "m1")
    assert state is not None and (state.status, state.reply) == (Status.PROCESSING, edit)
    again = await client.post("/desk/cases/c-m1", data={"csrf": csrf, "action": "reject"})
    assert "already approved" in await again.text()  # told, not sent twice
    assert (await client.get("/desk/audit")).status == 403
    assert (await client.get("/api/audit")).status == 403

    await client.post("/desk/logout", data={"csrf": csrf})
    assert (await client.get("/desk/", allow_redirects=False)).status == 303
    await sign_in(client, "ada", Role.ADMIN)
    audit = await (await client.get("/desk/audit")).text()
    assert "rita" in audit and edit in audit and "Sorry to hear that." in audit


async def test_a_removed_reviewer_loses_their_session_at_once(client: TestClient) -> None:
    await sign_in(client, "rita")
    assert (await client.get("/desk/", allow_redirects=False)).status == 200
    await client.app[USERS].remove("rita")
    assert (await client.get("/desk/", allow_redirects=False)).status == 303


async def test_handing_over_keeps_the_bot_out_of_the_conversation_until_released(
    client: TestClient, settings: Settings
) -> None:
    store = client.app[STORE]
    handed = await client.post("/api/reviews/c-m1/handover", json={"reason": "VIP, call her"}, headers=AUTH)
    assert handed.status == 200 and (await handed.json())["state"] == "handed_over"
    context = await store.conversation("generic", "conv-m1")
    assert context.handed_to and context.handed_to.startswith("token-")
    assert (await store.message_state("generic", "m1")).status is Status.HANDED_OVER  # type: ignore[union-attr]
    policy = load_policy(settings.policies_dir)
    cls = Classification(intent="store_hours", confidence=0.99)
    draft = Draft(text="We open at nine.", answerable=True, drafter="offline")
    decision = decide(message("and when do you open?"), cls, draft, context, policy, datetime.now(UTC))
    assert decision.action is Action.REVIEW and "handed_over" in decision.reasons and not decision.holding
    release = "/api/conversations/generic/conv-m1/release"
    assert (await client.post(release, headers=AUTH)).status == 200
    assert (await store.conversation("generic", "conv-m1")).handed_to is None
    assert (await client.post(release, headers=AUTH)).status == 404
    audit = (await (await client.get("/api/audit", headers=AUTH)).json())["actions"]
    assert [a["action"] for a in audit] == ["released", "handed_over"] and audit[1]["reason"] == "VIP, call her"


async def test_learning_counts_how_drafts_fared_per_intent_and_shadow_agreement(client: TestClient) -> None:
    store = client.app[STORE]
    await open_case(store, message("where is it", id="m3"), intent="order_problem", shadow=Action.AUTO_SEND)
    await open_case(store, message("where is it now", id="m4"), intent="order_problem", shadow=Action.AUTO_SEND)
    await client.post("/api/reviews/c-m1/approve", headers=AUTH)  # unedited
    await client.post("/api/reviews/c-m2/approve", json={"text": "Edited."}, headers=AUTH)
    await client.post("/api/reviews/c-m3/approve", headers=AUTH)  # the bot would have sent it: agreed
    await client.post("/api/reviews/c-m4/reject", json={"reason": "wrong order"}, headers=AUTH)  # it would: differed
    figures = (await (await client.get("/api/learning", headers=AUTH)).json())["intents"]
    assert figures == {
        "compensation_demand": {"approved": 1, "edited": 1},
        "order_problem": {"approved": 1, "rejected": 1, "shadow_agreed": 1, "shadow_differed": 1},
    }
    prefix = "autoresponder_review_outcomes_total"
    assert await metric(client, f'{prefix}{{intent="compensation_demand",outcome="edited"}}') == 1
    assert await metric(client, 'autoresponder_shadow_agreement_total{intent="order_problem",result="agreed"}') == 1
    closed = (await (await client.get("/api/reviews?state=rejected", headers=AUTH)).json())["cases"]
    assert [c["case_id"] for c in closed] == ["c-m4"]
    await sign_in(client, "rita")
    page = await (await client.get("/desk/learning")).text()
    assert "order_problem" in page and "1 of 2" in page and "50%" in page


async def test_rejecting_and_handing_over_through_the_page_forms(client: TestClient) -> None:
    csrf = await sign_in(client, "rita")
    rejected = await client.post("/desk/cases/c-m2", data={"csrf": csrf, "action": "reject", "reason": "troll"})
    assert "Rejected: nothing was sent." in await rejected.text()
    handed = await client.post("/desk/cases/c-m1", data={"csrf": csrf, "action": "handover", "reason": "VIP"})
    assert "Handed over: the bot stays out of this conversation." in await handed.text()
    assert (await client.app[STORE].conversation("generic", "conv-m1")).handed_to == "rita"
    page = await (await client.get("/desk/cases/c-m2")).text()
    assert "rejected by rita" in page and "troll" in page and 'name="action"' not in page
    assert (await client.post("/desk/cases/c-m1", data={"csrf": csrf, "action": "delete"})).status == 400
