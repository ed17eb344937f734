"""proxy_traffic: the split include, access-log figures, the step gate, the steps, the probes."""

import pytest
from fakes import Clock

from ansible_collections.healthbutler.recovery.plugins.module_utils import proxy_traffic as pt
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import RecoveryError


@pytest.mark.parametrize("given,expected", [
    ("10,50,100", [10, 50, 100]), ([25, 100], [25, 100]), ("100", [100]), ("10%, 100%", [10, 100]),
])
def test_steps(given, expected):
    assert pt.parse_steps(given) == expected


@pytest.mark.parametrize("given,message", [
    ("50,10", "steps: 50,10 must rise and end at 100, e.g. 10,50,100"),
    ("10,50", "steps: 10,50 must rise and end at 100"),
    ("10,ten,100", "steps: 'ten' is not a percentage"),
    ("0,100", "steps: '0' is not a percentage"),
    ([10, 150], "steps: 150 is not a percentage"),
])
def test_bad_steps_are_named(given, message):
    with pytest.raises(RecoveryError, match=message.replace("(", r"\(")):
        pt.parse_steps(given)


def test_render_a_step_sends_the_share_to_the_app_and_the_rest_to_maintenance():
    text = pt.render(10, ["10.0.1.11:3000"])
    assert "upstream hb_app {\n    server 10.0.1.11:3000;\n}" in text
    assert 'split_clients "$request_id" $hb_route {\n    10% app;\n    * maintenance;\n}' in text
    assert pt.current_percent(text) == 10


@pytest.mark.parametrize("percent,line", [(100, "    * app;"), (0, "    * maintenance;")])
def test_render_the_ends(percent, line):
    text = pt.render(percent, ["a:1", "b:2"])
    assert line in text and "%" not in text.split("split_clients")[1]
    assert "server a:1;\n    server b:2;" in text


@pytest.mark.parametrize("args,message", [
    ((101, ["a:1"]), "percent: 101"), ((10, []), "upstreams: at least one"),
    ((10, ["a"]), "upstreams: 'a' is not host:port"), ((10, ["a:1"], '$x"; }'), "split_key"),
])
def test_render_refuses_bad_input(args, message):
    with pytest.raises(RecoveryError, match=message):
        pt.render(*args)


def test_nginx_test_argv():
    assert pt.nginx_test_argv("/usr/sbin/nginx") == ["/usr/sbin/nginx", "-t", "-q"]
    assert pt.nginx_test_argv("nginx", "/p/nginx.conf", "/p") == ["nginx", "-t", "-q", "-p", "/p", "-e",
                                                                  "/p/error.log", "-c", "/p/nginx.conf"]


LOG = [
    '100.0 200 0.010 127.0.0.1:3000 app "GET /health"',
    '100.1 503 0.000 - maintenance "GET /health"',
    '100.2 500 0.020 127.0.0.1:3000 app "GET /api/version"',
    '100.3 200 0.030 127.0.0.1:3001 app "GET /api/version"',
    '100.4 502 0.001 127.0.0.1:3000 app "GET /"',
    'garbage',
    '',
    '99.0 500 9.999 127.0.0.1:3000 app "GET /old"',
]


def test_window_figures_count_the_app_apart_from_the_maintenance_page():
    fig = pt.window_figures(LOG, since=100.0)
    assert fig["requests"] == 5 and fig["app_requests"] == 4 and fig["maintenance_503"] == 1
    assert fig["errors_5xx"] == 2 and fig["error_rate_pct"] == 50.0
    assert fig["p95_ms"] == 30.0
    assert fig["by_upstream"] == {"127.0.0.1:3000": {"requests": 3, "errors_5xx": 2},
                                  "127.0.0.1:3001": {"requests": 1, "errors_5xx": 0}}
    assert fig["unparsed_lines"] == 1


def test_percentile_nearest_rank():
    assert pt.percentile(list(range(1, 101)), 95) == 95
    assert pt.percentile([5], 95) == 5
    assert pt.percentile([], 95) is None


@pytest.mark.parametrize("figures,passed,reason", [
    ({"app_requests": 40, "errors_5xx": 0, "error_rate_pct": 0.0, "p95_ms": 12.0}, True, None),
    ({"app_requests": 40, "errors_5xx": 12, "error_rate_pct": 30.0, "p95_ms": 12.0}, False,
     "error rate 30.00 % (12 of 40 requests 5xx) is over max_error_rate 5 %"),
    ({"app_requests": 40, "errors_5xx": 0, "error_rate_pct": 0.0, "p95_ms": 2500.0}, False,
     "p95 latency 2500.0 ms is over max_p95_ms 1000 ms"),
    ({"app_requests": 3, "errors_5xx": 0, "error_rate_pct": 0.0, "p95_ms": 1.0}, False,
     "only 3 requests reached the app in the window (min_requests 20): too few to judge"),
])
def test_judge(figures, passed, reason):
    ok, reasons = pt.judge(figures, 5, 1000, 20)
    assert ok is passed
    assert reasons == ([reason] if reason else [])


def test_read_from_an_offset_and_after_rotation(tmp_path):
    log = tmp_path / "access.log"
    log.write_text("a\nb\n")
    offset = pt.log_size(str(log))
    with log.open("a") as fh:
        fh.write("c\n")
    assert pt.read_from(str(log), offset) == ["c"]
    log.write_text("d\n")  # rotated: smaller than the offset
    assert pt.read_from(str(log), offset) == ["d"]
    assert pt.read_from(str(tmp_path / "none"), 0) == []


class FakeResponse:
    def __init__(self, status):
        self.status = status

    def read(self):
        return b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_probes_are_spread_over_the_window_and_counted_by_status():
    clock = Clock()
    asked = []

    def opener(url, timeout):
        asked.append(clock.now)
        if len(asked) % 4 == 0:
            raise OSError("refused")
        return FakeResponse(200)

    statuses = pt.send_probes("http://p/health", 8, 4.0, sleep=clock.sleep, clock=clock, opener=opener)
    assert statuses == {200: 6, 0: 2}
    assert asked == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    assert clock.now == 4.0  # the whole window is waited for


def test_write_atomic_and_read(tmp_path):
    path = tmp_path / "traffic.conf"
    assert pt.read_text(str(path)) is None
    pt.write_atomic(str(path), "x\n")
    assert pt.read_text(str(path)) == "x\n"
    assert [p.name for p in tmp_path.iterdir()] == ["traffic.conf"]
