#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: pg_cluster
short_description: Start, stop, restart or reload one PostgreSQL cluster and wait until it is ready
version_added: "0.1.0"
description:
  - Chooses how to drive the cluster like an operator would, unless O(method) forces one,
    C(systemd) when PID 1 is systemd, else C(pg_ctlcluster) when C(pg_lsclusters) lists a Debian
    cluster with this data directory, else C(pg_ctl -D).
  - C(pg_ctl), C(pg_isready) and C(psql) over the socket run as O(pg_os_user) (through C(runuser)
    when the module runs as root; PostgreSQL refuses to run as root).
  - V(started) also restarts a server that runs but does not accept connections within
    O(timeout) seconds.
  - Waits until the server is ready, C(pg_isready) and a real query, and returns what that
    query reports, version, data directory, port, recovery state and connection counts.
options:
  state:
    description: Desired state.
    type: str
    choices: [started, stopped, restarted]
    default: started
  reload:
    description: With V(started) and a running server, reload its configuration (always reports a change).
    type: bool
    default: false
  method:
    description: How to drive the cluster; V(auto) detects it.
    type: str
    choices: [auto, systemd, pg_ctlcluster, pg_ctl]
    default: auto
  data_dir:
    description: The cluster's data directory.
    type: path
    required: true
  pg_bindir:
    description:
      - Directory of C(pg_ctl), C(pg_isready) and C(psql) (C(hb_pg_bindir)); looked up on C(PATH) when omitted.
    required: false
  pg_socket_dir:
    description:
      - The server's Unix socket directory (C(hb_pg_socket_dir)), peer authentication as O(pg_os_user);
        the client default when omitted.
    required: false
  systemd_unit:
    description:
      - The unit for V(systemd).
      - Default C(postgresql@<version>-<cluster>) for a Debian cluster, else C(postgresql).
    type: str
  log_file:
    description: C(pg_ctl -l) file for server output before the logging collector starts.
    type: path
  stop_mode:
    description: Shutdown mode of C(pg_ctl).
    type: str
    choices: [smart, fast, immediate]
    default: fast
  timeout:
    description: Seconds to wait for readiness (and, for V(started), for a running server to accept connections).
    type: int
    default: 60
extends_documentation_fragment:
  - healthbutler.recovery.postgres
notes:
  - Supports check mode, the planned actions are reported and nothing is changed.
  - O(pg_bindir), O(pg_port), O(pg_socket_dir) and O(pg_os_user) were C(bindir), C(port), C(socket_dir) and
    C(os_user); the old names stay as aliases.
author:
  - Health Butler SRE (@healthbutler)
"""

EXAMPLES = r"""
- name: Make sure PostgreSQL runs and answers a query (method auto-detected)
  healthbutler.recovery.pg_cluster:
    data_dir: /var/lib/postgresql/14/main
    pg_bindir: /usr/lib/postgresql/14/bin
    pg_socket_dir: /var/run/postgresql
  become: true

- name: Restart through pg_ctl even on a systemd host
  healthbutler.recovery.pg_cluster:
    state: restarted
    method: pg_ctl
    data_dir: /srv/pg/data
    pg_port: 55432
    pg_socket_dir: /srv/pg/run
    log_file: /srv/pg/log/startup.log
"""

RETURN = r"""
method:
  description: The method used (or that would be used).
  returned: always
  type: str
  sample: pg_ctl
actions:
  description: Actions done, or planned in check mode (start, stop, restart, reload).
  returned: always
  type: list
  elements: str
running_before:
  description: Whether the server ran before.
  returned: always
  type: bool
accepting_before:
  description: Whether it accepted connections before.
  returned: always
  type: bool
version:
  description: C(server_version).
  returned: when the server is up at the end
  type: str
  sample: "15.18"
data_directory:
  description: The data directory the server reports.
  returned: when the server is up at the end
  type: str
port:
  description: The port the server reports.
  returned: when the server is up at the end
  type: int
in_recovery:
  description: Whether the server is in recovery (a standby or a PITR in progress).
  returned: when the server is up at the end
  type: bool
connections:
  description: max, reserved, total client connections, saturation (total / (max - reserved)), by_state and by_user.
  returned: when the server is up at the end
  type: dict
  sample: {max: 30, reserved: 3, total: 4, by_state: {idle: 3, active: 1}, by_user: {health_butler: 3, postgres: 1}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import postgres_server
from ansible_collections.healthbutler.recovery.plugins.module_utils.pg_control import (
    Cluster,
    PgControlError,
    choose_method,
    debian_cluster,
    pid1_is_systemd,
    plan,
)
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import (
    AnsibleRunner,
    RecoveryError,
    fail_from,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="started", choices=["started", "stopped", "restarted"]),
            reload=dict(type="bool", default=False),
            method=dict(type="str", default="auto", choices=["auto", "systemd", "pg_ctlcluster", "pg_ctl"]),
            data_dir=dict(type="path", required=True),
            **postgres_server(required=False),
            systemd_unit=dict(type="str"),
            log_file=dict(type="path"),
            stop_mode=dict(type="str", default="fast", choices=["smart", "fast", "immediate"]),
            timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    p = module.params
    runner = AnsibleRunner(module)
    result = dict(changed=False, actions=[])
    try:
        lsclusters = module.get_bin_path("pg_lsclusters")
        debian = debian_cluster(runner, p["data_dir"], lsclusters) if lsclusters else None
        method = choose_method(p["method"], pid1_is_systemd(), debian)
        result["method"] = method
        cluster = Cluster(runner, p["data_dir"], p["pg_bindir"], p["pg_port"], p["pg_socket_dir"], p["pg_os_user"],
                          method, debian, p["systemd_unit"], p["log_file"], p["stop_mode"])
        running = cluster.running()
        accepting = running and cluster.accepting()
        if running and not accepting and p["state"] == "started" and not module.check_mode:
            # Starting up or recovering? Give it the timeout before deciding to restart.
            try:
                cluster.wait_ready(p["timeout"])
                accepting = True
            except PgControlError as exc:
                result["not_ready_reason"] = exc.msg
        result.update(running_before=running, accepting_before=accepting)
        actions = plan(p["state"], running, accepting, p["reload"])
        result["actions"] = actions
        result["changed"] = bool(actions)
        if not module.check_mode:
            for action in actions:
                cluster.apply(action)
            if p["state"] != "stopped":
                result.update(cluster.wait_ready(p["timeout"]))
        elif accepting:
            result.update(cluster.info())
    except RecoveryError as exc:
        fail_from(module, exc, result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
