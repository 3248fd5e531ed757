"""Disaster mode and notices in the widget, and the console's notice preview, in a real browser
(Debian's Chromium driven by Selenium) at a phone's width, against the running stack."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import update

from bot.console.accounts import add_user
from bot.notices import board, store
from bot.settings import ROOT
from bot.storage.db import session_scope
from bot.storage.models import Notice

ARTIFACTS = ROOT / "var" / "test-artifacts"
PASSWORD = "correct-horse-battery"
MESSAGE = "中原区に避難指示が出ています。近くの避難所へ移動してください（多摩川の増水）。"


def _luminance(css_color: str) -> float:
    r, g, b = (int(v) / 255 for v in re.findall(r"\d+", css_color)[:3])

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _open_widget(driver, web_url: str) -> None:
    """The demo page (data-ward="中原区") fresh, the panel open."""
    driver.get(web_url + "/")
    driver.execute_script("localStorage.clear()")
    driver.get(web_url + "/")
    wait = WebDriverWait(driver, 30)
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".kc-launcher"))).click()
    wait.until(ec.element_to_be_clickable((By.ID, "kc-input")))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".kc-msg"))


@pytest.fixture()
def phone(browser):
    """A phone's viewport, 360 × 740 CSS px (a headless window keeps a wider minimum of its own)."""
    metrics = {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    yield browser
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _fresh_from_server(driver) -> None:
    """The answer is cacheable for 30 s; a browser that has waited that long asks again."""
    driver.execute_cdp_cmd("Network.clearBrowserCache", {})


@pytest.fixture()
def nakahara_notice(stack_settings):
    """A 防災 notice for 中原区, as the sender leaves it once sent."""
    notice = store.create(
        stack_settings.database_url,
        title="避難所を開設しました",
        body="中原区内の小学校5か所に避難所を開設しました。",
        wards=["中原区"],
        topic="bousai",
        author="browser-test",
        link="https://www.city.kawasaki.jp/",
    )
    with session_scope(stack_settings.database_url) as session:
        now = datetime.now(UTC)
        session.execute(
            update(Notice).where(Notice.id == notice.id).values(status="sent", sent_at=now, send_at=now)
        )
    yield notice
    with session_scope(stack_settings.database_url) as session:
        session.execute(update(Notice).where(Notice.id == notice.id).values(status="cancelled"))


def test_disaster_mode_shows_a_red_banner_in_the_widget_until_it_is_turned_off(
    phone, web_url, stack_settings, nakahara_notice
):
    browser = phone
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    db = stack_settings.database_url
    alert = board.start_disaster(db, MESSAGE, ["中原区"], "browser-test")
    try:
        _open_widget(browser, web_url)
        wait = WebDriverWait(browser, 20)
        banner = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".kc-alert")))
        assert (
            banner.get_attribute("role") == "alert" and MESSAGE in banner.text and "災害情報" in banner.text
        )
        colour, background = (banner.value_of_css_property(p) for p in ("color", "background-color"))
        assert _contrast(colour, background) >= 4.5, (colour, background)
        log = browser.find_element(By.CSS_SELECTOR, ".kc-log")
        assert banner.rect["y"] < log.rect["y"]  # above the conversation: it never scrolls away with it
        launcher = browser.find_element(By.CSS_SELECTOR, ".kc-launcher")
        assert "kc-launcher-alert" in launcher.get_attribute("class") and "災害情報" in launcher.text
        notice = browser.find_element(By.CSS_SELECTOR, ".kc-notice")
        assert "避難所を開設しました" in notice.text and "防災" in notice.text
        body = notice.find_element(By.CSS_SELECTOR, ".kc-notice-body")
        assert not body.is_displayed()  # compact until opened
        notice.find_element(By.TAG_NAME, "summary").click()
        wait.until(lambda d: body.is_displayed())
        link = notice.find_element(By.CSS_SELECTOR, ".kc-notice-link a")
        assert link.get_attribute("href") == "https://www.city.kawasaki.jp/" and link.text == "詳しく見る"
        width = browser.execute_script("return document.documentElement.clientWidth")
        assert width == 360
        panel = browser.find_element(By.ID, "kc-panel")
        assert panel.rect["x"] >= 0 and panel.rect["x"] + panel.rect["width"] <= width  # fits in 360 px
        browser.save_screenshot(str(ARTIFACTS / "widget-disaster.png"))
        # a question is still answered while the banner shows
        box = browser.find_element(By.ID, "kc-input")
        before = len(browser.find_elements(By.CSS_SELECTOR, ".kc-msg.kc-bot"))
        box.send_keys("住民票の写しがほしい")
        browser.find_element(By.CSS_SELECTOR, ".kc-send").click()
        WebDriverWait(browser, 30).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".kc-msg.kc-bot")) > before
        )
        assert banner.is_displayed()
    finally:
        board.end_disaster(db, "browser-test", alert.id)
    _fresh_from_server(browser)
    browser.refresh()
    WebDriverWait(browser, 30).until(ec.visibility_of_element_located((By.ID, "kc-panel")))  # reopened
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".kc-notice"))
    assert not browser.find_element(By.CSS_SELECTOR, ".kc-alert").is_displayed()
    launcher = browser.find_element(By.CSS_SELECTOR, ".kc-launcher")
    assert (
        "kc-launcher-alert" not in launcher.get_attribute("class") and launcher.text == "区役所コンシェルジュ"
    )
    browser.save_screenshot(str(ARTIFACTS / "widget-disaster-off.png"))


