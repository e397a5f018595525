-- SPDX-License-Identifier: MIT
-- wrk script of bench/api-latency: the requests of one phase, pacing, and a summary.
--
--   wrk -t T -c C -d Ds -s bench/api-latency.lua http://HOST:PORT -- MODE RATE
--
-- MODE: "flows" (filtered /api/v1/flows) or "top" (/api/v1/flows/top). RATE: requests per
-- second in total over the T threads (0: unpaced, each connection sends its next request as
-- soon as the previous answer is in). wrk is closed-loop: delay() runs after each answer and
-- says how long the connection waits before its next request. Each thread keeps a schedule of
-- send slots T / RATE seconds apart and delay() hands a connection the next slot, so the rate
-- does not depend on the latency. When every connection of a thread was busy at a slot, the
-- slot is taken late (at once) by the next connection free, as open-loop clients would keep
-- arriving; the schedule never lags more than MAX_LAG_MS, so a stall is not followed by a
-- long burst, and the achieved rate shows what was lost. Latency is wrk's own: request
-- written to answer read, the wait excluded.
--
-- Filters are drawn from ipfixd-gen's distributions (addresses uniform in 10.0.0.0/8, ports
-- uniform in 1..65535, protocol tcp/udp/icmp in thirds, starts over the last --time-spread):
-- a /24 or one port matches about N / 65536 flows per pod, a /16 about N / 256, a protocol
-- a third, a 10 minute window about a sixth of an hour's spread; exact hosts and pairs of
-- conditions mostly match nothing, which costs a scan of the blocks the indexes cannot prune.
--
-- done() prints one line the script parses:
--   WRK requests=N duration_s=S rps=R p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. non2xx=N
--   socket_errors=N timeouts=N partial=N truncated=N
-- non2xx counts every answer outside 200..299 (wrk's own status error count starts at 400);
-- partial counts 200 answers that say "partial":true (a pod missed the deadline), truncated
-- those that say "truncated":true (a pod's scan budget ran out).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } api_bench_timespec;
int clock_gettime(int clk_id, api_bench_timespec *tp);
]]
local ts = ffi.new("api_bench_timespec")
local function now_ms()
        ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
        return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
local thread_id = 0

function setup(thread)
        thread:set("id", thread_id)
        thread_id = thread_id + 1
        table.insert(threads, thread)
end

local MAX_LAG_MS = 500
local mode, interval_ms, next_slot = "flows", 0, 0
local n = 0
non2xx, partial, truncated = 0, 0, 0

local function any_24()
        return string.format("10.%d.%d.0/24", math.random(0, 255), math.random(0, 255))
end
local function any_16()
        return string.format("10.%d.0.0/16", math.random(0, 255))
end
local function any_host()
        return string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255),
                             math.random(0, 255))
end

-- Filtered flow queries, in rotation: what an operator types into a flow search.
local flows = {
        function() return "src=" .. any_24() .. "&limit=100" end,
        function() return "dst_port=443&limit=100" end,
        function() return "proto=udp&limit=100" end,
        function() return "src=" .. any_16() .. "&dst_port=443&limit=100" end,
        function() return "from=now-10m&proto=tcp&limit=100" end,
        function() return "dst=" .. any_host() .. "&limit=100" end,
        function() return "dst=" .. any_24() .. "&from=now-30m&limit=100" end,
        function() return "proto=udp&port=53&limit=100" end,
        function() return "dst_port=80,443,8080&proto=tcp&from=now-15m&limit=100" end,
        function() return "src=" .. any_16() .. "&limit=100" end,
        function() return "addr=" .. any_24() .. "&limit=100" end,
        function() return "limit=100" end,
}

-- Top-N over the last hour of rollups.
local tops = {}
for _, by in ipairs({ "src", "dst", "dst_port", "pair" }) do
        for _, metric in ipairs({ "octets", "packets" }) do
                table.insert(tops, "by=" .. by .. "&metric=" .. metric .. "&window=1h&n=10")
        end
end

function init(args)
        mode = args[1] or "flows"
        local rate = tonumber(args[2] or "0") or 0
        local nthreads = tonumber(args[3] or "1") or 1
        if mode ~= "flows" and mode ~= "top" then
                error("api-latency.lua: MODE must be flows or top, found " .. tostring(mode))
        end
        if rate > 0 then
                interval_ms = 1000 * nthreads / rate
        end
        math.randomseed(1000 + id)
        n = id -- threads start at different places in the rotation
end

function request()
        local path
        n = n + 1
        if mode == "top" then
                path = "/api/v1/flows/top?" .. tops[n % #tops + 1]
        else
                path = "/api/v1/flows?" .. flows[n % #flows + 1]()
        end
        return wrk.format("GET", path)
end

function delay()
        if interval_ms <= 0 then
                return 0
        end
        local t = now_ms()
        if next_slot == 0 then
                next_slot = t -- the first requests went out at the start, unscheduled
        else
                next_slot = math.max(next_slot + interval_ms, t - MAX_LAG_MS)
        end
        return math.max(0, math.floor(next_slot - t))
end

function response(status, headers, body)
        if status < 200 or status > 299 then
                non2xx = non2xx + 1
        elseif body then
                if string.find(body, '"partial":true', 1, true) then
                        partial = partial + 1
                end
                if string.find(body, '"truncated":true', 1, true) then
                        truncated = truncated + 1
                end
        end
end

function done(summary, latency, requests)
        local bad, part, trunc = 0, 0, 0
        for _, t in ipairs(threads) do
                bad = bad + (t:get("non2xx") or 0)
                part = part + (t:get("partial") or 0)
                trunc = trunc + (t:get("truncated") or 0)
        end
        local e = summary.errors
        local sec = summary.duration / 1e6
        io.write(string.format("WRK requests=%d duration_s=%.2f rps=%.1f p50_ms=%.2f p90_ms=%.2f "
                               .. "p99_ms=%.2f max_ms=%.2f non2xx=%d socket_errors=%d "
                               .. "timeouts=%d partial=%d truncated=%d\n",
                               summary.requests, sec, summary.requests / sec,
                               latency:percentile(50) / 1000, latency:percentile(90) / 1000,
                               latency:percentile(99) / 1000, latency.max / 1000, bad,
                               e.connect + e.read + e.write + e.timeout, e.timeout, part,
                               trunc))
end
