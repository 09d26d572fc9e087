"""The web client in real headless Chromium against a real ``troupe serve``."""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from story import strip_card
from tests.support.card_files import card_chunk, chunk_card, png, v2_card

HERE = Path(__file__).parent
ARTIFACTS = HERE.parent / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def start_server(
    data: Path, port: int = 0, script: Path = HERE / "replies.toml"
) -> tuple[subprocess.Popen[str], str]:
    """A real ``troupe serve`` with scripted replies, and the address it printed."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "troupe",
            "serve",
            "--port",
            str(port),
            "--data",
            str(data),
            "--token",
            "browser-token",
            "--backend",
            "scripted",
            "--script",
            str(script),
        ],
        stdout=subprocess.PIPE,
        stderr=(data / "serve.err").open("a"),
        text=True,
    )
    assert process.stdout is not None
    url = None
    try:
        while url is None:
            ready, _, _ = select.select([process.stdout], [], [], 30)
            assert ready, "troupe serve did not start"
            line = process.stdout.readline()
            assert line, f"troupe serve exited: {(data / 'serve.err').read_text()[-2000:]}"
            found = re.search(r"(http://\S+)", line)
            url = found.group(1) if found else None
    except BaseException:
        process.kill()
        process.wait(timeout=15)
        raise
    return process, url


def stop_server(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_server(tmp_path_factory.mktemp("serve"))
    yield url
    stop_server(process)


def open_browser(profile: Path) -> webdriver.Chrome:
    """Headless Chromium with its own profile."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    os.environ.setdefault("SE_OFFLINE", "true")
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    driver = open_browser(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


def wait(driver: webdriver.Chrome, condition, timeout: float = 20):  # type: ignore[no-untyped-def]
    # The page redraws the timeline on a fresh chat_state: an element found a moment
    # ago may be gone; look again rather than fail.
    return WebDriverWait(
        driver,
        timeout,
        poll_frequency=0.05,
        ignored_exceptions=(StaleElementReferenceException, IndexError),
    ).until(condition)


def by_id(driver: webdriver.Chrome, testid: str) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def turns(driver: webdriver.Chrome) -> list[WebElement]:
    return by_id(driver, "turn")


def send(driver: webdriver.Chrome, prose: str) -> None:
    box = by_id(driver, "prose")[0]
    box.clear()
    box.send_keys(prose)
    box.send_keys(Keys.ENTER)


def settled(driver: webdriver.Chrome) -> bool:
    composer = by_id(driver, "composer")
    return bool(composer) and composer[0].get_attribute("data-in-flight") != "true"


def test_a_person_chats_stops_regenerates_and_rewinds(
    server: str, browser: webdriver.Chrome
) -> None:
    driver = browser
    driver.get(server)
    wait(driver, lambda d: by_id(d, "status")[0].get_attribute("data-state") == "online")
    # Start a new chat with the seeded host.
    wait(
        driver,
        lambda d: (
            len(d.find_elements(By.CSS_SELECTOR, '[data-testid="new-chat-host"] option')) >= 1
        ),
    )
    by_id(driver, "new-chat-title")[0].send_keys("Browser test")
    by_id(driver, "new-chat-create")[0].click()
    wait(driver, lambda d: "Browser test" in by_id(d, "chat-title")[0].text)
    start = len(turns(driver))

    # A turn streams and lands.
    send(driver, '"Evening, Mira."')
    wait(driver, lambda d: len(turns(d)) >= start + 2 and settled(d))
    assert "slides a glass" in turns(driver)[-1].text

    # Stop mid-stream: the partial stays, marked as stopped.
    send(driver, "Tell me slowly about the lighthouse.")
    wait(driver, lambda d: by_id(d, "beat-live") and "Once upon" in by_id(d, "beat-live")[0].text)
    by_id(driver, "stop")[0].click()
    wait(driver, lambda d: turns(d)[-1].get_attribute("data-truncated") == "true")
    wait(driver, settled)
    stopped = turns(driver)[-1]
    assert "Once upon" in stopped.text
    assert "nobody came" not in stopped.text

    # Regenerate the stopped beat.
    before = turns(driver)[-1].get_attribute("data-event-id")
    by_id(driver, "regenerate")[0].click()
    wait(driver, lambda d: by_id(d, "regenerate-confirm"))
    by_id(driver, "regenerate-confirm")[0].click()
    wait(
        driver,
        lambda d: (
            turns(d)[-1].get_attribute("data-event-id") != before
            and "nobody came" in turns(d)[-1].text
            and settled(d)
        ),
        timeout=60,
    )

    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "chat.png"))

    # Rewind to the first user turn of this chat.
    count = len(turns(driver))

    def open_rewind(d: webdriver.Chrome) -> bool:
        first_user = next(t for t in turns(d) if t.get_attribute("data-kind") == "user")
        first_user.find_element(By.CSS_SELECTOR, '[data-testid="rewind"]').click()
        return True

    wait(driver, open_rewind)
    wait(
        driver, lambda d: by_id(d, "rewind-confirm") and by_id(d, "rewind-confirm")[0].is_enabled()
    )
    assert "branch you can return to" in by_id(driver, "rewind-preview")[0].text
    by_id(driver, "rewind-confirm")[0].click()
    wait(driver, lambda d: len(turns(d)) < count)
    wait(driver, lambda d: turns(d)[-1].get_attribute("data-kind") == "user")

    driver.save_screenshot(str(ARTIFACTS / "chat-rewound.png"))