def test_the_widget_works_when_the_notices_endpoint_fails(browser, web_url, stack_settings):
    alert = board.start_disaster(stack_settings.database_url, MESSAGE, [], "browser-test")
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/api/notices*"]})
    try:
        _fresh_from_server(browser)
        _open_widget(browser, web_url)
        box = browser.find_element(By.ID, "kc-input")
        before = len(browser.find_elements(By.CSS_SELECTOR, ".kc-msg.kc-bot"))
        box.send_keys("住民票の写しがほしい")
        browser.find_element(By.CSS_SELECTOR, ".kc-send").click()
        WebDriverWait(browser, 30).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".kc-msg.kc-bot")) > before
        )
        assert "区民課" in browser.find_elements(By.CSS_SELECTOR, ".kc-msg.kc-bot")[-1].text
        assert not browser.find_element(By.CSS_SELECTOR, ".kc-alert").is_displayed()  # no banner …
        assert not browser.find_element(By.CSS_SELECTOR, ".kc-notices").is_displayed()  # … no notices
        assert "通信できませんでした" not in browser.find_element(By.CSS_SELECTOR, ".kc-log").text  # no error
    finally:
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        board.end_disaster(stack_settings.database_url, "browser-test", alert.id)


@pytest.fixture()
def logs_out(browser):
    """The browser is shared by the session's browser tests: the next one starts logged out."""
    yield browser
    browser.delete_all_cookies()


def test_the_consoles_notice_preview_in_the_browser(logs_out, browser, web_url, stack_settings):
    """At a phone's width (the page is long: the whole page is taken, 1400 px high)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = f"notices-{uuid.uuid4().hex[:6]}"
    add_user(stack_settings.database_url, name, "ward_staff", PASSWORD, ["中原区"])
    browser.delete_all_cookies()
    browser.get(web_url + "/staff/login")
    browser.find_element(By.NAME, "name").send_keys(name)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
    WebDriverWait(browser, 20).until(ec.url_contains("/staff/tickets"))
    browser.find_element(By.LINK_TEXT, "お知らせ").click()
    WebDriverWait(browser, 20).until(ec.presence_of_element_located((By.ID, "n-title")))
    browser.find_element(By.ID, "n-title").send_keys("避難所を開設しました")
    browser.find_element(By.ID, "n-body").send_keys(
        "中原区内の小学校5か所に避難所を開設しました。\n最寄りの避難所へ。"
    )
    browser.find_element(By.ID, "n-link").send_keys("https://www.city.kawasaki.jp/")
    browser.find_element(By.CSS_SELECTOR, "#n-topic option[value=bousai]").click()
    button = browser.find_element(By.XPATH, "//button[@value='preview']")
    button.click()
    WebDriverWait(browser, 20).until(ec.staleness_of(button))
    bubble = browser.find_element(By.CSS_SELECTOR, ".line-bubble")
    assert bubble.text.startswith("【中原区・防災】避難所を開設しました\n\n中原区内の小学校")
    assert bubble.text.endswith("\nhttps://www.city.kawasaki.jp/")
    widget = browser.find_element(By.CSS_SELECTOR, ".widget-preview .kc-notice")
    assert "避難所を開設しました" in widget.text and "防災" in widget.text
    # the widget's own stylesheet applies in the console (CSP style-src 'self')
    head = browser.find_element(By.CSS_SELECTOR, ".widget-preview .kc-head")
    assert head.value_of_css_property("background-color") == "rgba(0, 82, 138, 1)"
    assert not [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    metrics = {"width": 360, "height": 1300, "deviceScaleFactor": 1, "mobile": True}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        assert (
            browser.execute_script("return document.documentElement.scrollWidth") <= 360
        )  # no sideways scroll
        browser.save_screenshot(str(ARTIFACTS / "console-notice-preview.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.set_window_size(1280, 900)
    browser.save_screenshot(str(ARTIFACTS / "console-notice-preview-desktop.png"))
    browser.set_window_size(360, 740)
