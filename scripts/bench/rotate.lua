-- wrk script: POSTs pre-generated JSON bodies, rotating through them.
--
--   wrk -tT ... -s rotate.lua URL -- DIR COUNT T
--
-- DIR holds COUNT files named 00000.json, 00001.json, ... Each wrk thread
-- loads all of them once (in `init`, so no file I/O while measuring) and
-- starts at its own offset, so that the threads together cover every
-- body early in the run. `done` prints one machine-readable RESULT line.

local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

local requests_built = {}
local next_body = 1

function init(args)
  local dir, count, threads_total = args[1], tonumber(args[2]), tonumber(args[3]) or 1
  if dir == nil or count == nil or count < 1 then
    error("usage: wrk -tT ... -s rotate.lua URL -- DIR COUNT T")
  end
  local headers = { ["Content-Type"] = "application/json" }
  for i = 0, count - 1 do
    local path = string.format("%s/%05d.json", dir, i)
    local f = assert(io.open(path, "rb"))
    local body = f:read("*a")
    f:close()
    -- Pre-formatted requests: wrk sends these bytes as they are.
    requests_built[i + 1] = wrk.format("POST", nil, headers, body)
  end
  local index = tonumber(thread_index) or 0
  next_body = (index * math.floor(count / math.max(threads_total, 1))) % count + 1
end

function request()
  local r = requests_built[next_body]
  next_body = next_body % #requests_built + 1
  return r
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d bytes=%d status_errors=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
