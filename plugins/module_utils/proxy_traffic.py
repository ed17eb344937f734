# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Traffic at the nginx proxy: the split include, the access-log figures, the step gate.

nginx includes one file (``traffic.conf``) that this code writes: the ``hb_app`` upstream
(the app hosts getting traffic at this step) and a ``split_clients`` block that sends a share
of requests to the app and the rest to the maintenance page. Each request is logged as
``$msec $status $request_time $upstream_addr $hb_route "$request_method $uri"``;
``window_figures`` reads the lines of a window and ``judge`` compares them with thresholds.
"""

from __future__ import annotations

import math
import os
import re
import signal
import tempfile
import time

from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import RecoveryError

UPSTREAM_RE = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}$")
SPLIT_KEY_RE = re.compile(r'^[^"{};\s]+$')
LOG_RE = re.compile(r'^(?P<msec>[0-9.]+) (?P<status>[0-9]{3}) (?P<rt>[0-9.]+|-) (?P<upstream>\S+) (?P<route>\S+)')


def parse_steps(value):
    """Steps as the user typed them (list or "10,50,100") -> ascending ints ending at 100."""
    if isinstance(value, str):
        items = [v.strip() for v in value.replace(" ", ",").split(",") if v.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    steps = []
    for item in items:
        try:
            step = int(str(item).rstrip("%"))
        except ValueError:
            step = None
        if step is None or not 0 < step <= 100:
            raise RecoveryError("steps: %r is not a percentage; give ascending whole percentages ending at 100, "
                                "e.g. 10,50,100" % (item,))
        steps.append(step)
    if not steps or steps[-1] != 100 or any(b <= a for a, b in zip(steps, steps[1:])):
        raise RecoveryError("steps: %s must rise and end at 100, e.g. 10,50,100" % ",".join(map(str, steps)))
    return steps


def check_upstreams(upstreams):
    if not upstreams:
        raise RecoveryError("upstreams: at least one app host:port is needed")
    for item in upstreams:
        if not UPSTREAM_RE.match(str(item)):
            raise RecoveryError("upstreams: %r is not host:port (e.g. 10.0.0.5:3000)" % (item,))


def render(percent, upstreams, split_key="$request_id"):
    """The text of traffic.conf: ``percent`` % of requests to the ``upstreams``, the rest to maintenance."""
    if not isinstance(percent, int) or not 0 <= percent <= 100:
        raise RecoveryError("percent: %r must be a whole number from 0 to 100" % (percent,))
    check_upstreams(upstreams)
    if not SPLIT_KEY_RE.match(split_key or ""):
        raise RecoveryError("split_key: %r must be nginx variables without quotes, braces or spaces, "
                            "e.g. $request_id or $remote_addr$http_user_agent" % (split_key,))
    lines = ["# Written by healthbutler.recovery.proxy_traffic: %d %% of requests to %s." % (
        percent, ", ".join(upstreams)), "upstream hb_app {"]
    lines += ["    server %s;" % u for u in upstreams]
    lines += ["}", 'split_clients "%s" $hb_route {' % split_key]
    if percent == 100:
        lines.append("    * app;")
    elif percent == 0:
        lines.append("    * maintenance;")
    else:
        lines += ["    %d%% app;" % percent, "    * maintenance;"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def current_percent(text):
    """The share a traffic.conf written by ``render`` gives the app (None when unknown)."""
    if text is None:
        return None
    m = re.search(r"^# Written by healthbutler\.recovery\.proxy_traffic: (\d+) %", text, re.M)
    return int(m.group(1)) if m else None


def write_atomic(path, text, mode=0o644):
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".traffic-", dir=directory)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_text(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def nginx_test_argv(nginx_bin, conf=None, prefix=None):
    argv = [nginx_bin, "-t", "-q"]
    if prefix:
        argv += ["-p", prefix, "-e", os.path.join(prefix, "error.log")]
    if conf:
        argv += ["-c", conf]
    return argv


def master_pid(pid_file):
    try:
        with open(pid_file, encoding="utf-8") as fh:
            pid = int(fh.read().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


def children(pid):
    """PIDs whose parent is ``pid`` (the nginx workers of a master)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, encoding="utf-8") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(name))
        except (OSError, IndexError, ValueError):
            continue
    return out


