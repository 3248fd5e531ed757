"""The staff console in a real browser, plus the security checks a browser cannot see."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter

import pytest
import requests
from console_support import FormsAndIds
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from bot.console.accounts import add_user
from bot.rasa_client import RasaClient
from bot.settings import ROOT

ARTIFACTS = ROOT / "var" / "test-artifacts"
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def users(stack):
    suffix = uuid.uuid4().hex[:6]
    names = {"ward": f"nakahara-{suffix}", "editor": f"editor-{suffix}", "admin": f"admin-{suffix}"}
    db = stack.settings.database_url
    add_user(db, names["ward"], "ward_staff", PASSWORD, ["中原区"])
    add_user(db, names["editor"], "editor", PASSWORD)
    add_user(db, names["admin"], "admin", PASSWORD)
    return names


@pytest.fixture(autouse=True, scope="module")
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


def _say(stack, sender: str, text: str) -> list[dict]:
    return RasaClient(stack.rasa_url, token=stack.rasa_token).send(sender, text)


def _login(browser, web_url: str, name: str) -> None:
    browser.get(web_url + "/staff/logout")  # GET is not allowed: leaves any session as it is
    browser.delete_all_cookies()
    browser.get(web_url + "/staff/login")
    browser.find_element(By.NAME, "name").send_keys(name)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
    WebDriverWait(browser, 20).until(ec.url_contains("/staff/tickets"))


def _submit(browser, button_xpath: str) -> None:
    """Click a form's button and wait until the next page has replaced this one (otherwise a look-up
    right after the click can find an element of the old page, stale a moment later)."""
    button = browser.find_element(By.XPATH, button_xpath)
    button.click()
    WebDriverWait(browser, 60).until(ec.staleness_of(button))


def _requests_login(web_url: str, name: str) -> requests.Session:
    session = requests.Session()
    page = session.get(web_url + "/staff/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    resp = session.post(
        web_url + "/staff/login",
        data={"csrf_token": token, "name": name, "password": PASSWORD},
        allow_redirects=False,
    )
    assert resp.status_code == 302
    return session


def _ticket_of(stack, sender: str, ward: str, text: str) -> None:
    _say(stack, sender, f"{ward}に住んでいます")
    assert "受付番号" in "".join(m.get("text", "") for m in _say(stack, sender, text))


def test_ward_staff_claims_and_answers_a_ticket_in_the_browser(browser, web_url, stack, users):
    resident = f"console-{uuid.uuid4().hex[:6]}"
    attack = "<script>window.__owned=1</script>職員と話したい"
    _ticket_of(stack, resident, "中原区", attack)
    browser.get(web_url + "/staff/tickets")
    assert "/staff/login" in browser.current_url  # not logged in: sent to the login page
    _login(browser, web_url, users["ward"])
    link = WebDriverWait(browser, 20).until(ec.presence_of_element_located((By.PARTIAL_LINK_TEXT, "#")))
    rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert all("幸区" not in r.text for r in rows)
    ticket_links = [a.get_attribute("href") for a in browser.find_elements(By.PARTIAL_LINK_TEXT, "#")]
    browser.get(ticket_links[-1])  # the newest is last (oldest first)
    transcript = browser.find_element(By.TAG_NAME, "main").text
    assert "<script>window.__owned=1</script>職員と話したい" in transcript
    assert browser.execute_script("return window.__owned === undefined")
    _submit(browser, "//button[text()='担当する']")
    box = WebDriverWait(browser, 20).until(ec.presence_of_element_located((By.ID, "reply-text")))
    box.send_keys("中原区役所の担当です。ご用件を伺います。")
    _submit(browser, "//button[text()='住民に送信']")
    WebDriverWait(browser, 20).until(lambda d: "（回答済み）" in d.page_source)
    assert "住民に送信しました。" in browser.page_source  # the action is confirmed
    browser.save_screenshot(str(ARTIFACTS / "staff-ticket.png"))
    staff = RasaClient(stack.rasa_url, token=stack.rasa_token).staff_messages(resident)
    assert [m["text"] for m in staff] == ["中原区役所の担当です。ご用件を伺います。"]
    del link


def test_an_internal_note_is_saved_shown_audited_and_never_sent(browser, web_url, stack, users):
    resident = f"console-{uuid.uuid4().hex[:6]}"
    _ticket_of(stack, resident, "中原区", "職員と話したい")
    from bot.escalation import Escalations

    ticket_id = Escalations.from_settings(stack.settings).open_ticket_of(resident)["id"]
    _login(browser, web_url, users["ward"])
    browser.get(f"{web_url}/staff/tickets/{ticket_id}")
    # the label puts the cursor in the note box, not in the reply-to-resident box
    browser.find_element(By.XPATH, "//label[starts-with(normalize-space(), '内部メモ')]").click()
    box = browser.switch_to.active_element
    assert box.get_attribute("id") == "note-text"
    box.send_keys("折り返しは明日の午前。電話090-1234-5678")
    _submit(browser, "//button[text()='メモを残す']")
    WebDriverWait(browser, 20).until(lambda d: "内部メモを残しました" in d.page_source)
    notes = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".msg.note")]
    assert len(notes) == 1 and notes[0].startswith("メモ ")
    assert notes[0].endswith("折り返しは明日の午前。電話[電話番号]")
    assert re.search(r"\d{1,2}月\d{1,2}日 \d{2}:\d{2}", notes[0])  # when, in Japan time
    browser.save_screenshot(str(ARTIFACTS / "staff-ticket-note.png"))
    for page in ("tickets", "issues"):
        browser.get(f"{web_url}/staff/{page}")
        browser.save_screenshot(str(ARTIFACTS / f"staff-{page}.png"))
        browser.set_window_size(1280, 800)
        browser.save_screenshot(str(ARTIFACTS / f"staff-{page}-desktop.png"))
        browser.set_window_size(360, 740)
        assert not RAW_TIME.search(browser.find_element(By.TAG_NAME, "main").text)
    rasa = RasaClient(stack.rasa_url, token=stack.rasa_token)
    assert rasa.staff_messages(resident) == []  # a note never reaches the resident
    from bot.console.accounts import audit_log

    assert any(
        r["user"] == users["ward"] and r["action"] == "ticket-note" and r["target"] == f"ticket:{ticket_id}"
        for r in audit_log(stack.settings.database_url)
    )


RAW_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def test_console_pages_have_unique_ids_and_a_label_for_every_field(web_url, stack, users):
    resident = f"console-{uuid.uuid4().hex[:6]}"
    _ticket_of(stack, resident, "中原区", "職員と話したい")
    from bot.escalation import Escalations

    open_ticket = Escalations.from_settings(stack.settings).open_ticket_of(resident)["id"]  # with its forms
    unknown = "中原区に住んでいます。マンホールのふたの模様について知りたい"  # makes a regional issue
    _say(stack, f"console-{uuid.uuid4().hex[:6]}", unknown)
    session = _requests_login(web_url, users["admin"])
    pages = ["/staff/login", "/staff/tickets", f"/staff/tickets/{open_ticket}"]
    pages += [
        "/staff/issues",
        "/staff/knowledge",
        "/staff/audit",
        "/staff/analytics",
        "/staff/review",
        "/staff/knowledge/history",
    ]
    for listing, link in (
        ("/staff/issues", r"/staff/issues/\d+"),
        ("/staff/knowledge", r"/staff/knowledge/\w+/[\w-]+"),
    ):
        pages.append(re.search(link, session.get(web_url + listing).text).group(0))
    for page in pages:
        resp = session.get(web_url + page)
        assert resp.status_code == 200, page
        parsed = FormsAndIds()
        parsed.feed(resp.text)
        twice = [i for i, n in Counter(parsed.ids).items() if n > 1]
        assert not twice, f"{page}: ids used more than once: {twice}"
        assert not RAW_TIME.search(resp.text), f"{page}: a raw ISO time: {RAW_TIME.search(resp.text)}"
        labelled = parsed.label_for
        unlabelled = [(tag, i) for tag, i, inside in parsed.fields if not inside and i not in labelled]
        assert not unlabelled, f"{page}: fields without a label: {unlabelled}"
        if page == f"/staff/tickets/{open_ticket}":
            assert {"reply-text", "note-text", "close-resolution"} <= labelled
        csp = resp.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp, page
        assert resp.headers.get("X-Content-Type-Options") == "nosniff", page


def test_security_checks_the_browser_cannot_see(web_url, stack, users):
    other = f"console-{uuid.uuid4().hex[:6]}"
    _ticket_of(stack, other, "幸区", "職員と話したい")
    session = _requests_login(web_url, users["ward"])
    from bot.escalation import Escalations

    saiwai = Escalations.from_settings(stack.settings).open_ticket_of(other)["id"]
    assert session.get(f"{web_url}/staff/tickets/{saiwai}").status_code == 404  # another ward's ticket
    assert session.post(f"{web_url}/staff/tickets/{saiwai}/claim").status_code == 400  # no CSRF token
    assert session.get(f"{web_url}/staff/knowledge").status_code == 403  # not an editor
    anonymous = requests.get(f"{web_url}/staff/issues", allow_redirects=False)
    assert anonymous.status_code == 302 and "/staff/login" in anonymous.headers["Location"]
    cookie = session.get(f"{web_url}/staff/tickets").request.headers.get("Cookie", "")
    assert "session=" in cookie
    login_page = requests.get(f"{web_url}/staff/login")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page.text).group(1)
    guessed = f"guessed-{uuid.uuid4().hex[:6]}"  # an account someone tries to break into
    statuses = [
        requests.post(
            f"{web_url}/staff/login",
            cookies=login_page.cookies,
            data={"csrf_token": token, "name": guessed, "password": "wrong"},
        ).status_code
        for _ in range(6)
    ]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429  # throttled after five failures


def test_session_cookie_flags(web_url, users):
    page = requests.get(f"{web_url}/staff/login")
    set_cookie = page.headers.get("Set-Cookie", "")
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie


def _wide_screenshot(browser, name: str) -> None:
    """A desktop-sized screenshot, tall enough for a diff, then back to the phone size."""
    browser.set_window_size(1280, 1400)
    browser.save_screenshot(str(ARTIFACTS / name))
    browser.set_window_size(360, 740)


def _bot_says(stack, question: str, wanted, seconds: float = 300) -> str:
    """Ask until the answer satisfies `wanted`: the worker rebuilds, the action server swaps in
    (two builds in a row, the publish's and the rollback's, on a busy machine: minutes)."""
    deadline, answer = time.monotonic() + seconds, ""
    while time.monotonic() < deadline:
        answer = "".join(m.get("text", "") for m in _say(stack, f"ed-{uuid.uuid4().hex[:6]}", question))
        if wanted(answer):
            break
        time.sleep(1)
    return answer


def test_an_editors_draft_is_approved_by_another_published_answered_and_rolled_back(
    browser, web_url, stack, users
):
    question, sentence = "区民会議とは何ですか", "区民会議の傍聴は申し込みなしでできます（編集テスト）。"
    before = _bot_says(stack, question, lambda a: "区民会議" in a)
    assert "区民会議" in before and sentence not in before
    live = stack.settings.knowledge_dir / "faq.yml"
    original = live.read_bytes()
    # editor A writes a draft: preview, a wrong source refused in an editor's words, then fixed
    _login(browser, web_url, users["editor"])
    browser.get(web_url + "/staff/knowledge/faq/kumin-kaigi")
    browser.find_element(By.NAME, "answer").send_keys(sentence)
    _submit(browser, "//button[@value='preview']")
    preview = WebDriverWait(browser, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, "main .msg")))
    assert sentence in preview.text
    source = browser.find_element(By.NAME, "source")
    source.clear()
    source.send_keys("no-such-source")
    _submit(browser, "//button[@value='save']")
    draft_url = browser.current_url
    assert re.search(r"/staff/drafts/\d+$", draft_url) and live.read_bytes() == original  # a draft only
    _submit(browser, "//button[text()='審査に出す']")
    alert = WebDriverWait(browser, 20).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "[role=alert]"))
    )
    assert "「出典」の「no-such-source」は登録されていません" in alert.text and "faq.yml:" in alert.text
    source = browser.find_element(By.NAME, "source")
    source.clear()
    source.send_keys("seed / 第2章 2(4)ウ 区民会議の設置・運営")
    _submit(browser, "//button[@value='save']")
    _submit(browser, "//button[text()='審査に出す']")
    WebDriverWait(browser, 60).until(lambda d: "審査に出しました" in d.page_source)
    assert not browser.find_elements(By.XPATH, "//button[text()='承認して公開']")  # not for the author
    _wide_screenshot(browser, "editor-draft.png")
    # admin B finds it in the review queue and approves it
    _login(browser, web_url, users["admin"])
    browser.get(web_url + "/staff/review")
    path = draft_url.removeprefix(web_url)
    browser.find_element(By.CSS_SELECTOR, f"a[href='{path}']").click()
    WebDriverWait(browser, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".diff .add")))
    assert sentence in browser.find_element(By.CSS_SELECTOR, ".diff .add").text
    _wide_screenshot(browser, "editor-review.png")
    _submit(browser, "//button[text()='承認して公開']")
    WebDriverWait(browser, 60).until(lambda d: "承認して公開しました" in d.page_source)
    assert sentence in live.read_text(encoding="utf-8")
    after = _bot_says(stack, question, lambda a: sentence in a)
    assert sentence in after
    # the history shows the diff; one click rolls it back, and the bot answers as before
    browser.get(web_url + "/staff/knowledge/faq/kumin-kaigi/history")
    browser.find_element(By.XPATH, "//tbody/tr[1]/td[1]/a").click()
    added = WebDriverWait(browser, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".diff .add")))
    assert sentence in added.text and browser.find_elements(By.CSS_SELECTOR, ".diff .del")
    assert users["editor"] in browser.page_source and users["admin"] in browser.page_source
    _wide_screenshot(browser, "editor-history.png")
    _submit(browser, "//button[text()='この変更を元に戻す']")
    WebDriverWait(browser, 60).until(lambda d: "元に戻しました" in d.page_source)
    assert live.read_bytes() == original
    again = _bot_says(stack, question, lambda a: sentence not in a)
    assert sentence not in again and again == before
    from bot.console.accounts import audit_log

    actions = {(r["user"], r["action"]) for r in audit_log(stack.settings.database_url)}
    assert {(users["editor"], "draft-submit"), (users["admin"], "knowledge-publish")} <= actions
    assert (users["admin"], "knowledge-rollback") in actions and (users["ward"], "ticket-reply") in actions


def _logout(session: requests.Session, web_url: str) -> None:
    page = session.get(f"{web_url}/staff/tickets").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = session.post(f"{web_url}/staff/logout", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status_code == 302


def test_after_logout_the_old_cookie_lands_on_the_login_page(web_url, users):
    session = _requests_login(web_url, users["editor"])
    copied = session.cookies.get_dict()
    assert session.get(f"{web_url}/staff/tickets", allow_redirects=False).status_code == 200
    _logout(session, web_url)
    replay = requests.get(f"{web_url}/staff/tickets", cookies=copied, allow_redirects=False)
    assert replay.status_code == 302 and "/staff/login" in replay.headers["Location"]
    assert "Content-Security-Policy" in replay.headers


def test_a_disabled_users_live_session_is_refused_at_once(web_url, stack):
    from bot.console.accounts import set_disabled

    name = f"leaver-{uuid.uuid4().hex[:6]}"
    add_user(stack.settings.database_url, name, "editor", PASSWORD)
    session = _requests_login(web_url, name)
    assert session.get(f"{web_url}/staff/knowledge", allow_redirects=False).status_code == 200
    set_disabled(stack.settings.database_url, name, True)
    resp = session.get(f"{web_url}/staff/knowledge", allow_redirects=False)
    assert resp.status_code == 302 and "/staff/login" in resp.headers["Location"]


def test_an_idle_session_times_out(stack_settings, users):
    """The stack's database (PostgreSQL) and the real app, with its clock moved forward."""
    from datetime import UTC, datetime, timedelta

    from web import create_app

    app = create_app(stack_settings)
    now = [datetime.now(UTC)]
    app.extensions["clock"] = lambda: now[0]
    client = app.test_client()
    page = client.get("/staff/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    data = {"csrf_token": token, "name": users["ward"], "password": PASSWORD}
    assert client.post("/staff/login", data=data).status_code == 302
    now[0] += timedelta(minutes=29)
    assert client.get("/staff/tickets").status_code == 200
    now[0] += timedelta(minutes=31)
    resp = client.get("/staff/tickets")
    assert resp.status_code == 302 and "/staff/login" in resp.headers["Location"]


def test_the_console_is_styled_under_its_csp_in_the_browser(browser, web_url, users):
    """The stylesheet loads under style-src 'self', and the browser reports no CSP violation."""
    browser.get_log("browser")  # drop what earlier tests left
    _login(browser, web_url, users["admin"])
    for page in ("tickets", "issues", "knowledge", "audit", "review", "knowledge/history"):
        browser.get(f"{web_url}/staff/{page}")
        header = browser.find_element(By.TAG_NAME, "header")
        assert header.value_of_css_property("background-color") == "rgba(0, 82, 138, 1)", page
    logged = browser.get_log("browser")
    violations = [e["message"] for e in logged if "Content Security Policy" in e["message"]]
    assert not violations, violations
