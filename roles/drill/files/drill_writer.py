"""Drill writer: POST one row to the app's /api/health-data every interval and log every attempt.

With several app hosts (``--url host=URL`` repeated) the writes go to each in turn, as a load balancer
would spread them. One JSON line per attempt: {"t": epoch s, "host": label, "status": HTTP status
(0: nothing answered), "id": row id or null, "ms": latency}. An acknowledged write is a 201 with an id.
Stops when the stop file appears or after --max-seconds. Standard library only.
"""

import argparse
import json
import os
import time
import urllib.error
import urllib.request


def attempt(url, seq, timeout):
    body = json.dumps({"user_id": 1, "metric": "drill_write", "value": seq}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, OSError, ValueError):
        return 0, None
    try:
        row_id = json.loads(text).get("id")
    except (ValueError, AttributeError):
        row_id = None
    return status, (int(row_id) if status == 201 and row_id is not None else None)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True, action="append",
                    help="base URL of the app, e.g. http://127.0.0.1:3000, or host=URL; repeat for each app host")
    ap.add_argument("--log", required=True)
    ap.add_argument("--stop", required=True, help="stop when this file exists")
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--max-seconds", type=float, default=1800)
    args = ap.parse_args()
    targets = []
    for given in args.url:
        host, _sep, base = given.partition("=") if "=" in given.split("://")[0] else ("", "", given)
        targets.append((host or base, base.rstrip("/") + "/api/health-data"))
    deadline = time.monotonic() + args.max_seconds
    seq = 0
    with open(args.log, "a", encoding="utf-8") as log:
        while not os.path.exists(args.stop) and time.monotonic() < deadline:
            host, url = targets[seq % len(targets)]
            seq += 1
            started, t0 = time.time(), time.monotonic()
            status, row_id = attempt(url, seq, args.timeout)
            elapsed = time.monotonic() - t0
            log.write(json.dumps({"t": round(started, 3), "host": host, "status": status, "id": row_id,
                                  "ms": round(elapsed * 1000, 1)}) + "\n")
            log.flush()
            time.sleep(max(args.interval - elapsed, 0.0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
