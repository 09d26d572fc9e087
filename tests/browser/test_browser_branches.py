"""The web client in headless Chromium: alternatives, branches, edit, continue, rewind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from test_browser import (
    ARTIFACTS,
    HERE,
    browser,
    by_id,
    open_browser,
    send,
    settled,
    start_server,
    stop_server,
    turns,
    wait,
)

__all__ = ["browser"]  # the module's browser fixture, shared with the other browser tests


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_server(
        tmp_path_factory.mktemp("serve-branches"), script=HERE / "branches.toml"
    )
    yield url
    stop_server(process)


def new_chat(driver: webdriver.Chrome, server: str, title: str) -> int:
    """Open the page on a new chat with the seeded host; the count of turns it starts with."""
    driver.set_window_size(1280, 900)
    driver.get(server)
    wait(driver, lambda d: by_id(d, "status")[0].get_attribute("data-state") == "online")
    wait(
        driver, lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="new-chat-host"] option')
    )
    by_id(driver, "new-chat-title")[0].send_keys(title)
    by_id(driver, "new-chat-create")[0].click()
    wait(driver, lambda d: title in by_id(d, "chat-title")[0].text)
    wait(driver, lambda d: by_id(d, "branches")[0].text)  # the panel has asked
    return len(turns(driver))


def say(driver: webdriver.Chrome, prose: str) -> None:
    """Send a turn and wait for its answer to settle."""
    count = len(turns(driver))
    send(driver, prose)
    wait(driver, lambda d: len(turns(d)) >= count + 2 and settled(d))


def timeline(driver: webdriver.Chrome) -> list[str]:
    """Each turn shown, as its body's text."""
    return [
        t.find_element(By.CSS_SELECTOR, ".turn-body").text
        for t in turns(driver)
        if t.find_elements(By.CSS_SELECTOR, ".turn-body")
    ]


def turn_saying(driver: webdriver.Chrome, words: str) -> WebElement:
    found = [t for t in turns(driver) if words in t.text]
    assert found, f"no turn says {words!r}"
    return found[-1]


def pager(turn: WebElement) -> tuple[str, str]:
    box = turn.find_element(By.CSS_SELECTOR, '[data-testid="alternatives"]')
    return str(box.get_attribute("data-alternative")), str(box.get_attribute("data-alternatives"))


def branches(driver: webdriver.Chrome) -> list[WebElement]:
    return by_id(driver, "branch")


def other_branch(driver: webdriver.Chrome) -> WebElement:
    (item,) = [b for b in branches(driver) if b.get_attribute("data-current") == "false"]
    return item


def click_in(element: WebElement, testid: str) -> None:
    element.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]').click()


def test_regenerate_on_an_older_beat_forks_and_the_alternatives_flip(
    server: str, browser: webdriver.Chrome
) -> None:
    driver = browser
    new_chat(driver, server, "The lantern")
    say(driver, '"Where does the lantern come from?"')
    say(driver, '"And the road north?"')
    first_path = timeline(driver)
    assert "The first tale" in first_path[-3]
    # One path so far: the panel says so, and no beat has alternatives yet.
    assert not branches(driver)
    assert not by_id(driver, "alternatives")

    # Regenerate the older beat: the chat forks after the person's line it
    # answers, and the road north stays behind on the first path.
    click_in(turn_saying(driver, "The first tale"), "turn-regenerate")
    wait(
        driver,
        lambda d: any("The second tale" in t for t in timeline(d)) and settled(d),
        timeout=40,
    )
    wait(driver, lambda d: not any("road north" in t for t in timeline(d)))
    assert timeline(driver)[-1].startswith("Mira lifts the lantern.")
    assert pager(turn_saying(driver, "The second tale")) == ("2", "2")
    # The Branches panel lists both paths, the new one current, with its fork point.
    wait(driver, lambda d: len(branches(d)) == 2)
    current = [b for b in branches(driver) if b.get_attribute("data-current") == "true"]
    assert len(current) == 1 and "The second tale" in current[0].text
    old = other_branch(driver)
    assert (
        "slides a glass" in old.find_element(By.CSS_SELECTOR, '[data-testid="branch-last"]').text
    )
    assert (
        "lantern" in current[0].find_element(By.CSS_SELECTOR, '[data-testid="branch-fork"]').text
    )
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "branches-regenerated.png"))

    # ‹ flips the older beat back to its first alternative, with what followed it.
    click_in(turn_saying(driver, "The second tale"), "alternative-prev")
    wait(driver, lambda d: timeline(d) == first_path)
    assert pager(turn_saying(driver, "The first tale")) == ("1", "2")
    driver.save_screenshot(str(ARTIFACTS / "branches-alternatives.png"))
    # › goes to the second again.
    click_in(turn_saying(driver, "The first tale"), "alternative-next")
    wait(driver, lambda d: any("The second tale" in t for t in timeline(d)))
    wait(driver, lambda d: not any("road north" in t for t in timeline(d)))
    assert pager(turn_saying(driver, "The second tale")) == ("2", "2")

    # One click in the Branches panel switches back: the old timeline, as it was.
    wait(driver, lambda d: other_branch(d).find_elements(By.CSS_SELECTOR, "button:enabled"))
    click_in(other_branch(driver), "branch-switch")
    wait(driver, lambda d: timeline(d) == first_path)
    wait(driver, lambda d: "The second tale" in other_branch(d).text)
    driver.execute_script("arguments[0].scrollIntoView()", by_id(driver, "branches")[0])
    driver.save_screenshot(str(ARTIFACTS / "branches-panel.png"))

    # At phone width the turn's controls wrap inside it; nothing scrolls sideways.
    try:
        driver.set_window_size(375, 812)
        pager_box = wait(driver, lambda d: by_id(d, "alternatives"))[0]
        driver.execute_script("arguments[0].scrollIntoView()", pager_box)
        driver.save_screenshot(str(ARTIFACTS / "branches-phone.png"))
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= driver.execute_script("return window.innerWidth")
    finally:
        driver.set_window_size(1280, 900)