def test_model_output_is_always_text(server: str, browser: webdriver.Chrome) -> None:
    driver = browser
    driver.get(server)
    wait(driver, lambda d: by_id(d, "status")[0].get_attribute("data-state") == "online")
    by_id(driver, "new-chat-create")[0].click()
    wait(driver, lambda d: by_id(d, "prose"))
    start = len(turns(driver))
    send(driver, "Show me a trick.")
    wait(driver, lambda d: len(turns(d)) >= start + 2 and settled(d))
    last = turns(driver)[-1]
    assert "<script>window.__xss = 1</script>" in last.text
    assert '<img src=x onerror="window.__xss = 2">' in last.text
    assert driver.execute_script("return window.__xss === undefined")
    assert not last.find_elements(By.TAG_NAME, "img")
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018
    driver.set_window_size(390, 844)
    driver.save_screenshot(str(ARTIFACTS / "chat-phone.png"))
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 400


def banners(driver: webdriver.Chrome, code: str) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, f'[data-testid="error"][data-code="{code}"]')


def test_the_page_says_the_server_stopped_and_comes_back_with_it(
    tmp_path: Path, browser: webdriver.Chrome
) -> None:
    driver = browser
    driver.set_window_size(1280, 900)  # the test before may have left a phone's width
    process, url = start_server(tmp_path)
    try:
        driver.get(url)
        wait(driver, lambda d: by_id(d, "status")[0].get_attribute("data-state") == "online")
        wait(driver, lambda d: by_id(d, "new-chat-host")[0].find_elements(By.TAG_NAME, "option"))
        by_id(driver, "new-chat-title")[0].send_keys("Across a restart")
        by_id(driver, "new-chat-create")[0].click()
        wait(driver, lambda d: "Across a restart" in by_id(d, "chat-title")[0].text)
        start = len(turns(driver))
        send(driver, '"Evening, Mira."')
        wait(driver, lambda d: len(turns(d)) >= start + 2 and settled(d))

        port = int(re.search(r":(\d+)/", url).group(1))  # type: ignore[union-attr]
        stop_server(process)
        status = by_id(driver, "status")[0]
        wait(driver, lambda d: status.get_attribute("data-state") == "offline")
        assert "Server stopped answering" in status.text
        assert re.search(r"retry \d+", status.text)
        # The tries go on, counted where the person can see them; after a few, a
        # banner says what happened and that the page keeps trying.
        wait(driver, lambda d: int(status.get_attribute("data-attempts") or 0) >= 3)
        banner = wait(driver, lambda d: banners(d, "connection_lost"))[0]
        assert "stopped answering" in banner.text and "keeps trying" in banner.text
        assert "running" not in banner.text  # not the first-visit hint

        process, _ = start_server(tmp_path, port)
        wait(driver, lambda d: status.get_attribute("data-state") == "online", timeout=40)
        assert status.text == "Connected"
        assert not banners(driver, "connection_lost")
        # The chat carries on where it was.
        assert "Across a restart" in by_id(driver, "chat-title")[0].text
        count = len(turns(driver))
        send(driver, '"Still there?"')
        wait(driver, lambda d: len(turns(d)) >= count + 2 and settled(d))
        assert "slides a glass" in turns(driver)[-1].text
    finally:
        if process.poll() is None:
            stop_server(process)


