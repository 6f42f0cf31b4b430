"""The generic channel: signature on the raw bytes, parsing with named errors, signed delivery."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import aiohttp
import pytest
from pydantic import BaseModel, ValidationError

from bot.channels.base import MAX_PROBLEMS, problems
from bot.channels.generic import GenericChannel, sign
from bot.errors import BadRequest, ChannelError
from bot.models import Reply
from tests.channels import authentic
from tests.conftest import SECRET, message, payload, signed
from tests.fakes import Receiver

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
async def channel() -> GenericChannel:
    async with aiohttp.ClientSession() as session:
        yield GenericChannel(SECRET.encode(), None, session)


def test_signature_is_checked_on_the_exact_bytes(channel: GenericChannel) -> None:
    raw, headers = signed(payload("hello"))
    assert authentic(channel, headers, raw)
    assert not authentic(channel, headers, raw + b" ")  # same JSON, different bytes
    assert not authentic(channel, {}, raw)
    assert not authentic(channel, {"X-Bot-Signature": sign(b"other-secret", raw)}, raw)
    assert not authentic(channel, {"X-Bot-Signature": headers["X-Bot-Signature"].removeprefix("sha256=")}, raw)


def test_parses_one_message_or_a_list(channel: GenericChannel) -> None:
    one = channel.parse(json.dumps(payload("hi", id="m1", public=True)).encode(), NOW)
    assert [(m.id, m.text, m.public, m.channel, m.received_at) for m in one] == [("m1", "hi", True, "generic", NOW)]
    many = channel.parse(json.dumps([payload("a", id="1"), payload("b", id="2")]).encode(), NOW)
    assert [m.id for m in many] == ["1", "2"]
    assert many[0].author.followers == 12


@pytest.mark.parametrize(
    ("body", "reason", "named"),
    [
        (b"{not json", "malformed_json", "not valid JSON"),
        (b"[]", "empty", "empty"),
        (json.dumps({k: v for k, v in payload("x").items() if k != "text"}).encode(), "invalid_message", "text"),
        (json.dumps(payload("x", created_at="yesterday")).encode(), "invalid_message", "created_at"),
        (json.dumps([payload("x"), {"id": "2"}]).encode(), "invalid_message", "message 1"),
        (json.dumps(payload("x", author={"id": "u"})).encode(), "invalid_message", "author.handle"),
        (b'"just a string"', "invalid_message", "body"),
    ],
)
def test_bad_bodies_name_the_problem(channel: GenericChannel, body: bytes, reason: str, named: str) -> None:
    with pytest.raises(BadRequest) as caught:
        channel.parse(body, NOW)
    assert caught.value.reason == reason
    assert named in caught.value.detail


async def test_send_signs_the_reply_and_maps_failures(receiver: Receiver) -> None:
    url = await receiver.start()
    reply = Reply(reply_id="r1", message=message("q", id="m9"), text="Hello – Northwind Team", origin="bot")
    async with aiohttp.ClientSession() as session:
        channel = GenericChannel(SECRET.encode(), url, session)
        await channel.send(reply)
        assert receiver.replies == [
            {"reply_id": "r1", "in_reply_to": "m9", "conversation_id": "conv-m9", "text": "Hello – Northwind Team"}
        ]
        receiver.fail_times, receiver.fail_status = 1, 503
        with pytest.raises(ChannelError) as caught:
            await channel.send(reply)
        assert caught.value.retryable and caught.value.retry_after == 0
        receiver.fail_times, receiver.fail_status = 1, 400
        with pytest.raises(ChannelError) as caught:
            await channel.send(reply)
        assert not caught.value.retryable
        wrong = GenericChannel(b"not-the-secret", url, session)
        with pytest.raises(ChannelError):
            await wrong.send(reply)
        assert receiver.rejected == 1
        unreachable = GenericChannel(SECRET.encode(), "http://127.0.0.1:9/replies", session)
        with pytest.raises(ChannelError) as caught:
            await unreachable.send(reply)
        assert caught.value.retryable


def test_a_refusal_names_each_field_under_its_place_and_stops_at_ten() -> None:
    class Batch(BaseModel):
        ids: list[int]

    with pytest.raises(ValidationError) as refused:
        Batch.model_validate({"ids": [f"x{i}" for i in range(13)]})
    listed = problems(refused.value, "entry.0").split("; ")
    assert listed[0].startswith("entry.0.ids.0: Input should be a valid integer") and len(listed) == MAX_PROBLEMS + 1
    assert listed[-1] == "and 3 more"
