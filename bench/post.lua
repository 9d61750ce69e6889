-- POST /verification/vkyc creating a new request each time: verification_id is
-- "b<nonce>_<thread>_<counter>", unique across threads, and across runs by the nonce.
--   wrk -s bench/post.lua URL -- <client id> <client secret> <nonce>

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local nonce = "x"
generated = 0

function init(args)
  set_headers(args)
  nonce = args[3] or "x"
end

function request()
  generated = generated + 1
  local body = string.format('{"verification_id":"b%s_%d_%d","user_id":"bench_user"}',
    nonce, tid, generated)
  return wrk.format("POST", "/verification/vkyc", nil, body)
end
