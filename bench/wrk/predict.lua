-- wrk script: POST /predict with N observations per request (env OBS, default 1).
--
--   OBS=8 wrk -t1 -c1 -d10s -s bench/wrk/predict.lua http://127.0.0.1:8080
--
-- Prints one line that bench/run_http_bench.py parses:
--   WRK_RESULT p50_us=.. p90_us=.. p99_us=.. mean_us=.. max_us=.. rps=.. requests=.. errors=..
-- errors = connect + read + write + timeout errors + responses with status >= 400 (wrk's own
-- count). There is deliberately no response() hook: defining one makes wrk buffer and hand every
-- response to Lua, which costs client CPU that the server, on the same cores, would otherwise get.
-- Latencies are wrk's per-request times, merged over its threads, in microseconds.
local obs = tonumber(os.getenv("OBS") or "1")
local one = '{"speed":30.5,"steering":0.05,"sensors":[0.12,-0.03,0.004,0.006,0.008,0.01,1.2,0.5]}'
local items = {}
for i = 1, obs do items[i] = one end
wrk.method = "POST"
wrk.path = "/predict"
wrk.body = '{"observations":[' .. table.concat(items, ",") .. '],"deterministic":true}'
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT p50_us=%.1f p90_us=%.1f p99_us=%.1f mean_us=%.1f max_us=%.1f rps=%.1f requests=%d errors=%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean,
    latency.max, summary.requests / (summary.duration / 1e6), summary.requests,
    e.status + e.connect + e.read + e.write + e.timeout))
end
