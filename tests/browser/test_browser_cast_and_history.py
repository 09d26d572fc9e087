"""The web client in headless Chromium: muting, "reply as", and a long chat opened flat."""

from __future__ import annotations

from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from test_browser import (
    ARTIFACTS,
    bot_id_named,
    browser,
    by_id,
    create_bot,
    member,
    open_browser,
    send,
    settled,
    start_server,
    stop_server,
    turns,
    wait,
)

from protocol import events as ev
from store import Store
from tests.support.long_chat import fill_chat

__all__ = ["browser"]  # the module's browser fixture, shared with the other browser tests


def muted(driver: webdriver.Chrome, bot_id: str) -> bool:
    return member(driver, bot_id).get_attribute("data-muted") == "true"


def reply_as_pressed(driver: webdriver.Chrome, bot_id: str) -> bool:
    button = member(driver, bot_id).find_element(By.CSS_SELECTOR, '[data-testid="cast-reply-as"]')
    return button.get_attribute("aria-pressed") == "true"


def test_a_muted_character_named_does_not_answer_and_reply_as_forces_one(
    tmp_path: Path, browser: webdriver.Chrome
) -> None:
    first = browser
    first.set_window_size(1280, 900)
    (tmp_path / "serve").mkdir()
    process, url = start_server(tmp_path / "serve")
    second = open_browser(tmp_path / "second")
    try:
        first.get(url)
        wait(first, lambda d: by_id(d, "status")[0].get_attribute("data-state") == "online")
        wait(first, lambda d: len(by_id(d, "bot-item")) >= 2)
        mira, tobias = bot_id_named(first, "Mira"), bot_id_named(first, "Tobias")
        ada = create_bot(first, "Ada")
        Select(by_id(first, "new-chat-host")[0]).select_by_value(mira)
        for bot in (tobias, ada):
            first.find_element(
                By.CSS_SELECTOR, f'[data-testid="new-chat-member"][value="{bot}"]'
            ).click()
        by_id(first, "new-chat-create")[0].click()
        wait(first, lambda d: len(by_id(d, "cast-member")) == 3)
        chat_hash = first.execute_script("return window.location.hash")
        second.get(url + chat_hash)
        wait(second, lambda d: len(by_id(d, "cast-member")) == 3)

        # The controls show: a server that knows muting sends `muted` with the chat.
        assert len(by_id(first, "cast-mute")) == 3
        assert by_id(first, "reply-as")[0].is_displayed()

        # Tobias is muted on one page; the other sees it at once.
        member(first, tobias).find_element(By.CSS_SELECTOR, '[data-testid="cast-mute"]').click()
        wait(first, lambda d: muted(d, tobias))
        wait(second, lambda d: muted(d, tobias))
        button = member(second, tobias).find_element(By.CSS_SELECTOR, '[data-testid="cast-mute"]')
        assert button.get_attribute("aria-pressed") == "true" and button.text == "Muted"

        # Named alone, muted Tobias does not answer: Mira, the host, does.
        count = len(turns(first))
        send(first, '"Tobias, another round?"')
        wait(first, lambda d: len(turns(d)) >= count + 2 and settled(d))
        speakers = [t.get_attribute("data-speaker-id") for t in turns(first)[count:]]
        assert speakers == ["you", mira]

        # "Reply as" Tobias, from his row in the cast, forces him whoever the prose names;
        # the composer's picker shows the same choice, and after the send it is anyone again.
        member(first, tobias).find_element(
            By.CSS_SELECTOR, '[data-testid="cast-reply-as"]'
        ).click()
        picker = Select(by_id(first, "reply-as")[0])
        assert picker.first_selected_option.get_attribute("value") == tobias
        wait(first, lambda d: reply_as_pressed(d, tobias))
        count = len(turns(first))
        send(first, '"Mira, what do I owe you?"')
        wait(first, lambda d: len(turns(d)) >= count + 2 and settled(d))
        assert turns(first)[-1].get_attribute("data-speaker-id") == tobias
        wait(second, lambda d: turns(d)[-1].get_attribute("data-speaker-id") == tobias)
        picker = Select(by_id(first, "reply-as")[0])
        assert picker.first_selected_option.get_attribute("value") == ""
        wait(first, lambda d: not reply_as_pressed(d, tobias))

        # The picker does the same: Ada, named by nobody, answers.
        Select(by_id(first, "reply-as")[0]).select_by_value(ada)
        wait(first, lambda d: reply_as_pressed(d, ada))
        count = len(turns(first))
        send(first, '"Mira, one more?"')
        wait(first, lambda d: len(turns(d)) >= count + 2 and settled(d))
        assert turns(first)[-1].get_attribute("data-speaker-id") == ada
        ARTIFACTS.mkdir(exist_ok=True)
        first.save_screenshot(str(ARTIFACTS / "cast-muted.png"))

        # Unmuted from the other page, he answers to his name again.
        member(second, tobias).find_element(By.CSS_SELECTOR, '[data-testid="cast-mute"]').click()
        wait(first, lambda d: not muted(d, tobias))
        count = len(turns(first))
        send(first, '"Tobias, still here?"')
        wait(first, lambda d: len(turns(d)) >= count + 2 and settled(d))
        assert turns(first)[-1].get_attribute("data-speaker-id") == tobias
    finally:
        second.quit()
        if process.poll() is None:
            stop_server(process)


