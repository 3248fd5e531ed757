"""The chat widget in a real browser (Debian's Chromium driven by Selenium; nothing downloaded)."""

from __future__ import annotations

import re
import statistics
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from bot.settings import ROOT

ARTIFACTS = ROOT / "var" / "test-artifacts"


def _open_panel(driver) -> None:
    wait = WebDriverWait(driver, 30)
    launcher = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".kc-launcher")))
    if launcher.get_attribute("aria-expanded") != "true":
        launcher.click()
    wait.until(ec.element_to_be_clickable((By.ID, "kc-input")))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".kc-msg"))  # greeting or restored history


def _fresh_widget(driver, web_url: str) -> None:
    """The demo page with no history, the panel open."""
    driver.get(web_url + "/")
    driver.execute_script("localStorage.clear()")
    driver.get(web_url + "/")
    _open_panel(driver)


def _bot_messages(driver):
    return driver.find_elements(By.CSS_SELECTOR, ".kc-msg.kc-bot")


def _ask(driver, text: str) -> float:
    """Type, send, and wait for the answer; seconds from send to answer."""
    before = len(_bot_messages(driver))
    WebDriverWait(driver, 30).until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".kc-send")))
    box = driver.find_element(By.ID, "kc-input")
    box.clear()
    box.send_keys(text)
    started = time.perf_counter()
    driver.find_element(By.CSS_SELECTOR, ".kc-send").click()
    WebDriverWait(driver, 30, poll_frequency=0.02).until(lambda d: len(_bot_messages(d)) > before)
    return time.perf_counter() - started


def test_widget_answers_with_an_office_card_and_keeps_history(browser, web_url):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _fresh_widget(browser, web_url)
    wait = WebDriverWait(browser, 30)
    chip = wait.until(
        ec.element_to_be_clickable((By.XPATH, "//button[@class='kc-chip' and text()='麻生区']"))
    )
    assert "中原区の窓口" in _bot_messages(browser)[0].text  # the page's ward is known: no need to ask
    chip.click()
    wait.until(lambda d: "麻生区役所" in _bot_messages(d)[-1].text)
    assert browser.switch_to.active_element.get_attribute("id") == "kc-input"  # focus stayed in the panel
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)  # so Esc after a quick reply closes it
    wait.until(ec.invisibility_of_element_located((By.ID, "kc-panel")))
    browser.find_element(By.CSS_SELECTOR, ".kc-launcher").click()
    _ask(browser, "住民票の写しがほしい")
    card = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".kc-msg.kc-bot:last-child .kc-card"))
    )
    assert "麻生区役所" in card.text and "区民課" in card.text
    answer = _bot_messages(browser)[-1].find_element(By.CSS_SELECTOR, ".kc-text").text
    first_line = answer.splitlines()[0]
    assert "麻生区役所の区民課" in first_line and len(answer) <= 200  # where to go, first and short
    assert "受付時間" in card.text and "出典" in card.text  # the details are in the card
    first_line_seen = browser.execute_script(
        "const log = document.querySelector('.kc-log');"
        "const reply = [...log.querySelectorAll('.kc-msg.kc-bot')].pop();"
        "const r = reply.getBoundingClientRect(), l = log.getBoundingClientRect();"
        "return r.top >= l.top - 1 && r.top + 20 <= l.bottom;"
    )
    assert first_line_seen, "the answer's first line is scrolled out of view"
    browser.save_screenshot(str(ARTIFACTS / "widget-answer.png"))
    browser.set_window_size(1280, 800)
    browser.save_screenshot(str(ARTIFACTS / "widget-answer-desktop.png"))
    browser.set_window_size(360, 740)
    browser.find_element(By.CSS_SELECTOR, ".kc-card a").send_keys(Keys.ESCAPE)  # from anywhere in it
    wait.until(ec.invisibility_of_element_located((By.ID, "kc-panel")))
    browser.find_element(By.CSS_SELECTOR, ".kc-launcher").click()

    browser.refresh()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".kc-msg")) >= 5)
    wait.until(ec.visibility_of_element_located((By.ID, "kc-panel")))  # reopened as it was left
    assert "区民課" in browser.find_elements(By.CSS_SELECTOR, ".kc-card")[-1].get_attribute("textContent")


def test_html_in_a_question_is_shown_as_text(browser, web_url):
    browser.get(web_url + "/")
    wait = WebDriverWait(browser, 30)
    _open_panel(browser)
    attack = '<img src=x onerror="window.__xss=1">住民票'
    _ask(browser, attack)
    users = browser.find_elements(By.CSS_SELECTOR, ".kc-msg.kc-user .kc-text")
    assert users[-1].text == attack
    assert browser.execute_script("return window.__xss === undefined")
    assert not browser.find_elements(By.CSS_SELECTOR, ".kc-log img")
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".kc-typing").get_attribute("hidden") is not None)


