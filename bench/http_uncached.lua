-- wrk script for bench/http_load.py: every request a /v1/domain URL no one asked before, so the
-- per-URL answer cache can never serve one (each answer is proved, rendered and signed):
-- odd requests an existing name in random case with a unique "u" parameter, even ones a random
-- name that does not exist (the random-subdomain flood over HTTP). Each thread counts its
-- answers; done() prints one "HTTPLOAD" line with the status counts and the envelopes that were
-- not even shaped like a signed one, which the bench checks (and then verifies a separate
-- sample with the light client). The pass lasts wrk's -d: URLs never repeat however many are sent.
--   wrk ... -s http_uncached.lua URL -- NAMES_FILE TAG

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("id", #threads)
end

function init(args)
   names = {}
   for line in io.lines(args[1]) do
      if #line > 0 then names[#names + 1] = line end
   end
   tag = args[2]
   math.randomseed(id * 7919 + #tag)
   sent, got, ok, missing, bad, junk = 0, 0, 0, 0, 0, 0
end

local function mixed_case(c)
   if math.random() < 0.5 then return c:upper() end
   return c
end

function request()
   sent = sent + 1
   local path
   if sent % 2 == 1 then
      local name = names[math.random(#names)]:gsub("%a", mixed_case)
      path = string.format("/v1/domain/%s.bit?type=A&u=%s-%d-%d", name, tag, id, sent)
   else
      path = string.format("/v1/domain/h%st%dx%d.bit?type=A", tag, id, sent)
   end
   return wrk.format("GET", path)
end

function response(status, headers, body)
   got = got + 1
   if status == 200 then ok = ok + 1
   elseif status == 404 then missing = missing + 1
   else bad = bad + 1 end
   if body:sub(1, 9) ~= '{"body":"' or not body:find('"sig":"', 10, true) then junk = junk + 1 end
end

function done(summary, latency, requests)
   local t = {sent = 0, got = 0, ok = 0, missing = 0, bad = 0, junk = 0}
   for _, thread in ipairs(threads) do
      for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
   end
   io.write(string.format("HTTPLOAD sent=%d got=%d ok=%d missing=%d bad=%d junk=%d\n",
                          t.sent, t.got, t.ok, t.missing, t.bad, t.junk))
end
