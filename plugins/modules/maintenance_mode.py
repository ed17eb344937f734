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
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils.maintenance import (
    flag_record,
    plan,
    read_flag,
    remove_flag,
    write_flag,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", required=True, choices=["on", "off"]),
            path=dict(type="path", required=True),
            reason=dict(type="str", default="maintenance"),
            retry_after=dict(type="int", default=60),
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
    module.exit_json(**result)


if __name__ == "__main__":
    main()
