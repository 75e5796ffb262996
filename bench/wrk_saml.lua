-- wrk script for bench/saml_acs_http.py: POST one pre-signed SAMLResponse per request, each
-- body used once (the broker's replay cache refuses a second use).
-- Usage: wrk -t1 -c16 -d10s -s bench/wrk_saml.lua URL -- BODIES_FILE BYTE_OFFSET COUNT COOKIE
-- BODIES_FILE holds one url-encoded form body per line; the run uses COUNT lines starting at
-- BYTE_OFFSET. COOKIE=1: a success is a 303 with Set-Cookie; COOKIE=0: a 303.
-- Running out of bodies stops the thread and is reported ("exhausted"): wrk still divides by
-- the full -d, so the driver treats that as void (it then knows the rate from
-- "exhausted_after", signs more and measures again).
-- Requests are built once in init(), so request() costs wrk one table lookup.

local requests = {}
local count = 0
-- Globals, not locals: done() reads them from the thread with thread:get().
sent = 0 -- bodies handed to wrk (each went, at least partly, to the server)
good = 0
bad = 0
first_bad = ""
exhausted = 0
exhausted_after = 0 -- seconds from the first request to running out (/proc/uptime, 10 ms)
local first_at = nil
local want_cookie = true
local filler = nil
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local path, offset, limit = args[1], tonumber(args[2]), tonumber(args[3])
  want_cookie = args[4] == "1"
  local file = assert(io.open(path, "rb"))
  file:seek("set", offset)
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  for _ = 1, limit do
    local body = file:read("*l")
    if body == nil or #body == 0 then
      break
    end
    count = count + 1
    requests[count] = wrk.format("POST", nil, headers, body)
  end
  file:close()
  if count == 0 then
    error("no bodies in " .. tostring(path) .. " at " .. tostring(offset))
  end
  -- Returned only once the bodies have run out, after the thread was told to stop: wrk
  -- sends it, but the loop ends before its answer is read.
  filler = wrk.format("GET", "/saml/metadata")
end

local function uptime()
  local file = assert(io.open("/proc/uptime", "r"))
  local seconds = file:read("*n")
  file:close()
  return seconds
end

function request()
  if first_at == nil then
    first_at = uptime()
  end
  if sent >= count then
    if exhausted == 0 then
      exhausted = 1
      exhausted_after = uptime() - first_at
    end
    wrk.thread:stop()
    return filler
  end
  sent = sent + 1
  return requests[sent]
end

local function has_cookie(headers)
  for name, _ in pairs(headers) do
    if string.lower(name) == "set-cookie" then
      return true
    end
  end
  return false
end

function response(status, headers, body)
  if status == 303 and (not want_cookie or has_cookie(headers)) then
    good = good + 1
  else
    bad = bad + 1
    if first_bad == "" then
      first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 200)
    end
  end
end

local function json_string(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

-- One machine-readable line for the driver. wrk's errors.status counts responses >= 400.
function done(summary, latency, _)
  local t = threads[1]
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,'
      .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,'
      .. '"sent":%d,"good":%d,"bad":%d,"exhausted":%d,"exhausted_after":%.2f,"first_bad":%s}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    t:get("sent"), t:get("good"), t:get("bad"), t:get("exhausted"),
    t:get("exhausted_after"), json_string(t:get("first_bad"))
  ))
end
