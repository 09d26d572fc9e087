"""Cards and lore in the web client, in real headless Chromium against a real ``troupe serve``:
edit a card, pick a greeting, attach a lorebook and set the author's note."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from test_browser import (
    ARTIFACTS,
    bot_id_named,
    by_id,
    open_browser,
    start_server,
    stop_server,
    turns,
    wait,
)

TOKEN = "browser-token"
CARD = {
    "spec": "chara_card_v3",
    "spec_version": "3.0",
    "data": {
        "name": "Tobin",
        "description": "{{char}} hauls crates on the docks.",
        "personality": "Loud.",
        "scenario": "Night on the docks.",
        "first_mes": "Crates don't carry themselves, {{user}}.",
        "mes_example": "",
        "alternate_greetings": ["Back again, {{user}}? Grab a rope."],
        "group_only_greetings": [],
        "creator_notes": "",
        "system_prompt": "",
        "post_history_instructions": "",
        "tags": [],
        "creator": "",
        "character_version": "",
        "extensions": {"some_tool": {"kept": True}},
    },
}
BOOK = {"entries": {"0": {"uid": 0, "key": ["lantern"], "content": "The lantern is old."}}}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    driver = open_browser(tmp_path_factory.mktemp("chromium-lore"))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server with a card and a lorebook imported: its page address and its base URL."""
    process, url = start_server(tmp_path_factory.mktemp("serve-lore"))
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}"
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=base, headers=headers, timeout=20) as client:
            for body in (CARD, {**BOOK, "name": "Harbour lore"}):
                answer = client.post("/api/import", content=json.dumps(body).encode())
                assert answer.status_code == 200, answer.text
        yield url, base
    finally:
        stop_server(process)


def card_json(base: str, bot_id: str) -> dict[str, object]:
    answer = httpx.get(f"{base}/api/bots/{bot_id}/card.json", params={"token": TOKEN}, timeout=20)
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert isinstance(data, dict)
    return data


def test_a_card_is_edited_a_greeting_picked_and_a_lorebook_attached(
    library: tuple[str, str], browser: webdriver.Chrome
) -> None:
    url, base = library
    driver = browser
    driver.get(url)
    wait(driver, lambda d: by_id(d, "status")[0].get_attribute("data-state") == "online")
    wait(driver, lambda d: any(i.text.strip() == "Tobin" for i in by_id(d, "bot-item")))
    tobin = bot_id_named(driver, "Tobin")

    # The card view: read, edit, save; the rest of the card is kept.
    driver.find_element(
        By.CSS_SELECTOR, f'[data-testid="bot-item"][data-bot-id="{tobin}"] button'
    ).click()
    wait(driver, lambda d: by_id(d, "card-view")[0].is_displayed())
    description = by_id(driver, "card-description")[0]
    assert description.get_attribute("value") == "{{char}} hauls crates on the docks."
    description.clear()
    description.send_keys("{{char}} rows the ferry at night.")
    by_id(driver, "card-save")[0].click()
    wait(driver, lambda d: by_id(d, "card-note")[0].text == "Card saved.")
    saved = card_json(base, tobin)
    assert saved["description"] == "{{char}} rows the ferry at night."
    assert saved["extensions"] == {"some_tool": {"kept": True}}
    assert saved["personality"] == "Loud."

    # The greeting picker: the card's alternate greeting opens the chat.
    Select(by_id(driver, "new-chat-host")[0]).select_by_value(tobin)
    wait(driver, lambda d: by_id(d, "new-chat-greeting-label")[0].is_displayed())
    Select(by_id(driver, "new-chat-greeting")[0]).select_by_value("1")
    by_id(driver, "new-chat-title")[0].send_keys("On the docks")
    by_id(driver, "new-chat-create")[0].click()
    wait(driver, lambda d: "On the docks" in by_id(d, "chat-title")[0].text)
    wait(driver, lambda d: len(turns(d)) == 1)
    assert "Grab a rope." in turns(driver)[0].text
    assert "{{user}}" not in turns(driver)[0].text

    # Attach the lorebook; it stays attached for a page opened afresh.
    wait(driver, lambda d: any("Harbour lore" in i.text for i in by_id(d, "lorebook-item")))
    box = by_id(driver, "lorebook-attached")[0]
    assert not box.is_selected()
    box.click()
    wait(driver, lambda d: by_id(d, "lorebook-attached")[0].is_selected())
    note = by_id(driver, "author-note-text")[0]
    note.send_keys("Keep the fog thick.")
    by_id(driver, "author-note-save")[0].click()
    wait(driver, lambda d: by_id(d, "author-note-status")[0].text == "Saved.")
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "lore.png"))

    driver.refresh()
    wait(driver, lambda d: by_id(d, "status")[0].get_attribute("data-state") == "online")
    wait(driver, lambda d: "On the docks" in by_id(d, "chat-title")[0].text)
    wait(
        driver,
        lambda d: by_id(d, "lorebook-item") and by_id(d, "lorebook-attached")[0].is_selected(),
    )
    wait(
        driver,
        lambda d: by_id(d, "author-note-text")[0].get_attribute("value") == "Keep the fog thick.",
    )
    assert Path(ARTIFACTS / "lore.png").exists()
