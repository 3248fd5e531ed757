"""Done-when 2 (issue 19) in Chromium: a question, 予約したい, the widget's quick replies to a
booking, the booking card with its number, the .ics; the staff's day view lists it; the resident
cancels (予約をキャンセル) and the day view shows it cancelled. And a booking staff cancel with a word
to the resident: the widget shows that word when the resident opens it again.
Screenshots: var/test-artifacts/booking-confirmed.png, booking-staff-day.png, booking-cancelled.png,
booking-staff-day-cancelled.png, booking-staff-word.png."""

from __future__ import annotations

import uuid

from booking_support import full_payload, publish
from console_support import PASSWORD
from icalendar import Calendar
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from bot.bookings import reservations
from bot.console.accounts import add_user
from bot.settings import ROOT

ARTIFACTS = ROOT / "var" / "test-artifacts"
WEEKDAYS = "月火水木金土日"


def _bot_messages(driver):
    return driver.find_elements(By.CSS_SELECTOR, ".kc-msg.kc-bot")


def _ask(driver, text: str) -> None:
    before = len(_bot_messages(driver))
    WebDriverWait(driver, 30).until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".kc-send")))
    box = driver.find_element(By.ID, "kc-input")
    box.clear()
    box.send_keys(text)
    driver.find_element(By.CSS_SELECTOR, ".kc-send").click()
    WebDriverWait(driver, 60).until(lambda d: len(_bot_messages(d)) > before)


def _chip(driver, title: str, expect: str) -> str:
    """Tap the quick reply with this label; the bot's reply, once its last message says `expect`."""
    before = len(_bot_messages(driver))
    xpath = f"//button[@class='kc-chip' and text()='{title}']"
    WebDriverWait(driver, 30).until(ec.element_to_be_clickable((By.XPATH, xpath))).click()
    wait = WebDriverWait(driver, 60, poll_frequency=0.1)
    wait.until(
        lambda d: (
            len(_bot_messages(d)) > before and ec.element_to_be_clickable((By.CSS_SELECTOR, ".kc-send"))(d)
        )
    )
    said = _bot_messages(driver)[-1].text
    assert expect in said, said
    return said


def _staff_login(driver, web_url: str, name: str) -> None:
    driver.get(web_url + "/staff/login")
    driver.find_element(By.NAME, "name").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
    WebDriverWait(driver, 20).until(ec.url_contains("/staff/tickets"))


def _day_view_row(driver, web_url: str, day, number: str) -> str:
    driver.get(f"{web_url}/staff/bookings?day={day.isoformat()}")
    return driver.find_element(By.XPATH, f"//tbody/tr[contains(., '{number}')]").text


def _open_widget(driver, web_url: str) -> None:
    """The page again, its widget opened: the conversation comes back from the browser's copy."""
    driver.get(web_url + "/")
    launcher = WebDriverWait(driver, 30).until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".kc-launcher")))
    if launcher.get_attribute("aria-expanded") != "true":  # it reopens by itself if it was left open
        launcher.click()
    WebDriverWait(driver, 30).until(ec.element_to_be_clickable((By.ID, "kc-input")))


