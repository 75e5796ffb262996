-- wrk script for bench/faults.py's peak phase: one pre-minted token per request, in rotation
-- (as wrk_tokens.lua), and every answer counted by HTTP status.
-- Usage: wrk -t1 -c64 -d10s -s bench/wrk_faults.lua URL -- TOKENS_FILE [START_INDEX]

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local requests = {}
local count = 0
local next_index = 0
statuses = {}

function init(args)
  for token in io.lines(args[1]) do
    if #token > 0 then
      count = count + 1
      requests[count] = wrk.format(
        "POST", "/v1/credentials", { ["Authorization"] = "Bearer " .. token }, ""
      )
    end
  end
  if count == 0 then
    error("no tokens in " .. tostring(args[1]))
  end
  next_index = tonumber(args[2] or "0") % count
end

function request()
  next_index = next_index % count + 1
  return requests[next_index]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

-- One machine-readable line for the driver: totals, latency, and answers by status.
function done(summary, latency, _)
  local by_status = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      by_status[status] = (by_status[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(by_status) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"p99_us":%d,"max_us":%d,'
      .. '"no_answer":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, table.concat(parts, ",")
  ))
end
