-- A live deployment's mix: 95 % GET /verification/vkyc of a random seeded request and 5 %
-- POST /verification/vkyc creating a new one (each write commits, as agents' heartbeats,
-- journey steps and webhooks do in a live deployment, so no read can rely on nothing
-- having changed).
--   wrk -s bench/mixed.lua URL -- <client id> <client secret> <seeded>:<nonce>

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local seeded = 1
local nonce = "x"
generated = 0

function init(args)
  set_headers(args)
  local s, n = (args[3] or "1:x"):match("^(%d+):(.*)$")
  seeded = tonumber(s) or 1
  nonce = n or "x"
  math.randomseed(os.time() * 1000 + tid)
end

function request()
  generated = generated + 1
  if math.random(1, 100) <= 5 then
    local body = string.format('{"verification_id":"m%s_%d_%d","user_id":"bench_user"}',
      nonce, tid, generated)
    return wrk.format("POST", "/verification/vkyc", nil, body)
  end
  return wrk.format("GET", "/verification/vkyc?verification_id=seed_" .. math.random(1, seeded))
end