def test_a_resident_books_through_the_quick_replies_downloads_the_ics_and_cancels(
    browser, web_url, stack_settings
):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    slot = publish(stack_settings, "10:00", capacity=2)
    browser.set_window_size(360, 740)
    browser.get(web_url + "/")
    browser.execute_script("localStorage.clear()")
    browser.get(web_url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".kc-launcher"))).click()
    wait.until(ec.element_to_be_clickable((By.ID, "kc-input")))
    wait.until(lambda d: _bot_messages(d))  # the greeting: the page's ward has been sent

    _ask(browser, "住民票の写しがほしい")
    _ask(browser, "相談の予約をしたい")
    proposal = _bot_messages(browser)[-1].text
    assert "住民票の写しの交付" in proposal and "中原区役所の区民課" in proposal, proposal
    _chip(browser, "この窓口で予約", "ご希望の日")
    day = f"{slot.day.month}月{slot.day.day}日（{WEEKDAYS[slot.day.weekday()]}）"
    _chip(browser, day, f"{day}の空いている時間")
    _chip(browser, "10:00〜10:30", "予約しました")

    card = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".kc-msg.kc-bot:last-child .kc-booking"))
    )
    number = card.find_element(By.CSS_SELECTOR, ".kc-booking-number").text
    assert len(number) == 8 and number in _bot_messages(browser)[-1].text
    assert f"{day}10:00〜10:30" in card.text and "中原区役所" in card.text and "区民課" in card.text
    size = browser.execute_script(
        "return parseFloat(getComputedStyle(document.querySelector('.kc-booking-number')).fontSize)"
    )
    assert size >= 24  # the number big and clear
    stored = reservations.find(stack_settings.database_url, number)
    assert stored.status == "booked" and stored.topic == "住民票の写しの交付"
    sender = browser.execute_script("return JSON.parse(localStorage.getItem('kawasaki-concierge-v1')).sender")
    assert stored.conversation == f"web-{sender}"
    # the card's own link fetches the .ics (and hands it to the browser as a download) ...
    link = card.find_element(By.CSS_SELECTOR, ".kc-booking-ics")
    assert link.text == "カレンダーに追加（.ics）"
    link.click()
    wait.until(lambda d: link.get_attribute("data-downloaded") == "true")
    # ... and what it fetches is the booking's calendar file
    fetched = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/api/bookings/ics', {method: 'POST', headers: {'Content-Type': 'application/json'},"
        " body: JSON.stringify({sender: arguments[0], number: arguments[1]})})"
        ".then(async r => done({status: r.status, type: r.headers.get('Content-Type'),"
        " disposition: r.headers.get('Content-Disposition'), body: await r.text()}));",
        sender,
        number,
    )
    assert fetched["status"] == 200 and fetched["type"].startswith("text/calendar")
    assert f"booking-{number}.ics" in fetched["disposition"]
    (event,) = Calendar.from_ical(fetched["body"]).walk("VEVENT")
    assert number in str(event["UID"]) and event.decoded("DTSTART") == slot.starts_at
    on_top = browser.execute_script(
        "const log = document.querySelector('.kc-log'), card = arguments[0];"
        "const r = card.getBoundingClientRect(), l = log.getBoundingClientRect();"
        "return r.top >= l.top - 1 && r.top + 40 <= l.bottom;",
        card,
    )
    assert on_top, "the booking card is scrolled out of view"
    browser.save_screenshot(str(ARTIFACTS / "booking-confirmed.png"))

    staff = f"day-view-{uuid.uuid4().hex[:6]}"
    add_user(stack_settings.database_url, staff, "ward_staff", PASSWORD, ["中原区"])
    try:
        _staff_login(browser, web_url, staff)
        row = _day_view_row(browser, web_url, slot.day, number)
        assert "10:00〜10:30" in row and "住民票の写しの交付" in row and "予約中" in row
        browser.save_screenshot(str(ARTIFACTS / "booking-staff-day.png"))
        _open_widget(browser, web_url)
        _ask(browser, "予約をキャンセルしたい")
        assert number in _bot_messages(browser)[-1].text
        _chip(browser, f"{number}を取消", "キャンセルしました")
        assert reservations.find(stack_settings.database_url, number).status == "cancelled"
        browser.save_screenshot(str(ARTIFACTS / "booking-cancelled.png"))
        row = _day_view_row(browser, web_url, slot.day, number)
        assert "キャンセル" in row and "予約中" not in row
        browser.save_screenshot(str(ARTIFACTS / "booking-staff-day-cancelled.png"))
        browser.get(web_url + "/")
        gone = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('/api/bookings/ics', {method: 'POST', headers: {'Content-Type': 'application/json'},"
            " body: JSON.stringify({sender: arguments[0], number: arguments[1]})})"
            ".then(r => done(r.status));",
            sender,
            number,
        )
        assert gone == 404  # a cancelled booking has no calendar file
    finally:
        browser.delete_all_cookies()  # the next browser test starts logged out


def test_a_word_from_staff_who_cancel_a_booking_shows_when_the_widget_opens_again(
    browser, web_url, stack_settings
):
    """Staff cancel a booking with a message (web/staff_bookings.py → the conversation); the widget,
    which polls only during a hand-off, looks once for such a word each time it opens."""
    slot = publish(stack_settings, "15:00", capacity=1)
    browser.set_window_size(360, 740)
    browser.get(web_url + "/")
    browser.execute_script("localStorage.clear()")
    _open_widget(browser, web_url)
    WebDriverWait(browser, 30).until(lambda d: _bot_messages(d))
    _ask(browser, full_payload(slot))
    number = WebDriverWait(browser, 30).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".kc-msg.kc-bot:last-child .kc-booking-number"))
    ).text
    staff = f"canceller-{uuid.uuid4().hex[:6]}"
    add_user(stack_settings.database_url, staff, "ward_staff", PASSWORD, ["中原区"])
    try:
        _staff_login(browser, web_url, staff)
        _day_view_row(browser, web_url, slot.day, number)
        row = browser.find_element(By.XPATH, f"//tbody/tr[contains(., '{number}')]")
        row.find_element(By.PARTIAL_LINK_TEXT, "キャンセル").click()
        box = WebDriverWait(browser, 20).until(ec.presence_of_element_located((By.ID, "c-message")))
        box.clear()
        box.send_keys("担当者が急病のため、予約をお取り消ししました。申し訳ありません。")
        button = browser.find_element(By.XPATH, "//button[text()='キャンセルして住民に送信']")
        button.click()
        WebDriverWait(browser, 60).until(ec.staleness_of(button))
        assert reservations.find(stack_settings.database_url, number).status == "cancelled"
        _open_widget(browser, web_url)
        word = WebDriverWait(browser, 30).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, ".kc-msg.kc-staff"))
        )
        assert "担当者が急病のため" in word.text
        opened = "return getComputedStyle(document.querySelector('.kc-panel')).opacity === '1'"
        WebDriverWait(browser, 10).until(lambda d: d.execute_script(opened))  # the opening's fade is over
        browser.save_screenshot(str(ARTIFACTS / "booking-staff-word.png"))
    finally:
        browser.delete_all_cookies()
