#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: traffic_window
short_description: Error rate and p95 latency at the nginx proxy over a window, against thresholds
version_added: "0.2.0"
description:
  - Watches the proxy's access log (format C(hb_traffic), see the collection's C(docs/restore-traffic.md)) for
    O(window) seconds and computes, over the requests that reached the app, the share answered with 5xx and the
    95th percentile of C($request_time). Requests answered by the maintenance page are counted apart.
  - With O(probe_url) it also sends O(probe_requests) GET requests spread over the window, so that a step can be
    judged when no user traffic is there yet; real users' requests in the same window count as well.
  - It never fails on a breach; it returns RV(passed) and the reasons, and the caller decides.
options:
  access_log:
    description: The proxy's access log in the C(hb_traffic) format.
    type: path
    required: true
  window:
    description: Seconds to watch.
    type: int
    default: 60
  probe_url:
    description: URL (through the proxy) to send probe requests to; empty sends none.
    type: str
    default: ""
  probe_requests:
    description: How many probe requests to send over the window.
    type: int
    default: 200
  probe_timeout:
    description: Seconds one probe request may take.
    type: int
    default: 5
  max_error_rate:
    description: Highest acceptable share of 5xx among the requests the app got, in percent.
    type: float
    default: 1.0
  max_p95_ms:
    description: Highest acceptable p95 latency in milliseconds.
    type: int
    default: 1000
  min_requests:
    description: Fewest requests the app must have had in the window for the figures to count.
    type: int
    default: 20
notes:
  - Sends no probe and waits for nothing under check mode.
author:
  - Health Butler SRE (@healthbutler)
"""

EXAMPLES = r"""
- name: Judge the 10 % step
  healthbutler.recovery.traffic_window:
    access_log: /var/log/nginx/healthbutler.access.log
    window: 60
    probe_url: http://127.0.0.1/health
    max_error_rate: 1
    max_p95_ms: 800
  register: step
"""

RETURN = r"""
figures:
  description:
    - requests, app_requests, errors_5xx, error_rate_pct, p95_ms, maintenance_503, by_upstream, window_s, probes.
  returned: always
  type: dict
passed:
  description: Whether the figures are within the thresholds (false also when too few requests reached the app).
  returned: always
  type: bool
reasons:
  description: What was over, in words with the figures.
  returned: always
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils.proxy_traffic import (
    judge,
    log_size,
    read_from,
    send_probes,
    window_figures,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            access_log=dict(type="path", required=True),
            window=dict(type="int", default=60),
            probe_url=dict(type="str", default=""),
            probe_requests=dict(type="int", default=200),
            probe_timeout=dict(type="int", default=5),
            max_error_rate=dict(type="float", default=1.0),
            max_p95_ms=dict(type="int", default=1000),
            min_requests=dict(type="int", default=20),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["window"] < 1:
        module.fail_json(msg="window: %s must be at least 1 second" % p["window"])
    if module.check_mode:
        module.exit_json(changed=False, passed=True, reasons=[], figures={}, skipped_in_check_mode=True)
    offset = log_size(p["access_log"])
    since = time.time()
    probes = {}
    if p["probe_url"] and p["probe_requests"] > 0:
        probes = send_probes(p["probe_url"], p["probe_requests"], p["window"], timeout=p["probe_timeout"])
    else:
        time.sleep(p["window"])
    until = time.time()
    figures = window_figures(read_from(p["access_log"], offset), since=since - 0.001, until=until + 1)
    figures["window_s"] = round(until - since, 1)
    figures["probes"] = {str(k): v for k, v in sorted(probes.items())}
    passed, reasons = judge(figures, p["max_error_rate"], p["max_p95_ms"], p["min_requests"])
    module.exit_json(changed=False, passed=passed, reasons=reasons, figures=figures)


if __name__ == "__main__":
    main()
