"""The desk in a real browser (Debian's Chromium, driven by Playwright) against the real service: a reviewer
made with `python -m bot users add` signs in, sees a held message arrive without reloading, edits the
draft with the keyboard, approves it, and the platform receives the edited reply."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import ROOT, SECRET, free_port, payload, signed
from tests.fakes import Receiver
from tests.service import Service, start

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright's own download can't run here
WAIT_MS = 60_000


@pytest.fixture(scope="module")
async def env(
    peer: Receiver, tmp_path_factory: pytest.TempPathFactory, brand_models: Path, policies_dir: Path
) -> dict[str, str]:
    data = tmp_path_factory.mktemp("desk")
    return {
        "BOT_DATA_DIR": str(data / "data"),
        "BOT_MODELS_DIR": str(brand_models),
        "BOT_POLICIES_DIR": str(policies_dir),
        "BOT_GENERIC_SECRET": SECRET,
        "BOT_GENERIC_REPLY_URL": await peer.start(),
    }  # no BOT_REDIS_URL: the embedded Redis, as a new user's first run has it


@pytest.fixture(scope="module")
async def service(env: dict[str, str]) -> AsyncIterator[Service]:
    service = await start("serve", free_port(), env, Path(env["BOT_DATA_DIR"]).parent / "serve.log")
    await service.wait_ready()
    yield service
    assert await service.stop() == 0, service.log.read_text()


async def add_user(env: dict[str, str], name: str, role: str) -> str:
    """`python -m bot users add` as the README says, against the running service's Redis; its password."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")} | env
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "users", "add", name, "--role", role,
        cwd=ROOT, env=full_env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output = (await process.communicate())[0].decode()
    assert process.returncode == 0, output
    [password] = re.findall(r"password:\s+(\S+)", output)
    return password


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        await browser.close()


async def post(service: Service, text: str) -> str:
    mid = uuid.uuid4().hex
    raw, headers = signed(payload(text, id=mid))
    async with (
        aiohttp.ClientSession() as session,
        session.post(service.url + "/webhooks/generic", data=raw, headers=headers) as response,
    ):
        assert response.status == 202
    return mid


async def sign_in(page: Page, service: Service, name: str, password: str) -> None:
    await page.goto(service.url + "/desk/")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_a_reviewer_signs_in_sees_a_case_arrive_edits_and_approves_it(
    service: Service, env: dict[str, str], browser: Browser, peer: Receiver
) -> None:
    password = await add_user(env, "rita", "reviewer")
    page = await browser.new_page()
    await sign_in(page, service, "rita", "not-her-password")
    await expect(page.get_by_role("alert")).to_have_text("Wrong name or password.")
    await sign_in(page, service, "rita", password)
    await expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    await expect(page.get_by_text("No cases here.")).to_be_visible()
    await page.evaluate("window.sameDocument = true")

    mid = await post(service, "My jacket zip snapped and cut my hand. My solicitor will be in touch about this.")
    case = page.locator(".cases a").first
    await expect(case).to_contain_text("My jacket zip snapped", timeout=WAIT_MS)  # arrived without a reload
    assert await page.evaluate("window.sameDocument") is True
    await page.keyboard.press("j")  # keyboard: move to the case, open it
    await expect(case).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("Held because")).to_be_visible()
    await expect(page.locator(".facts")).to_contain_text("risk:")

    edited = "We're so sorry about your hand. A member of our team will message you today. – Rita at Northwind"
    await page.keyboard.press("e")
    reply = page.get_by_label(re.compile("^Reply"))
    await expect(reply).to_be_focused()
    await reply.fill(edited)
    await page.keyboard.press("Control+Enter")
    await expect(page.get_by_role("status")).to_have_text("Approved: the reply is on its way.")

    replies = await peer.wait_for(1)
    assert [(r["in_reply_to"], r["text"]) for r in replies] == [(mid, edited)]
    await page.close()


async def test_a_reviewer_rejects_with_a_reason_by_keyboard_and_sees_no_audit_link(
    service: Service, env: dict[str, str], browser: Browser, peer: Receiver
) -> None:
    password = await add_user(env, "sam", "reviewer")
    page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    await sign_in(page, service, "sam", password)
    await expect(page.get_by_role("link", name="Audit log")).to_have_count(0)
    before = len(peer.replies)
    await post(service, "The heater you sold me caught fire in my tent. My lawyer will contact you.")
    case = page.locator(".cases a").first
    await expect(case).to_be_visible(timeout=WAIT_MS)
    await case.click()
    await expect(page.get_by_text("Held because")).to_be_visible()
    await page.wait_for_load_state("domcontentloaded")  # desk.js (deferred) has run: the page's keys are live
    await page.keyboard.press("r")
    # Typed only once the reason has the focus: pressed before the keys were live, the "a" of "Duplicate"
    # approved instead (it did once in CI).
    await expect(page.get_by_label("Reason (for the log)")).to_be_focused()
    await page.keyboard.type("Duplicate of a case handled by phone")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_have_text("Rejected: nothing was sent.")
    await expect(page.get_by_text("No cases here.")).to_be_visible()
    await asyncio.sleep(1)
    assert len(peer.replies) == before
    await page.close()
