"""The Rasa components run in the Rasa environment; these tests drive it as a subprocess."""

import json
import subprocess
import textwrap

from bot.settings import ROOT

RASA_PY = str(ROOT / ".venv-rasa" / "bin" / "python")


def _run_in_rasa_env(code: str, timeout: int = 300) -> str:
    done = subprocess.run(
        [RASA_PY, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_tokenizer_gives_offsets_lemmas_and_readings_for_variant_spellings():
    out = _run_in_rasa_env("""
        import json
        from rasa.shared.nlu.training_data.message import Message
        from bot.rasa_server.nlu.sudachi_tokenizer import SudachiTokenizer
        tok = SudachiTokenizer({**SudachiTokenizer.get_default_config()})
        result = {}
        for text in ["住民票の写しがほしい", "ｼﾞｭｳﾐﾝﾋｮｳ", "じゅうみんひょう", "国保 加入"]:
            tokens = tok.tokenize(Message(data={"text": text}), "text")
            result[text] = [[t.text, t.lemma, t.get("reading"), t.start, t.end] for t in tokens]
        print(json.dumps(result, ensure_ascii=False))
    """)
    result = json.loads(out)
    assert result["住民票の写しがほしい"][0] == ["住民票", "住民票", "ジュウミンヒョウ", 0, 3]
    assert result["住民票の写しがほしい"][-1][1] == "欲しい"  # normalized form
    assert result["ｼﾞｭｳﾐﾝﾋｮｳ"] == [["ジュウミンヒョウ", "ジュウミンヒョウ", "ジュウミンヒョウ", 0, 9]]
    kana = "".join(t[2] for t in result["じゅうみんひょう"])
    assert kana == "ジュウミンヒョウ"  # readings meet even though the lemmas do not
    assert [t[0] for t in result["国保 加入"]] == ["国保", "加入"]


def test_a_small_model_trains_with_the_japanese_pipeline(tmp_path):
    (tmp_path / "nlu.yml").write_text(
        textwrap.dedent("""
        version: "3.1"
        nlu:
        - intent: ask_juminhyo
          examples: |
            - 住民票がほしい
            - 住民票はどこで取れる
            - 住民票の写し
            - じゅうみんひょう
        - intent: ask_kokuho
          examples: |
            - 国保に入りたい
            - 国民健康保険の加入
            - 国保 加入
            - こくほ
    """),
        encoding="utf-8",
    )
    config = (ROOT / "config.yml").read_text(encoding="utf-8").replace("epochs: 80", "epochs: 20")
    config = config.split("policies:")[0]
    (tmp_path / "config.yml").write_text(config, encoding="utf-8")
    out = _run_in_rasa_env(
        f"""
        import asyncio, json
        from rasa.model_training import train_nlu
        from rasa.core.agent import Agent
        path = train_nlu("{tmp_path}/config.yml", "{tmp_path}/nlu.yml", "{tmp_path}/models")
        agent = Agent.load(path)
        parsed = [asyncio.run(agent.parse_message(t)) for t in ["ｼﾞｭｳﾐﾝﾋｮｳ", "国保の手続き"]]
        print(json.dumps([p["intent"]["name"] for p in parsed]))
    """,
        timeout=600,
    )
    assert json.loads(out) == ["ask_juminhyo", "ask_kokuho"]


def test_redis_lock_store_lets_one_server_at_a_time_hold_a_conversation():
    """Twenty messages of one conversation arriving at once on two 'servers' (two lock stores,
    ten threads each): every one gets the conversation, never two together."""
    out = _run_in_rasa_env("""
        import asyncio, json, threading, time, uuid
        from rasa.utils.endpoints import EndpointConfig
        from bot.rasa_server.lock_store import AtomicRedisLockStore
        conversation = "lock-" + uuid.uuid4().hex
        config = EndpointConfig(url="127.0.0.1", port=6379, db=5, key_prefix="concierge")
        stores = [AtomicRedisLockStore(config), AtomicRedisLockStore(config)]
        guard, holding, most, served = threading.Lock(), [0], [0], []
        start = threading.Barrier(20)

        async def message(store, n):
            async with store.lock(conversation, wait_time_in_seconds=0.01):
                with guard:
                    holding[0] += 1
                    most[0] = max(most[0], holding[0])
                await asyncio.sleep(0.02)
                with guard:
                    holding[0] -= 1
                    served.append(n)

        def resident(n):
            start.wait()
            asyncio.run(message(stores[n % 2], n))

        threads = [threading.Thread(target=resident, args=(n,)) for n in range(20)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        left = stores[0].get_lock(conversation)
        print(json.dumps({"most": most[0], "served": sorted(served), "left": left is not None}))
    """)
    result = json.loads(out)
    assert result == {"most": 1, "served": list(range(20)), "left": False}


def test_every_message_gets_the_language_the_responses_are_picked_by():
    out = _run_in_rasa_env("""
        import json
        from rasa.shared.nlu.training_data.message import Message
        from bot.rasa_server.nlu.language import LanguageExtractor
        messages = [Message(data={"text": t}) for t in ["住民票がほしい", "I want to talk to a person"]]
        LanguageExtractor().process(messages)
        print(json.dumps([m.get("entities") for m in messages], ensure_ascii=False))
    """)
    ja, en = json.loads(out)
    assert ja == [
        {"entity": "language", "value": "ja", "start": 0, "end": 7, "extractor": "LanguageExtractor"}
    ]
    assert [e["value"] for e in en] == ["en"]
