#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: pm2_process
short_description: Start, stop, restart or reload one PM2 app and wait until it is stable
version_added: "0.1.0"
description:
  - Reads the app from C(pm2 jlist) (only the JSON part; PM2 may print text before it) and
    returns a safe summary of it. The app's C(pm2_env), which holds its whole environment, is
    never returned.
  - Waits until the app is C(online) and stable, that is neither its pid nor its restart count
    changes during O(settle) seconds.
  - O(node_args) and O(max_memory_restart) are applied the way the runbook does it, by deleting
    the process, starting it again with the new definition and running C(pm2 save). The new
    definition is the process's own recorded one (script, cwd, logs, restart policy) with the
    new values; its environment is the environment of this module, as with C(pm2 start).
  - If the app is unknown to PM2 the module fails, naming the app and the apps PM2 knows.
options:
  name:
    description: The PM2 app name.
    type: str
    required: true
  state:
    description:
      - V(started) starts the app only when it is not online; V(restarted) and V(reloaded)
        always act; V(stopped) stops it.
    type: str
    choices: [started, stopped, restarted, reloaded]
    default: started
  node_args:
    description:
      - Node.js arguments, for example V(--max-old-space-size=4096). When they differ from the
        running ones the process is re-created. Omit to keep the current ones.
    type: str
  max_memory_restart:
    description: PM2's memory limit (bytes or a number with K, M or G); re-creates the process when it differs.
    type: str
  settle:
    description: Seconds during which the app must not restart for it to count as stable.
    type: int
    default: 5
  ready_url:
    description:
      - When set, the app counts as started only once this URL answers HTTP, whatever the status (the caller
        checks the status it needs; a maintenance 503 is an answer); O(settle) then only confirms that the
        process which answered still runs, so it can be short (1 s).
      - A Node app that crashes on start does so before it listens, so an answer is the sign that startup
        is over; a fixed settle only waits.
    type: str
  timeout:
    description: Seconds to wait for the app to be online and stable (or stopped).
    type: int
    default: 60
  env_file:
    description:
      - A C(.env) file to inspect before any change. Only its keys, and whether each is set,
        are returned; values never leave the host.
    type: path
  required_env_keys:
    description: Keys that must be set in O(env_file); the module fails before any change otherwise.
    type: list
    elements: str
    default: []
  error_log_lines:
    description: Lines of the app's PM2 error log to return (redacted), also on failure.
    type: int
    default: 0
  watch_seconds:
    description: After reaching the state, sample the app's memory for this many seconds and report the trend.
    type: int
    default: 0
  watch_interval:
    description: Seconds between memory samples.
    type: int
    default: 2
extends_documentation_fragment:
  - healthbutler.recovery.pm2
notes:
  - Supports check mode (the planned actions are reported, nothing is changed) and diff mode
    (C(node_args) and C(max_memory_restart) before and after).
author:
  - Health Butler SRE (@healthbutler)
"""

EXAMPLES = r"""
- name: Make sure the app runs, and is stable for 5 s
  healthbutler.recovery.pm2_process:
    name: health-butler
    pm2_home: /home/deploy/.pm2

- name: Raise the heap limit the runbook's way (delete, start with new args, pm2 save)
  healthbutler.recovery.pm2_process:
    name: health-butler
    state: started
    node_args: --max-old-space-size=4096
    watch_seconds: 60
  register: app

- name: Restart, checking the .env keys first
  healthbutler.recovery.pm2_process:
    name: health-butler
    state: restarted
    env_file: /app/.env
    required_env_keys: [DATABASE_URL, REDIS_URL, JWT_SECRET]
    error_log_lines: 50
"""

RETURN = r"""
process:
  description: The app after the change (a safe summary of its jlist entry; no environment).
  returned: success
  type: dict
  contains:
    name: {description: App name., type: str}
    pid: {description: "Process id, 0 when not running.", type: int}
    status: {description: "PM2 status (online, stopped, errored...).", type: str}
    restart_time: {description: Restarts counted by PM2., type: int}
    unstable_restarts: {description: Restarts PM2 judged unstable., type: int}
    memory: {description: Resident memory in bytes., type: int}
    node_args: {description: Node.js arguments., type: list}
    script: {description: The script PM2 runs., type: str}
    cwd: {description: Its working directory., type: str}
  sample: {name: health-butler, pid: 4242, status: online, restart_time: 3, node_args: [--max-old-space-size=4096]}
