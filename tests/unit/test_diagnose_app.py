"""App collector: port from /proc/net/tcp, HTTP probe, error-log signatures, .env keys, never failing."""

import json
import os

from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_app as app

TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:CF1A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0100007F:D8F2 0100007F:CF1A 01 00000000:00000000 00:00000000 00000000     0        0 2 1
"""


def test_listening_ports_only():
    assert app.parse_proc_net_tcp(TCP) == {0xCF1A}


def test_port_listening_from_proc(tmp_path):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(TCP)
    assert app.port_listening(0xCF1A, str(tmp_path))["listening"] is True
    assert app.port_listening(0xD8F2, str(tmp_path)) == {"port": 0xD8F2, "listening": False, "method": "proc_net_tcp"}


def test_signatures_counted():
    lines = ["<--- Last few GCs --->",
             "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
             "Cannot connect to database: Connection terminated", "Error: connect ECONNREFUSED 127.0.0.1:5432",
             "PrismaClientInitializationError: Can't reach database server at db:5432"]
    assert app.count_signatures(lines) == {"heap_out_of_memory": 1, "cannot_connect_database": 1,
                                           "prisma_connection": 1, "econnrefused": 1}


def test_error_log_tail_is_redacted_and_aged(tmp_path):
    log = tmp_path / "err.log"
    log.write_text("".join("line %d\n" % i for i in range(500))
                   + "Cannot connect to database postgresql://app:dbpw1234@db/hb\n")
    os.utime(log, (1000, 1000))
    out = app.error_log(str(log), lines=3, now=1060)
    assert out["lines"][:2] == ["line 498", "line 499"] and "dbpw1234" not in out["lines"][2]
    assert out["signatures"]["cannot_connect_database"] == 1 and out["age_s"] == 60
    missing = app.error_log(str(tmp_path / "nope.log"))
    assert "cannot read" in missing["error"] and missing["lines"] == []


def test_http_probe_of_nothing_listening():
    probe = app.http_probe("http://127.0.0.1:9/health", timeout=2)
    assert probe["status"] == 0 and probe["error"]


def test_env_keys_masks_values(tmp_path):
    env = tmp_path / ".env"
    env.write_text("# c\nPORT=3000\nJWT_SECRET=abcdef123\nDATABASE_URL=postgresql://u:pw99999@h/db\n")
    out = app.env_keys(str(env))
    assert [k["key"] for k in out["keys"]] == ["PORT", "JWT_SECRET", "DATABASE_URL"]
    assert "abcdef123" not in json.dumps(out) and "pw99999" not in json.dumps(out)


def test_collect_with_pm2_down_is_a_result_not_an_exception(fake_runner, tmp_path):
    fake_runner.add(r"jlist", 1, "", "connect EACCES /pm2/rpc.sock")
    out = app.collect(fake_runner, "pm2", str(tmp_path), "health-butler", port=9, health_url="http://127.0.0.1:9/h",
                      http_timeout=1)
    assert out["pm2"]["reachable"] is False and out["process"] is None
    assert out["health"]["status"] == 0 and out["port"]["listening"] is False
    assert out["error_log"]["path"] == os.path.join(str(tmp_path), "logs", "health-butler-error.log")
