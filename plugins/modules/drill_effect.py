#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_effect
short_description: See that an injected fault took hold (the drill's effect probe)
description:
  - Repeats one look at the system, other than the diagnosis, until it sees the injected fault or its bound
    runs out. Returns what was seen last and when, relative to the injection, either way; it never fails
    because the fault did not appear (the drill role reports that as C(injection_failed)).
  - "Kinds: V(http) (the app's answer: status, body), V(sql) (a statement yielding C({\"seen\": bool,
    \"observation\": str}), or failing with an error matching C(error_regex)), V(pm2_log) (a line in the
    app's PM2 error log), V(files_missing) (files gone), V(checksum) (a file no longer matching its C(.sha256)),
    V(pg_down) (the killed server's PIDs gone and nothing answering on its port)."
  - Read-only; runs the same in check mode.
version_added: "0.2.0"
author:
  - Health Butler SRE (@healthbutler)
extends_documentation_fragment:
  - healthbutler.recovery.pm2
  - healthbutler.recovery.postgres.client
options:
  probe:
    description:
      - The probe, as in the drill catalogue's C(effect) entry. Strings may hold C({name}) placeholders filled
        from O(facts).
      - "Keys by kind: http C(path) or C(url), C(method), C(body), C(status) (list; 0 = nothing answered),
        C(body_regex); sql C(sql), C(error_regex); pm2_log C(regex), C(app); files_missing C(paths), C(root);
        checksum C(path); pg_down C(pids) (space-separated, usually C({killed_pids}))."
    type: dict
    required: true
  facts:
    description: Facts recorded at injection (for example C(corrupted_dump), C(removed_uploads)).
    type: dict
    default: {}
  since:
    description: The injection's start (UTC ISO-8601); the result counts seconds from it.
    type: str
  timeout:
    description: Seconds to keep looking before reporting that the fault was not seen.
    type: float
    default: 30
  interval:
    description: Seconds between looks.
    type: float
    default: 1
  app_url:
    description: Base URL of the app, for http probes given a C(path).
    type: str
  app_name:
    description: The PM2 app name, for pm2_log probes.
    type: str
  uploads_dir:
    description: The app's uploads directory, for files_missing probes.
    type: path
  pg_host:
    description: PostgreSQL host or socket directory, for sql probes.
    type: str
  pg_database:
    description: Database the sql probe runs in.
    type: str
    default: postgres
    aliases: [pg_db]
"""

EXAMPLES = r"""
- name: See that the lock blocks inserts
  healthbutler.recovery.drill_effect:
    probe:
      kind: sql
      sql: "BEGIN; LOCK TABLE health_data IN ROW EXCLUSIVE MODE NOWAIT; ROLLBACK;"
      error_regex: could not obtain lock
    since: "{{ drill_marks.inject_start }}"
    timeout: 20
    pg_host: /var/run/postgresql
    pg_database: health_butler
  become: true
  become_user: postgres
  register: drill_seen
"""

RETURN = r"""
effect:
  description: What the probe saw.
  type: dict
  returned: always
  contains:
    seen: {description: Whether the fault was seen within the bound., type: bool}
    observation: {description: What the last look saw (redacted)., type: str}
    observed_at: {description: When (UTC)., type: str}
    after_injection_s: {description: Seconds from the injection's start to that look., type: float}
    waited_s: {description: Seconds spent looking., type: float}
    attempts: {description: Looks made., type: int}
    bound_s: {description: The bound., type: float}
    kind: {description: The probe's kind., type: str}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_effect as effect
from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import pm2_options, postgres_client
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import Conn
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import AnsibleRunner


def make_look(spec, runner, p):
    kind = spec["kind"]
    if kind == "http":
        return lambda: effect.look_http(spec)
    if kind == "sql":
        conn = Conn(host=p["pg_host"], port=p["pg_port"], dbname=p["pg_database"], bindir=p["pg_bindir"])
        return lambda: effect.look_sql(spec, runner, conn)
    if kind == "pm2_log":
        return lambda: effect.look_pm2_log(spec, runner, p["pm2_bin"], p["pm2_home"])
    if kind == "files_missing":
        return lambda: effect.look_files_missing(spec)
    if kind == "pg_down":
        conn = Conn(host=p["pg_host"], port=p["pg_port"], dbname=p["pg_database"], bindir=p["pg_bindir"])
        return lambda: effect.look_pg_down(spec, runner, conn)
    return lambda: effect.look_checksum(spec)


def main():
    module = AnsibleModule(argument_spec={
        "probe": {"type": "dict", "required": True},
        "facts": {"type": "dict", "default": {}},
        "since": {"type": "str"},
        "timeout": {"type": "float", "default": 30},
        "interval": {"type": "float", "default": 1},
        "app_url": {"type": "str"},
        "app_name": {"type": "str"},
        "uploads_dir": {"type": "path"},
        **pm2_options(),
        **postgres_client(),
        "pg_host": {"type": "str"},
        "pg_database": {"type": "str", "default": "postgres", "aliases": ["pg_db"]},
    }, supports_check_mode=True)
    p = module.params
    try:
        spec = effect.resolve(p["probe"], p["facts"], p["app_url"], p["app_name"], p["uploads_dir"])
    except effect.EffectError as exc:
        module.fail_json(msg="probe: %s" % exc)
    if p["timeout"] <= 0 or p["interval"] <= 0:
        module.fail_json(msg="timeout and interval must be positive seconds (got timeout=%s, interval=%s)"
                         % (p["timeout"], p["interval"]))
    seen = effect.wait_for(make_look(spec, AnsibleRunner(module), p), p["timeout"], p["interval"], p["since"])
    module.exit_json(changed=False, effect=dict(seen, kind=spec["kind"], expect=spec.get("describe", "")))


if __name__ == "__main__":
    main()