def member(driver: webdriver.Chrome, bot_id: str) -> WebElement:
    return driver.find_element(
        By.CSS_SELECTOR, f'[data-testid="cast-member"][data-bot-id="{bot_id}"]'
    )


def bot_id_named(driver: webdriver.Chrome, name: str) -> str:
    for item in by_id(driver, "bot-item"):
        if item.text.strip() == name:
            return str(item.get_attribute("data-bot-id"))
    raise AssertionError(f"no character named {name}")


def create_bot(driver: webdriver.Chrome, name: str) -> str:
    by_id(driver, "bot-name")[0].send_keys(name)
    by_id(driver, "bot-persona")[0].send_keys(f"{name} drinks at the Gilded Eel.")
    by_id(driver, "bot-save")[0].click()
    wait(driver, lambda d: any(item.text.strip() == name for item in by_id(d, "bot-item")))
    return bot_id_named(driver, name)


def test_a_cast_of_three_with_one_away_and_one_added_and_removed(
    tmp_path: Path, browser: webdriver.Chrome
) -> None:
    driver = browser
    driver.set_window_size(1280, 900)
    process, url = start_server(tmp_path)
    try:
        driver.get(url)
        wait(driver, lambda d: by_id(d, "status")[0].get_attribute("data-state") == "online")
        wait(driver, lambda d: len(by_id(d, "bot-item")) >= 2)
        mira, tobias = bot_id_named(driver, "Mira"), bot_id_named(driver, "Tobias")
        ada = create_bot(driver, "Ada")
        nell = create_bot(driver, "Nell")

        # A cast of three: the host picked, two more ticked.
        Select(by_id(driver, "new-chat-host")[0]).select_by_value(mira)
        for bot in (tobias, ada):
            driver.find_element(
                By.CSS_SELECTOR, f'[data-testid="new-chat-member"][value="{bot}"]'
            ).click()
        by_id(driver, "new-chat-title")[0].send_keys("Three at the table")
        by_id(driver, "new-chat-create")[0].click()
        wait(driver, lambda d: "Three at the table" in by_id(d, "chat-title")[0].text)
        wait(driver, lambda d: len(by_id(d, "cast-member")) == 3)
        cast = [m.get_attribute("data-bot-id") for m in by_id(driver, "cast-member")]
        assert cast == [mira, tobias, ada]
        assert all(m.get_attribute("data-present") == "true" for m in by_id(driver, "cast-member"))
        # Each character has its own colour, and the host cannot be removed.
        hues = {
            m.find_element(By.CSS_SELECTOR, ".cast-swatch").get_attribute("data-hue")
            for m in by_id(driver, "cast-member")
        }
        assert len(hues) == 3
        assert not member(driver, mira).find_elements(
            By.CSS_SELECTOR, '[data-testid="cast-remove"]'
        )

        # Named alone, Tobias answers, in his colour.
        send(driver, '"Tobias, another round?"')
        wait(driver, lambda d: len(turns(d)) >= 2 and settled(d))
        answer = turns(driver)[-1]
        assert answer.get_attribute("data-speaker-id") == tobias
        swatch = member(driver, tobias).find_element(By.CSS_SELECTOR, ".cast-swatch")
        assert answer.get_attribute("data-hue") == swatch.get_attribute("data-hue")

        # The matrix holds each directed pair of the turn: you, Mira, Ada and Tobias.
        def cells(d: webdriver.Chrome) -> dict[tuple[str, str], str]:
            return {
                (str(e.get_attribute("data-source-id")), str(e.get_attribute("data-target-id"))): (
                    e.text
                )
                for e in by_id(d, "edge")
            }

        everyone = ["you", mira, tobias, ada]
        wait(driver, lambda d: len(cells(d)) == 12)
        assert set(cells(driver)) == {(s, t) for s in everyone for t in everyone if s != t}
        assert len(by_id(driver, "edge-matrix")) == 1
        cell = by_id(driver, "edge")[0]
        assert cell.find_element(By.CSS_SELECTOR, '[data-testid="edge-affinity"]').text.isdigit()
        assert cell.find_element(By.CSS_SELECTOR, '[data-testid="edge-trust"]').text.isdigit()
        # A cell opens that pair's detail below the matrix, and closes it again.
        pair = (cell.get_attribute("data-source-id"), cell.get_attribute("data-target-id"))
        cell.find_element(By.TAG_NAME, "button").click()
        detail = wait(driver, lambda d: by_id(d, "edge-detail"))[0]
        assert (
            detail.get_attribute("data-source-id"),
            detail.get_attribute("data-target-id"),
        ) == pair
        by_id(driver, "edge")[0].find_element(By.TAG_NAME, "button").click()
        wait(driver, lambda d: not by_id(d, "edge-detail"))

        # Tobias steps away: the panel says so, and named alone he no longer answers.
        member(driver, tobias).find_element(
            By.CSS_SELECTOR, '[data-testid="cast-presence"]'
        ).click()
        wait(driver, lambda d: member(d, tobias).get_attribute("data-present") == "false")
        count = len(turns(driver))
        send(driver, '"Tobias, are you there?"')
        wait(driver, lambda d: len(turns(d)) >= count + 2 and settled(d))
        speakers = {t.get_attribute("data-speaker-id") for t in turns(driver)[count:]}
        assert tobias not in speakers and mira in speakers

        # He comes back; Nell joins the cast, present at once, then leaves it.
        member(driver, tobias).find_element(
            By.CSS_SELECTOR, '[data-testid="cast-presence"]'
        ).click()
        wait(driver, lambda d: member(d, tobias).get_attribute("data-present") == "true")
        Select(by_id(driver, "cast-add-bot")[0]).select_by_value(nell)
        by_id(driver, "cast-add")[0].click()
        wait(driver, lambda d: len(by_id(d, "cast-member")) == 4)
        # The panel is drawn again when the new cast arrives: look again, not fail.
        wait(driver, lambda d: member(d, nell).get_attribute("data-present") == "true")
        member(driver, nell).find_element(By.CSS_SELECTOR, '[data-testid="cast-remove"]').click()
        wait(driver, lambda d: len(by_id(d, "cast-member")) == 3)
        assert nell not in [m.get_attribute("data-bot-id") for m in by_id(driver, "cast-member")]
        # The chat list names the cast in its order.
        wait(driver, lambda d: any("Mira, Tobias & Ada" in i.text for i in by_id(d, "chat-item")))

        # At phone width, with the story drawer open on the cast and the matrix,
        # nothing scrolls sideways.
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "cast.png"))
        driver.set_window_size(375, 812)
        by_id(driver, "toggle-side")[0].click()
        wait(driver, lambda d: by_id(d, "cast")[0].is_displayed())
        driver.save_screenshot(str(ARTIFACTS / "cast-phone.png"))
        width = driver.execute_script("return document.documentElement.scrollWidth")
        inner = driver.execute_script("return window.innerWidth")
        assert width <= inner
        side = by_id(driver, "side")[0]
        assert driver.execute_script(
            "return arguments[0].scrollWidth <= arguments[0].clientWidth", side
        )
    finally:
        driver.set_window_size(1280, 900)
        if process.poll() is None:
            stop_server(process)


