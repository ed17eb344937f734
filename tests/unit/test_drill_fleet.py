"""The drill on a fleet: endpoints per app host, blast radius, recovery limit, network scenarios, causes."""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from test_drill_journal import at, evaluate, good_run, scenario

from ansible_collections.healthbutler.recovery.plugins.module_utils import (
    drill_catalog,
    drill_effect,
    drill_journal,
    drill_measure,
    drill_run,
)
from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_fleet as fleet

APPS = ["staging-app-1", "staging-app-2"]
ADDRESSES = {"staging-app-1": "10.20.0.11", "staging-app-2": "10.20.0.12", "staging-db-1": "10.20.0.21"}
ALL = APPS + ["staging-db-1", "staging-cache-1", "staging-backup-1"]
WRITER = Path(__file__).resolve().parents[2] / "roles/drill/files/drill_writer.py"


def test_endpoints_one_url_per_app_host_and_the_local_url_in_the_sandbox():
    assert fleet.endpoints(APPS, ADDRESSES, "http://127.0.0.1:3000/", 3000) == {
        "staging-app-1": "http://10.20.0.11:3000", "staging-app-2": "http://10.20.0.12:3000"}
    assert fleet.endpoints(["localhost"], {"localhost": ""}, "http://127.0.0.1:3001", 3000) == {
        "localhost": "http://127.0.0.1:3001"}
    assert fleet.endpoints(["a"], {"a": "fd00::5"}, "x", 3000) == {"a": "http://[fd00::5]:3000"}


def test_blast_radius_picks_the_first_hosts_and_limits_the_recovery_of_app_faults_only():
    assert fleet.fault_app_hosts(APPS, 1) == ["staging-app-1"]
    assert fleet.fault_app_hosts(APPS, 5) == APPS
    assert fleet.recovery_limit(scenario("app_crash"), ALL, APPS, ["staging-app-1"]) == [
        "staging-app-1", "staging-db-1", "staging-cache-1", "staging-backup-1"]
    assert fleet.recovery_limit(scenario("db_down"), ALL, APPS, ["staging-app-1"]) is None
    assert fleet.recovery_limit(scenario("app_crash"), ALL, APPS, APPS) is None
    assert fleet.recovery_limit(scenario("app_crash"), ["localhost"], ["localhost"], ["localhost"]) is None


def test_network_scenarios_need_a_separate_db_host():
    part = scenario("network_partition")
    assert fleet.availability(part, ADDRESSES, APPS, "staging-db-1") is None
    sandbox = fleet.availability(part, {"localhost": ""}, ["localhost"], "localhost")
    assert sandbox.startswith("unavailable: the db host localhost is this machine")
    named = fleet.availability(part, dict(ADDRESSES, **{"staging-db-1": "db.example"}), APPS, "staging-db-1")
    assert "reached by name (db.example)" in named
    assert fleet.availability(scenario("app_crash"), {"localhost": ""}, ["localhost"], "localhost") is None


def test_writes_are_judged_per_host_and_a_spared_host_that_failed_is_a_deviation():
    t0 = drill_measure.parse_iso(at(0))
    w = [{"t": t0 + i, "status": 0 if (h == "staging-app-1" and 1 <= i <= 4) else 201, "id": 100 + 2 * i + k,
          "ms": 1, "host": h} for i in range(6) for k, h in enumerate(APPS)]
    summary = drill_measure.write_summary(w, since=t0)
    assert summary["worst_host"] == "staging-app-1" and summary["downtime_s"] == 4.0
    assert summary["by_host"]["staging-app-2"] == {"attempts": 6, "acknowledged": 6, "failed": 0, "downtime_s": 0}
    assert drill_measure.blast_radius(summary, ["staging-app-1"]) == []
    assert drill_measure.blast_radius(summary, ["staging-app-2"]) == [
        "blast radius: staging-app-1 (not faulted) failed 4 of 6 write(s), down 4.0 s"]

    ok = good_run(writes=w, present_ids=[x["id"] for x in w if x["id"]], facts={"fault_app_hosts": ["staging-app-1"]})
    entry = evaluate(scenario("app_crash"), ok)
    assert entry["status"] == "passed", entry["deviations"]
    assert entry["blast_radius"] == {"faulted": ["staging-app-1"], "spared": ["staging-app-2"]}
    wrong = dict(ok, facts={"fault_app_hosts": ["staging-app-2"]})
    entry = evaluate(scenario("app_crash"), wrong)
    assert entry["status"] == "failed" and any(d.startswith("blast radius: staging-app-1") for d in entry["deviations"])


