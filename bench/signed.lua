-- wrk script for hookgate's benchmark: sends pre-signed VECU webhook events.
--
--   wrk -t2 -c64 -d10s --latency -s bench/signed.lua URL -- LIST_PREFIX [cycle|once]
--
-- wrk never computes an HMAC. bench/bench.py writes one file per wrk thread,
-- LIST_PREFIX.<thread index> (disjoint slices, so no id is sent by two threads):
--   line 1: the X-VECU-Timestamp all events were signed with
--   line 2: the CloudEvents body template, each "{ID}" standing for the event id
--   then:   "<event id> <hex HMAC-SHA256(secret, ts .. '.' .. body)>\n" per event,
--           every record the same width (ids have a fixed length)
-- The body is rebuilt here from the template, byte for byte what was signed.
-- The records stay in one string, cut out at send time: loading is one read, however
-- long the list (hundreds of thousands of small Lua strings would take seconds).
--
-- mode "cycle" (default): go round the list; `wraps` counts how often a thread
--   went past its end (then ids repeat and a dedup gateway answers "duplicate").
-- mode "once": send each event exactly once; afterwards send a filler GET
--   /bench-filler (404, never forwarded) until every event has been answered, then
--   write LIST_PREFIX.<thread>.done and stop the thread. The runner interrupts wrk
--   once every thread is done.
-- done() prints one line "BENCH_JSON {...}" that bench.py parses.

local threads = {}
local next_tid = 0

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   table.insert(threads, thread)
end

local records, reclen, idlen, count, pos = "", 0, 0, 0, 0
local head, sighead, bodyhead, parts, nparts
wraps, answered, ok2xx, answered_non2xx = 0, 0, 0, 0
local mode, prefix, filler
-- wrk calls request() once on thread 0 right after init() to check the request
-- parses; that call must not use up an event (in "once" mode it would never be sent).
local check_call_pending

local function split(s, sep)
   local out, from = {}, 1
   while true do
      local a, b = string.find(s, sep, from, true)
      if not a then table.insert(out, string.sub(s, from)); return out end
      table.insert(out, string.sub(s, from, a - 1))
      from = b + 1
   end
end

function init(args)
   -- wrk passes the URL as args[0] and what follows "--" as args[1..]
   prefix = args[1]
   mode = args[2] or "cycle"
   assert(prefix, "usage: wrk ... -s signed.lua URL -- LIST_PREFIX [cycle|once]")
   local f = assert(io.open(prefix .. "." .. tid, "rb"))
   local ts = f:read("*l")
   parts = split(f:read("*l"), "{ID}")
   nparts = #parts
   assert(nparts >= 2, "the body template has no {ID}")
   records = f:read("*a")
   f:close()
   reclen = (string.find(records, "\n", 1, true) or 0)
   idlen = (string.find(records, " ", 1, true) or 1) - 1
   assert(reclen > 0 and idlen > 0 and #records % reclen == 0, "records of unequal width in " .. prefix)
   count = #records / reclen
   assert(count > 0, "empty list " .. prefix .. "." .. tid)
   local bodylen = #table.concat(parts) + (nparts - 1) * idlen
   local host = wrk.headers["Host"]
   head = "POST " .. wrk.path .. " HTTP/1.1\r\nHost: " .. host ..
          "\r\nContent-Type: application/json" ..
          "\r\nContent-Length: " .. bodylen ..
          "\r\nX-VECU-Event-Type: custody.vehicle.released" ..
          "\r\nX-VECU-Retry-Count: 0" ..
          "\r\nX-VECU-Timestamp: " .. ts ..
          "\r\nX-VECU-Event-ID: "
   sighead = "\r\nX-VECU-Signature: sha256="
   bodyhead = "\r\n\r\n" .. parts[1]
   filler = "GET /bench-filler HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
   if mode == "once" then
      response = once_response  -- wrk only parses answers for Lua if this exists
   end
   check_call_pending = (tid == 0)
end

local sub = string.sub

local function event_request(k)
   local off = (k - 1) * reclen
   local id = sub(records, off + 1, off + idlen)
   local sig = sub(records, off + idlen + 2, off + reclen - 1)
   if nparts == 2 then  -- one concatenation: one new string per request
      return head .. id .. sighead .. sig .. bodyhead .. id .. parts[2]
   end
   local buf = {head, id, sighead, sig, bodyhead}
   for j = 2, nparts do
      buf[#buf + 1] = id
      buf[#buf + 1] = parts[j]
   end
   return table.concat(buf)
end

function request()
   if check_call_pending then
      check_call_pending = false
      return event_request(1)
   end
   pos = pos + 1
   if pos > count then
      if mode == "once" then return filler end
      pos = 1
      wraps = wraps + 1
   end
   return event_request(pos)
end

function once_response(status, headers, body)
   if status == 404 then return end  -- a filler
   answered = answered + 1
   if status >= 200 and status < 300 then ok2xx = ok2xx + 1 else answered_non2xx = answered_non2xx + 1 end
   if answered >= count then
      local f = io.open(prefix .. "." .. tid .. ".done", "w")
      if f then f:write(answered, " ", ok2xx, "\n"); f:close() end
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local t_wraps, t_answered, t_ok = 0, 0, 0
   for _, t in ipairs(threads) do
      t_wraps = t_wraps + (t:get("wraps") or 0)
      t_answered = t_answered + (t:get("answered") or 0)
      t_ok = t_ok + (t:get("ok2xx") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"non2xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,' ..
      '"wraps":%d,"answered":%d,"answered_2xx":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.status, e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
      latency.max, latency.mean,
      t_wraps, t_answered, t_ok))
end
