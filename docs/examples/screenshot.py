"""Take the README's screenshot (docs/screenshot.png) from the embedded default.

Starts ``troupe serve`` from this tree on the local backend (the embedded
model, a fresh data folder, loopback, a port of the system's choosing, a
token of its own), opens the page in headless Chromium, plays a few warm
turns in the seeded chat "Rain at the Gilded Eel", and saves the page once
Mira's relationship toward Wren has moved off 50.
Run: .venv/bin/python docs/examples/screenshot.py
"""

from __future__ import annotations

import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshot.png"
CHAT = "Rain at the Gilded Eel"
TURNS = (
    '*Wren shakes the rain from her coat.* "Thank you, Mira. A warm fire and a kind face '
    'are a gift tonight."',
    '"You have been so kind to me. I trust you; here, this map of the harbour is yours."',
    '*Wren smiles.* "I am glad I came in. Honestly, this is the friendliest bar on the coast."',
)
START_WITHIN = 120.0
"""Seconds for the server to print its address (the model loads in a worker)."""
TURN_WITHIN = 600.0
"""Seconds for one turn to settle: the embedded model is slow on a busy machine."""


def start_server(data: Path) -> tuple[subprocess.Popen[str], str]:
    """``troupe serve`` on the embedded default, and the address it printed."""
    flags = ["--backend", "local", "--host", "127.0.0.1", "--port", "0", "--data", str(data)]
    process = subprocess.Popen(
        [sys.executable, "-m", "troupe", "serve", *flags, "--token", secrets.token_urlsafe(16)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=(data / "serve.err").open("w"),
        text=True,
    )
    assert process.stdout is not None
    while True:
        ready, _, _ = select.select([process.stdout], [], [], START_WITHIN)
        line = process.stdout.readline() if ready else ""
        if not line:
            process.kill()
            sys.exit(f"troupe serve did not start: {(data / 'serve.err').read_text()[-2000:]}")
        found = re.search(r"(http://127\.0\.0\.1:\d+/\S*)", line)
        if found:
            return process, found.group(1)


def open_browser(profile: Path) -> webdriver.Chrome:
    """Headless Chromium at a desktop size, with a profile of its own."""
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--window-size=1280,860",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    os.environ.setdefault("SE_OFFLINE", "true")
    chromedriver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    # The window size counts the browser's frame; the page itself is to be 1280x860.
    frame = driver.execute_script("return window.outerHeight - window.innerHeight")
    driver.set_window_size(1280, 860 + int(frame))
    return driver


def by_id(driver: webdriver.Chrome, testid: str) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def wait_for(
    driver: webdriver.Chrome,
    what: str,
    timeout: float,
    condition: Callable[[webdriver.Chrome], object],
) -> None:
    """Poll ``condition(driver)`` until it holds, or stop with what was awaited."""
    waiter = WebDriverWait(
        driver, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
    )
    try:
        waiter.until(condition)
    except Exception:
        sys.exit(f"gave up after {timeout:.0f} s waiting for {what}")


def settled(driver: webdriver.Chrome) -> bool:
    """No turn in flight, and Send enabled again: the page saw ``turn_settled``."""
    composer, send = by_id(driver, "composer"), by_id(driver, "send")
    return bool(composer and send) and (
        composer[0].get_attribute("data-in-flight") == "false" and send[0].is_enabled()
    )


def answered(driver: webdriver.Chrome, start: int) -> bool:
    """The turn sent and its answer are on the page, and the turn settled."""
    return len(by_id(driver, "turn")) >= start + 2 and settled(driver)


def moved(driver: webdriver.Chrome) -> bool:
    """Some relationship number in the panel is no longer 50."""
    values = [el.text for el in by_id(driver, "edge-affinity") + by_id(driver, "edge-trust")]
    return any(value.isdigit() and value != "50" for value in values)


def play(driver: webdriver.Chrome, url: str) -> None:
    driver.get(url)
    wait_for(
        driver,
        "the page to connect",
        30,
        lambda d: by_id(d, "status")[0].get_attribute("data-state") == "online",
    )
    wait_for(driver, "the seeded chats", 30, lambda d: len(by_id(d, "chat-item")) >= 2)
    next(item for item in by_id(driver, "chat-item") if CHAT in item.text).click()
    wait_for(driver, "the chat to open", 30, lambda d: CHAT in by_id(d, "chat-title")[0].text)
    for prose in TURNS:
        start = len(by_id(driver, "turn"))
        box = by_id(driver, "prose")[0]
        box.clear()
        box.send_keys(prose)
        box.send_keys(Keys.ENTER)
        # Settled with the new turn and its answer on the page: turn_settled came.
        wait_for(
            driver,
            "the turn to settle",
            TURN_WITHIN,
            partial(answered, start=start),
        )
    wait_for(driver, "a relationship to move off 50", 30, moved)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data, profile = Path(tmp) / "data", Path(tmp) / "chromium"
        data.mkdir()
        process, url = start_server(data)
        try:
            driver = open_browser(profile)
            try:
                play(driver, url)
                # Open the first cell of the matrix (Mira toward Wren): its gauges show the change.
                by_id(driver, "edge")[0].find_element(By.TAG_NAME, "button").click()
                driver.execute_script("document.activeElement.blur()")
                driver.save_screenshot(str(OUT))
            finally:
                driver.quit()
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    print(f"saved {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