def test_a_second_page_follows_a_fork_and_a_switch(
    server: str, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    first = browser
    new_chat(first, server, "Two pages")
    say(first, '"What does the compass show?"')
    chat_hash = first.execute_script("return window.location.hash")
    second = open_browser(tmp_path / "second")
    try:
        second.set_window_size(1280, 900)
        second.get(server + chat_hash)
        wait(second, lambda d: timeline(d) == timeline(first))
        before = timeline(first)

        # A fork on one page: the other redraws from its fresh chat_state.
        click_in(turn_saying(first, "the old mill"), "turn-regenerate")
        wait(second, lambda d: any("out to sea" in t for t in timeline(d)), timeout=40)
        wait(second, lambda d: len(branches(d)) == 2)
        assert pager(turn_saying(second, "out to sea")) == ("2", "2")

        # A switch on the other page: the first follows.
        wait(first, settled)
        click_in(other_branch(second), "branch-switch")
        wait(first, lambda d: timeline(d) == before)
        wait(first, lambda d: "out to sea" in other_branch(d).text)
    finally:
        second.quit()


def test_edit_on_the_persons_turn_runs_it_again(server: str, browser: webdriver.Chrome) -> None:
    driver = browser
    new_chat(driver, server, "The harbour")
    say(driver, '"Tell me of the harbour."')
    before = timeline(driver)

    click_in(turn_saying(driver, "of the harbour"), "turn-edit")
    box = wait(driver, lambda d: by_id(d, "edit-prose"))[0]
    assert box.get_attribute("value") == '"Tell me of the harbour."'
    box.clear()
    box.send_keys('"Tell me of the bell tower."')
    by_id(driver, "edit-confirm")[0].click()
    wait(
        driver,
        lambda d: any("The bell has not rung" in t for t in timeline(d)) and settled(d),
        timeout=40,
    )
    shown = timeline(driver)
    assert '"Tell me of the bell tower."' in shown
    assert not any("harbour" in t for t in shown)
    assert len(shown) == len(before)
    driver.save_screenshot(str(ARTIFACTS / "branches-edit.png"))

    # The harbour is a branch away.
    wait(driver, lambda d: len(branches(d)) == 2)
    click_in(other_branch(driver), "branch-switch")
    wait(driver, lambda d: timeline(d) == before)


def test_the_rewind_preview_speaks_plainly_and_the_rewind_can_be_undone(
    server: str, browser: webdriver.Chrome
) -> None:
    driver = browser
    new_chat(driver, server, "Rewound")
    say(driver, '"Evening, Mira."')
    say(driver, '"Another, please."')
    before = timeline(driver)

    first_user = next(t for t in turns(driver) if t.get_attribute("data-kind") == "user")
    click_in(first_user, "rewind")
    wait(driver, lambda d: by_id(d, "rewind-confirm")[0].is_enabled())
    preview = by_id(driver, "rewind-preview")[0].text
    # Turns, memories and relationship changes in words, never event kinds.
    assert "turns" in preview and "memor" in preview and "relationship change" in preview
    assert preview.endswith("move to a branch you can return to.")
    assert "_" not in preview and "\u00d7" not in preview
    driver.save_screenshot(str(ARTIFACTS / "branches-rewind.png"))
    by_id(driver, "rewind-confirm")[0].click()
    wait(driver, lambda d: len(timeline(d)) < len(before))
    assert timeline(driver)[-1] == '"Evening, Mira."'

    wait(driver, lambda d: len(branches(d)) == 2)
    click_in(other_branch(driver), "branch-switch")
    wait(driver, lambda d: timeline(d) == before)


def test_continue_extends_the_latest_beat(server: str, browser: webdriver.Chrome) -> None:
    driver = browser
    new_chat(driver, server, "Go on")
    say(driver, '"Evening, Mira."')
    before = timeline(driver)
    beat = turns(driver)[-1].get_attribute("data-event-id")

    by_id(driver, "continue")[0].click()
    # Either the beat grows, or the server refused (then the test fails at once).
    wait(
        driver,
        lambda d: by_id(d, "error") or (len(timeline(d)[-1]) > len(before[-1]) and settled(d)),
        timeout=40,
    )
    assert not by_id(driver, "error"), by_id(driver, "error")[0].text
    shown = timeline(driver)
    assert len(shown) == len(before)  # the same beat, longer: no new turn
    assert shown[-1].startswith(before[-1])
    assert turns(driver)[-1].get_attribute("data-kind") == "assistant"
    assert beat is not None
    driver.save_screenshot(str(ARTIFACTS / "branches-continue.png"))
