"""Fuzzing: every webhook, with every channel configured, takes random bytes, invalid UTF-8, deeply nested and
huge JSON, and real deliveries with fields dropped or of the wrong type, unsigned and correctly signed; it
answers a 2xx or a 4xx with a JSON reason, never a 5xx. The handshakes take random queries. The review API is
checked against its own OpenAPI document with schemathesis."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from bot.app import create_app
from bot.config import Settings
from bot.review import auth
from tests.conftest import TOKEN
from tests.deliveries import CHANNELS, SIGNERS, all_channels, samples

MAX_BODY = 64 * 1024
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SAMPLES = samples()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# Numbers a platform never sends but JSON allows: out-of-range epochs, huge ints, negative ids.
odd_numbers = st.sampled_from([-1, 0, 2**63, -(2**63), 10**20, 10**400, 1e308, -1e308, 1.5, 253402300800])


@pytest.fixture
async def app_client(make_settings: Callable[..., Settings], redis: Redis) -> AsyncIterator[TestClient]:
    settings = make_settings(**all_channels(max_body_bytes=MAX_BODY))
    async with TestClient(TestServer(create_app(settings, workers=False))) as client:
        yield client


async def check(response: ClientResponse) -> None:
    """A 2xx, or a 4xx whose JSON body names the reason; never a 5xx."""
    text = await response.text()
    assert response.status < 500, f"{response.status}: {text[:500]}"
    if response.status >= 400:
        answer = json.loads(text)
        assert isinstance(answer.get("error"), str) and answer["error"], text[:500]


async def post_all(client: TestClient, body: bytes, *, signed: bool = True) -> None:
    """`body` to every webhook, unsigned and (with `signed`) signed with the channel's own scheme."""
    for name in CHANNELS:
        variants = [{}, SIGNERS[name](body)] if signed else [{}]
        for headers in variants:
            response = await client.post(f"/webhooks/{name}", data=body, headers=headers)
            await check(response)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, channel: str) -> bytes:
    """One of the channel's real deliveries with a few fields dropped or replaced by other JSON."""
    delivery = copy.deepcopy(draw(st.sampled_from(SAMPLES[channel])))
    for _ in range(draw(st.integers(1, 3))):
        where = paths(delivery)
        if not where:
            break
        path = draw(st.sampled_from(where))
        parent = delivery
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values | odd_numbers)
    return json.dumps(delivery).encode()


@FUZZ
@given(body=st.binary(max_size=512))
async def test_random_bytes(app_client: TestClient, body: bytes) -> None:
    await post_all(app_client, body)


@FUZZ
@given(text=st.text(max_size=64), junk=st.binary(min_size=1, max_size=8).filter(lambda b: b[0] >= 0x80))
async def test_invalid_utf8(app_client: TestClient, text: str, junk: bytes) -> None:
    body = json.dumps({"text": text}).encode()
    body = body[:-2] + b"\xff" + junk + body[-2:]  # inside the string: no UTF-8 decoder takes it
    await post_all(app_client, body)


@FUZZ
@given(value=json_values | odd_numbers)
async def test_arbitrary_json(app_client: TestClient, value: Any) -> None:
    await post_all(app_client, json.dumps(value).encode())


@pytest.mark.parametrize("channel", CHANNELS)
async def test_real_deliveries_with_wrong_types_and_missing_fields(app_client: TestClient, channel: str) -> None:
    @FUZZ
    @given(body=mutated(channel))
    def run(body: bytes) -> None:
        future = asyncio.run_coroutine_threadsafe(post_one(body), loop)
        future.result(timeout=30)

    async def post_one(body: bytes) -> None:
        for headers in ({}, SIGNERS[channel](body)):
            await check(await app_client.post(f"/webhooks/{channel}", data=body, headers=headers))

    loop = asyncio.get_running_loop()
    await asyncio.to_thread(run)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b'{"object":"page","entry":' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b'{"data":' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b'{"for_user_id":"1615654896","tweet_create_events":' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b'{"update_id":1,"message":' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    ],
    ids=["lists", "objects", "meta", "xaa", "aaa", "telegram"],
)
async def test_deeply_nested_json(app_client: TestClient, body: bytes) -> None:
    await post_all(app_client, body)


async def test_huge_json_is_refused_with_413(app_client: TestClient) -> None:
    body = json.dumps({"text": "x" * MAX_BODY}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    for name in CHANNELS:
        for headers in ({}, SIGNERS[name](body)):
            response = await app_client.post(f"/webhooks/{name}", data=body, headers=headers)
            await check(response)
            assert response.status == 413
            response = await app_client.post(f"/webhooks/{name}", data=chunks(), headers=headers)  # no length
            await check(response)
            assert response.status == 413


queries = st.dictionaries(
    st.sampled_from(["hub.mode", "hub.verify_token", "hub.challenge", "crc_token", "x"]) | st.text(max_size=10),
    st.sampled_from(["subscribe", "meta-verify-token-value-5f6a"]) | st.text(max_size=40),
    max_size=5,
)


@FUZZ
@given(query=queries)
async def test_handshakes_with_random_queries(app_client: TestClient, query: dict[str, str]) -> None:
    for name in CHANNELS:
        await check(await app_client.get(f"/webhooks/{name}", params=query))


async def test_the_review_api_conforms_to_its_openapi_document(
    app_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """schemathesis on every operation of /api/openapi.json with an admin's token: no 5xx, and every answer
    (status, content type, headers, body) is one the document describes. Whether a schema-valid request is
    accepted is not checked: an incident's holding text must fit every channel's limit, which JSON Schema
    can't say."""
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi import checks

    monkeypatch.setattr(auth, "FAILURE_DELAY_S", 0)  # schemathesis also tries each operation without the token
    conformance = [
        not_a_server_error,
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.response_headers_conformance,
        checks.response_schema_conformance,
        checks.allow_header_conformance,
    ]

    document = await (await app_client.get("/api/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    base_url = str(app_client.make_url("")).rstrip("/")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    failures: list[str] = []

    def run() -> None:
        for result in schema.get_all_operations():
            operation = result.ok()

            @settings(max_examples=10, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def test(case: Any) -> None:
                case.call_and_validate(base_url=base_url, headers=headers, checks=conformance)

            try:
                test()
            except Exception as error:  # every operation is tried; the failures are reported together
                failures.append(f"{operation.label}: {error}")

    await asyncio.to_thread(run)
    assert not failures, "\n\n".join(failures[:10])
