#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: redis_cache
short_description: Clear a scoped part of a Redis cache, after a snapshot copied aside
version_added: "0.1.0"
description:
  - V(pattern) removes the keys of one logical db that match O(pattern), found with C(SCAN) and
    removed with C(UNLINK) in batches of O(batch_size). V(db) runs C(FLUSHDB) on one logical db.
    V(all) runs C(FLUSHALL), and only with O(confirm_flushall=true), the runbook's bare
    C(redis-cli FLUSHALL) is not acceptable as a default.
  - Before anything is removed the module runs C(BGSAVE), waits until it has finished with
    status ok, and copies the RDB file into O(backup_dir). When nothing matches, nothing is
    saved or removed and the task reports no change.
  - Uses C(redis-cli); the password reaches it as C(REDISCLI_AUTH), never in argv.
options:
  host:
    description: Redis host.
    type: str
    default: 127.0.0.1
  port:
    description: Redis port.
    type: int
    default: 6379
  password:
    description: Redis password (passed as C(REDISCLI_AUTH)).
    type: str
  db:
    description: Logical db for V(pattern) and V(db).
    type: int
    default: 0
  scope:
    description: What to clear.
    type: str
    choices: [pattern, db, all]
    default: pattern
  pattern:
    description: Glob pattern for V(pattern), narrower than C(*) (for example V(cache:*)).
    type: str
  confirm_flushall:
    description: Must be V(true) for O(scope=all).
    type: bool
    default: false
  backup_dir:
    description: Where the RDB copy goes (created with mode 0700); must be readable by the module's user.
    type: path
    required: true
  rdb_path:
    description: The server's RDB file, when C(CONFIG GET) is disabled (renamed command).
    type: path
  batch_size:
    description: Keys per C(SCAN) step and per C(UNLINK).
    type: int
    default: 500
  bgsave_timeout:
    description: Seconds to wait for C(BGSAVE).
    type: int
    default: 120
  redis_cli:
    description: The redis-cli executable.
    type: str
    default: redis-cli
notes:
  - Supports check mode, the keys that would be removed are counted, nothing is saved or removed.
author:
  - Health Butler SRE (@healthbutler)
"""

EXAMPLES = r"""
- name: Clear the page cache keys only, snapshot first
  healthbutler.recovery.redis_cache:
    port: 6379
    password: "{{ hb_redis_password }}"
    scope: pattern
    pattern: "cache:*"
    backup_dir: /var/backups/health_butler/redis
  no_log: false

- name: Clear logical db 2
  healthbutler.recovery.redis_cache:
    password: "{{ hb_redis_password }}"
    scope: db
    db: 2
    backup_dir: /var/backups/health_butler/redis
"""

RETURN = r"""
keys_removed:
  description: Keys removed (0 in check mode).
  returned: always
  type: int
  sample: 1200
would_remove:
  description: Keys in scope before the clear.
  returned: always
  type: int
sample_keys:
  description: Up to 20 of the matched keys (V(pattern) only).
  returned: when O(scope=pattern)
  type: list
  elements: str
snapshot:
  description: The RDB copy made before the clear (source, path, size).
  returned: when keys were removed
  type: dict
  sample: {source: /var/lib/redis/dump.rdb, path: /var/backups/health_butler/redis/redis-6379-20250102T103000Z.rdb,
           size: 18204}
keyspace_after:
  description: Keys per logical db after the clear.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils.redis_control import (
    SCOPES,
    Redis,
    clear,
    keyspace_counts,
    plan_clear,
    validate,
)
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import (
    AnsibleRunner,
    RecoveryError,
    fail_from,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", default="127.0.0.1"),
            port=dict(type="int", default=6379),
            password=dict(type="str", no_log=True),
            db=dict(type="int", default=0),
            scope=dict(type="str", default="pattern", choices=list(SCOPES)),
            pattern=dict(type="str"),
            confirm_flushall=dict(type="bool", default=False),
            backup_dir=dict(type="path", required=True),
            rdb_path=dict(type="path"),
            batch_size=dict(type="int", default=500),
            bgsave_timeout=dict(type="int", default=120),
            redis_cli=dict(type="str", default="redis-cli"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = dict(changed=False, keys_removed=0)
    try:
        validate(p["scope"], p["pattern"], p["confirm_flushall"])
        cli = module.get_bin_path(p["redis_cli"], required=True)
        redis = Redis(AnsibleRunner(module), cli, p["host"], p["port"], p["password"])
        planned = plan_clear(redis, p["scope"], p["db"], p["pattern"], p["batch_size"])
        result["would_remove"] = planned["keys"]
        if "matched" in planned:
            result["sample_keys"] = planned["matched"][:20]
        if planned["keys"] and not module.check_mode:
            result["snapshot"] = redis.snapshot(p["backup_dir"], p["rdb_path"], p["bgsave_timeout"])
            result["keys_removed"] = clear(redis, p["scope"], p["db"], planned, p["batch_size"])
        result["changed"] = bool(planned["keys"])
        result["keyspace_after"] = keyspace_counts(redis.info("keyspace"))
    except RecoveryError as exc:
        fail_from(module, exc, result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
