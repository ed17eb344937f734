"""node --prof-process output: functions by ticks, the app's own ones (not node_modules, not node internals)."""

from ansible_collections.healthbutler.recovery.plugins.module_utils import node_profile as np

REPORT = """Statistical profiling result from /pm2/profiles/x/v8.log, (1311 ticks, 28 unaccounted, 0 excluded).

 [Shared libraries]:
   ticks  total  nonlib   name
      4    0.3%          /usr/lib/x86_64-linux-gnu/libc.so.6

 [JavaScript]:
   ticks  total  nonlib   name
     12    0.9%    0.9%  JS: *parseRow /app/current/node_modules/pg/lib/result.js:40:11
    982   74.9%   75.1%  JS: *latestRows file:///app/current/dist/server.js:70:24
      3    0.2%    0.2%  JS: ^<anonymous> /app/current/dist/server.js:88:30
      2    0.2%    0.2%  JS: ~processTicksAndRejections node:internal/process/task_queues:67:35

 [C++]:
   ticks  total  nonlib   name
     10    0.8%    0.8%  __write@@GLIBC_2.2.5
"""


def test_functions_by_ticks_with_the_apps_own_marked():
    got = np.parse(REPORT, "/app/current/")
    assert got["ticks"] == 1311 and got["unaccounted"] == 28
    assert [f["function"] for f in got["top"]] == ["latestRows", "parseRow", "<anonymous>",
                                                   "processTicksAndRejections"]
    assert [(f["function"], f["file"], f["line"]) for f in got["app_functions"]] == [
        ("latestRows", "/app/current/dist/server.js", 70), ("<anonymous>", "/app/current/dist/server.js", 88)]
    assert got["top"][0]["share"] == 74.9


def test_the_report_names_the_top_and_the_apps_functions():
    summary = np.parse(REPORT, "/app/current", top=2)
    text = np.markdown(summary, {"app": "health-butler", "host": "app-1", "seconds": 10,
                                 "url": "/api/health-data", "log": "/pm2/profiles/x/v8.log"})
    assert "| 982 | 74.9 % | latestRows | /app/current/dist/server.js:70 |" in text
    assert "load: GET /api/health-data" in text and "1311 (28 unaccounted)" in text


def test_an_empty_profile_says_so():
    summary = np.parse("", "/app")
    assert summary["ticks"] == 0 and summary["top"] == []
    assert "(none sampled)" in np.markdown(summary, {"app": "a", "host": "h", "seconds": 1, "log": "l"})
