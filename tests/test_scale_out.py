"""The multi-process deployment (docs/deploy.md): two Rasa servers and two action servers behind
nginx, Rasa's tracker store on PostgreSQL and its lock store on Redis, the web app under gunicorn.

One conversation may land on either Rasa server and its state carries over; one Rasa server can
die under load and residents keep getting answers through nginx.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bot.rasa_client import RasaClient
from bot.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/5"
TOKEN = {"token": secrets.token_urlsafe(16)}  # the cluster's Rasa token (?token= on each request)


@pytest.fixture(scope="module")
def cluster(stack, pg_databases, tmp_path_factory):

    import redis

    from bot.supervisor.cluster import Cluster

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        pytest.fail("Redis is not reachable at 127.0.0.1:6379 (.ci/run starts it)")
    with pg_databases("concierge_cluster") as db:
        concierge_db = db.replace("postgresql://", "postgresql+psycopg://")
        settings = Settings(
            db_url=concierge_db, tracker_db_url=db, lock_store_url=REDIS_URL, rasa_token=TOKEN["token"]
        )
        group = Cluster(settings, tmp_path_factory.mktemp("cluster-logs"))
        try:
            group.start()
            group.wait_ready()
            yield group
        finally:
            group.stop()


def _say(url: str, sender: str, text: str) -> list[dict]:
    body = {"sender": sender, "message": text}
    resp = requests.post(f"{url}/webhooks/rest/webhook", params=TOKEN, json=body, timeout=60)
    resp.raise_for_status()
    return resp.json()


def _text(messages: list[dict]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def test_one_conversation_alternates_between_two_rasa_servers(cluster):
    a, b = cluster.rasa_urls
    sender = f"alt-{uuid.uuid4().hex[:8]}"
    _say(a, sender, "宮前区に住んでいます")
    answer = _text(_say(b, sender, "保育園の申し込みはどこですか"))  # the ward was given to the other server
    assert "宮前区" in answer
    answer = _text(_say(a, sender, "児童手当の手続きは？"))
    assert "宮前区" in answer
    tracker = RasaClient(b, token=TOKEN["token"]).tracker(sender)
    assert tracker["slots"]["ward"] == "宮前区"
    said = [e["text"] for e in tracker["events"] if e["event"] == "user"]
    assert said == ["宮前区に住んでいます", "保育園の申し込みはどこですか", "児童手当の手続きは？"]


def test_concurrent_messages_of_one_resident_on_both_servers_are_all_kept(cluster):
    """Redis's conversation lock makes the two servers take turns: no turn is lost."""
    sender = f"both-{uuid.uuid4().hex[:8]}"
    questions = [
        "住民票の写しがほしい",
        "印鑑登録をしたい",
        "転入届はどこ",
        "児童手当の申請",
        "国民健康保険に入りたい",
        "戸籍謄本がほしい",
    ]
    urls = [cluster.rasa_urls[i % 2] for i in range(len(questions))]
    with ThreadPoolExecutor(len(questions)) as pool:
        replies = list(pool.map(lambda uq: _say(uq[0], sender, uq[1]), zip(urls, questions, strict=True)))
    assert all(replies)
    events = RasaClient(cluster.rasa_urls[0], token=TOKEN["token"]).tracker(sender)["events"]
    said = [e["text"] for e in events if e["event"] == "user"]
    assert sorted(said) == sorted(questions)
    # every turn is complete: each user message is followed by the bot's answer before the next one
    kinds = [e["event"] for e in events if e["event"] in ("user", "bot")]
    assert kinds.count("bot") >= len(questions)
    assert "user" not in [kinds[i + 1] for i, k in enumerate(kinds[:-1]) if k == "user"]


def test_web_app_behind_nginx_answers_through_the_cluster(cluster):
    resp = requests.post(
        f"{cluster.public_url}/api/message",
        json={"sender": f"web{uuid.uuid4().hex[:10]}", "message": "住民票はどこで取れる？"},
        timeout=60,
    )
    assert resp.status_code == 200 and "区民課" in _text(resp.json()["messages"])