def test_a_second_page_on_the_chat_sees_presence_and_the_cast_change_live(
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
        Select(by_id(first, "new-chat-host")[0]).select_by_value(mira)
        first.find_element(
            By.CSS_SELECTOR, f'[data-testid="new-chat-member"][value="{tobias}"]'
        ).click()
        by_id(first, "new-chat-create")[0].click()
        wait(first, lambda d: len(by_id(d, "cast-member")) == 2)
        chat_id = first.execute_script("return window.location.hash")
        second.get(url + chat_id)
        wait(second, lambda d: len(by_id(d, "cast-member")) == 2)

        # One page sends Tobias away; the other sees it without asking.
        member(first, tobias).find_element(
            By.CSS_SELECTOR, '[data-testid="cast-presence"]'
        ).click()
        wait(second, lambda d: member(d, tobias).get_attribute("data-present") == "false")
        # Mira is the last one present: neither page lets her leave.
        for page in (first, second):
            toggle = member(page, mira).find_element(
                By.CSS_SELECTOR, '[data-testid="cast-presence"]'
            )
            wait(page, lambda d, t=toggle: not t.is_enabled())

        # The other page takes Tobias out of the cast: the first page drops him.
        member(second, tobias).find_element(By.CSS_SELECTOR, '[data-testid="cast-remove"]').click()
        wait(
            first,
            lambda d: [m.get_attribute("data-bot-id") for m in by_id(d, "cast-member")] == [mira],
        )
    finally:
        second.quit()
        if process.poll() is None:
            stop_server(process)


# Every hue a character can get, as the page paints its name, against the page's
# surface; the contrast ratio is WCAG's, from the colour read back off a canvas.
CONTRASTS = """
const probe = (style) => {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = style;
  ctx.fillRect(0, 0, 1, 1);
  const [r, g, b] = ctx.getImageData(0, 0, 1, 1).data;
  const lin = (c) => (c / 255 <= 0.04045 ? c / 255 / 12.92 : ((c / 255 + 0.055) / 1.055) ** 2.4);
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
};
const root = getComputedStyle(document.documentElement);
const surface = probe(root.getPropertyValue("--surface").trim());
const ratios = [];
for (let hue = 0; hue < 360; hue += 3) {
  const el = document.createElement("span");
  el.className = "who speaker";
  el.style.setProperty("--hue", String(hue));
  document.body.append(el);
  const ink = probe(getComputedStyle(el).color);
  el.remove();
  const [hi, lo] = ink > surface ? [ink, surface] : [surface, ink];
  ratios.push((hi + 0.05) / (lo + 0.05));
}
return Math.min(...ratios);
"""


def test_every_character_colour_reads_on_the_light_and_the_dark_page(
    server: str, browser: webdriver.Chrome
) -> None:
    driver = browser
    driver.get(server)
    wait(driver, lambda d: by_id(d, "status")[0].get_attribute("data-state") == "online")
    try:
        for scheme in ("light", "dark"):
            driver.execute_cdp_cmd(
                "Emulation.setEmulatedMedia",
                {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
            )
            assert driver.execute_script(
                "return matchMedia(arguments[0]).matches", f"(prefers-color-scheme: {scheme})"
            )
            assert driver.execute_script(CONTRASTS) >= 4.5, scheme
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


DROP = """
const [b64, name] = arguments;
const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const data = new DataTransfer();
data.items.add(new File([bytes], name, { type: "image/png" }));
const target = document.querySelector('[data-testid="timeline"]');
for (const type of ["dragenter", "dragover", "drop"]) {
  const init = { dataTransfer: data, bubbles: true, cancelable: true };
  target.dispatchEvent(new DragEvent(type, init));
}
"""


def fetch(url: str) -> bytes:
    """A download link followed from the test, over real HTTP on loopback."""
    assert url.startswith("http://127.0.0.1:"), url
    with urllib.request.urlopen(url, timeout=10) as answer:
        data: bytes = answer.read()
    return data


def test_a_card_dropped_on_the_page_is_chatted_with_and_downloaded_again(
    server: str, browser: webdriver.Chrome
) -> None:
    driver = browser
    driver.get(server)
    wait(driver, lambda d: by_id(d, "status")[0].get_attribute("data-state") == "online")
    original = v2_card(name="Corvin", first_mes="*Corvin looks up from his ledger.* Yes?")
    card = png(card_chunk("chara", original))

    # Dropped anywhere on the page: the card becomes a character.
    driver.execute_script(DROP, base64.b64encode(card).decode(), "corvin.png")
    wait(driver, lambda d: by_id(d, "import-note")[0].get_attribute("data-state") == "done")
    assert "Corvin" in by_id(driver, "import-note")[0].text
    wait(driver, lambda d: any(item.text.strip() == "Corvin" for item in by_id(d, "bot-item")))
    corvin = bot_id_named(driver, "Corvin")

    # A chat with it: its greeting and the cast carry its avatar, and it answers.
    Select(by_id(driver, "new-chat-host")[0]).select_by_value(corvin)
    by_id(driver, "new-chat-title")[0].send_keys("The ledger")
    by_id(driver, "new-chat-create")[0].click()
    wait(driver, lambda d: "The ledger" in by_id(d, "chat-title")[0].text)
    wait(driver, lambda d: turns(d) and "ledger" in turns(d)[0].text)
    avatar = turns(driver)[0].find_element(By.CSS_SELECTOR, '[data-testid="avatar"]')
    wait(driver, lambda d: d.execute_script("return arguments[0].naturalWidth", avatar) == 2)
    assert member(driver, corvin).find_elements(By.CSS_SELECTOR, '[data-testid="avatar"]')
    send(driver, '"Evening. Any rooms?"')
    wait(driver, lambda d: len(turns(d)) >= 3 and settled(d))
    assert "slides a glass" in turns(driver)[-1].text
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "import.png"))

    # Downloaded again: both chunks, the original card in its own.
    driver.find_element(
        By.CSS_SELECTOR, f'[data-testid="bot-item"][data-bot-id="{corvin}"] .bot-open'
    ).click()
    link = wait(driver, lambda d: by_id(d, "card-png"))[0]
    exported = fetch(str(link.get_attribute("href")))
    assert chunk_card(exported, "chara") == original
    assert chunk_card(exported, "ccv3")["data"]["name"] == "Corvin"
    assert strip_card(exported) == strip_card(card)  # the same picture

    chat_link = by_id(driver, "chat-jsonl")[0].get_attribute("href")
    lines = [json.loads(x) for x in fetch(str(chat_link)).decode().splitlines()]
    assert [(x["name"] == "Corvin", x["is_user"]) for x in lines[1:]] == [
        (True, False),
        (False, True),
        (True, False),
    ]
    transcript = fetch(str(by_id(driver, "chat-md")[0].get_attribute("href"))).decode()
    assert "**Corvin:**" in transcript


