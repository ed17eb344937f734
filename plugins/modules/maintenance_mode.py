#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: maintenance_mode
short_description: Take the app out of service (maintenance flag file) and back
version_added: "0.1.0"
description:
  - Creates or removes the maintenance flag file. While it exists the sandbox app answers every
    request with 503 and C(Retry-After); in production the front nginx does the same (see the
    collection's C(docs/maintenance.md)).
  - The file holds a JSON record, reason, since (UTC) and retry_after. It is created atomically.
    V(on) leaves an existing flag as it is (reports no change).
options:
  state:
    description: V(on) takes the app out of service, V(off) puts it back.
    type: str
    choices: ["on", "off"]
    required: true
  path:
    description: The flag file (the site model's C(hb_app_maintenance_flag)).
    type: path
    required: true
  reason:
    description: Why, recorded in the flag.
    type: str
    default: maintenance
  retry_after:
    description: Seconds clients are told to wait, recorded in the flag (nginx sends its own configured value).
    type: int
    default: 60
  expect_url:
    description:
      - After the change, ask this URL (on the host the task runs on) until it answers O(expect_status), and fail
        if it does not within O(expect_timeout) seconds - the check that the flag took effect (the proxy's 503
        page) or that the app serves again (C(/health) 200), in the same call. Skipped in check mode.
    type: str
  expect_status:
    description: The HTTP status O(expect_url) must answer (default 503 for V(on), 200 for V(off)).
    type: int
  expect_header:
    description: A response header that must come with O(expect_status), e.g. C(Retry-After).
    type: str
  expect_timeout:
    description: Seconds to keep asking O(expect_url) (every 0.1 s).
    type: float
    default: 10
notes:
  - Supports check mode and diff mode.
author:
  - Health Butler SRE (@healthbutler)
"""

EXAMPLES = r"""
- name: Take the app out of service during a restore
  healthbutler.recovery.maintenance_mode:
    state: "on"
    path: /app/maintenance.flag
    reason: restoring health_butler from the 03:00 dump

- name: Back in service
  healthbutler.recovery.maintenance_mode:
    state: "off"
    path: /app/maintenance.flag

- name: Back in service, and wait (up to 60 s) until /health answers 200
  healthbutler.recovery.maintenance_mode:
    state: "off"
    path: /app/maintenance.flag
    expect_url: http://127.0.0.1:3000/health
    expect_timeout: 60
"""

RETURN = r"""
enabled:
  description: Whether the flag exists after the task.
  returned: always
  type: bool
flag:
  description: The flag's record (reason, since, retry_after), null when off.
  returned: always
  type: dict
previous:
  description: The record before the task, null when there was none.
  returned: always
  type: dict
answer:
  description: What O(expect_url) answered (status, headers, waited_s, tries).
  returned: when O(expect_url) is given and not in check mode
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url

from ansible_collections.healthbutler.recovery.plugins.module_utils.maintenance import (
    flag_record,
    plan,
    read_flag,
    remove_flag,
    wait_for_answer,
    write_flag,
)


def fetcher(url):
    """(status, headers) of one GET of ``url``, None when nothing answers."""
    def fetch():
        try:
            resp = open_url(url, timeout=2, follow_redirects="none")
        except HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()}
        except (URLError, OSError, ValueError):
            return None
        try:
            return resp.getcode(), {k.lower(): v for k, v in resp.headers.items()}
        finally:
            resp.close()
    return fetch


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", required=True, choices=["on", "off"]),
            path=dict(type="path", required=True),
            reason=dict(type="str", default="maintenance"),
            retry_after=dict(type="int", default=60),
            expect_url=dict(type="str"),
            expect_status=dict(type="int"),
            expect_header=dict(type="str"),
            expect_timeout=dict(type="float", default=10),
        ),
        supports_check_mode=True,
    )
    p = module.params
    current = read_flag(p["path"])
    action = plan(p["state"], current)
    record = flag_record(p["reason"], p["retry_after"]) if action == "write" else current
    if action == "remove":
        record = None
    result = dict(changed=bool(action), previous=current, flag=record, enabled=record is not None)
    if action:
        result["diff"] = {"before": "%s\n" % ("on" if current is not None else "off"),
                          "after": "%s\n" % p["state"], "before_header": p["path"], "after_header": p["path"]}
    if action and not module.check_mode:
        try:
            if action == "write":
                write_flag(p["path"], record)
            else:
                remove_flag(p["path"])
        except OSError as exc:
            module.fail_json(msg="cannot %s %s: %s" % (action, p["path"], exc), **result)
    if module.check_mode:
        result["enabled"] = current is not None if not action else p["state"] == "on"
    elif p["expect_url"]:
        status = p["expect_status"] or (503 if p["state"] == "on" else 200)
        try:
            result["answer"] = wait_for_answer(fetcher(p["expect_url"]), status, p["expect_header"],
                                               timeout=p["expect_timeout"])
        except TimeoutError as exc:
            module.fail_json(msg="maintenance %s: %s answered not as expected: %s" % (p["state"], p["expect_url"], exc),
                             **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
