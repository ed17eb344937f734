"""Error-log summaries and signatures, on real Node, PostgreSQL, Redis and kernel lines."""

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_logs as logs

# Each line below was printed by the real program (Node 20, PostgreSQL 15, Redis 7, Linux) on this
# kind of machine, except ETIMEDOUT and the kernel's OOM line, copied from their sources' formats.
REAL_LINES = [
    ("eaddrinuse", "Error: listen EADDRINUSE: address already in use 127.0.0.1:54000"),
    ("enospc", "Error: ENOSPC: no space left on device, write"),
    ("enospc", "2026-12-01 22:10:01.123 UTC [4242] ERROR:  could not extend file \"base/16384/16390\": "
               "No space left on device"),
    ("authentication_failed", "2026-12-01 21:54:44.149 UTC [4069] health_butler@health_butler FATAL:  "
                              "password authentication failed for user \"health_butler\""),
    ("authentication_failed", "AUTH failed: WRONGPASS invalid username-password pair or user is disabled."),
    ("authentication_failed", "NOAUTH Authentication required."),
    ("read_only_transaction", "ERROR:  cannot execute INSERT in a read-only transaction"),
    ("too_many_clients", "2026-12-01 22:05:54.324 UTC [15216] health_butler@health_butler FATAL:  remaining "
                         "connection slots are reserved for non-replication superuser connections"),
    ("too_many_clients", "FATAL:  sorry, too many clients already"),
    ("econnrefused", "Error: connect ECONNREFUSED 127.0.0.1:1"),
    ("econnrefused", "Could not connect to Redis at 127.0.0.1:1: Connection refused"),
    ("etimedout", "Error: connect ETIMEDOUT 10.255.255.1:5432"),
    ("enotfound", "Error: getaddrinfo ENOTFOUND db-primary.hb-sandbox.invalid"),
    ("enotfound", "psql: error: could not translate host name \"db-primary.hb-sandbox.invalid\" to address: "
                  "Name or service not known"),
    ("oom", "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"),
    ("oom", "Out of memory: Killed process 4242 (node) total-vm:1234567kB, anon-rss:987654kB"),
]


@pytest.mark.parametrize("signature,line", REAL_LINES, ids=["%s-%d" % (s, i) for i, (s, _l) in enumerate(REAL_LINES)])
def test_each_signature_on_a_real_line(signature, line):
    assert signature in logs.signatures_of(line)


def test_every_signature_has_a_real_line():
    assert {s for s, _l in REAL_LINES} == set(logs.SIGNATURES)


@pytest.mark.parametrize("line", [
    "health-butler 1.1.0 listening on 54000",
    "request failed: duplicate key value violates unique constraint \"users_email_key\"",
    "2026-12-01 21:37:06.001 UTC [77] LOG:  database system is ready to accept connections",
])
def test_ordinary_lines_show_no_signature(line):
    assert logs.signatures_of(line) == []


# A real EADDRINUSE crash, as Node 20 writes it to PM2's error log, three times over.
CRASH = """node:events:502
      throw er; // Unhandled 'error' event
      ^

Error: listen EADDRINUSE: address already in use 127.0.0.1:54000
    at Server.setupListenHandle [as _listen2] (node:net:1908:16)
    at listenInCluster (node:net:1965:12)
    at doListen (node:net:2139:7)
    at process.processTicksAndRejections (node:internal/process/task_queues:83:21)
Emitted 'error' event on Server instance at:
    at emitErrorNT (node:net:1944:8)
    at process.processTicksAndRejections (node:internal/process/task_queues:82:21) {
  code: 'EADDRINUSE',
  errno: -98,
  syscall: 'listen',
  address: '127.0.0.1',
  port: 54000
}
""".splitlines()


def test_a_crash_loop_is_one_line_per_distinct_error_with_counts():
    summary = logs.summarize(CRASH * 3)
    messages = {m["message"]: m for m in summary["messages"]}
    assert messages["Error: listen EADDRINUSE: address already in use 127.0.0.1:54000"]["count"] == 3
    assert messages["Emitted 'error' event on Server instance at:"]["count"] == 3
    assert not [m for m in messages if m.startswith("at ") or m.startswith("code:")]  # frames and dumps skipped
    assert summary["signatures"] == {"eaddrinuse": 3}
    assert len(messages) == summary["distinct"] == 3  # throw er, Error: listen..., Emitted...
    assert "EADDRINUSE" in logs.one_line(summary)


def test_first_and_last_time_from_the_lines_own_stamps():
    lines = [
        '2026-12-01 21:54:44.149 UTC [4069] app@db FATAL:  password authentication failed for user "app"',
        "2026-12-01 21:54:45.000 UTC [4070] app@db FATAL:  sorry, too many clients already",
        '2026-12-01 21:54:45.916 UTC [4105] app@db FATAL:  password authentication failed for user "app"',
        '2026-12-01 21:55:58.904 UTC [4258] app@db FATAL:  password authentication failed for user "app"',
    ]
    top = logs.summarize(lines)["messages"][0]
    assert top["message"] == 'app@db FATAL:  password authentication failed for user "app"'
    assert (top["count"], top["first"], top["last"]) == (
        3, "2026-12-01 21:54:44.149 UTC", "2026-12-01 21:55:58.904 UTC")
    assert top["signatures"] == ["authentication_failed"]


def test_pm2_date_prefix_and_redis_stamps_are_set_aside():
    assert logs.split_stamp("2026-12-01T21:50:00.123+00:00: Error: connect ECONNREFUSED 127.0.0.1:5432") == (
        "2026-12-01T21:50:00.123+00:00", "Error: connect ECONNREFUSED 127.0.0.1:5432")
    assert logs.split_stamp("4242:M 01 Dec 2026 21:50:00.123 # Short read or OOM loading DB.") == (
        "01 Dec 2026 21:50:00.123", "Short read or OOM loading DB.")
    assert logs.split_stamp("no stamp here") == (None, "no stamp here")


def test_no_stamp_means_no_time_not_a_guess():
    top = logs.summarize(["Error: connect ECONNREFUSED 127.0.0.1:1"] * 2)["messages"][0]
    assert (top["count"], top["first"], top["last"]) == (2, None, None)


def test_messages_are_redacted_before_grouping():
    lines = ["Error: connect to postgresql://hb:S3cretValue99@db:5432/hb failed",
             "Error: connect to postgresql://hb:OtherSecret77@db:5432/hb failed"]
    summary = logs.summarize(lines, extra_secrets=["unused-secret"])
    text = repr(summary)
    assert "S3cretValue99" not in text and "OtherSecret77" not in text
    assert summary["distinct"] == 1 and summary["messages"][0]["count"] == 2


def test_most_frequent_first_and_capped():
    lines = ["a"] * 1 + ["b"] * 3 + ["c"] * 2
    summary = logs.summarize(lines, max_distinct=2)
    assert [m["message"] for m in summary["messages"]] == ["b", "c"]
    assert (summary["lines"], summary["distinct"], summary["shown"]) == (6, 3, 2)
