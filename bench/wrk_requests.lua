-- wrk script of bench/run: each wrk thread sends the pre-signed requests of its own file, in
-- order, each once (lane events carry their own event_id and signature).
--
--   wrk -t T -c C -d D -s bench/wrk_requests.lua URL -- PREFIX
--
-- Thread i reads PREFIX.i: complete HTTP requests back to back, each with a Content-Length.
-- A thread that runs out starts its file again; `done` reports how many times that happened
-- ("wrapped"), so bench/run can tell a run whose requests were not all distinct (a replayed event
-- is an idempotent replay, cheaper than a decision) and make more.  The summary line starts with
-- WRK_JSON and is one JSON object.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local prefix = args[1]
  local f = assert(io.open(prefix .. "." .. id, "rb"))
  local data = f:read("*a")
  f:close()
  reqs = {}
  local pos = 1
  local n = #data
  while pos <= n do
    local hend = string.find(data, "\r\n\r\n", pos, true)
    if not hend then
      break
    end
    local head = string.lower(string.sub(data, pos, hend + 1))
    local cl = tonumber(string.match(head, "\ncontent%-length:%s*(%d+)")) or 0
    reqs[#reqs + 1] = string.sub(data, pos, hend + 3 + cl)
    pos = hend + 4 + cl
  end
  nreqs = #reqs
  i = 0
  wrapped = 0
  sent = 0
end

function request()
  i = i + 1
  sent = sent + 1
  if i > nreqs then
    i = 1
    wrapped = wrapped + 1
  end
  return reqs[i]
end

function done(summary, latency, requests)
  local w, n, s = 0, 0, 0
  for _, t in ipairs(threads) do
    w = w + (t:get("wrapped") or 0)
    n = n + (t:get("nreqs") or 0)
    s = s + (t:get("sent") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"loaded":%d,"sent":%d,"wrapped":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, n, s, w, latency:percentile(50), latency:percentile(99), latency.max))
end
