"""The staff day view of bookings in a real browser (Debian's Chromium driven by Selenium) against the
running stack: a resident's booking is listed, staff cancel it with a message, the page shows it
cancelled and the message is in the resident's Rasa conversation, where the widget reads staff
replies. Screenshots at a desk's width and a phone's."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from bot.bookings import reservations, slots
from bot.bookings.slots import JST, SlotError
from bot.console.accounts import add_user
from bot.knowledge import load_knowledge
from bot.rasa_client import RasaClient
from bot.settings import ROOT

ARTIFACTS = ROOT / "var" / "test-artifacts"
PASSWORD = "correct-horse-battery"
PHONE_METRICS = {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True}


def _next_open_slot(settings) -> slots.Slot:
    """A slot at 中原区's 区民課 on the next day it is open (holidays and closed days refused)."""
    kb = load_knowledge(settings.knowledge_dir)
    day = datetime.now(JST).date()
    for _ in range(60):
        day += timedelta(days=1)
        try:
            return slots.add_slot(
                settings.database_url, kb, ward="中原区", counter_id="kumin", day=day, start="11:30",
                capacity=2, by="browser-test",
            )  # fmt: skip
        except SlotError:
            continue
    raise AssertionError("no open day in 60 days")


def _login(browser, web_url: str, name: str) -> None:
    browser.delete_all_cookies()
    browser.get(web_url + "/staff/login")
    browser.find_element(By.NAME, "name").send_keys(name)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
    WebDriverWait(browser, 20).until(ec.url_contains("/staff/tickets"))


def _row(browser, number: str):
    return browser.find_element(By.XPATH, f"//tbody/tr[contains(., '{number}')]")


def _screenshots(browser, name: str) -> None:
    """The page at a desk's width, then at a phone's (no sideways scrolling there)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1200, 900)
    try:
        browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    finally:
        browser.set_window_size(360, 740)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE_METRICS)
    try:
        browser.save_screenshot(str(ARTIFACTS / f"{name}-phone.png"))
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name}: {overflow}px wider than a phone"
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_staff_see_a_booking_cancel_it_with_a_message_and_see_it_cancelled(browser, web_url, stack):
    settings = stack.settings
    staff = f"booking-staff-{uuid.uuid4().hex[:6]}"
    add_user(settings.database_url, staff, "ward_staff", PASSWORD, ["中原区"])
    slot = _next_open_slot(settings)
    sender = f"web-{uuid.uuid4().hex}"
    rasa = RasaClient(stack.rasa_url, token=stack.rasa_token)
    rasa.send(sender, "こんにちは", "widget")  # the resident's conversation, as the widget opens it
    booking = reservations.book(
        settings.database_url, ward="中原区", counter_id="kumin", day=slot.day, start=slot.start,
        conversation=sender, channel="widget", topic="住民票の写し",
    )  # fmt: skip

    _login(browser, web_url, staff)
    browser.find_element(By.LINK_TEXT, "今日の予約").click()
    WebDriverWait(browser, 20).until(ec.url_contains("/staff/bookings"))
    browser.get(f"{web_url}/staff/bookings?day={slot.day.isoformat()}")
    row = _row(browser, booking.number)
    assert "11:30〜12:00" in row.text and "住民票の写し" in row.text and "予約中" in row.text
    assert "中原区役所 区民課" in browser.find_element(By.TAG_NAME, "main").text
    _screenshots(browser, "staff-bookings-day")

    row = _row(browser, booking.number)
    row.find_element(By.PARTIAL_LINK_TEXT, "キャンセル").click()
    box = WebDriverWait(browser, 20).until(ec.presence_of_element_located((By.ID, "c-message")))
    message = box.get_attribute("value")
    assert booking.number in message and "申し訳ありません" in message  # the draft names the booking
    _screenshots(browser, "staff-booking-cancel-form")
    button = browser.find_element(By.XPATH, "//button[text()='キャンセルして住民に送信']")
    button.click()
    WebDriverWait(browser, 60).until(ec.staleness_of(button))
    assert (
        f"予約番号 {booking.number} をキャンセルしました。住民にメッセージを送りました。"
        in browser.page_source
    )
    row = _row(browser, booking.number)
    assert f"キャンセル（職員 {staff}）" in row.text and not row.find_elements(By.TAG_NAME, "a")
    _screenshots(browser, "staff-bookings-cancelled")

    assert reservations.find(settings.database_url, booking.number).status == "cancelled"
    assert slots.get(settings.database_url, slot.id).booked == 0
    staff_texts = [m["text"] for m in rasa.staff_messages(sender)]
    assert staff_texts == [message]  # in the resident's conversation, with its line break
    browser.find_element(By.LINK_TEXT, "予約枠").click()
    WebDriverWait(browser, 20).until(ec.url_contains("/staff/bookings/slots"))
    listed = browser.find_element(By.XPATH, f"//tbody/tr[contains(., '{slot.start}〜{slot.end}')]")
    assert "0／2" in listed.text and "受付中" in listed.text  # the seat is free again
    _screenshots(browser, "staff-booking-slots")
