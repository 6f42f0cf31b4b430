"""The minimal review API: bearer auth, the queue, approve (edited), reject, conflicts, message status."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from bot.keys import STORE, USERS
from bot.models import Action, Classification, Decision, Outcome, ReviewCase
from bot.review.users import Role
from bot.store import INBOUND_GROUP, OUTBOX_GROUP
from tests.conftest import TOKEN, message

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    "header",
    [
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ],
)
async def test_api_needs_a_known_bearer_token(client: TestClient, header: dict[str, str]) -> None:
    for method, path in (
        ("GET", "/api/reviews"),
        ("POST", "/api/reviews/c-m1/approve"),
        ("GET", "/api/messages/generic/m1"),
    ):
        response = await client.request(method, path, headers=header)
        assert response.status == 401 and response.headers["WWW-Authenticate"] == "Bearer"


async def test_queue_approve_reject(client: TestClient) -> None:
    cases = (await (await client.get("/api/reviews", headers=AUTH)).json())["cases"]
    assert [c["case_id"] for c in cases] == ["c-m2", "c-m1"]  # urgent first
    assert cases[0]["message"]["text"] == "I want compensation" and cases[0]["draft"]["text"] == "Sorry to hear that."
    assert cases[0]["classification"]["intent"] == "compensation_demand"
    assert cases[0]["decision"]["reasons"] == ["intent_mode:compensation_demand"]

    response = await client.post("/api/reviews/c-m1/approve", json={"text": "  A person will DM you.  "}, headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert body["state"] == "approved" and body["resolution"] == "A person will DM you."
    assert body["resolved_by"].startswith("token-")
    store = client.app[STORE]
    [entry] = await store.read(store.keys.outbox, OUTBOX_GROUP, "s", 10, 100)
    assert '"A person will DM you."' in entry.payload
    assert (await client.post("/api/reviews/c-m1/reject", headers=AUTH)).status == 409

    assert (await client.post("/api/reviews/c-m2/approve", json={"text": ""}, headers=AUTH)).status == 400
    assert (await client.post("/api/reviews/c-m2/approve", data=b"{x", headers=AUTH)).status == 400
    response = await client.post("/api/reviews/c-m2/reject", json={"reason": "troll"}, headers=AUTH)
    assert (await response.json())["resolution"] == "troll"
    assert (await client.post("/api/reviews/nope/approve", headers=AUTH)).status == 404
    assert (await (await client.get("/api/reviews", headers=AUTH)).json())["cases"] == []

    states = [await (await client.get(f"/api/messages/generic/{m}", headers=AUTH)).json() for m in ("m1", "m2")]
    assert [(s["status"], s["reply"]) for s in states] == [("processing", "A person will DM you."), ("rejected", None)]
    assert (await client.get("/api/messages/generic/unknown", headers=AUTH)).status == 404


async def test_the_audit_log_is_for_admins_and_records_every_action(client: TestClient) -> None:
    await client.post("/api/reviews/c-m1/approve", json={"text": "Edited."}, headers=AUTH)
    await client.post("/api/reviews/c-m2/reject", json={"reason": "troll"}, headers=AUTH)
    actions = (await (await client.get("/api/audit?limit=10", headers=AUTH)).json())["actions"]
    assert [(a["case_id"], a["action"], a["before"], a["after"]) for a in actions] == [
        ("c-m2", "rejected", "Sorry to hear that.", ""),
        ("c-m1", "approved", "Sorry to hear that.", "Edited."),
    ]
    assert all(a["reviewer"].startswith("token-") and a["at"] for a in actions)
    _, _, token = await client.app[USERS].add("rita", Role.REVIEWER)
    forbidden = await client.get("/api/audit", headers={"Authorization": f"Bearer {token}"})
    assert forbidden.status == 403 and (await forbidden.json())["error"] == "forbidden"
    assert (await client.get("/api/audit?limit=0", headers=AUTH)).status == 400


async def test_the_api_is_described_and_the_queue_is_measured(client: TestClient) -> None:
    document = await (await client.get("/api/openapi.json")).json()  # no token needed
    routes = client.app.router.routes()  # the API's sub-application's routes are among them, with their prefix
    served = {r.resource.canonical for r in routes if r.resource and r.resource.canonical.startswith("/api/")}
    assert set(document["paths"]) == served
    assert "ReviewCase" in document["components"]["schemas"]
    metrics = await (await client.get("/metrics")).text()
    assert 'autoresponder_review_queue_cases{priority="urgent"} 1.0' in metrics
    assert 'autoresponder_review_queue_cases{priority="normal"} 1.0' in metrics
    assert "autoresponder_review_overdue_cases 0.0" in metrics and "autoresponder_review_oldest_case_seconds" in metrics


async def test_a_case_past_its_deadline_is_marked_and_counted(client: TestClient) -> None:
    store = client.app[STORE]
    msg = message("where is my order??", id="late")
    await store.enqueue([msg])
    [entry] = await store.read(store.keys.inbound, INBOUND_GROUP, "w", 1, 100)
    decision = Decision(
        action=Action.REVIEW, reasons=("intent_mode:order_problem",), deadline=datetime.now(UTC) - timedelta(hours=1)
    )
    outcome = Outcome(
        message=msg,
        classification=Classification(intent="order_problem", confidence=0.9),
        draft=None,
        decision=decision,
    )
    case = ReviewCase(
        case_id="c-late", message=msg, classification=outcome.classification, draft=None, decision=decision,
        created_at=datetime.now(UTC) - timedelta(hours=5),
    )  # fmt: skip
    await store.commit(entry.entry_id, outcome, None, case)
    cases = (await (await client.get("/api/reviews", headers=AUTH)).json())["cases"]
    late = next(c for c in cases if c["case_id"] == "c-late")
    assert late["overdue"] is True and -3700 < late["seconds_left"] < -3500
    metrics = await (await client.get("/metrics")).text()
    assert "autoresponder_review_overdue_cases 1.0" in metrics
    assert 'autoresponder_sla_breaches_total{priority="normal"} 1.0' in metrics
    prefix = 'autoresponder_review_oldest_case_seconds{priority="normal"}'
    oldest = next(line for line in metrics.splitlines() if line.startswith(prefix))
    assert float(oldest.split()[-1]) >= 5 * 3600 - 5
    again = await (await client.get("/metrics")).text()
    assert 'autoresponder_sla_breaches_total{priority="normal"} 1.0' in again  # once per case, not per scrape


async def test_a_claimed_case_is_seen_taken_and_only_its_holder_acts_until_the_claim_expires(
    client: TestClient,
) -> None:
    users = client.app[USERS]
    rita = {"Authorization": f"Bearer {(await users.add('rita', Role.REVIEWER))[2]}"}
    sam = {"Authorization": f"Bearer {(await users.add('sam', Role.REVIEWER))[2]}"}
    taken = await client.post("/api/reviews/c-m1/claim", headers=rita)
    assert taken.status == 200 and (await taken.json())["claimed_by"] == "rita"
    refused = await client.post("/api/reviews/c-m1/claim", headers=sam)
    assert refused.status == 409 and (await refused.json())["detail"] == "rita is working on this case"
    assert (await client.post("/api/reviews/c-m1/approve", headers=sam)).status == 409
    cases = (await (await client.get("/api/reviews", headers=sam)).json())["cases"]
    assert {c["case_id"]: c["claimed_by"] for c in cases} == {"c-m1": "rita", "c-m2": None}
    assert (await client.post("/api/reviews/c-m1/claim", headers=rita)).status == 200  # renewing is fine
    assert (await client.post("/api/reviews/nope/claim", headers=rita)).status == 404
    approved = await client.post("/api/reviews/c-m1/approve", headers=rita)
    assert approved.status == 200 and (await approved.json())["resolved_by"] == "rita"
    store = client.app[STORE]
    assert await store.claim("c-m2", "rita", 1) == "rita"
    await asyncio.sleep(1.2)  # a claim left behind frees itself
    assert await store.claim("c-m2", "sam", 60) == "sam"