before:
  description: The app before the change (same shape as RV(process)).
  returned: success
  type: dict
actions:
  description: What was done (or, in check mode, would be done) in order.
  returned: always
  type: list
  elements: str
  sample: [recreate]
env_keys:
  description: Keys of O(env_file) with V(set) or V(empty); values are never returned.
  returned: when O(env_file) is given
  type: dict
  sample: {DATABASE_URL: set, SMS_API_KEY: empty}
error_log_tail:
  description: The last O(error_log_lines) lines of the PM2 error log, with secrets masked.
  returned: when O(error_log_lines) > 0
  type: list
  elements: str
memory_trend:
  description: Memory samples and trend (first, last, peak MB, slope in MB/min, flat/rising/falling).
  returned: when O(watch_seconds) > 0 and not in check mode
  type: dict
"""

import os
from urllib.error import HTTPError, URLError

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import pm2_options
from ansible_collections.healthbutler.recovery.plugins.module_utils.pm2_control import (
    STATES,
    Pm2,
    definition_changes,
    env_file_keys,
    plan,
    tail_file,
)
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import (
    AnsibleRunner,
    RecoveryError,
    fail_from,
)


def show(value):
    return " ".join(value) if isinstance(value, list) else str(value)


def answers(url):
    """The URL answers HTTP at all (any status)."""
    try:
        open_url(url, timeout=2).close()
    except HTTPError:
        return True
    except (URLError, OSError, ValueError):
        return False
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="started", choices=list(STATES)),
            node_args=dict(type="str"),
            max_memory_restart=dict(type="str"),
            **pm2_options(),
            settle=dict(type="int", default=5),
            ready_url=dict(type="str"),
            timeout=dict(type="int", default=60),
            env_file=dict(type="path"),
            required_env_keys=dict(type="list", elements="str", default=[], no_log=False),
            error_log_lines=dict(type="int", default=0),
            watch_seconds=dict(type="int", default=0),
            watch_interval=dict(type="int", default=2),
        ),
        supports_check_mode=True,
    )
    p = module.params
    binary = p["pm2_bin"] if os.sep in p["pm2_bin"] else module.get_bin_path(p["pm2_bin"], required=True)
    pm2 = Pm2(AnsibleRunner(module), binary, p["pm2_home"])
    result = dict(changed=False, actions=[])

    if p["env_file"]:
        if not os.path.isfile(p["env_file"]):
            module.fail_json(msg="env_file %s does not exist" % p["env_file"], **result)
        result["env_keys"] = env_file_keys(p["env_file"])
        missing = [k for k in p["required_env_keys"] if result["env_keys"].get(k) != "set"]
        if missing:
            module.fail_json(msg="%s lacks required keys (absent or empty): %s; nothing was changed"
                             % (p["env_file"], ", ".join(missing)), **result)

    current = None
    try:
        current = pm2.get(p["name"])
        result["before"] = current
        try:
            changes = definition_changes(current, p["node_args"], p["max_memory_restart"])
        except ValueError as exc:
            module.fail_json(msg=str(exc), **result)
        actions = plan(p["state"], current, changes)
        result["actions"] = actions
        result["changed"] = bool(actions)
        if changes:
            result["diff"] = {"before": "".join("%s: %s\n" % (k, show(v[0])) for k, v in changes.items()),
                              "after": "".join("%s: %s\n" % (k, show(v[1])) for k, v in changes.items())}
        if module.check_mode:
            result["process"] = current
        else:
            for action in actions:
                pm2.apply(action, current, changes)
            if p["state"] == "stopped":
                result["process"] = pm2.wait_stopped(p["name"], p["timeout"])
            else:
                ready = (lambda: answers(p["ready_url"])) if p["ready_url"] else None
                result["process"] = pm2.wait_stable(p["name"], p["settle"], p["timeout"], ready)
                if p["watch_seconds"] > 0:
                    result["memory_trend"] = pm2.watch_memory(p["name"], p["watch_seconds"], p["watch_interval"])
    except RecoveryError as exc:  # a Pm2Error or a failed command
        if current and p["error_log_lines"]:
            result["error_log_tail"] = tail_file(current["error_log"], p["error_log_lines"])
        fail_from(module, exc, result)

    if p["error_log_lines"]:
        result["error_log_tail"] = tail_file(result["process"]["error_log"], p["error_log_lines"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
