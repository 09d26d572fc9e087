"""Two people at one table in real headless Chromium: seats, queued turns, both pages live."""

from __future__ import annotations

from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select
from test_browser import (
    ARTIFACTS,
    bot_id_named,
    by_id,
    create_bot,
    open_browser,
    send,
    settled,
    start_server,
    stop_server,
    turns,
    wait,
)


def sit_as_new(driver: webdriver.Chrome, name: str) -> None:
    """Choose "New persona…" in the seat picker, name them, and sit down."""
    Select(by_id(driver, "seat-persona")[0]).select_by_visible_text("New persona\u2026")
    wait(driver, lambda d: not by_id(d, "seat-new-form")[0].get_attribute("hidden"))
    by_id(driver, "seat-new-name")[0].send_keys(name)
    by_id(driver, "seat-new-persona")[0].send_keys(f"{name} drinks at the Gilded Eel.")
    by_id(driver, "seat-create")[0].click()
    wait(driver, lambda d: seated_as(d).startswith(name))


def seated_as(driver: webdriver.Chrome) -> str:
    return Select(by_id(driver, "seat-persona")[0]).first_selected_option.text


def speaker(turn: WebElement) -> str:
    return turn.find_element(By.CSS_SELECTOR, ".speaker").text


def queued(driver: webdriver.Chrome) -> list[WebElement]:
    return by_id(driver, "queued-turn")


def test_two_browsers_as_two_personas_queue_turns_that_stream_to_both(tmp_path: Path) -> None:
    (tmp_path / "serve").mkdir()
    process, url = start_server(tmp_path / "serve")
    first = open_browser(tmp_path / "first")
    first.set_window_size(1280, 900)
    second = open_browser(tmp_path / "second")
    second.set_window_size(1280, 900)
    try:
        first.get(url)
        wait(first, lambda d: by_id(d, "status")[0].get_attribute("data-state") == "online")
        wait(first, lambda d: len(by_id(d, "bot-item")) >= 2)
        mira, tobias = bot_id_named(first, "Mira"), bot_id_named(first, "Tobias")
        others = [create_bot(first, name) for name in ("Ada", "Wren", "Oss")]

        # A five-character tavern.
        Select(by_id(first, "new-chat-host")[0]).select_by_value(mira)
        for bot in (tobias, *others):
            first.find_element(
                By.CSS_SELECTOR, f'[data-testid="new-chat-member"][value="{bot}"]'
            ).click()
        by_id(first, "new-chat-title")[0].send_keys("The tavern")
        by_id(first, "new-chat-create")[0].click()
        wait(first, lambda d: len(by_id(d, "cast-member")) == 5)
        chat = first.execute_script("return window.location.hash")

        # Two people, each in a browser of their own, each in a seat of their own.
        sit_as_new(first, "Bea")
        second.get(url + chat)
        wait(second, lambda d: len(by_id(d, "cast-member")) == 5)
        sit_as_new(second, "Cal")
        wait(
            first,
            lambda d: (
                "Cal"
                in [
                    o.text.split(" \u00b7")[0] for o in Select(by_id(d, "seat-persona")[0]).options
                ]
            ),
        )

        # Bea asks for a long tale; both pages watch it stream.
        start = len(turns(first))
        send(first, '"Mira, tell it slowly: the lighthouse."')
        for page in (first, second):
            wait(
                page,
                lambda d: by_id(d, "beat-live") and "Once upon" in by_id(d, "beat-live")[0].text,
            )
        # While Mira speaks, Cal's Send queues; both pages list the waiting turn.
        wait(second, lambda d: by_id(d, "send")[0].text == "Queue")
        send(second, '"Tobias, a drink for the road?"')
        for page in (first, second):
            wait(page, lambda d: len(queued(d)) == 1)
            assert "Cal" in queued(page)[0].text and "a drink" in queued(page)[0].text
        # Only its own person may drop it.
        assert by_id(second, "queued-drop") and not by_id(first, "queued-drop")
        ARTIFACTS.mkdir(exist_ok=True)
        first.save_screenshot(str(ARTIFACTS / "table-queued-first.png"))
        second.save_screenshot(str(ARTIFACTS / "table-queued-second.png"))

        # Mira finishes; Cal's turn runs, and both pages see all of it, names and all.
        for page in (first, second):
            wait(page, lambda d: len(turns(d)) >= start + 4 and settled(d) and not queued(d), 60)
            mine = turns(page)[start:]
            assert [t.get_attribute("data-kind") for t in mine] == [
                "user",
                "assistant",
                "user",
                "assistant",
            ]
            assert [speaker(t) for t in mine] == ["Bea", "Mira", "Cal", "Tobias"]
            assert "nobody came" in mine[1].text
        second.save_screenshot(str(ARTIFACTS / "table-settled-second.png"))

        # Cal queues again and thinks better of it: the drop empties the queue for both.
        start = len(turns(first))
        send(first, '"Tell it slowly once more, Mira."')
        wait(second, lambda d: by_id(d, "send")[0].text == "Queue")
        send(second, '"Oss, count the ships."')
        wait(first, lambda d: len(queued(d)) == 1)
        # Each page draws the queue on its own frame: wait for the sender's Drop to show.
        wait(second, lambda d: len(by_id(d, "queued-drop")) == 1)
        by_id(second, "queued-drop")[0].click()
        for page in (first, second):
            wait(page, lambda d: not queued(d) and settled(d), 30)
        kinds = [t.get_attribute("data-kind") for t in turns(first)[start:]]
        assert kinds == ["user", "assistant"]  # Cal's turn never ran
    finally:
        first.quit()
        second.quit()
        if process.poll() is None:
            stop_server(process)
