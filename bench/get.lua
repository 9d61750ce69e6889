-- GET /verification/vkyc?verification_id=seed_N for a random N in 1..<seeded>, so every
-- request reads a real row (not a cache of one).
--   wrk -s bench/get.lua URL -- <client id> <client secret> <seeded>

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local seeded = 1
generated = 0

function init(args)
  set_headers(args)
  seeded = tonumber(args[3]) or 1
  math.randomseed(os.time() * 1000 + tid)
end

function request()
  generated = generated + 1
  return wrk.format("GET", "/verification/vkyc?verification_id=seed_" .. math.random(1, seeded))
end
