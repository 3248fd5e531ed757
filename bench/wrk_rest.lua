-- Residents writing to Rasa's REST channel or to the web widget's API, for wrk (Debian's wrk 4.1).
--   wrk -c 8 -t 2 -d 20s -s bench/wrk_rest.lua http://127.0.0.1:5005 -- QUESTIONS PREFIX SENDERS [PATH [TOKEN]]
-- QUESTIONS: a file with one JSON string (a question, quoted) per line. Each wrk thread cycles
-- through SENDERS residents, so conversations grow over several turns as in real use.
-- PATH: /webhooks/rest/webhook (Rasa's REST channel, the default) or /api/message (the widget;
-- both take {"sender", "message"}). TOKEN: the Rasa token, sent as ?token= (Rasa's REST channel
-- refuses requests without it; the widget's API needs none).
-- done() prints one JSON line with latency percentiles (microseconds) and error counts; a reply
-- that carries the bot's apology (an action failed) counts as an error too.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  questions = {}
  for line in io.lines(args[1]) do
    if #line > 0 then table.insert(questions, line) end
  end
  prefix = args[2] or "bench"
  senders = tonumber(args[3] or "50")
  path = args[4] or "/webhooks/rest/webhook"
  if args[5] and #args[5] > 0 then path = path .. "?token=" .. args[5] end
  counter = 0
  apologies = 0
  empty = 0
end

function request()
  counter = counter + 1
  local q = questions[(counter % #questions) + 1]
  local sender = string.format("%s-%d-%d", prefix, tid, counter % senders)
  local body = '{"sender":"' .. sender .. '","message":' .. q .. '}'
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status == 200 then
    if string.find(body, "Please try again shortly", 1, true) then apologies = apologies + 1 end
    if body == "[]" or string.find(body, '"messages":[]', 1, true) then empty = empty + 1 end
  end
end

function done(summary, latency, requests)
  local apology_total, empty_total = 0, 0
  for _, t in ipairs(threads) do
    apology_total = apology_total + t:get("apologies")
    empty_total = empty_total + t:get("empty")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d,' ..
    '"apologies":%d,"empty_replies":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    apology_total, empty_total))
end
