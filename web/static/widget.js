/* 区役所コンシェルジュ — chat widget. One line embeds it:
 *   <script src="https://HOST/widget.js" data-ward="中原区" defer></script>
 * Plain JS, no dependencies. Every piece of text is inserted as text, never as HTML. */
(() => {
  "use strict";
  const script = document.currentScript;
  const BASE = new URL(script.src, location.href).origin;
  const PAGE_WARD = script.dataset.ward || "";
  const KEY = "kawasaki-concierge-v1";
  const TIMEOUT_MS = 20000;
  const POLL_MS = 5000;  // staff replies: first poll after a hand-off, then slower while none come
  const POLL_MAX_MS = 60000;
  const MAX_LOG = 100;
  // The history lives in the embedding site's localStorage: on a shared PC (a library, a ward
  // office kiosk) the next person could read it. It is dropped 24 h after the last message, and
  // 「履歴を消す」 drops it at once (docs/privacy.md).
  const HISTORY_MAX_AGE_MS = 24 * 3600 * 1000;
  const ERASE_MESSAGE = "会話を削除";  // the web process erases the conversation (web/widget.py)
  const WARDS = ["川崎区", "幸区", "中原区", "高津区", "宮前区", "多摩区", "麻生区"];
  const STARTERS = [
    ...WARDS.map((w) => ({ title: w, payload: `/inform_ward{"ward": "${w}"}` })),
    { title: "担当者と話したい", payload: "/request_human" },
  ];

  const randomId = () =>
    (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2))
      .replace(/[^A-Za-z0-9-]/g, "");
  const forget = () => { try { localStorage.removeItem(KEY); } catch { /* private mode */ } };
  const load = () => {
    let stored = null;
    try { stored = JSON.parse(localStorage.getItem(KEY)) || null; } catch { return null; }
    const age = stored && Date.now() - Number(stored.savedAt || 0);
    if (stored && !(age >= 0 && age <= HISTORY_MAX_AGE_MS)) {  // expired, or from before expiry existed
      forget();
      return null;
    }
    return stored;
  };
  const freshState = (open = false) => ({ sender: randomId(), log: [], staffAfter: 0, open, wardSent: false });
  let state = load() || freshState();
  const save = () => {
    state.savedAt = Date.now();
    try { localStorage.setItem(KEY, JSON.stringify(state)); } catch { /* private mode */ }
  };

  const el = (tag, attrs = {}, text) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const safeUrl = (url) => {
    try { const u = new URL(url); return u.protocol === "https:" || u.protocol === "http:" ? u.href : null; }
    catch { return null; }
  };

  // The server writes the stylesheet's content hash here: a changed file is a new URL, cached for a year.
  const css = el("link", { rel: "stylesheet", href: `${BASE}/widget.css?v=__WIDGET_CSS_VERSION__` });
  document.head.append(css);
  // Out of the page's flow and invisible until its stylesheet has loaded: the host page never shifts.
  const root = el("div", { class: "kc-root", lang: "ja",
                           style: "position: fixed; right: 16px; bottom: 16px; z-index: 2147483000; visibility: hidden" });
  const reveal = () => {
    root.style.visibility = "";
    if (state.open) input.focus();  // a hidden field cannot take the focus openPanel gave it
  };
  css.addEventListener("load", reveal);
  css.addEventListener("error", reveal);  // unstyled but usable rather than missing
  const launcher = el("button", { class: "kc-launcher", type: "button", "aria-expanded": "false",
                                  "aria-controls": "kc-panel" }, "区役所コンシェルジュ");
  const panel = el("section", { class: "kc-panel", id: "kc-panel", role: "dialog", "aria-label": "区役所コンシェルジュ",
                                hidden: "" });
  const head = el("div", { class: "kc-head" });
  head.append(el("h2", { class: "kc-title" }, "区役所コンシェルジュ"));
  const close = el("button", { class: "kc-close", type: "button", "aria-label": "閉じる" }, "×");
  head.append(close);
  // What the resident can do about what is kept: this browser's copy, or the conversation itself.
  const tools = el("div", { class: "kc-tools", role: "group", "aria-label": "記録の削除" });
  const clearButton = el("button", { class: "kc-tool kc-clear-history", type: "button",
                                     title: "この端末に保存された履歴を消します" }, "履歴を消す");
  const eraseButton = el("button", { class: "kc-tool kc-erase", type: "button",
                                     title: "この会話の記録をサーバーからも削除します" }, "会話を削除");
  tools.append(clearButton, eraseButton);
  const log = el("div", { class: "kc-log", role: "log", "aria-live": "polite", "aria-relevant": "additions" });
  const typing = el("p", { class: "kc-typing", hidden: "" }, "入力中…");
  const quick = el("div", { class: "kc-quick", role: "group", "aria-label": "よく使う返答" });
  const form = el("form", { class: "kc-form" });
  const label = el("label", { for: "kc-input", class: "kc-visually-hidden" }, "質問を入力");
  const input = el("input", { id: "kc-input", class: "kc-input", type: "text", autocomplete: "off",
                              maxlength: "2000", placeholder: "例: 住民票はどこで取れる？" });
  const sendButton = el("button", { class: "kc-send", type: "submit" }, "送信");
  form.append(label, input, sendButton);
  // Disaster mode and the page's ward's notices (/api/notices), above the conversation: never
  // scrolled away with it. Filled by refreshBoard on load and on every opening of the panel.
  const alertBox = el("div", { class: "kc-alert", role: "alert", hidden: "" });
  const noticesBox = el("section", { class: "kc-notices", "aria-label": "お知らせ", hidden: "" });
  panel.append(head, alertBox, noticesBox, tools, log, typing, quick, form);
  root.append(launcher, panel);
  document.body.append(root);

  function renderCard(card) {
    const box = el("div", { class: "kc-card" });
    box.append(el("p", { class: "kc-card-office" }, card.office || card.counter || ""));
    const dl = el("dl");
    const row = (term, value) => {
      if (!value || (Array.isArray(value) && !value.length)) return;
      dl.append(el("dt", {}, term), el("dd", {}, Array.isArray(value) ? value.join(" ／ ") : value));
    };
    row("窓口", card.counter);
    row("区", card.ward);
    row("住所", card.address);
    row("受付時間", card.hours);
    row("持ち物", card.bring);
    const sources = card.sources || (card.source ? [card.source] : []);
    if (sources.length) {  // every source in full here: the answer's text names only the first
      const dd = el("dd", { class: "kc-card-sources" });
      for (const source of sources) {
        const url = source.url && safeUrl(source.url);
        dd.append(url ? el("a", { href: url, target: "_blank", rel: "noopener" }, source.title)
                      : el("span", {}, source.title));
      }
      dl.append(el("dt", {}, "出典"), dd);
    }
    box.append(dl);
    const links = el("p", { class: "kc-card-links" });
    const mapUrl = card.map_url && safeUrl(card.map_url);
    if (mapUrl) links.append(el("a", { href: mapUrl, target: "_blank", rel: "noopener" }, "地図を開く"));
    if (links.childNodes.length) box.append(links);
    return box;
  }

  // A booking (issue 19): the number big and clear, where and when, what to bring, and the
  // .ics download (POST: the sender id never travels in a URL; the server checks the booking is ours).
  function renderBooking(booking) {
    const box = el("div", { class: "kc-booking" });
    box.append(el("p", { class: "kc-booking-label" }, "予約番号"),
               el("p", { class: "kc-booking-number" }, String(booking.number || "")));
    const dl = el("dl");
    const row = (term, value) => {
      if (!value || (Array.isArray(value) && !value.length)) return;
      dl.append(el("dt", {}, term), el("dd", {}, Array.isArray(value) ? value.join("、") : String(value)));
    };
    row("日時", booking.when);
    row("場所", [booking.office, booking.counter].filter(Boolean).join(" "));
    row("住所", booking.address);
    row("持ち物", booking.bring);
    box.append(dl);
    const link = el("a", { class: "kc-booking-ics", href: "#", role: "button" },
                    String(booking.ics_label || "カレンダーに追加（.ics）"));
    link.addEventListener("click", async (e) => {
      e.preventDefault();
      try {
        const resp = await fetch(`${BASE}/api/bookings/ics`, {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ sender: state.sender, number: String(booking.number || "") }),
        });
        if (!resp.ok) throw new Error(String(resp.status));
        const url = URL.createObjectURL(await resp.blob());
        const save = el("a", { href: url, download: `booking-${booking.number}.ics`, hidden: "" });
        document.body.append(save);
        save.click();
        save.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60000);
        link.dataset.downloaded = "true";
      } catch {
        link.textContent = "カレンダーのファイルを用意できませんでした。時間をおいてお試しください。";
      }
    });
    box.append(link);
    return box;
  }

  // The card leads the reply: the number is what the resident needs first (the text repeats it for LINE).
  function placeBooking(item, booking) {
    const text = item.querySelector(".kc-text");
    if (text) text.before(renderBooking(booking));
    else item.append(renderBooking(booking));
  }

  // 「解決しましたか？」 under an answer: はい / いいえ send the payloads the server offered. One
  // click each: both buttons are then disabled, the one chosen marked; a newer answer's question
  // replaces an older one still unanswered (a rating is for the latest answer, actions/feedback.py).
  function renderFeedback(entry) {
    const fb = entry.feedback;
    const group = el("div", { class: "kc-feedback", role: "group", "aria-label": fb.question || "" });
    group.append(el("p", { class: "kc-feedback-question" }, fb.question || ""));
    const buttons = (fb.buttons || []).slice(0, 2).map((b) => {
      const button = el("button", { type: "button", class: "kc-rate", "aria-label": `${fb.question || ""} ${b.title}`,
                                    "aria-pressed": String(entry.rated === b.payload) }, b.title);
      if (entry.rated || entry.feedbackClosed) button.disabled = true;
      button.addEventListener("click", () => {
        if (entry.rated || entry.feedbackClosed) return;
        entry.rated = b.payload;
        save();
        for (const other of buttons) other.disabled = true;
        button.setAttribute("aria-pressed", "true");
        input.focus();  // the buttons are disabled now: keep focus in the panel
        send(b.payload, b.title);
      });
      return button;
    });
    group.append(...buttons);
    return group;
  }

  function closeOlderFeedback() {
    for (const entry of state.log) if (entry.feedback && !entry.rated) entry.feedbackClosed = true;
    for (const button of log.querySelectorAll(".kc-rate")) button.disabled = true;
  }

  function renderEntry(entry) {
    const item = el("div", { class: `kc-msg kc-${entry.who}` });
    const who = { user: "あなた", bot: "コンシェルジュ", staff: "職員" }[entry.who] || "";
    if (entry.who === "staff") {  // said by a person, not the bot: visibly so, with when
      const at = entry.at ? new Date(entry.at * 1000).toLocaleTimeString("ja-JP", { hour: "2-digit", minute: "2-digit" }) : "";
      item.append(el("span", { class: "kc-from" }, `職員より${at ? `（${at}）` : ""}`));
    } else {
      item.append(el("span", { class: "kc-visually-hidden" }, `${who}: `));
    }
    item.append(el("p", { class: "kc-text" }, entry.text || ""));
    if (entry.card) item.append(renderCard(entry.card));
    if (entry.booking) placeBooking(item, entry.booking);
    if (entry.feedback) item.append(renderFeedback(entry));
    if (entry.retry) {
      const again = el("button", { type: "button", class: "kc-retry" }, "もう一度送る");
      again.addEventListener("click", () => send(entry.retry, entry.retryLabel));
      item.append(again);
    }
    log.append(item);
    if (entry.who === "user") log.scrollTop = log.scrollHeight;
    else showStart(item);
    return item;
  }

  // A reply is read from its first line: bring that to the top of the log, not the log's end.
  function showStart(item) {
    const top = item.getBoundingClientRect().top - log.getBoundingClientRect().top + log.scrollTop;
    log.scrollTop = Math.max(0, top - 8);
  }

  function setQuickReplies(buttons) {
    quick.replaceChildren();
    for (const b of (buttons || []).slice(0, 13)) {
      const button = el("button", { type: "button", class: "kc-chip" }, b.title);
      button.addEventListener("click", () => {
        input.focus();  // the chips are about to go: keep focus in the panel (Esc still closes it)
        send(b.payload, b.title);
      });
      quick.append(button);
    }
  }

  function add(entry) {
    state.log.push(entry);
    state.log = state.log.slice(-MAX_LOG);
    save();
    return renderEntry(entry);
  }

  async function api(path, body) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    try {
      const resp = await fetch(`${BASE}${path}`, {
        method: body ? "POST" : "GET",
        headers: body ? { "Content-Type": "application/json" } : {},
        body: body ? JSON.stringify(body) : undefined,
        signal: controller.signal,
      });
      const data = await resp.json();
      if (!resp.ok) {
        const err = new Error(data.error || String(resp.status));
        err.messages = data.messages;  // e.g. the polite "wait a moment" of a rate limit
        throw err;
      }
      return data;
    } finally { clearTimeout(timer); }
  }

  async function send(message, shown) {
    if (!message.trim()) { input.focus(); return; }
    add({ who: "user", text: shown || message });
    setQuickReplies([]);
    typing.hidden = false;
    sendButton.disabled = true;
    let firstReply = null;
    try {
      const data = await api("/api/message", { sender: state.sender, message });
      let last = null;
      let buttons = [];
      const said = data.messages || [];
      if (said.some((m) => m.custom && m.custom.erased)) startOver();  // then show the confirmation alone
      if (said.some((m) => m.custom && m.custom.handoff)) state.awaitingStaff = true;
      else if (said.length) state.awaitingStaff = false;  // the bot answers again: no one is waiting
      save();
      schedulePoll(POLL_MS);
      for (const m of said) {
        if (m.text) {
          last = { who: "bot", text: m.text };
          const item = add(last);
          firstReply = firstReply || item;
        }
        if (m.buttons) buttons = m.buttons;
        if (m.custom && m.custom.card && last) {
          last.card = m.custom.card;
          save();
          log.lastChild.append(renderCard(m.custom.card));
        }
        const booking = m.custom && m.custom.booking;
        if (booking && typeof booking === "object" && last && !last.booking) {
          last.booking = booking;
          save();
          placeBooking(log.lastChild, booking);
        }
        const fb = m.custom && m.custom.feedback;
        if (fb && typeof fb === "object" && Array.isArray(fb.buttons) && last && !last.feedback) {
          closeOlderFeedback();
          last.feedback = { question: String(fb.question || ""),
                            buttons: fb.buttons.map((b) => ({ title: String(b.title), payload: String(b.payload) })) };
          save();
          log.lastChild.append(renderFeedback(last));
        }
      }
      setQuickReplies(buttons);
      if (said.some((m) => m.custom && m.custom.erased)) await sendPageWard();  // the new conversation's ward
    } catch (err) {
      const said = (err && err.messages) || [];
      const text = said.map((m) => m.text).filter(Boolean).join("\n")
        || "通信できませんでした。時間をおいてもう一度お試しください。";
      add({ who: "bot", text, retry: message, retryLabel: shown });
    } finally {
      typing.hidden = true;
      sendButton.disabled = false;
      if (firstReply) showStart(firstReply);  // again, now that the card and quick replies are laid out
    }
  }

  // Staff replies are polled only while a hand-off is pending and the panel is open, every 5 s at
  // first and twice as long after each empty answer (up to a minute): no traffic from idle pages.
  let pollTimer = null;
  let pollDelay = POLL_MS;
  function schedulePoll(delay) {
    clearTimeout(pollTimer);
    pollDelay = delay;
    if (state.open && state.awaitingStaff) pollTimer = setTimeout(pollStaff, delay);
  }

  // Staff messages since the last one shown; whether there was any.
  async function fetchStaff() {
    let heard = false;
    try {
      // POST: the sender id is the key to the conversation and never travels in a URL
      const data = await api("/api/messages", { sender: state.sender, after: state.staffAfter });
      for (const m of data.messages || []) {
        state.staffAfter = Math.max(state.staffAfter, m.timestamp);
        add({ who: "staff", text: m.text, at: m.timestamp });
        heard = true;
      }
    } catch { /* the next poll (or the next opening) tries again */ }
    return heard;
  }

  async function pollStaff() {
    const heard = await fetchStaff();
    schedulePoll(heard ? POLL_MS : Math.min(pollDelay * 2, POLL_MAX_MS));
  }

  async function openPanel() {
    refreshBoard();  // not awaited: the panel opens at once, the board fills in
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    state.open = true;
    save();
    await sendPageWard();
    if (!state.log.length) greet();  // the page may already say which ward: then ask only the question
    input.focus();
    schedulePoll(POLL_MS);
    // A resident with a booking may have a word from staff (a booking they had to cancel): looked
    // for once each time the panel opens, not polled.
    if (!state.awaitingStaff && state.log.some((entry) => entry.booking)) fetchStaff();
  }

  // A new conversation in this browser: nothing of the old one stays here, not even its sender id.
  function startOver() {
    clearTimeout(pollTimer);
    forget();
    state = freshState(state.open);
    log.replaceChildren();
    setQuickReplies([]);
  }

  function greet() {
    const greeting = PAGE_WARD
      ? `こんにちは。川崎市の区役所コンシェルジュです。${PAGE_WARD}の窓口・受付時間・持ち物をご案内します。ご質問を入力してください（ほかの区にお住まいなら区を選んでください）。`
      : "こんにちは。川崎市の区役所コンシェルジュです。手続きの窓口・受付時間・持ち物をご案内します。お住まいの区を選ぶか、ご質問を入力してください。";
    add({ who: "bot", text: greeting });
    setQuickReplies(STARTERS);
  }

  async function clearHistory() {
    startOver();
    add({ who: "bot", text: "この端末に保存していた履歴を消しました。" });
    await sendPageWard();
    greet();
    input.focus();
  }

  async function sendPageWard() {
    if (!PAGE_WARD || state.wardSent) return;
    // before the first message, so a ward the resident picks afterwards is not overwritten
    try { await api("/api/session", { sender: state.sender, ward: PAGE_WARD }); state.wardSent = true; save(); }
    catch { /* the resident can still name the ward */ }
  }

  function closePanel() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    state.open = false;
    save();
    clearTimeout(pollTimer);
    launcher.focus();
  }

  // 「12月6日」 of a notice's time (a time without an offset was written in UTC).
  const dayOf = (iso) => {
    const text = String(iso || "");
    const when = new Date(/(?:Z|[+-]\d{2}:?\d{2})$/i.test(text) ? text : `${text}Z`);
    return Number.isNaN(when.getTime()) ? ""
      : when.toLocaleDateString("ja-JP", { month: "long", day: "numeric", timeZone: "Asia/Tokyo" });
  };

  let boardShown = "";  // what the board shows now: unchanged data leaves it (and an opened notice) as it is
  function showBoard(data) {
    const seen = JSON.stringify(data || null);
    if (seen === boardShown) return;
    boardShown = seen;
    const alert = data && data.disaster && data.disaster.message ? data.disaster : null;
    alertBox.replaceChildren();
    if (alert) alertBox.append(el("strong", { class: "kc-alert-title" }, "災害情報"),
                               el("p", { class: "kc-alert-text" }, String(alert.message)));
    alertBox.hidden = !alert;
    launcher.classList.toggle("kc-launcher-alert", Boolean(alert));
    launcher.textContent = alert ? "災害情報・区役所コンシェルジュ" : "区役所コンシェルジュ";
    const items = (data && Array.isArray(data.notices) ? data.notices : []).slice(0, 5);
    noticesBox.replaceChildren();
    if (items.length) noticesBox.append(el("p", { class: "kc-notices-head" }, `${PAGE_WARD}からのお知らせ`));
    for (const n of items) {
      const item = el("details", { class: "kc-notice" });
      const summary = el("summary");
      summary.append(el("span", { class: "kc-notice-topic" }, String(n.topic_label || "")), " ",
                     el("span", { class: "kc-notice-title" }, String(n.title || "")), " ",
                     el("span", { class: "kc-notice-date" }, dayOf(n.sent_at)));
      item.append(summary, el("p", { class: "kc-notice-body" }, String(n.body || "")));
      const url = n.link && safeUrl(n.link);
      if (url) {
        const more = el("p", { class: "kc-notice-link" });
        more.append(el("a", { href: url, target: "_blank", rel: "noopener" }, "詳しく見る"));
        item.append(more);
      }
      noticesBox.append(item);
    }
    noticesBox.hidden = !items.length;
  }

  // A failure shows nothing rather than an error: the conversation works without the board.
  async function refreshBoard() {
    const query = PAGE_WARD ? `?ward=${encodeURIComponent(PAGE_WARD)}` : "";
    try { showBoard(await api(`/api/notices${query}`)); } catch { showBoard(null); }
  }

  launcher.addEventListener("click", () => (panel.hidden ? openPanel() : closePanel()));
  close.addEventListener("click", closePanel);
  clearButton.addEventListener("click", clearHistory);
  eraseButton.addEventListener("click", () => send(ERASE_MESSAGE));
  root.addEventListener("keydown", (e) => { if (e.key === "Escape" && !panel.hidden) closePanel(); });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value;
    input.value = "";
    send(text);
  });

  for (const entry of state.log) renderEntry(entry);
  if (state.open) openPanel();
  else refreshBoard();  // the launcher turns red in disaster mode before anyone opens the panel
})();