def test_a_file_that_is_no_card_is_refused_with_its_reason(
    server: str, browser: webdriver.Chrome
) -> None:
    driver = browser
    driver.get(server)
    wait(driver, lambda d: by_id(d, "status")[0].get_attribute("data-state") == "online")
    before = len(by_id(driver, "bot-item"))
    driver.execute_script(DROP, base64.b64encode(png()).decode(), "holiday.png")
    wait(driver, lambda d: by_id(d, "import-note")[0].get_attribute("data-state") == "error")
    error = wait(driver, lambda d: by_id(d, "error"))[0]
    assert error.get_attribute("data-code") == "no_card_chunk"
    assert "holiday.png" in error.text
    assert len(by_id(driver, "bot-item")) == before


def new_chat(driver: webdriver.Chrome, title: str) -> None:
    driver.get(driver.current_url.split("#")[0])
    wait(driver, lambda d: by_id(d, "status")[0].get_attribute("data-state") == "online")
    wait(
        driver,
        lambda d: (
            len(d.find_elements(By.CSS_SELECTOR, '[data-testid="new-chat-host"] option')) >= 1
        ),
    )
    by_id(driver, "new-chat-title")[0].send_keys(title)
    by_id(driver, "new-chat-create")[0].click()
    wait(driver, lambda d: title in by_id(d, "chat-title")[0].text)