def test_send_to_answer_time_in_the_browser(browser, web_url):
    browser.get(web_url + "/")
    _open_panel(browser)
    times = [
        _ask(browser, q) for q in ("国保 加入", "印鑑登録したい", "保育園の申し込み", "犬の登録", "戸籍謄本")
    ]
    p50 = statistics.median(times) * 1000
    (ARTIFACTS / "widget-timing.txt").write_text(
        f"send→answer p50 {p50:.0f} ms over {len(times)} questions\n"
    )
    print(f"widget send→answer p50 {p50:.0f} ms")
    assert all(t < 30 for t in times)


def test_a_staff_reply_appears_in_the_open_widget(browser, web_url, stack_settings):
    from bot.escalation import Escalations, RasaDelivery

    _fresh_widget(browser, web_url)
    _ask(browser, "高津区に住んでいます")
    _ask(browser, "職員と話したい")
    assert "受付番号" in _bot_messages(browser)[-1].text
    sender = "web-" + browser.execute_script(
        "return JSON.parse(localStorage.getItem('kawasaki-concierge-v1')).sender"
    )
    settings = stack_settings
    escalations = Escalations.from_settings(settings, RasaDelivery.from_settings(settings))
    ticket = escalations.open_ticket_of(sender)
    assert ticket is not None and ticket["channel"] == "widget"
    escalations.reply(ticket["id"], "高津区役所の担当です。お話を伺います。")
    staff = WebDriverWait(browser, 20).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".kc-msg.kc-staff"))
    )
    assert "高津区役所の担当です" in staff.text
    assert browser.find_elements(By.XPATH, "//button[@class='kc-chip' and text()='ボットに戻る']")
    assert re.match(r"職員より（\d{2}:\d{2}）", staff.find_element(By.CSS_SELECTOR, ".kc-from").text)
    browser.save_screenshot(str(ARTIFACTS / "widget-staff-reply.png"))
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert any("/api/messages" in u for u in urls)  # it polled …
    assert not any(sender.removeprefix("web-") in u for u in urls)  # … with the sender id in no URL


def test_an_idle_widget_does_not_poll_for_staff_replies(browser, web_url):
    """Polling starts with a hand-off, not with every open page (it used to run every 5 s forever)."""
    _fresh_widget(browser, web_url)
    _ask(browser, "住民票の写しがほしい")
    time.sleep(6)  # longer than the first poll would wait
    polls = browser.execute_script(
        "return performance.getEntriesByType('resource').filter(e => e.name.includes('/api/messages')).length"
    )
    assert polls == 0



KEY = "kawasaki-concierge-v1"


def _stored(driver) -> dict | None:
    return driver.execute_script(f"return JSON.parse(localStorage.getItem('{KEY}'))")


def _log_text(driver) -> str:
    return driver.find_element(By.CSS_SELECTOR, ".kc-log").text


def test_clear_history_forgets_the_chat_and_the_sender_id(browser, web_url):
    _fresh_widget(browser, web_url)
    _ask(browser, "住民票の写しがほしい")
    before = _stored(browser)
    assert any(e["text"] == "住民票の写しがほしい" for e in before["log"])
    browser.find_element(By.CSS_SELECTOR, ".kc-clear-history").click()
    WebDriverWait(browser, 10).until(lambda d: "履歴を消しました" in _log_text(d))
    assert "住民票の写しがほしい" not in _log_text(browser)
    after = _stored(browser)
    assert after["sender"] != before["sender"] and all(e["who"] == "bot" for e in after["log"])
    browser.get(web_url + "/")  # and a reload does not bring it back
    _open_panel(browser)
    assert "住民票の写しがほしい" not in _log_text(browser)
    browser.save_screenshot(str(ARTIFACTS / "widget-history-cleared.png"))


def test_a_history_older_than_a_day_is_not_restored(browser, web_url):
    browser.get(web_url + "/")

    def restored_after(hours: float) -> str:
        browser.execute_script(
            "localStorage.setItem(arguments[0], JSON.stringify({sender: 'old-sender-1234', staffAfter: 0,"
            " log: [{who: 'user', text: '古い質問です'}], open: true, wardSent: true,"
            " savedAt: Date.now() - arguments[1] * 3600 * 1000}))",
            KEY,
            hours,
        )
        browser.get(web_url + "/")
        _open_panel(browser)
        return _log_text(browser)

    assert "古い質問です" in restored_after(23)  # within a day: the history is there
    assert "古い質問です" not in restored_after(25)  # older: gone, and its sender id with it
    assert _stored(browser)["sender"] != "old-sender-1234"
    assert "古い質問です" not in str(_stored(browser))