def test_a_network_fault_detected_as_database_down_fails_on_its_cause():
    run = good_run(detection={"status": "detected", "detected_at": at(4), "p_level": "P0", "scenarios": [2],
                              "cause": {"id": "dependency_unreachable", "line": "PostgreSQL does not answer"}})
    entry = evaluate(scenario("network_partition"), run)
    assert entry["status"] == "failed"
    assert any(d.startswith("cause dependency_unreachable (PostgreSQL does not answer), expected network_partition")
               for d in entry["deviations"])
    run["detection"]["cause"] = {"id": "network_partition", "line": "The network between app hosts ..."}
    assert evaluate(scenario("network_partition"), run)["status"] == "passed"


def test_detection_keeps_the_diagnosis_cause(tmp_path):
    diag = {"classification": {"severity": "P0", "scenarios": [2], "findings": [
        {"id": "users_read_failing", "severity": "P1", "scenario": 2, "summary": "no route"}],
        "cause": {"id": "network_partition", "line": "The network between app hosts a, b and db host c is cut"}}}
    assert drill_run.judge(diag)["cause"] == {"id": "network_partition",
                                              "line": "The network between app hosts a, b and db host c is cut"}
    assert drill_run.judge(diag, ignore=["host_cpu_high"])["cause"]["id"] == "network_partition"
    assert drill_run.playbook_argv("ansible-playbook", "p.yml", ["inv"], limit=["a", "b"])[-2:] == ["--limit", "a,b"]


def test_heal_step_is_in_the_timeline_order():
    steps = drill_journal.STEPS
    assert steps.index("detect") < steps.index("heal") < steps.index("recover")
    assert drill_catalog.SCENARIOS["network_partition"]["heal"] and drill_catalog.SCENARIOS["network_latency"]["heal"]


def test_slow_answer_is_seen_only_over_the_bound():
    spec = {"url": "http://x/health", "status": [200], "slower_than_s": 1.0}
    fast = drill_effect.look_http(spec, fetch=lambda *a, **k: {"status": 200, "body": "ok", "time_total_s": 0.01,
                                                               "error": None})
    slow = drill_effect.look_http(spec, fetch=lambda *a, **k: {"status": 200, "body": "ok", "time_total_s": 1.7,
                                                               "error": None})
    assert fast[0] is False and "in 0.01 s" in fast[1]
    assert slow[0] is True and "in 1.70 s" in slow[1]


class _Count(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"id": self.server.port_id}).encode()
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_writer_spreads_its_writes_over_the_app_hosts(tmp_path):
    servers = []
    for n in (1, 2):
        srv = HTTPServer(("127.0.0.1", 0), _Count)
        srv.port_id = n
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    log = tmp_path / "writes.jsonl"
    argv = [sys.executable, str(WRITER), "--log", str(log), "--stop", str(tmp_path / "stop"), "--interval", "0.01",
            "--max-seconds", "0.5"] + ["--url=app-%d=http://127.0.0.1:%d" % (n + 1, s.server_port)
                                       for n, s in enumerate(servers)]
    subprocess.run(argv, check=True, timeout=30)
    for srv in servers:
        srv.shutdown()
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["host"] for r in rows} == {"app-1", "app-2"}
    assert all(r["status"] == 201 and r["id"] == int(r["host"][-1]) for r in rows)


def test_ignoring_baseline_host_load_keeps_the_users_impact_level():
    """A loaded machine's host_cpu_high is left out; the P0 from what users lose (no finding is P0) stays."""
    diag = {"classification": {"severity": "P0", "scenarios": [2, 4], "impact": {"level": "P0"}, "findings": [
        {"id": "users_read_failing", "severity": "P1", "scenario": 2, "summary": "no route"},
        {"id": "host_cpu_high", "severity": "P3", "scenario": 4, "summary": "CPU 100 %"}]}}
    judged = drill_run.judge(diag, ignore=["host_cpu_high"])
    assert (judged["p_level"], judged["scenarios"], judged["ignored"]) == ("P0", [2], ["host_cpu_high"])
    only_load = {"classification": {"severity": "P3", "impact": {"level": None}, "findings": [
        {"id": "host_cpu_high", "severity": "P3", "scenario": 4}]}}
    assert drill_run.judge(only_load, ignore=["host_cpu_high"])["p_level"] is None
