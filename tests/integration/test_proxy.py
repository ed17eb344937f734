"""nginx in front of the app: maintenance at the proxy and gradual traffic (restore_traffic.yml).

Real nginx started by the sandbox on 54000+offset, real app under PM2; the playbook sends its own probe
requests through the proxy during each window (docs/restore-traffic.md).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import pytest
from harness import run_playbook
from rollback_helpers import build_and_restart, commit_release, reset_app

from ansible_collections.healthbutler.recovery.plugins.module_utils import proxy_traffic as pt

FAILING = "v1.1.1-flaky"
GATE = {"window": 3, "probe_requests": 400, "probe_path": "/api/version", "max_error_rate": 5,
        "max_p95_ms": 2000}


def proxy(sandbox, path="/health"):
    """(status, headers, body) of a request through the proxy; status 0 when nothing answers."""
    url = "http://127.0.0.1:%s%s" % (sandbox["hb_proxy_port"], path)
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, {}, ""


def read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def proxy_flag(sandbox):
    return os.path.join(sandbox["hb_proxy_dir"], "maintenance.flag")


def open_proxy(sandbox):
    """Every request to the app at the proxy, no maintenance flag on either side (test set-up, not under test)."""
    for flag in (proxy_flag(sandbox), sandbox["hb_app_maintenance_flag"]):
        if os.path.exists(flag):
            os.unlink(flag)
    path = os.path.join(sandbox["hb_proxy_dir"], "traffic.conf")
    text = pt.render(100, [sandbox["hb_app_upstream"]])
    if read(path) != text:
        pt.write_atomic(path, text)
        assert pt.reload(sandbox["hb_proxy_pid_file"])


@pytest.fixture
def at_the_proxy(healthy):
    """A healthy sandbox whose proxy gives the app every request, before and after."""
    open_proxy(healthy)
    yield healthy
    reset_app(healthy, extra_tags=[FAILING])
    if healthy.pm2_process()["pm2_env"]["status"] != "online":
        healthy.pm2("start", healthy["hb_app_name"])
    open_proxy(healthy)
    healthy.wait_health(200)


def test_app_killed_and_maintenance_on_users_get_the_page_then_200_when_off(at_the_proxy):
    box = at_the_proxy
    assert box.pm2("stop", box["hb_app_name"]).returncode == 0
    assert box.http("/health")[0] == 0  # the app is really gone: nothing answers on its port

    on = run_playbook("maintenance.yml", {"maintenance_state": "on"})
    assert on.rc == 0, on.stdout[-3000:]
    for path in ("/", "/health", "/api/health-data"):
        status, headers, body = proxy(box, path)
        assert status == 503, (path, status, body)
        assert headers.get("Retry-After") == "60"
        assert "系统维护中" in body and "under maintenance" in body
    assert os.path.exists(proxy_flag(box))

    assert box.pm2("start", box["hb_app_name"]).returncode == 0
    box.wait_health(503)  # the app-side flag is the second layer
    off = run_playbook("maintenance.yml", {"maintenance_state": "off"})
    assert off.rc == 0, off.stdout[-3000:]
    status, _headers, body = proxy(box, "/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert not os.path.exists(proxy_flag(box))


def test_restore_traffic_stops_at_the_first_step_against_a_release_failing_30_percent(at_the_proxy, run_dir):
    box = at_the_proxy
    commit_release(box, FAILING, build={"FAIL_RATE": 0.3})
    build_and_restart(box)
    box.wait_health(200)  # healthy by /health: only users' requests fail
    assert run_playbook("maintenance.yml", {"maintenance_state": "on"}).rc == 0

    run = run_playbook("restore_traffic.yml", dict(GATE, run_dir=run_dir))
    assert run.rc != 0
    assert "stopped at 10 %" in run.stdout and "is over max_error_rate 5" in run.stdout

    with open(os.path.join(run_dir, "traffic.json"), encoding="utf-8") as fh:
        record = json.load(fh)
    assert [s["percent"] for s in record["steps"]] == [10]
    step = record["steps"][0]
    assert not step["passed"]
    assert step["figures"]["app_requests"] >= 20
    assert step["figures"]["error_rate_pct"] > 5  # about 30 % of the app's answers were 500
    assert "%.2f %%" % step["figures"]["error_rate_pct"] in run.stdout
    assert record["outcome"] == "back to maintenance at 10 %"

    assert os.path.exists(proxy_flag(box))
    status, headers, _body = proxy(box, "/api/version")
    assert status == 503 and headers.get("Retry-After") == "60"


def test_restore_traffic_reaches_100_percent_with_every_step_recorded(at_the_proxy, run_dir):
    box = at_the_proxy
    assert run_playbook("maintenance.yml", {"maintenance_state": "on"}).rc == 0
    assert proxy(box, "/api/version")[0] == 503

    run = run_playbook("restore_traffic.yml", dict(GATE, run_dir=run_dir))
    assert run.rc == 0, run.stdout[-4000:]

    with open(os.path.join(run_dir, "traffic.json"), encoding="utf-8") as fh:
        record = json.load(fh)
    assert record["outcome"] == "100 %"
    assert [s["percent"] for s in record["steps"]] == [10, 50, 100]
    shares = []
    for step in record["steps"]:
        fig = step["figures"]
        assert step["passed"] and fig["errors_5xx"] == 0 and fig["p95_ms"] is not None
        shares.append(fig["app_requests"] / fig["requests"])
    assert shares[0] < 0.25 and 0.3 < shares[1] < 0.7 and shares[2] == 1.0  # the split is nginx's
    assert not os.path.exists(proxy_flag(box))
    assert not os.path.exists(box["hb_app_maintenance_flag"])
    assert proxy(box, "/api/version")[0] == 200


def test_restore_traffic_names_bad_steps_before_any_change(at_the_proxy):
    box = at_the_proxy
    before = read(os.path.join(box["hb_proxy_dir"], "traffic.conf"))
    run = run_playbook("restore_traffic.yml", {"steps": "50,10"})
    assert run.rc != 0
    assert "steps: 50,10 must rise and end at 100, e.g. 10,50,100" in run.stdout
    assert read(os.path.join(box["hb_proxy_dir"], "traffic.conf")) == before
    assert proxy(box, "/health")[0] == 200


def test_maintenance_off_with_gradual_traffic_gives_it_back_in_steps(at_the_proxy, run_dir):
    box = at_the_proxy
    assert run_playbook("maintenance.yml", {"maintenance_state": "on"}).rc == 0
    assert proxy(box, "/api/version")[0] == 503
    off = run_playbook("maintenance.yml", dict(GATE, maintenance_state="off", restore_traffic="gradual",
                                               run_dir=run_dir))
    assert off.rc == 0, off.stdout[-4000:]
    with open(os.path.join(run_dir, "traffic.json"), encoding="utf-8") as fh:
        record = json.load(fh)
    assert [s["percent"] for s in record["steps"]] == [10, 50, 100] and record["outcome"] == "100 %"
    assert all(s["passed"] for s in record["steps"])
    assert not os.path.exists(proxy_flag(box)) and not os.path.exists(box["hb_app_maintenance_flag"])
    assert proxy(box, "/api/version")[0] == 200