def test_delete_conversation_button_erases_it_on_the_server(browser, web_url, stack_settings):
    from sqlalchemy import create_engine, text

    def events_of(sender: str) -> int:
        engine = create_engine(stack_settings.tracker_database_url)
        try:
            with engine.connect() as conn:
                query = text("SELECT count(*) FROM events WHERE sender_id = :s")
                return conn.execute(query, {"s": sender}).scalar_one()
        finally:
            engine.dispose()

    _fresh_widget(browser, web_url)
    _ask(browser, "住民票の写しがほしい")
    sender = "web-" + _stored(browser)["sender"]
    assert events_of(sender) > 0
    button = browser.find_element(By.CSS_SELECTOR, ".kc-erase")
    assert button.is_displayed() and button.text == "会話を削除"
    button.click()
    WebDriverWait(browser, 30).until(lambda d: "この会話の記録を削除しました" in _log_text(d))
    assert "住民票の写しがほしい" not in _log_text(browser)
    assert events_of(sender) == 0
    assert "web-" + _stored(browser)["sender"] != sender
    browser.save_screenshot(str(ARTIFACTS / "widget-conversation-erased.png"))


def test_no_under_an_answer_leads_to_other_topics_and_a_person(browser, web_url, stack_settings):
    from sqlalchemy import select

    from bot.analytics import conversation_key
    from bot.internal_auth import analytics_key
    from bot.storage.db import session_scope
    from bot.storage.models import AnswerEvent

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _fresh_widget(browser, web_url)
    wait = WebDriverWait(browser, 30)
    _ask(browser, "国保に入りたい")
    earlier = _bot_messages(browser)[-1].find_elements(By.CSS_SELECTOR, "button.kc-rate")
    assert len(earlier) == 2 and all(b.is_enabled() for b in earlier)
    _ask(browser, "住民票の写しがほしい")
    assert not any(b.is_enabled() for b in earlier)  # a rating is for the latest answer only
    answer = _bot_messages(browser)[-1]
    group = answer.find_element(By.CSS_SELECTOR, ".kc-feedback")
    assert group.get_attribute("role") == "group" and "解決しましたか？" in group.text
    yes, no = group.find_elements(By.CSS_SELECTOR, "button.kc-rate")
    assert (yes.text, no.text) == ("はい", "いいえ")
    assert no.get_attribute("aria-label") == "解決しましたか？ いいえ"
    browser.save_screenshot(str(ARTIFACTS / "widget-feedback-question.png"))
    before = len(_bot_messages(browser))
    no.send_keys(Keys.ENTER)  # the keyboard reaches it like any button
    wait.until(lambda d: len(_bot_messages(d)) > before)
    reply = _bot_messages(browser)[-1].text
    assert "お役に立てず申し訳ありません" in reply
    assert yes.get_attribute("disabled") and no.get_attribute("disabled")  # one click only
    assert no.get_attribute("aria-pressed") == "true" and yes.get_attribute("aria-pressed") == "false"
    chips = [c.text for c in browser.find_elements(By.CSS_SELECTOR, ".kc-quick .kc-chip")]
    assert chips[-2:] == ["言い換えて質問する", "担当者と話したい"]
    assert len(chips) >= 3 and "住民票の写しの交付" not in chips  # other topics, not the one that failed
    assert all(f"・{c}" in reply for c in chips[:-2] if len(c) < 20)  # the choices are named in the text
    browser.save_screenshot(str(ARTIFACTS / "widget-feedback-no.png"))
    sender = "web-" + _stored(browser)["sender"]
    key = conversation_key(sender, analytics_key(stack_settings))
    with session_scope(stack_settings.database_url) as session:
        mine = select(AnswerEvent).where(AnswerEvent.conversation == key).order_by(AnswerEvent.id)
        rated = session.scalars(mine).all()
    assert [e.helpful for e in rated] == [None, False] and rated[1].channel == "widget"
    assert "住民票" in rated[1].topic
    browser.refresh()  # the rating is remembered with the history: no second click
    _open_panel(browser)
    stored = browser.find_elements(By.CSS_SELECTOR, ".kc-rate")
    assert stored and all(b.get_attribute("disabled") for b in stored)