def reload(pid_file, wait_s=10.0, sleep=time.sleep, clock=time.monotonic):
    """SIGHUP the master; wait until the workers of the old configuration are gone. True when they are."""
    pid = master_pid(pid_file)
    if pid is None:
        raise RecoveryError("nginx is not running: no live pid in %s" % pid_file)
    old = set(children(pid))
    os.kill(pid, signal.SIGHUP)
    deadline = clock() + wait_s
    while clock() < deadline:
        if not old & set(children(pid)):
            return True
        sleep(0.1)
    return False


def parse_line(line):
    """One access-log line -> dict (msec, status, request_time_ms, upstream, route) or None."""
    m = LOG_RE.match(line)
    if not m:
        return None
    rt = m.group("rt")
    return {"msec": float(m.group("msec")), "status": int(m.group("status")),
            "request_time_ms": None if rt == "-" else round(float(rt) * 1000, 1),
            "upstream": m.group("upstream"), "route": m.group("route")}


def percentile(values, pct):
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(math.ceil(pct / 100.0 * len(ordered))))
    return ordered[rank - 1]


def window_figures(lines, since=None, until=None):
    """Figures of the requests in [since, until]: those the app answered, its 5xx share, p95 in ms."""
    total = app = errors = maintenance = unparsed = 0
    times = []
    by_upstream = {}
    for line in lines:
        rec = parse_line(line)
        if rec is None:
            unparsed += 1 if line.strip() else 0
            continue
        if (since is not None and rec["msec"] < since) or (until is not None and rec["msec"] > until):
            continue
        total += 1
        if rec["upstream"] == "-":
            maintenance += rec["status"] == 503
            continue
        app += 1
        by_upstream.setdefault(rec["upstream"], {"requests": 0, "errors_5xx": 0})
        by_upstream[rec["upstream"]]["requests"] += 1
        if rec["status"] >= 500:
            errors += 1
            by_upstream[rec["upstream"]]["errors_5xx"] += 1
        if rec["request_time_ms"] is not None:
            times.append(rec["request_time_ms"])
    return {"requests": total, "app_requests": app, "errors_5xx": errors,
            "error_rate_pct": round(100.0 * errors / app, 2) if app else None,
            "p95_ms": percentile(times, 95), "maintenance_503": maintenance,
            "by_upstream": by_upstream, "unparsed_lines": unparsed}


def judge(figures, max_error_rate_pct, max_p95_ms, min_requests):
    """(passed, reasons): over a threshold, or too few requests reached the app to judge."""
    reasons = []
    if figures["app_requests"] < min_requests:
        reasons.append("only %d requests reached the app in the window (min_requests %d): too few to judge" % (
            figures["app_requests"], min_requests))
        return False, reasons
    if figures["error_rate_pct"] > max_error_rate_pct:
        reasons.append("error rate %.2f %% (%d of %d requests 5xx) is over max_error_rate %s %%" % (
            figures["error_rate_pct"], figures["errors_5xx"], figures["app_requests"], max_error_rate_pct))
    if figures["p95_ms"] is not None and figures["p95_ms"] > max_p95_ms:
        reasons.append("p95 latency %s ms is over max_p95_ms %s ms" % (figures["p95_ms"], max_p95_ms))
    return not reasons, reasons


def read_from(path, offset):
    """Lines of ``path`` after byte ``offset`` (from the start when the log was rotated)."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return []
    with open(path, "rb") as fh:
        fh.seek(offset if offset <= size else 0)
        return fh.read().decode("utf-8", "replace").splitlines()


def log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def send_probes(url, count, window_s, timeout=5.0, sleep=time.sleep, clock=time.monotonic, opener=None):
    """GET ``url`` ``count`` times spread over ``window_s`` seconds; return {status: n} (0 = no answer)."""
    import urllib.error
    import urllib.request

    # One plain opener for every probe: open_url builds its handlers (and an SSL context) per call, about
    # 36 ms a request on this machine against 1.2 ms, so the probes no longer fitted their window.
    opener = opener or urllib.request.build_opener().open
    statuses = {}
    start = clock()
    interval = float(window_s) / count if count else 0
    for i in range(int(count)):
        due = start + i * interval
        if clock() < due:
            sleep(due - clock())
        if clock() - start > window_s:
            break
        try:
            with opener(url, timeout=timeout) as resp:
                resp.read()
                code = resp.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        except (urllib.error.URLError, OSError):
            code = 0
        statuses[code] = statuses.get(code, 0) + 1
    rest = start + window_s - clock()
    if rest > 0:
        sleep(rest)
    return statuses
