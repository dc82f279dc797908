-- wrk script: send the method named in BENCH_WRK_METHOD (OPTIONS for a CORS
-- preflight) instead of GET, with the headers given by --header, then report as
-- wrk_report.lua does. Read by bench/load.py.
wrk.method = os.getenv("BENCH_WRK_METHOD") or "GET"

local folder = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(folder .. "wrk_report.lua")
