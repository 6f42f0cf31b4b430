"""Every channel configured at once, and each platform's way of signing a delivery: for the fuzz and security
tests, which post the same bodies to all seven webhooks, unsigned, forged and correctly signed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.channels import chatwoot, generic, meta, telegram, x
from tests.conftest import SECRET

DATA = Path(__file__).resolve().parent / "channels" / "data"

# Distinct, recognisable values: the security tests look for each of them in logs and /metrics.
SECRETS: dict[str, str] = {
    "generic_secret": SECRET,
    "telegram_bot_token": "123456:tg-bot-token-SECRET-value",
    "telegram_secret_token": "tg-webhook-secret_value-42",
    "meta_app_secret": "meta-app-secret-value-0a1b2c",
    "meta_instagram_app_secret": "meta-ig-app-secret-value-3d4e",
    "meta_verify_token": "meta-verify-token-value-5f6a",
    "meta_page_token": "meta-page-token-value-7b8c",
    "meta_instagram_token": "meta-instagram-token-value-9d0e",
    "meta_whatsapp_token": "meta-whatsapp-token-value-1f2a",
    "x_consumer_secret": "x-consumer-secret-value-3b4c",
    "x_user_token": "x-user-token-value-5d6e",
    "chatwoot_bot_token": "chatwoot-bot-token-value-7f8a",
    "chatwoot_secret": "chatwoot-webhook-secret/value+9b=",
}
X_USER_ID = "1615654896"  # the account of the published AAA example


def all_channels(**overrides: Any) -> dict[str, Any]:
    """Settings overrides that turn on all seven channels (the remote APIs point nowhere: nothing is sent)."""
    nowhere = "http://127.0.0.1:9"
    return {
        **SECRETS,
        "x_user_id": X_USER_ID,
        "telegram_api_url": nowhere,
        "meta_graph_url": nowhere,
        "meta_instagram_graph_url": nowhere,
        "x_api_url": nowhere,
        "chatwoot_url": nowhere,
        **overrides,
    }


def _generic(body: bytes) -> dict[str, str]:
    return {generic.SIGNATURE_HEADER: generic.sign(SECRETS["generic_secret"].encode(), body)}


def _telegram(body: bytes) -> dict[str, str]:
    return {telegram.SECRET_HEADER: SECRETS["telegram_secret_token"]}


def _x(body: bytes) -> dict[str, str]:
    return {x.SIGNATURE_HEADER: x.sign(SECRETS["x_consumer_secret"].encode(), body)}


def _meta(body: bytes) -> dict[str, str]:
    return {meta.SIGNATURE_HEADER: meta.signature(SECRETS["meta_app_secret"].encode(), body)}


def chatwoot_signed(body: bytes, at: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    return {
        chatwoot.TIMESTAMP_HEADER: stamp,
        chatwoot.SIGNATURE_HEADER: chatwoot.signature(SECRETS["chatwoot_secret"].encode(), stamp, body),
    }


SIGNERS: dict[str, Callable[[bytes], dict[str, str]]] = {
    "generic": _generic,
    "telegram": _telegram,
    "x": _x,
    "messenger": _meta,
    "instagram": _meta,
    "whatsapp": _meta,
    "chatwoot": chatwoot_signed,
}
CHANNELS = tuple(SIGNERS)


def _payload(name: str) -> Any:
    data = json.loads((DATA / name).read_text())
    return data.get("payload", data) if isinstance(data, dict) else data


def samples() -> dict[str, list[Any]]:
    """Real deliveries of each channel (the published examples in tests/channels/data), to mutate."""
    return {
        "generic": [
            {
                "id": "g-1",
                "conversation_id": "c-1",
                "text": "Where is my order?",
                "author": {"id": "u-1", "handle": "hiker_jo", "followers": 12},
                "created_at": "2026-11-23T10:00:00+00:00",
                "public": False,
            }
        ],
        "telegram": [_payload(f"telegram_update_{kind}.json") for kind in ("private_text", "group_mention", "reply")],
        "x": [
            _payload(f"x_{kind}.json")
            for kind in (
                "aaa_tweet_create_mention",
                "aaa_direct_message_events",
                "xaa_dm_received",
                "xaa_post_mention_create",
            )
        ],
        "messenger": [
            _payload(f"meta_{kind}.json")
            for kind in ("messenger_text", "messenger_echo", "messenger_reply_to", "page_feed_comment")
        ],
        "instagram": [_payload(f"instagram_{kind}.json") for kind in ("comment", "dm_echo", "dm_text", "mention")],
        "whatsapp": [_payload(f"whatsapp_{kind}.json") for kind in ("text", "status_sent")],
        "chatwoot": [_payload("chatwoot_message_created.json")],
    }