def long_story(data: Path, turns_in_chat: int) -> str:
    """A database holding one chat of ``turns_in_chat`` turns, written straight to the store."""
    store = Store.open(data / "troupe.db")
    try:
        store.append(ev.BotCreated("mira", "Mira", "Keeps the bar at the Gilded Eel."))
        chat_id = store.new_chat_id()
        store.append(ev.ChatCreated(chat_id, "A long night", "mira"))
        fill_chat(store, chat_id, "mira", turns_in_chat)
    finally:
        store.close()
    return chat_id


# Where a turn sits in the timeline's viewport, in CSS pixels from its top.
TOP_IN_VIEW = """
return arguments[1].getBoundingClientRect().top - arguments[0].getBoundingClientRect().top;
"""


def loaded(driver: webdriver.Chrome) -> bool:
    """No page of older turns is on its way."""
    older = by_id(driver, "older")
    return not older or older[0].get_attribute("data-state") == "idle"


def test_a_long_chat_opens_at_the_bottom_and_scrolls_up_into_older_turns(
    tmp_path: Path, browser: webdriver.Chrome
) -> None:
    driver = browser
    driver.set_window_size(1280, 900)
    (tmp_path / "serve").mkdir()
    chat_id = long_story(tmp_path / "serve", 1000)
    process, url = start_server(tmp_path / "serve")
    try:
        driver.get(f"{url}#chat={chat_id}")
        wait(driver, lambda d: len(turns(d)) == 100)
        root = by_id(driver, "timeline")[0]
        # It opens at the bottom, on the newest turn.
        assert "Turn 999:" in turns(driver)[-1].text
        gap = driver.execute_script(
            "const r = arguments[0]; return r.scrollHeight - r.scrollTop - r.clientHeight", root
        )
        assert gap < 2
        assert by_id(driver, "older")

        # Up to the top: the page before comes in above, and what was on screen stays put.
        shown = len(turns(driver))
        for _ in range(12):  # 900 older turns, 100 a page
            top_turn = turns(driver)[0]
            # Scrolled and measured in one go, before any answer can come in.
            before = driver.execute_script(
                "arguments[0].scrollTop = 0;" + TOP_IN_VIEW, root, top_turn
            )
            wait(driver, lambda d, n=shown: len(turns(d)) > n)
            wait(driver, lambda d: loaded(d))
            after = driver.execute_script(TOP_IN_VIEW, root, top_turn)
            assert abs(after - before) < 2, f"the turn on screen moved from {before} to {after}"
            assert driver.execute_script("return arguments[0].scrollTop", root) > 0
            shown = len(turns(driver))
            if shown == 1000:
                break
        assert shown == 1000
        assert "Turn 0:" in turns(driver)[0].text and not by_id(driver, "older")
        ids = [int(t.get_attribute("data-event-id") or 0) for t in turns(driver)]
        assert ids == sorted(ids) and len(set(ids)) == 1000
    finally:
        if process.poll() is None:
            stop_server(process)