def test_a_resident_who_hangs_up_mid_reply_still_gets_the_hand_off(cluster):
    """The widget closed while the bot was still answering: the work runs to the end behind nginx
    (the ticket is written and the turn is complete), only the reply is dropped."""
    from bot.escalation import Escalations

    sender = f"hangup-{uuid.uuid4().hex[:8]}"
    _say(cluster.rasa_url, sender, "中原区に住んでいます")
    with pytest.raises(requests.Timeout):  # hang up 50 ms after sending
        requests.post(
            f"{cluster.rasa_url}/webhooks/rest/webhook",
            params=TOKEN,
            json={"sender": sender, "message": "職員と話したい"},
            timeout=(2, 0.05),
        )

    def turn_done() -> bool:  # the hand-off's reply is stored after the message (then a pause)
        events = RasaClient(cluster.rasa_urls[0], token=TOKEN["token"]).tracker(sender)["events"]
        said = [i for i, e in enumerate(events) if e["event"] == "user" and e.get("text") == "職員と話したい"]
        return bool(said) and any(e["event"] == "bot" for e in events[said[-1] :])

    deadline = time.monotonic() + 30
    while not turn_done() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert turn_done(), "the turn was cut short when the resident hung up"
    ticket = Escalations.from_settings(cluster.settings).open_ticket_of(sender)
    assert ticket is not None and ticket["ward"] == "中原区"


def test_killing_one_rasa_server_under_load_loses_no_answer(cluster):
    """Kill -9 one Rasa server while four residents keep writing through nginx."""
    results: list[tuple[float, bool, str]] = []
    stop = threading.Event()
    killed_at: list[float] = []

    def resident(n: int) -> None:
        sender = f"load-{n}-{uuid.uuid4().hex[:6]}"
        questions = [
            "住民票はどこで取れる？",
            "保育園の申し込みは？",
            "印鑑登録をしたい",
            "国民健康保険の加入",
        ]
        i = 0
        while not stop.is_set():
            try:
                text = _text(_say(cluster.rasa_url, sender, questions[i % len(questions)]))
                ok = bool(text) and "Please try again shortly" not in text
                results.append((time.monotonic(), ok, text[:80]))
            except requests.RequestException as err:
                results.append((time.monotonic(), False, repr(err)[:200]))
            i += 1

    threads = [threading.Thread(target=resident, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(4)
    cluster.kill("rasa-1")
    killed_at.append(time.monotonic())
    time.sleep(10)
    stop.set()
    for t in threads:
        t.join(timeout=90)
    after = [r for r in results if r[0] > killed_at[0]]
    failures = [r for r in results if not r[1]]
    assert len(results) > 20 and len(after) > 10, (
        f"too few answers: {len(results)} in all, {len(after)} after"
    )
    assert failures == [], f"{len(failures)} of {len(results)} failed, e.g. {failures[:3]}"


def test_failed_staff_logins_are_counted_across_web_processes():
    """Two gunicorn workers (or nodes) share the failed-login counts through Redis: five failures
    spread over both block the account on each; a success on one clears it for both."""
    from bot.rate_limit import LoginThrottle

    store = "redis://127.0.0.1:6379/5"
    first, second = (LoginThrottle("5/5minutes", "20/5minutes", store) for _ in range(2))
    account, address = f"guessed-{uuid.uuid4().hex[:6]}", f"10.0.{uuid.uuid4().int % 250}.1"
    for i in range(5):
        assert not first.blocked(account, address) and not second.blocked(account, address)
        (first if i % 2 else second).failed(account, address)
    assert first.blocked(account, address) and second.blocked(account, address)
    assert not first.blocked("another-account", f"{address}0")  # only that account and address
    second.succeeded(account)
    assert not first.blocked(account, f"{address}0")
