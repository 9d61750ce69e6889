-- Shared by get.lua and post.lua (loaded with dofile): the merchant API headers, thread
-- numbering, and the summary line that bench/run parses.
--
-- wrk runs this file once in its main Lua state (setup, done) and once in each thread's
-- own state (init, request); `threads` below only exists in the main one.

threads = {}
local next_tid = 1

-- Main state, once per thread before it starts: give each thread a number.
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

-- Thread state: `wrk ... -- <client id> <client secret> <extra>`.
function set_headers(args)
  wrk.headers["x-client-id"] = args[1]
  wrk.headers["x-client-secret"] = args[2]
  wrk.headers["x-api-version"] = "2024-12-01"
  wrk.headers["content-type"] = "application/json"
end

-- Main state, after the run. Times are microseconds. `status_errors` is wrk's count of
-- responses with a status of 400 or more (neither server answers 1xx or 3xx, so this is
-- the non-2xx count); the others are socket errors.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "status_errors=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
  for _, thread in ipairs(threads) do
    io.write(string.format("BENCH_THREAD tid=%d generated=%d\n",
      thread:get("tid"), thread:get("generated") or 0))
  end
end
