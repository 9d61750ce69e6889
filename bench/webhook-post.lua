-- Load for bench/webhooks: status changes as fast as wrk can make them, or a webhook
-- receiver's own capacity.
--
--   wrk -s bench/webhook-post.lua URL -- vkyc <client id> <client secret> <nonce> <every>
--     POST /verification/vkyc creating a new request each time (verification_id
--     "w<nonce>_<thread>_<counter>": one event, VKYC_USER_LINK_GENERATED), except that every
--     <every>-th call (0: none) instead advances one request this thread created (and saw
--     answered) to USER_QUEUED through POST /verification/sandbox/vkyc/advance: one event
--     per step of the way.
--   wrk -s bench/webhook-post.lua URL -- receiver
--     POST /hooks with a body the size and shape of a real event (a new event_id each).
--
-- With WEBHOOK_BENCH_DELAY_MS=N in the environment each connection waits N ms before each
-- call, for a steady rate well below capacity.

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local mode = "vkyc"
local nonce = "x"
local every = 0
-- Ids of requests this thread created (answered 200) and has not advanced yet.
local created = {}
local head, tail = 1, 0
generated = 0
creates = 0
advances = 0

local pause = tonumber(os.getenv("WEBHOOK_BENCH_DELAY_MS") or "0") or 0
if pause > 0 then
  function delay() return pause end
end

function init(args)
  mode = args[1] or "vkyc"
  if mode == "vkyc" then
    set_headers({ args[2], args[3] })
    nonce = args[4] or "x"
    every = tonumber(args[5]) or 0
  else
    wrk.headers["content-type"] = "application/json"
  end
end

-- A real event body (VKYC_USER_LINK_GENERATED), 580-odd bytes, with its own event_id.
local EVENT = '{"event_type":"VKYC_USER_LINK_GENERATED","event_time":"2026-11-23T14:02:11.532Z",' ..
  '"version":"v1","event_id":"evt_%024d","sequence":1,"data":{"verification_id":"w1a2b3c4d_1_%d",' ..
  '"reference_id":4321,"user_reference_id":1,"user_id":"bench_user","status":"RECEIVED",' ..
  '"sub_status":"LINK_GENERATED","vkyc_link":"http://127.0.0.1:38327/v/ff88e8c2816dbbf39f89e220ef79da3fd42b6c97",' ..
  '"link_expiry":"2026-11-26T13:42:17.817Z","recording_link":null,"meeting_schedule":null,' ..
  '"auditor_remarks":null,"agent_remarks":null}}'

function request()
  generated = generated + 1
  if mode ~= "vkyc" then
    return wrk.format("POST", "/hooks", nil, string.format(EVENT, tid * 1000000000 + generated, generated))
  end
  if every > 0 and generated % every == 0 and head <= tail then
    local vid = created[head]
    created[head] = nil
    head = head + 1
    advances = advances + 1
    return wrk.format("POST", "/verification/sandbox/vkyc/advance", nil,
      '{"verification_id":"' .. vid .. '","sub_status":"USER_QUEUED"}')
  end
  creates = creates + 1
  return wrk.format("POST", "/verification/vkyc", nil,
    string.format('{"verification_id":"w%s_%d_%d","user_id":"bench_user"}', nonce, tid, generated))
end

-- Creates answered 200 are queued for an advance (only then is the request certain to exist).
function response(status, headers, body)
  if mode == "vkyc" and every > 0 and status == 200
      and body:find('"sub_status":"LINK_GENERATED"', 1, true) then
    local vid = body:match('"verification_id":"([^"]+)"')
    if vid then
      tail = tail + 1
      created[tail] = vid
    end
  end
end

local common_done = done
function done(summary, latency, requests)
  common_done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    io.write(string.format("BENCH_CALLS tid=%d creates=%d advances=%d\n",
      thread:get("tid"), thread:get("creates") or 0, thread:get("advances") or 0))
  end
end
