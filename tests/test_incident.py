"""The incident brake: the spike rule (pure), decide() under an incident, raising from a burst of complaints
through the real worker and model on a real Redis, the holding text, and the admin's controls (API, desk, CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from bot.classify.encoder import TransformersEncoder
from bot.config import Settings
from bot.incident import IncidentStore, watch
from bot.keys import INCIDENTS, USERS
from bot.metrics import create_metrics
from bot.models import Action, Classification, Context, Priority, Reply, RiskFlag, Turn
from bot.policy.decide import decide
from bot.policy.incident import Incident, IncidentAction, by_hand, minutes, spike, topics
from bot.policy.load import load_policy
from bot.policy.schema import BrandPolicy, IncidentPolicy
from bot.review.users import Role
from bot.store import INBOUND_GROUP, RedisStore
from bot.worker import Worker
from tests.conftest import ROOT, TOKEN, message
from tests.test_decide import GOOD, POLICY, WORKING, cls
from tests.test_desk import CSRF, sign_in
from tests.test_worker import pipeline, with_decision

AUTH = {"Authorization": f"Bearer {TOKEN}"}
RULE = IncidentPolicy(window_minutes=15, baseline_minutes=240, min_messages=8, factor=4)
SINCE = WORKING - timedelta(minutes=30)


@pytest.mark.parametrize(
    ("window", "baseline", "fires", "why"),
    [
        (8, 0, True, "a quiet topic: min_messages alone decides"),
        (7, 0, False, "below min_messages, however quiet the baseline"),
        (20, 16, True, "16 in 240 min is 1 per window: 20 is 20 times that"),
        (8, 32, True, "32 in 240 min is 2 per window: 8 is exactly 4 times"),
        (8, 33, False, "a little busier than that: 8 is under 4 times"),
        (30, 160, False, "an always busy topic (10 per window): 30 is only 3 times"),
        (40, 160, True, "... and 40 is 4 times"),
        (0, 0, False, "nothing at all"),
    ],
)
def test_the_spike_rule(window: int, baseline: int, fires: bool, why: str) -> None:
    assert spike(window, baseline, RULE) is fires, why


@pytest.mark.parametrize(
    ("rule", "window", "baseline", "fires"),
    [
        (IncidentPolicy(window_minutes=10, baseline_minutes=60, min_messages=3, factor=2), 3, 0, True),
        (IncidentPolicy(window_minutes=10, baseline_minutes=60, min_messages=3, factor=2), 3, 9, True),  # 1.5/window
        (IncidentPolicy(window_minutes=10, baseline_minutes=60, min_messages=3, factor=2), 3, 10, False),
        (IncidentPolicy(window_minutes=5, baseline_minutes=5, min_messages=1, factor=1), 2, 2, True),
    ],
)
def test_the_spike_rule_follows_the_policy(rule: IncidentPolicy, window: int, baseline: int, fires: bool) -> None:
    assert spike(window, baseline, rule) is fires


def test_the_window_ends_with_this_minute_and_the_baseline_comes_before_it() -> None:
    now = datetime(2026, 11, 25, 10, 7, 30, tzinfo=UTC)
    window, baseline = minutes(now, RULE)
    current = int(now.timestamp() // 60)
    assert (window[0], window[-1], len(window)) == (current - 14, current, 15)
    assert (baseline[0], baseline[-1], len(baseline)) == (current - 254, current - 15, 240)


def test_the_policy_is_checked() -> None:
    with pytest.raises(ValueError, match="baseline_minutes must be at least window_minutes"):
        IncidentPolicy(window_minutes=30, baseline_minutes=10)
    with pytest.raises(ValueError, match="too long for x_mention"):
        IncidentPolicy(holding="We know. " * 40)
    demo = load_policy(ROOT / "policies").decision.incident
    assert demo.auto and demo.action == "review" and spike(demo.min_messages, 0, demo)


def held(topic: str, action: IncidentAction = "review", holding: str | None = None) -> dict[str, Incident]:
    return {topic: Incident(topic=topic, since=SINCE, by="alice", reason="r", action=action, holding=holding)}


def told(minutes_ago: int) -> Context:
    """A conversation whose last brand turn was a holding reply this long before WORKING."""
    at = WORKING - timedelta(minutes=minutes_ago)
    return Context(turns=(Turn(role="brand", text="h", at=at, origin="holding"),))


ON_DELIVERY = ("incident:delivery_info",)
HOLDING = held("delivery_info", "holding")


@pytest.mark.parametrize(
    ("intent", "incidents", "context", "action", "reasons", "holding"),
    [
        ("delivery_info", {}, Context(), Action.AUTO_SEND, ("intent_auto:delivery_info",), False),
        ("delivery_info", held("delivery_info"), Context(), Action.REVIEW, ON_DELIVERY, False),
        ("delivery_info", held("sizing"), Context(), Action.AUTO_SEND, ("intent_auto:delivery_info",), False),
        ("delivery_info", held("all"), Context(), Action.REVIEW, ("incident:all",), False),
        ("spam", held("all"), Context(), Action.IGNORE, ("ignore_intent:spam",), False),  # still ignored
        ("delivery_info", HOLDING, Context(), Action.REVIEW, ON_DELIVERY, True),
        ("delivery_info", HOLDING, told(10), Action.REVIEW, ON_DELIVERY, False),  # told since it began: not again
        ("delivery_info", HOLDING, told(60), Action.REVIEW, ON_DELIVERY, True),  # told before this incident
        ("delivery_info", HOLDING, Context(handed_to="rita"), Action.REVIEW, ("handed_over", *ON_DELIVERY), False),
    ],
)
def test_decide_sends_a_held_topic_to_review(
    intent: str,
    incidents: dict[str, Incident],
    context: Context,
    action: Action,
    reasons: tuple[str, ...],
    holding: bool,
) -> None:
    decision = decide(message("t"), cls(intent), GOOD, context, POLICY, WORKING, incidents)
    assert (decision.action, decision.reasons, decision.holding) == (action, reasons, holding)
    if action is Action.REVIEW:
        assert decision.priority is Priority.NORMAL


def test_a_threat_gets_no_holding_text_even_in_an_incident() -> None:
    policy = POLICY.model_copy(
        update={"decision": POLICY.decision.model_copy(update={"no_holding_reply": ["legal_threat"]})}
    )
    flag = RiskFlag(name="legal_threat", priority="high", evidence="lawyer")
    holding = held("all", "holding")
    decision = decide(message("t"), cls("delivery_info", 0.9, flag), GOOD, Context(), policy, WORKING, holding)
    assert decision.action is Action.REVIEW and "incident:all" in decision.reasons and not decision.holding


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (("parcels", "review", None), "unknown topic 'parcels'"),
        (("all", "pause", None), "action must be review or holding"),
        (("all", "review", "We know."), "a holding text goes with action holding"),
        (("all", "holding", "   "), "the holding text is empty"),
        (("all", "holding", "x" * 281), "too long for x_mention"),
    ],
)
def test_a_bad_brake_request_says_what_is_wrong(request_: tuple[str, str, str | None], error: str) -> None:
    topic, action, holding = request_
    with pytest.raises(ValueError, match=error):
        by_hand(topic, action, holding, None, "alice", WORKING, topics(POLICY))


def test_a_record_written_by_hand_still_holds_its_topic() -> None:
    incident = Incident.parse("delivery_info", '{"since": "10:02", "messages": 41}', WORKING)
    assert (incident.action, incident.by, incident.topic) == ("review", "unknown", "delivery_info")
    back = Incident.parse("x", held("x", "holding", "We know.")["x"].stored(), WORKING)
    assert back == held("x", "holding", "We know.")["x"]


# -- in Redis -----------------------------------------------------------------------------------------------


@pytest.fixture
async def store(redis: Redis, settings: Settings) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis, settings.redis_prefix, ttl_s=600)
    await store.setup()
    yield store


def negative(intent: str) -> Classification:
    return Classification(intent=intent, confidence=0.9, sentiment="negative", sentiment_score=0.99)


def small(policy: BrandPolicy, **rule: Any) -> BrandPolicy:
    """The policy with an incident rule a test can trip with a few messages, and no coalescing wait."""
    incident = IncidentPolicy(window_minutes=10, baseline_minutes=60, min_messages=3, factor=2).model_copy(update=rule)
    return with_decision(policy, incident=incident, coalesce_seconds=0)


async def test_a_busy_baseline_needs_a_bigger_rise_and_spam_is_not_counted(redis: Redis, settings: Settings) -> None:
    incidents = IncidentStore(redis, settings.redis_prefix)
    policy = small(load_policy(settings.policies_dir))
    now = datetime.now(UTC)
    _, baseline = minutes(now, policy.decision.incident)
    for minute in list(baseline)[:12]:  # 24 in the hour before the window: 4 per window is usual
        await redis.set(incidents.counter("order_problem", minute), 2)
    metrics = create_metrics()
    assert await watch(incidents, [negative("order_problem")] * 7, policy, metrics, now) == []  # under 2 x 4
    assert await watch(incidents, [negative("spam")] * 20, policy, metrics, now) == []
    [raised] = await watch(incidents, [negative("order_problem")], policy, metrics, now)  # 8 = 2 x 4
    assert (raised.topic, raised.by, raised.count) == ("order_problem", "auto", 8)
    assert raised.reason == "8 negative messages in 10 min; 24 in the 60 min before"
    assert await watch(incidents, [negative("order_problem")] * 5, policy, metrics, now) == []  # raised once
    assert metrics.incidents_raised._value.get() == 1
    assert not await redis.exists(incidents.counter("spam", int(now.timestamp() // 60)))
    assert 0 < await redis.ttl(incidents.counter("order_problem", int(now.timestamp() // 60))) <= 71 * 60

    # An admin clears it: the same spike doesn't raise it again during the next window.
    assert await incidents.clear("order_problem", "alice", 600) == raised
    assert await watch(incidents, [negative("order_problem")] * 5, policy, metrics, now) == []
    assert await incidents.active() == {} and await incidents.clear("order_problem", "alice", 600) is None
    entries = cast(list[tuple[str, dict[str, str]]], await redis.xrange(f"{settings.redis_prefix}:audit"))
    audit = [(e["action"], e["reviewer"], e["topic"]) for _, e in entries]
    assert audit == [("incident_raised", "auto", "order_problem"), ("incident_cleared", "alice", "order_problem")]


async def test_a_burst_of_complaints_raises_an_incident_and_holds_that_intent_only(
    settings: Settings, encoder: TransformersEncoder, models_dir: Path, store: RedisStore, redis: Redis
) -> None:
    service = await pipeline(settings, encoder, models_dir)
    service.policy = small(service.policy)
    metrics = create_metrics()
    worker = Worker(store, service, settings, metrics, "w1")
    complaints = [
        "Your delivery is ridiculously slow, standard delivery takes forever, terrible",
        "Delivery times are a joke, why does it take so long, awful service",
        "Why is your delivery so slow? Five days for standard delivery is awful",
        "How is express delivery this slow? Absolutely terrible",
    ]
    await store.enqueue([message(text, id=f"angry{i}") for i, text in enumerate(complaints)])
    await worker.handle(await store.read(store.keys.inbound, INBOUND_GROUP, "w1", 10, 100))
    held_now = await worker.incidents.active()
    assert list(held_now) == ["delivery_info"], held_now
    incident = held_now["delivery_info"]
    assert (incident.by, incident.action, incident.count) == ("auto", "review", 4)
    assert metrics.incident_active.labels("delivery_info")._value.get() == 1
    assert metrics.incidents_raised._value.get() == 1

    later = [message("How long does standard delivery take?", id="faq"), message("Do you accept PayPal?", id="pay")]
    await store.enqueue(later)
    await worker.handle(await store.read(store.keys.inbound, INBOUND_GROUP, "w1", 10, 100))
    faq, pay = [await store.message_state("generic", m.id) for m in later]
    assert faq is not None and faq.decision is Action.REVIEW and faq.reasons == ("incident:delivery_info",)
    assert pay is not None and pay.decision is Action.AUTO_SEND  # another intent: answered as usual
    assert list(await worker.incidents.active()) == ["delivery_info"]  # not raised twice


async def test_with_action_holding_the_customer_gets_the_admins_words_at_once(
    settings: Settings, encoder: TransformersEncoder, models_dir: Path, store: RedisStore, redis: Redis
) -> None:
    service = await pipeline(settings, encoder, models_dir)
    service.policy = small(service.policy)
    worker = Worker(store, service, settings, create_metrics(), "w1")
    words = "We know deliveries are late this week: a storm closed our depot. A person will answer you here."
    known = topics(service.policy)
    await worker.incidents.pull(by_hand("delivery_info", "holding", words, "storm", "alice", datetime.now(UTC), known))
    msg = message("How long does standard delivery take?", id="d1")
    await store.enqueue([msg])
    await worker.handle(await store.read(store.keys.inbound, INBOUND_GROUP, "w1", 10, 100))
    [case] = await store.pending_cases()
    assert case.decision.reasons == ("incident:delivery_info",) and case.decision.holding
    [(_, entry)] = cast(list[tuple[str, dict[str, str]]], await redis.xrange(store.keys.outbox))
    reply = Reply.model_validate_json(entry["m"])
    assert (reply.origin, reply.text, reply.message.id) == ("holding", words, "d1")


# -- the admin's controls -----------------------------------------------------------------------------------


async def gauge(client: TestClient, topic: str) -> str:
    text = await (await client.get("/metrics")).text()
    prefix = f'autoresponder_incident_active{{topic="{topic}"}} '
    return next((line.removeprefix(prefix) for line in text.splitlines() if line.startswith(prefix)), "absent")


async def test_admins_pull_and_clear_the_brake_through_the_api(client: TestClient) -> None:
    _, _, rita = await client.app[USERS].add("rita", Role.REVIEWER)
    reviewer = {"Authorization": f"Bearer {rita}"}
    assert (await (await client.get("/api/incidents", headers=reviewer)).json()) == {"incidents": []}
    body = {"topic": "order_problem", "action": "review", "reason": "warehouse fire"}
    refused = await client.post("/api/incidents", json=body, headers=reviewer)
    assert refused.status == 403 and (await refused.json())["error"] == "forbidden"

    for bad, detail in (
        ({"topic": "parcels"}, "unknown topic 'parcels'"),
        ({"topic": "all", "action": "pause"}, "action must be review or holding"),
        ({"topic": 3}, "topic must be a string"),
    ):
        answer = await client.post("/api/incidents", json=bad, headers=AUTH)
        assert answer.status == 400 and detail in (await answer.json())["detail"], await answer.text()

    raised = await client.post("/api/incidents", json=body, headers=AUTH)
    assert raised.status == 201
    incident = await raised.json()
    assert incident["topic"] == "order_problem" and incident["by"].startswith("token-")
    assert (incident["action"], incident["holding"], incident["reason"]) == ("review", None, "warehouse fire")
    assert await gauge(client, "order_problem") == "1.0"
    changed = await client.post(
        "/api/incidents", json={"topic": "order_problem", "action": "holding", "holding": "We know."}, headers=AUTH
    )
    assert changed.status == 200 and (await changed.json())["holding"] == "We know."
    listed = (await (await client.get("/api/incidents", headers=reviewer)).json())["incidents"]
    assert [(i["topic"], i["action"], i["holding"]) for i in listed] == [("order_problem", "holding", "We know.")]

    assert (await client.delete("/api/incidents/order_problem", headers=reviewer)).status == 403
    cleared = await client.delete("/api/incidents/order_problem", headers=AUTH)
    assert cleared.status == 200 and (await cleared.json())["cleared"]["holding"] == "We know."
    assert (await client.delete("/api/incidents/order_problem", headers=AUTH)).status == 404
    assert await gauge(client, "order_problem") == "0.0"
    actions = (await (await client.get("/api/audit", headers=AUTH)).json())["actions"]
    assert [(a["action"], a["topic"]) for a in actions] == [
        ("incident_cleared", "order_problem"),
        ("incident_changed", "order_problem"),
        ("incident_raised", "order_problem"),
    ]


async def test_every_process_shows_an_incident_another_raised(client: TestClient, redis: Redis) -> None:
    incidents = client.app[INCIDENTS]
    await redis.hset(incidents.key, "sizing", json.dumps({"since": "10:02", "messages": 41}))  # type: ignore[misc]
    assert await gauge(client, "sizing") == "1.0"
    await redis.hdel(incidents.key, "sizing")  # type: ignore[misc]
    assert await gauge(client, "sizing") == "0.0"


async def test_the_desk_shows_the_incident_on_every_page_and_admins_clear_it(client: TestClient) -> None:
    words = "A storm closed our depot."
    now = datetime.now(UTC)
    await client.app[INCIDENTS].pull(
        by_hand("order_problem", "holding", words, "storm", "alice", now, {"order_problem"})
    )
    await sign_in(client, "rita")
    for path in ("/desk/", "/desk/learning", "/desk/cases/c-m1"):
        page = await (await client.get(path)).text()
        assert "Incident on order_problem" in page and "raised by alice" in page, path
        assert "A storm closed our depot." in page and "Clear the incident" not in page, path
    [csrf] = CSRF.findall(await (await client.get("/desk/")).text())
    refused = await client.post("/desk/incidents/order_problem/clear", data={"csrf": csrf})
    assert refused.status == 403 and await client.app[INCIDENTS].active()

    client.session.cookie_jar.clear()
    await client.app[INCIDENTS].clear("order_problem", "test", 1)  # sign_in() expects the page's only form
    csrf = await sign_in(client, "ada", Role.ADMIN)
    await client.app[INCIDENTS].pull(
        by_hand("order_problem", "review", None, "storm", "alice", datetime.now(UTC), {"order_problem"})
    )
    page = await (await client.get("/desk/")).text()
    assert 'action="/desk/incidents/order_problem/clear"' in page and "Clear the incident" in page
    forged = await client.post("/desk/incidents/order_problem/clear", data={})
    assert forged.status == 403 and await client.app[INCIDENTS].active()
    done = await client.post("/desk/incidents/order_problem/clear", data={"csrf": csrf}, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/desk/?done=incident_cleared"
    assert await client.app[INCIDENTS].active() == {}
    page = await (await client.get("/desk/?done=incident_cleared")).text()
    assert "Incident cleared" in page and "Incident on" not in page
    audit = await (await client.get("/desk/audit")).text()
    assert "incident: order_problem" in audit and "<td>ada</td><td>incident_cleared</td>" in audit


def brake_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "brake", *args],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("BOT_")} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_brake_from_the_command_line(redis: Redis, settings: Settings) -> None:
    env = {"BOT_REDIS_URL": str(settings.redis_url), "BOT_REDIS_PREFIX": settings.redis_prefix}
    incidents = IncidentStore(redis, settings.redis_prefix)
    on = brake_cli("on", env=env)
    assert on.returncode == 0 and on.stdout.startswith("raised incident on all: "), on.stderr
    assert (await incidents.active())["all"].action == "review"
    holding = brake_cli("on", "--topic", "delivery_info", "--holding", "A storm closed our depot.", env=env)
    assert holding.returncode == 0, holding.stderr
    incident = (await incidents.active())["delivery_info"]
    assert (incident.action, incident.holding) == ("holding", "A storm closed our depot.")
    assert incident.by.startswith("cli")
    listed = brake_cli("list", env=env)
    assert listed.returncode == 0 and listed.stdout.startswith("incidents:\n  all: since=")
    assert "  delivery_info: " in listed.stdout and "holding=A storm closed our depot." in listed.stdout
    bad = brake_cli("on", "--topic", "parcels", env=env)
    assert bad.returncode == 2 and "unknown topic 'parcels'" in bad.stderr
    assert brake_cli("off", env=env).returncode == 0
    assert list(await incidents.active()) == ["delivery_info"]
    missing = brake_cli("off", "--topic", "sizing", env=env)
    assert missing.returncode == 2 and "no incident holds 'sizing'" in missing.stderr
