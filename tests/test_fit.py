"""Channel fit and the checks every draft passes (pure), and the circuit breaker's states (a fake clock)."""

from __future__ import annotations

from functools import partial

import pytest

from bot.app import load_brand
from bot.channels.base import reply_length
from bot.config import Settings
from bot.draft.breaker import CircuitBreaker, State
from bot.draft.compose import finish
from bot.draft.fit import drop_repeated_personal_data, fit_length, limit_emoji, personal_data
from bot.models import Draft
from tests.conftest import message

SIGN = "– Northwind Team"
LONG = (
    "Hi @jo, standard UK delivery takes 3–5 working days and is free over £50. "
    "Express is next working day for £9.95 if you order before 2pm. "
    "Ireland takes 4–7 working days for €6.95. " + SIGN
)


def test_a_long_reply_is_cut_at_a_sentence_and_keeps_its_sign_off() -> None:
    text, cut_mid_sentence = fit_length(LONG, 120, SIGN)
    assert text == "Hi @jo, standard UK delivery takes 3–5 working days and is free over £50. " + SIGN
    assert len(text) <= 120 and not cut_mid_sentence
    assert fit_length(LONG, 1000, SIGN) == (LONG, False)


def test_a_first_sentence_too_long_is_cut_at_a_word_and_flagged() -> None:
    text, cut_mid_sentence = fit_length("word " * 80 + SIGN, 100, SIGN)
    assert cut_mid_sentence and len(text) <= 100 and text.endswith("… " + SIGN) and "wor…" not in text


@pytest.mark.parametrize(
    ("channel", "text", "length"),
    [
        ("x_mention", "see https://northwind.example/track?order=1&postcode=x now", 4 + 23 + 4),
        ("x_mention", "see northwind.example/track", 27),  # a bare domain counts as the text it is
        ("x_mention", "日本 🙂", 2 + 2 + 1 + 2),
        ("x_mention", "cafe\u0301 – ok", 9),  # NFC: é is one character; the en dash counts once
        ("instagram_dm", "café", 5),  # bytes
        ("whatsapp", "café 🙂", 6),
    ],
)
def test_replies_are_measured_as_their_platform_counts(channel: str, text: str, length: int) -> None:
    assert reply_length(channel, text) == length


def test_an_x_reply_is_cut_by_weight_not_by_characters() -> None:
    reply = "大好き。" * 50 + " " + SIGN  # 200 characters, but weighing twice as much on X
    text, cut_mid_sentence = fit_length(reply, 280, SIGN, partial(reply_length, "x_mention"))
    assert text == "大好き。" * 32 + " " + SIGN and not cut_mid_sentence  # 32 × 8 + 17 = 273 ≤ 280
    unbroken, cut_mid_sentence = fit_length("大" * 300 + " " + SIGN, 280, SIGN, partial(reply_length, "x_mention"))
    assert cut_mid_sentence and unbroken == "大" * 130 + "… " + SIGN


def test_emoji_beyond_the_channels_allowance_are_removed() -> None:
    assert limit_emoji("Thanks 🙌 so much 🎉🎉 for the 👍🏽 love ❤️.", 1) == "Thanks 🙌 so much for the love."
    assert limit_emoji("Great to hear 🇬🇧 today.", 0) == "Great to hear today."
    assert limit_emoji("No emoji here.", 0) == "No emoji here."


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("my card is 4111 1111 1111 1111 and it failed", {"card", "phone"}),
        ("call me on 07700 900123 please", {"phone"}),
        ("email jo.walker+shop@example.co.uk", {"email"}),
        ("deliver to SW1A 1AA tomorrow", {"postcode"}),
        ("order 12345 is late", set()),  # an order number is not personal data
    ],
)
def test_personal_data_is_found(text: str, kinds: set[str]) -> None:
    assert {kind for kind, _ in personal_data(text)} == kinds


def test_sentences_repeating_the_customers_personal_data_are_dropped() -> None:
    reply = "Thanks Jo. We'll call you on 07700-900-123 today. Our team is on it. " + SIGN
    kept, removed = drop_repeated_personal_data(reply, "ring me on 07700 900123")
    assert kept == "Thanks Jo. Our team is on it. " + SIGN and removed == ["phone"]
    assert drop_repeated_personal_data(reply, "no numbers here") == (reply, [])


def draft(text: str, **fields: object) -> Draft:
    return Draft(text=text, answerable=True, drafter="llm", **fields)  # type: ignore[arg-type]


def test_finish_fits_the_channel_and_reports_what_it_cannot_make_safe(settings: Settings) -> None:
    brand = load_brand(settings)
    persona = brand.prompts.persona
    delivery = [p for p in brand.passages if p.id.startswith("delivery#")]
    on_x = message("how long is delivery?", channel="x_mention", handle="jo")
    fitted = finish(draft(LONG), on_x, persona, delivery)
    assert fitted.checks == () and len(fitted.text) <= 280 and fitted.text.endswith(SIGN)
    invented = finish(draft("Hi, delivery takes 8 days. " + SIGN), on_x, persona, delivery)
    assert invented.checks == ("ungrounded_number",) and "numbers its sources don't: 8" in invented.note
    banned = finish(draft("We apologise for any inconvenience. " + SIGN), on_x, persona, delivery)
    assert banned.checks == ("banned_phrase",) and "banned phrases" in banned.note
    leak = message("my card 4111 1111 1111 1111 was charged twice", handle="jo")
    echoed = finish(draft("Sorry about card 4111111111111111. " + SIGN), leak, persona, delivery)
    assert "4111" not in echoed.text and echoed.checks == ("emptied",)
    assert "removed repeated personal data (card, phone)" in echoed.note
    long_word = finish(draft("x" * 400 + " " + SIGN), on_x, persona, delivery)
    assert long_word.checks == ("cut_mid_sentence",) and len(long_word.text) <= 280


def test_persona_styles_cap_each_channel_at_the_platforms_limit(settings: Settings) -> None:
    persona = load_brand(settings).prompts.persona
    assert persona.style("x_mention").max_chars == 280  # the platform's limit: the persona sets none
    assert persona.style("instagram_comment").max_chars == 500  # the brand's own, shorter
    assert persona.style("generic").max_chars == 1000  # default
    assert not persona.style("whatsapp").address and persona.style("x_mention").address


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_cools_down_probes_once_and_reopens_on_a_failed_probe() -> None:
    clock, seen = Clock(), list[State]()
    breaker = CircuitBreaker(3, 30, clock=clock, on_change=seen.append)
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    breaker.success()  # a success in between resets the count
    for _ in range(3):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state is State.OPEN and not breaker.allow()
    clock.now = 30
    assert breaker.allow() and breaker.state is State.HALF_OPEN
    assert not breaker.allow()  # only one probe at a time
    breaker.failure()
    assert breaker.state is State.OPEN and not breaker.allow()
    clock.now = 60
    assert breaker.allow()
    breaker.success()
    assert breaker.state is State.CLOSED and breaker.allow()
    assert seen == [State.OPEN, State.HALF_OPEN, State.OPEN, State.HALF_OPEN, State.CLOSED]


def test_a_long_retry_after_opens_the_breaker_for_that_long() -> None:
    clock = Clock()
    breaker = CircuitBreaker(5, 30, clock=clock)
    assert breaker.allow()
    breaker.failure(wait=120)
    assert breaker.state is State.OPEN
    clock.now = 119
    assert not breaker.allow()
    clock.now = 120
    assert breaker.allow()
