#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: diagnose
short_description: Gather everything one host can tell about a Health Butler incident, in one call
version_added: 0.1.0
description:
  - Read-only, one round trip per host. Collects the sections chosen by I(sections), or by the
    host's inventory groups (I(groups)) - C(host) always, C(app) for C(app), C(postgres) for C(db),
    C(redis) for C(cache), C(backups) for C(backup).
  - "C(host): memory use in percent, CPU use (sampled from C(/proc/stat)), load versus cores, disk use of
    I(disk_paths), top processes by memory (command names only)."
  - "C(app): the PM2 process from C(pm2 jlist) (status, pid, restart_time, unstable_restarts, memory, uptime,
    exit code, Node heap statistics; never C(pm2_env) as a whole), whether I(app_port) listens, HTTP probes of
    I(health_url) and I(api_urls) with status and total time, the last I(log_lines) lines of the PM2 error log
    with known signatures counted and a summary of distinct messages (count, first and last time; redacted),
    and who holds I(app_port) (C(ss -ltnp): pid, command)."
  - "C(app) with I(user_probes): what the app's users get, probed with the app's own configuration from
    I(env_file): a real read and a real write (in a transaction that is rolled back) as the app's database
    user (I(db_url_key)), a PING with the app's Redis URL (I(redis_url_key)), the p95 of I(latency_samples)
    probes of I(health_url), and the C(.env) keys whose values differ from the newest file backup under
    I(env_backup_dir) (key names and, for URLs, which part differs; never a value)."
  - "C(postgres): C(pg_isready) and a real query as the monitoring role: version, recovery state, connections by
    state versus C(max_connections) minus reserved, C(pg_stat_database) counters, C(pg_stat_archiver), the top
    statements of C(pg_stat_statements) by mean time (column names read from the view), blocking chains via
    C(pg_blocking_pids) with each blocker's transaction age, sessions idle in transaction, the server log tail."
  - "C(redis): ping, used_memory versus maxmemory, evicted keys, last RDB save."
  - "C(backups): the newest backup of the backup catalogue under I(backup_dir) (dumps, base backups, WAL bundles,
    legacy dumps; see M(healthbutler.recovery.backup_catalog)), the newest archived WAL segment, and the
    recovery window."
  - Never fails because a component is down; a down component is reported in its section
    (feed the result to the P(healthbutler.recovery.classify_incident#filter) filter).
author:
  - Health Butler SRE (@healthbutler)
attributes:
  check_mode:
    support: full
    description: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
options:
  sections:
    description:
      - Sections to collect. When omitted they follow I(groups).
      - V(app_tools) (only when asked) runs C(prisma validate) and C(npm audit --json) in I(app_dir), each with
        I(tools_timeout); a missing tool or network gives C(available=false) and C(reason) "unavailable, because ...".
    type: list
    elements: str
    choices: [host, app, app_tools, postgres, replication, redis, backups]
  groups:
    description:
      - The host's inventory groups (pass C(group_names)); used when I(sections) is omitted.
      - C(app) adds C(app), C(db) adds C(postgres), C(db_standby) adds C(replication) (a standby's receiver,
        replay LSN and lag in bytes and seconds from C(pg_last_xact_replay_timestamp())), C(cache) adds C(redis),
        C(backup) adds C(backups);
        C(host) is always collected.
    type: list
    elements: str
    default: []
  disk_paths:
    description: Paths whose filesystem use is reported (data, backup and app directories).
    type: list
    elements: path
    default: []
  top_processes:
    description: How many processes (by resident memory) to report.
    type: int
    default: 5
  pm2_home:
    description:
      - C(PM2_HOME) of the PM2 daemon that runs the app (C(hb_pm2_home)). Required with the C(app) section.
  app_name:
    description: The PM2 process name.
    type: str
    default: health-butler
  app_port:
    description: The TCP port the app listens on.
    type: int
  health_url:
    description: The app's health URL.
    type: str
  api_urls:
    description: Further URLs to probe with GET (status and total time).
    type: list
    elements: str
    default: []
  env_file:
    description:
      - The app's C(.env). Reported as keys, whether each is set, and values with secrets redacted
        (the runbook's C(cat .env) made safe). Omit to skip.
    type: path
  user_probes:
    description:
      - Probe what the app's users get (see the description); needs I(env_file) for the database and Redis
        probes, I(health_url) for latency. The write is always rolled back.
    type: bool
    default: true
  db_url_key:
    description: The C(.env) key holding the app's PostgreSQL URL.
    type: str
    default: DATABASE_URL
  redis_url_key:
    description: The C(.env) key holding the app's Redis URL.
    type: str
    default: REDIS_URL
  app_read_sql:
    description: A real read on the app's path, run as the app's database user.
    type: str
    default: SELECT id FROM health_data ORDER BY id DESC LIMIT 1
  app_write_sql:
    description:
      - A real write on the app's path, run as the app's database user inside C(BEGIN) ... C(ROLLBACK)
        (nothing is kept; a sequence value may be used up).
    type: str
    default: >-
      INSERT INTO health_data (user_id, metric, value)
      SELECT id, 'diagnose_probe', 0 FROM users ORDER BY id LIMIT 1
  app_write_probe:
    description: Run the rolled-back write; false reads only.
    type: bool
    default: true
  latency_samples:
    description: Sequential probes of I(health_url) for the p95 latency (at most 10 s in all).
    type: int
    default: 5
  env_backup_dir:
    description:
      - Root of the file backups on this host (C(<stamp>/env) in each, as the backup role writes them).
        The live I(env_file) is compared with the newest one. Omit to skip.
    type: path
  http_timeout:
    description: Seconds to wait for each HTTP probe.
    type: int
    default: 5
  log_lines:
    description: How many lines of the PM2 error log and of the PostgreSQL log to read.
    type: int
    default: 100
  journal_unit:
    description:
      - systemd unit whose journal the app section reads (C(journalctl -u <unit> -n journal_lines)); empty means
        O(app_name). Where systemd is not PID 1 the result says C(no journal on this host).
    type: str
    default: ""
  app_dir:
    description: The app checkout, for section V(app_tools) (its C(prisma/schema.prisma) and C(package-lock.json)).
    type: path
  prisma_bin:
    description: prisma CLI for V(app_tools) when the app has no C(node_modules/.bin/prisma) of its own.
    type: str
    default: prisma
  npm_bin:
    description: npm for V(app_tools) (C(npm audit --json)).
    type: str
    default: npm
  tools_timeout:
    description: Seconds each tool of V(app_tools) may take.
    type: int
    default: 60
  journal_lines:
    description: How many journal lines to read.
    type: int
    default: 500
  pg_host:
    description: Where PostgreSQL listens for the monitoring role.
    type: str
    default: 127.0.0.1
  pg_user:
    description: The monitoring role (member of C(pg_monitor)).
    type: str
  pg_password:
    description: Its password; reaches psql as C(PGPASSWORD), never in argv.
    type: str
  pg_database:
    description: Database to connect to (C(pg_stat_statements) must be installed there).
    type: str
    default: postgres
  pg_log_file:
    description: The PostgreSQL server log to tail.
    type: path
  idle_in_transaction_s:
    description: Report sessions idle in a transaction longer than this many seconds.
    type: int
    default: 60
  statements:
    description: How many statements of C(pg_stat_statements) to report.
    type: int
    default: 10
  statements_min_calls:
    description: Only statements called at least this often (one-off loads are not slow queries).
    type: int
    default: 3
  redis_cli:
    description: The C(redis-cli) executable.
    type: path
    default: redis-cli
  redis_host:
    description: Redis address.
    type: str
    default: 127.0.0.1
  redis_port:
    description: Redis port.
    type: int
    default: 6379
  redis_password:
    description: Redis password; reaches redis-cli as C(REDISCLI_AUTH), never in argv.
    type: str
  backup_dir:
    description: Directory holding the backups.
    type: path
  wal_archive_dir:
    description: The WAL archive directory.
    type: path
extends_documentation_fragment:
  - healthbutler.recovery.pm2
  - healthbutler.recovery.postgres.client
notes:
  - Runs as the connecting user; needs no privilege escalation (PostgreSQL is reached as the monitoring role
    over TCP, PM2 through I(pm2_home)). Files it cannot read (a log) are reported, not fatal.
seealso:
  - plugin: healthbutler.recovery.classify_incident
    plugin_type: filter
  - plugin: healthbutler.recovery.redact_secrets
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Diagnose this host by its groups
  healthbutler.recovery.diagnose:
    groups: "{{ group_names }}"
    pm2_bin: "{{ hb_pm2_bin }}"
    pm2_home: "{{ hb_pm2_home }}"
    app_port: "{{ hb_app_port }}"
    health_url: "{{ hb_app_health_url }}"
    pg_bindir: "{{ hb_pg_bindir }}"
    pg_port: "{{ hb_pg_port }}"
    pg_user: "{{ hb_pg_monitor_user }}"
    pg_password: "{{ hb_pg_monitor_password }}"
    pg_database: "{{ hb_db_name }}"
    pg_log_file: "{{ hb_pg_log_dir }}/postgresql.log"
    redis_port: "{{ hb_redis_port }}"
    redis_password: "{{ hb_redis_password }}"
    backup_dir: "{{ hb_backup_dir }}"
    wal_archive_dir: "{{ hb_wal_archive_dir }}"
  register: diagnosis

- name: Only PostgreSQL
  healthbutler.recovery.diagnose:
    sections: [postgres]
    pg_port: 5432
    pg_user: hb_monitor
    pg_password: "{{ vault_monitor_password }}"
    pg_database: health_butler
  register: pg_facts

- name: Classify
  ansible.builtin.debug:
    msg: "{{ diagnosis.facts | healthbutler.recovery.classify_incident }}"
"""

RETURN = r"""
facts:
  description: What the host told, one key per collected section (each with C(ok) and C(errors)).
  returned: always
  type: dict
  contains:
    hostname:
      description: The host's name as it knows itself.
      type: str
      sample: app-1
    sections:
      description: The sections collected.
      type: list
      elements: str
      sample: [host, app]
    host:
      description: memory, cpu, load, disks, top_processes.
      type: dict
      returned: when collected
    app:
      description: >-
        pm2 (reachable), process (name, pid, status, restart_time, unstable_restarts, uptime_s, exit_code,
        memory_bytes, heap), port (listening, holders with pid, command and redacted cmdline), health and api
        probes (status, time_total_s), journal (available, redacted lines; or reason),
        error_log (lines redacted, signatures counted, summary of distinct
        messages with count, first and last, age_s), env (keys of I(env_file), set or not, values redacted),
        users (db read/write as the app's user with target, error and reason; redis; latency p95_s;
        env_backup with changed keys and times).
      type: dict
      returned: when collected
    postgres:
      description: >-
        up, pg_isready, query_ok (or query_error and refusal), version, in_recovery, connections,
        stat_database, archiver, locks_not_granted, waiting, lock_chains, idle_in_transaction,
        statements (mean_column, top), log (fatal, panic counts and redacted lines).
      type: dict
      returned: when collected
    redis:
      description: ping, used_memory, maxmemory, memory_used_percent, evicted_keys, rdb_last_bgsave_status.
      type: dict
      returned: when collected
    backups:
      description: backup.newest (with kind) and wal.newest with age_s; catalog (per kind count and age, window).
      type: dict
      returned: when collected
  sample:
    hostname: localhost
    sections: [host, redis]
    redis: {ok: true, ping: true, used_memory: 1048576, maxmemory: 134217728, memory_used_percent: 0.8}
"""

import os
import socket
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import (
    diagnose_app,
    diagnose_backups,
    diagnose_host,
    diagnose_journal,
    diagnose_postgres,
    diagnose_probe,
    diagnose_redis,
    diagnose_tools,
    psql,
)
from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import pm2_options, postgres_client
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import AnsibleRunner

SECTIONS = ("host", "app", "app_tools", "postgres", "replication", "redis", "backups")
GROUP_SECTIONS = {"app": "app", "db": "postgres", "db_standby": "replication", "cache": "redis", "backup": "backups"}


def choose_sections(sections, groups):
    """Explicit ``sections``, else ``host`` plus the sections of the host's groups, in a fixed order."""
    wanted = set(sections or ()) or {"host"} | {GROUP_SECTIONS[g] for g in groups or () if g in GROUP_SECTIONS}
    return [s for s in SECTIONS if s in wanted]


# Sections that run together, each in a thread of its own: they mostly wait (the host's 0.5 s CPU sample, psql,
# redis-cli, files), so a wave takes as long as its slowest section. The app's sections start node (pm2) and npm,
# which would weigh on the host's CPU sample, so they come in a second wave, after it.
WAVES = (("host", "postgres", "replication", "redis", "backups"), ("app", "app_tools"))


def gather(module, runner, sections):
    facts = {"hostname": socket.gethostname(), "sections": sections}
    collectors = {"host": _host, "app": _app, "app_tools": _app_tools, "postgres": _postgres,
                  "replication": _replication, "redis": _redis, "backups": _backups}
    for wave in WAVES:
        names = [name for name in sections if name in wave]
        if not names:
            continue
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            futures = [(name, pool.submit(collectors[name], module, runner)) for name in names]
            for name, future in futures:
                facts[name] = future.result()
    return {key: facts[key] for key in ["hostname", "sections"] + sections}


def _host(module, runner):
    p = module.params
    return diagnose_host.collect(runner, p["disk_paths"], p["top_processes"])


def _app(module, runner):
    p = module.params
    pm2_bin = module.get_bin_path(p["pm2_bin"]) or p["pm2_bin"]
    probes = None
    if p["user_probes"]:
        psql_bin = psql.Conn(bindir=p["pg_bindir"]).binary("psql")
        probes = {"psql_bin": psql_bin if os.path.isabs(psql_bin) else module.get_bin_path(psql_bin),
                  "redis_cli": module.get_bin_path(p["redis_cli"]),
                  "db_url_key": p["db_url_key"], "redis_url_key": p["redis_url_key"],
                  "read_sql": p["app_read_sql"], "write_sql": p["app_write_sql"], "write": p["app_write_probe"],
                  "latency_samples": p["latency_samples"], "env_backup_dir": p["env_backup_dir"]}
    app = diagnose_app.collect(runner, pm2_bin, p["pm2_home"], p["app_name"], p["app_port"],
                               p["health_url"], p["api_urls"], p["http_timeout"], p["log_lines"],
                               p["env_file"], probes=probes, ss_bin=module.get_bin_path("ss"))
    app["journal"] = diagnose_journal.read_journal(
        runner, p["journal_unit"] or p["app_name"], p["journal_lines"], module.get_bin_path("journalctl"))
    return app


def _app_tools(module, runner):
    p = module.params
    own = os.path.join(p["app_dir"] or "", "node_modules", ".bin", "prisma")
    prisma = own if p["app_dir"] and os.access(own, os.X_OK) else (
        p["prisma_bin"] if os.path.isabs(p["prisma_bin"]) and os.access(p["prisma_bin"], os.X_OK)
        else module.get_bin_path(p["prisma_bin"]))
    npm = module.get_bin_path(p["npm_bin"])
    return diagnose_tools.collect(runner, p["app_dir"] or "", prisma, npm, p["tools_timeout"])


def _postgres(module, runner):
    p = module.params
    conn = psql.Conn(p["pg_host"], p["pg_port"], p["pg_user"], p["pg_password"], p["pg_database"],
                     p["pg_bindir"])
    return diagnose_postgres.collect(runner, conn, p["pg_log_file"], p["log_lines"], p["idle_in_transaction_s"],
                                     p["statements"], p["statements_min_calls"])


def _replication(module, runner):
    p = module.params
    conn = psql.Conn(p["pg_host"], p["pg_port"], p["pg_user"], p["pg_password"], p["pg_database"],
                     p["pg_bindir"])
    return diagnose_postgres.collect_replication(runner, conn)


def _redis(module, runner):
    p = module.params
    redis_cli = module.get_bin_path(p["redis_cli"]) or p["redis_cli"]
    return diagnose_redis.collect(runner, redis_cli, p["redis_host"], p["redis_port"], p["redis_password"])


def _backups(module, _runner):
    p = module.params
    return diagnose_backups.collect(p["backup_dir"], p["wal_archive_dir"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            sections=dict(type="list", elements="str", choices=list(SECTIONS)),
            groups=dict(type="list", elements="str", default=[]),
            disk_paths=dict(type="list", elements="path", default=[]),
            top_processes=dict(type="int", default=5),
            **pm2_options(),
            app_name=dict(type="str", default="health-butler"),
            app_port=dict(type="int"),
            health_url=dict(type="str"),
            api_urls=dict(type="list", elements="str", default=[]),
            env_file=dict(type="path"),
            user_probes=dict(type="bool", default=True),
            db_url_key=dict(type="str", default="DATABASE_URL", no_log=False),
            redis_url_key=dict(type="str", default="REDIS_URL", no_log=False),
            app_read_sql=dict(type="str", default=diagnose_probe.DEFAULT_READ_SQL),
            app_write_sql=dict(type="str", default=diagnose_probe.DEFAULT_WRITE_SQL),
            app_write_probe=dict(type="bool", default=True),
            latency_samples=dict(type="int", default=5),
            env_backup_dir=dict(type="path"),
            http_timeout=dict(type="int", default=5),
            log_lines=dict(type="int", default=100),
            journal_unit=dict(type="str", default=""),
            app_dir=dict(type="path"),
            prisma_bin=dict(type="str", default="prisma"),
            npm_bin=dict(type="str", default="npm"),
            tools_timeout=dict(type="int", default=60),
            journal_lines=dict(type="int", default=500),
            pg_host=dict(type="str", default="127.0.0.1"),
            **postgres_client(),
            pg_user=dict(type="str"),
            pg_password=dict(type="str", no_log=True),
            pg_database=dict(type="str", default="postgres"),
            pg_log_file=dict(type="path"),
            idle_in_transaction_s=dict(type="int", default=60),
            statements=dict(type="int", default=10),
            statements_min_calls=dict(type="int", default=3),
            redis_cli=dict(type="path", default="redis-cli"),
            redis_host=dict(type="str", default="127.0.0.1"),
            redis_port=dict(type="int", default=6379),
            redis_password=dict(type="str", no_log=True),
            backup_dir=dict(type="path"),
            wal_archive_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    sections = choose_sections(module.params["sections"], module.params["groups"])
    if "app" in sections and not module.params["pm2_home"]:
        module.fail_json(msg="pm2_home is required with the app section: PM2 must find the daemon that runs "
                             "the app (set it to the PM2_HOME of that daemon, e.g. /home/deploy/.pm2)")
    if ("postgres" in sections or "replication" in sections) and not module.params["pg_user"]:
        module.fail_json(msg="pg_user is required with the postgres section: the monitoring role "
                             "(a member of pg_monitor), e.g. hb_monitor")
    if "backups" in sections and not (module.params["backup_dir"] or module.params["wal_archive_dir"]):
        module.fail_json(msg="the backups section needs backup_dir and/or wal_archive_dir")
    for name, low, high in (("latency_samples", 1, 20), ("log_lines", 0, 10000), ("http_timeout", 1, 300)):
        value = module.params[name]
        if not low <= value <= high:
            module.fail_json(msg="%s=%s is out of range: give a whole number from %s to %s" % (name, value, low, high))
    facts = gather(module, AnsibleRunner(module), sections)
    module.exit_json(changed=False, facts=facts)


if __name__ == "__main__":
    main()