def test_the_page_says_who_is_taking_in_and_a_turn_sent_then_waits(
    server: str, browser: webdriver.Chrome
) -> None:
    driver = browser
    driver.get(server)
    new_chat(driver, "Passes test")
    start = len(turns(driver))
    send(driver, '"Ponder this, Mira: where does the ferry go?"')
    # The beat is in; its passes take a while: the page says so, and Send works.
    status = by_id(driver, "turn-status")[0]
    wait(driver, lambda d: status.is_displayed())
    # The host who answered (the new chat's host is whoever the form offered first).
    assert re.fullmatch(r"\w[\w .'-]* is taking in what was said\u2026", status.text)
    assert by_id(driver, "send")[0].is_enabled()
    assert by_id(driver, "composer")[0].get_attribute("data-in-flight") == "true"
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "taking-in.png"))
    send(driver, '"And what do you make of it?"')
    # The second turn waits for the passes, then goes and is answered.
    wait(
        driver,
        lambda d: (
            len(turns(d)) >= start + 4
            and turns(d)[-2].get_attribute("data-kind") == "user"
            and "make of it" in turns(d)[-2].text
            and turns(d)[-1].get_attribute("data-kind") == "assistant"
            and settled(d)
        ),
        timeout=40,
    )
    wait(driver, lambda d: not by_id(d, "turn-status")[0].is_displayed())
    assert by_id(driver, "prose")[0].get_attribute("value") == ""
    assert not banners(driver, "busy")


