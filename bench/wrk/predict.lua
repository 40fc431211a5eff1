-- wrk script: POST /predict with N observations per request (env OBS, default 1).
local obs = tonumber(os.getenv("OBS") or "1")
local one = '{"speed":30.5,"steering":0.05,"sensors":[0.12,-0.03,0.004,0.006,0.008,0.01,1.2,0.5]}'
local items = {}
for i = 1, obs do items[i] = one end
wrk.method = "POST"
wrk.path = "/predict"
wrk.body = '{"observations":[' .. table.concat(items, ",") .. '],"deterministic":true}'
wrk.headers["Content-Type"] = "application/json"

local non_ok = 0
function response(status, headers, body)
  if status ~= 200 then non_ok = non_ok + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("WRK_RESULT p50_us=%.1f p90_us=%.1f p99_us=%.1f rps=%.1f requests=%d errors=%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
