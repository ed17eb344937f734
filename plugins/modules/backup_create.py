#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_create
short_description: Take one backup of the policy (full dump, base backup, WAL bundle) or copy offsite
version_added: "0.1.0"
author:
  - Health Butler SRE (@healthbutler)
description:
  - V(dump) runs C(pg_dump -Fc) into C(dumps/<db>_<stamp>.dump) through a C(.partial) name, with a
    C(sha256sum)-format sidecar and a JSON metadata file (db, server version, start/end, size, exact row
    count per table taken in the dump's own snapshot).
  - V(base) runs C(pg_basebackup -Fp --manifest-checksums=SHA256) into C(base/<stamp>/) plus C(<stamp>.json)
    (start/stop LSN, timeline, start/stop segment), then C(pg_switch_wal()) and waits until the stop segment
    is archived.
  - V(incremental) runs C(pg_switch_wal()), waits for the archive, and bundles every segment archived since
    the previous bundle into C(incremental/<stamp>/) with C(manifest.json) (names and SHA-256).
  - V(offsite) rsyncs C(dumps/), C(base/), C(incremental/), C(files/) to O(offsite) (a path or C(host:path)),
    never overwriting a file there, then compares every file by checksum (C(rsync --checksum --dry-run)).
  - Nothing existing is ever overwritten; a failed run leaves no partial backup.
  - Connect as the PostgreSQL OS user over the socket (C(become_user)); passwords only via O(pg_password)
    (sent as C(PGPASSWORD)).
options:
  kind:
    description: What to take.
    type: str
    required: true
    choices: [dump, base, incremental, offsite]
  wal_dir:
    description:
      - The WAL archive directory (C(hb_wal_archive_dir)); required for V(incremental), waited on for V(base).
  offsite:
    description: Offsite location for V(offsite), a path or C(host:path) reachable by rsync over ssh.
    type: str
  offsite_rsh:
    description:
      - Remote shell for a C(host:path) offsite, given to rsync as C(--rsh), e.g.
        C(ssh -p 2222 -i /var/lib/postgresql/.ssh/offsite). Default rsync's own (ssh with the user's C(~/.ssh/config)).
      - Runs as the module's user (the become user); keep keys in files, never in this string.
    type: str
  pg_database:
    description: Database to dump.
    type: str
    default: health_butler
    aliases: [db]
  pg_host:
    description: Socket directory or host of the server (C(hb_pg_socket_dir)).
    type: str
    aliases: [host]
  pg_user:
    description: Role to connect as (default the OS user, peer authentication).
    type: str
    aliases: [user]
  pg_password:
    description: Password (sent as C(PGPASSWORD), never in argv).
    type: str
    aliases: [password]
  archive_timeout:
    description: Seconds to wait for a switched segment to reach the archive.
    type: int
    default: 120
extends_documentation_fragment:
  - healthbutler.recovery.backup_location
  - healthbutler.recovery.postgres.client
attributes:
  check_mode:
    support: full
    description: Under C(--check) the module reports what it would do and changes nothing.
notes:
  - In check mode nothing is taken; the result says what would be.
  - O(pg_bindir), O(pg_port), O(pg_host), O(pg_user), O(pg_password) and O(pg_database) were C(bindir), C(port),
    C(host), C(user), C(password) and C(db); the old names stay as aliases.
"""

EXAMPLES = r"""
- name: Full dump of the application database
  healthbutler.recovery.backup_create:
    kind: dump
    backup_dir: /var/backups/health_butler
    pg_database: health_butler
    pg_host: /var/run/postgresql
  become: true
  become_user: postgres

- name: Copy to the offsite host and verify by checksum
  healthbutler.recovery.backup_create:
    kind: offsite
    backup_dir: /var/backups/health_butler
    offsite: backup-offsite:/srv/offsite/health_butler
"""

RETURN = r"""
backup:
  description: What was taken (C(kind), C(name), C(path), C(meta) or C(segments)); for V(offsite), C(copied)
    (files sent) and C(differences) (files missing or different offsite after the copy).
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_create as bk
from ansible_collections.healthbutler.recovery.plugins.module_utils.common_options import (
    backup_location,
    postgres_client,
)
from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import Conn
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import AnsibleRunner, CommandError


def main():
    module = AnsibleModule(
        argument_spec={
            "kind": {"type": "str", "required": True, "choices": ["dump", "base", "incremental", "offsite"]},
            **backup_location(),
            "offsite": {"type": "str"},
            "offsite_rsh": {"type": "str"},
            "pg_database": {"type": "str", "default": "health_butler", "aliases": ["db"]},
            "pg_host": {"type": "str", "aliases": ["host"]},
            **postgres_client(),
            "pg_user": {"type": "str", "aliases": ["user"]},
            "pg_password": {"type": "str", "no_log": True, "aliases": ["password"]},
            "archive_timeout": {"type": "int", "default": 120},
        },
        required_if=[("kind", "incremental", ["wal_dir"]), ("kind", "offsite", ["offsite"])],
        supports_check_mode=True,
    )
    p = module.params
    if module.check_mode:
        module.exit_json(changed=True, backup={"kind": p["kind"], "would_write": p["backup_dir"]})
    runner = AnsibleRunner(module)
    conn = Conn(host=p["pg_host"], port=p["pg_port"], user=p["pg_user"], password=p["pg_password"],
                dbname=p["pg_database"], bindir=p["pg_bindir"])
    try:
        if p["kind"] == "dump":
            result = bk.take_dump(runner, conn, p["backup_dir"])
        elif p["kind"] == "base":
            result = bk.take_base(runner, conn, p["backup_dir"], p["wal_dir"], archive_timeout=p["archive_timeout"])
        elif p["kind"] == "incremental":
            result = bk.take_incremental(runner, conn, p["backup_dir"], p["wal_dir"],
                                         archive_timeout=p["archive_timeout"])
        else:
            result = bk.copy_offsite(runner, p["backup_dir"], p["offsite"],
                                     rsync=module.get_bin_path("rsync", required=True), rsh=p["offsite_rsh"])
            if result["differences"]:
                module.fail_json(msg="offsite copy differs from the local backups after the copy: %s" % ", ".join(
                    "%s (%s)" % (d["path"], d["state"]) for d in result["differences"][:20]), backup=result)
            module.exit_json(changed=bool(result["copied"]), backup=result)
    except CommandError as exc:
        module.fail_json(**exc.as_dict())
    except OSError as exc:
        module.fail_json(msg="%s backup failed: %s" % (p["kind"], exc))
    module.exit_json(changed=True, backup=result)


if __name__ == "__main__":
    main()