def test_the_sampling_panel_sets_a_chat_s_settings(server: str, browser: webdriver.Chrome) -> None:
    driver = browser
    driver.get(server)
    new_chat(driver, "Settings test")
    by_id(driver, "settings-panel")[0].find_element(By.TAG_NAME, "summary").click()
    temperature = by_id(driver, "setting-temperature")[0]
    wait(driver, lambda d: temperature.is_displayed())
    assert temperature.get_attribute("value") == ""  # the server's default
    temperature.send_keys("0.5")
    by_id(driver, "setting-max_tokens")[0].send_keys("120")
    by_id(driver, "settings-save")[0].click()
    wait(driver, lambda d: "Saved" in by_id(d, "settings-note")[0].text)
    driver.save_screenshot(str(ARTIFACTS / "settings.png"))
    # What the server keeps is what a fresh page shows.
    driver.refresh()
    wait(driver, lambda d: "Settings test" in by_id(d, "chat-title")[0].text)
    by_id(driver, "settings-panel")[0].find_element(By.TAG_NAME, "summary").click()
    wait(driver, lambda d: by_id(d, "setting-temperature")[0].get_attribute("value") == "0.5")
    assert by_id(driver, "setting-max_tokens")[0].get_attribute("value") == "120"
    assert by_id(driver, "setting-top_p")[0].get_attribute("value") == ""
    # A turn still streams with them.
    send(driver, '"Evening."')
    wait(driver, lambda d: "slides a glass" in turns(d)[-1].text and settled(d))
