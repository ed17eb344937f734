#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: env_database_url
short_description: Point the app's DATABASE_URL at another PostgreSQL server, keeping the previous .env
version_added: "0.2.0"
description:
  - Replaces the host and port of O(key) (a C(postgresql://user:password@host:port/db) URL) in the app's
    C(.env); user, password, database and every other line stay byte for byte.
  - Before writing, keeps the live file as C(<path>.pre_failover_<UTC stamp>) with its mode and owner; writes the
    new file atomically with the same mode and owner.
  - Reports only C(host:port) before and after and a key diff with redacted values; the URL itself (it holds the
    password) is never returned, logged or shown in a diff.
author:
  - Health Butler SRE (@healthbutler)
options:
  path:
    description: The app's C(.env).
    type: path
    required: true
  host:
    description: Address the app must reach the database at.
    type: str
    required: true
  port:
    description: Port of that server.
    type: int
    required: true
  key:
    description: The variable holding the database URL.
    type: str
    default: DATABASE_URL
  tag:
    description: Infix of the kept copy's name.
    type: str
    default: pre_failover
notes:
  - Check mode and diff mode are supported; the diff shows C(host:port) only.
seealso:
  - module: healthbutler.recovery.env_restore
"""

EXAMPLES = r"""
- name: Point the app at the promoted standby
  healthbutler.recovery.env_database_url:
    path: /app/.env
    host: 10.20.0.22
    port: 5432
  register: repointed
"""

RETURN = r"""
before:
  description: C(host:port) the file named before the run.
  returned: always
  type: str
  sample: 10.20.0.21:5432
after:
  description: C(host:port) it names after the run.
  returned: always
  type: str
  sample: 10.20.0.22:5432
differences:
  description: Key differences, values redacted (see M(healthbutler.recovery.env_restore)).
  returned: always
  type: dict
previous:
  description: Where the live file was kept (null when nothing changed).
  returned: always
  type: str
restart_needed:
  description: The file changed, so the app must be restarted to read it.
  returned: always
  type: bool
"""

import datetime
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import env_file, pg_replication


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            host=dict(type="str", required=True),
            port=dict(type="int", required=True),
            key=dict(type="str", default="DATABASE_URL", no_log=False),
            tag=dict(type="str", default="pre_failover"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    path, key = p["path"], p["key"]
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (path, exc.strerror or exc))
    current = env_file.parse_env(text)
    if key not in current:
        module.fail_json(msg="%s does not set %s; nothing to point at the new server" % (path, key))
    try:
        new_url = pg_replication.point_url(current[key], p["host"], p["port"])
    except ValueError as exc:
        module.fail_json(msg="%s in %s: %s" % (key, path, exc))
    new_text = env_file.replace_value(text, key, new_url)
    wanted = env_file.parse_env(new_text)
    keys = env_file.diff_keys(current, wanted)
    result = dict(changed=new_text != text, before=pg_replication.url_target(current[key]),
                  after=pg_replication.url_target(new_url), differences=keys, previous=None,
                  restart_needed=new_text != text)
    if module._diff:
        result["diff"] = {"before_header": path, "after_header": path,
                          "before": "%s -> %s\n" % (key, result["before"]),
                          "after": "%s -> %s\n" % (key, result["after"])}
    if not result["changed"] or module.check_mode:
        module.exit_json(**result)
    ident = env_file.file_identity(path)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    tmp = "%s.%s.new" % (path, os.getpid())
    try:
        result["previous"] = env_file.keep_previous(path, stamp, tag=p["tag"])
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(new_text)
        env_file.install(tmp, path, int(ident["mode"], 8), ident["uid"], ident["gid"])
    except OSError as exc:
        module.fail_json(msg="writing %s failed: %s" % (path, exc), previous=result["previous"])
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
