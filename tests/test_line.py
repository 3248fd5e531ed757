"""LINE webhook: signatures exactly as LINE signs them, replies and pushes captured by a local
server standing in for the LINE API, against the live Rasa server."""

from __future__ import annotations

import base64
import logging
import time
import uuid

import pytest
from line_support import (
    SECRET,
    FailingLineApi,
    FakeLineApi,
    SlowLineApi,
    event,
    line_app,
    signed,
    start_line_api,
    text_event,
)

from bot.escalation import ChannelDelivery, DeliveryError, Escalations, RasaDelivery
from bot.line_messaging import LineClient, LineConfig
from bot.rasa_client import RasaClient
from bot.supervisor.processes import free_port


@pytest.fixture()
def line_api():
    server, url = start_line_api()
    yield url
    server.shutdown()


@pytest.fixture()
def client(stack_settings, line_api):
    return line_app(stack_settings, line_api).test_client()


def test_text_message_gets_text_quick_replies_and_flex_card(client):
    user = f"U{uuid.uuid4().hex}"
    body, headers = signed([text_event(user, "住民票の写しがほしい")])
    assert client.post("/line/callback", data=body, headers=headers).status_code == 200
    ((path, payload),) = FakeLineApi.calls
    assert path == "/v2/bot/message/reply"
    kinds = [m["type"] for m in payload["messages"]]
    assert kinds[0] == "text" and "flex" in kinds and len(kinds) <= 5
    assert "区民課" in payload["messages"][0]["text"]
    quick = payload["messages"][-1]["quickReply"]["items"]
    assert {i["action"]["label"] for i in quick} >= {"中原区", "麻生区"}
    flex = next(m for m in payload["messages"] if m["type"] == "flex")
    assert flex["contents"]["type"] == "bubble"


def test_forged_or_missing_signature_is_rejected_and_nothing_stored(client, stack):
    user = f"U{uuid.uuid4().hex}"
    body, headers = signed([text_event(user, "住民票の写しがほしい")])
    forged = {**headers, "X-Line-Signature": base64.b64encode(b"x" * 32).decode()}
    assert client.post("/line/callback", data=body, headers=forged).status_code == 400
    assert (
        client.post("/line/callback", data=body, headers={"Content-Type": "application/json"}).status_code
        == 400
    )
    assert FakeLineApi.calls == []
    events = RasaClient(stack.rasa_url, token=stack.rasa_token).tracker(user)["events"]
    assert not [e for e in events if e["event"] == "user"]


def test_follow_sticker_and_unfollow(client, stack):
    user = f"U{uuid.uuid4().hex}"
    body, headers = signed([event("follow", user, follow={"isUnblocked": False})])
    client.post("/line/callback", data=body, headers=headers)
    events = RasaClient(stack.rasa_url, token=stack.rasa_token).tracker(user)["events"]
    assert any(e["event"] == "user" for e in events)
    assert "コンシェルジュ" in FakeLineApi.calls[-1][1]["messages"][0]["text"]
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
    body, headers = signed([sticker])
    client.post("/line/callback", data=body, headers=headers)
    assert "文字でご質問ください" in FakeLineApi.calls[-1][1]["messages"][0]["text"]
    unfollow = event("unfollow", user)
    unfollow.pop("replyToken")
    body, headers = signed([unfollow])
    assert client.post("/line/callback", data=body, headers=headers).status_code == 200
    rasa = RasaClient(stack.rasa_url, token=stack.rasa_token)
    assert any(e["event"] == "user" for e in rasa.tracker(user)["events"]) is False  # state dropped


def test_staff_reply_to_a_line_ticket_is_pushed(client, line_api, stack_settings):
    user = f"U{uuid.uuid4().hex}"
    for text in ("高津区に住んでいます", "職員と話したい"):
        body, headers = signed([text_event(user, text)])
        client.post("/line/callback", data=body, headers=headers)
    assert "受付番号" in FakeLineApi.calls[-1][1]["messages"][0]["text"]
    rasa = RasaDelivery.from_settings(stack_settings)
    line = LineClient(LineConfig(SECRET, "test-token", line_api))
    escalations = Escalations.from_settings(stack_settings, ChannelDelivery(rasa, line))
    ticket = escalations.open_ticket_of(user)
    assert ticket and ticket["channel"] == "line"
    escalations.reply(ticket["id"], "高津区役所の担当です。ご用件を伺います。")
    path, payload = FakeLineApi.calls[-1]
    assert path == "/v2/bot/message/push" and payload["to"] == user
    assert payload["messages"][0]["text"] == "高津区役所の担当です。ご用件を伺います。"


@pytest.mark.parametrize("trouble", ["unreachable", "answers-500", "too-slow"])
def test_a_signed_event_gets_200_whatever_the_line_api_does(stack, stack_settings, caplog, trouble):
    """An error status would make LINE deliver the event again (and file a hand-off twice)."""
    server = None
    if trouble == "unreachable":
        url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    else:
        server, url = start_line_api(FailingLineApi if trouble == "answers-500" else SlowLineApi)
    client = line_app(stack_settings, url, timeout_s=1).test_client()
    user = f"U{uuid.uuid4().hex}"
    body, headers = signed([text_event(user, "住民票の写しがほしい。連絡先は090-1234-5678")])
    try:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            resp = client.post("/line/callback", data=body, headers=headers)
        assert resp.status_code == 200 and time.monotonic() - started < SlowLineApi.SLOW_SECONDS
    finally:
        if server:
            server.shutdown()
    assert "LINE reply not delivered" in caplog.text
    assert "住民票" not in caplog.text and "5678" not in caplog.text  # the resident's text is not logged
    events = RasaClient(stack.rasa_url, token=stack.rasa_token).tracker(user)["events"]
    assert [e for e in events if e["event"] == "user"]  # the turn reached the bot all the same


def test_staff_reply_to_a_line_ticket_while_line_is_down_can_be_sent_again(client, line_api, stack_settings):
    user = f"U{uuid.uuid4().hex}"
    for text in ("麻生区に住んでいます", "職員と話したい"):
        body, headers = signed([text_event(user, text)])
        client.post("/line/callback", data=body, headers=headers)
    settings = stack_settings

    def escalations(line_url: str) -> Escalations:
        line = LineClient(LineConfig(SECRET, "test-token", line_url, timeout=1))
        delivery = ChannelDelivery(RasaDelivery.from_settings(settings), line)
        return Escalations.from_settings(settings, delivery)

    ticket = escalations(line_api).open_ticket_of(user)
    with pytest.raises(DeliveryError, match="LINEに送信できませんでした"):
        escalations(f"http://127.0.0.1:{free_port()}").reply(ticket["id"], "麻生区役所の担当です。")
    assert escalations(line_api).get(ticket["id"])["status"] == "new"  # not marked answered: send again
    escalations(line_api).reply(ticket["id"], "麻生区役所の担当です。")
    assert FakeLineApi.calls[-1][1]["messages"][0]["text"] == "麻生区役所の担当です。"
