-- wrk script for bench/oidc_exchange.py: one pre-minted token per request, in rotation.
-- Usage: wrk -t1 -c64 -d10s -s bench/wrk_tokens.lua URL -- TOKENS_FILE [START_INDEX]
-- The requests are built once in init(), so request() costs wrk one table lookup.

local requests = {}
local count = 0
local next_index = 0

function init(args)
  local path = args[1]
  for token in io.lines(path) do
    if #token > 0 then
      count = count + 1
      requests[count] = wrk.format(
        "POST", "/v1/credentials", { ["Authorization"] = "Bearer " .. token }, ""
      )
    end
  end
  if count == 0 then
    error("no tokens in " .. tostring(path))
  end
  next_index = tonumber(args[2] or "0") % count
end

function request()
  next_index = next_index % count + 1
  return requests[next_index]
end

-- One machine-readable line for the driver. wrk's errors.status counts responses >= 400.
function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,'
      .. '"max_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout
  ))
end
