# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Moving backups between hosts: the host that needs a copy pulls it, read-only, over ssh.

The backup host pulls what the db host wrote (dumps, base backups, WAL); the db host pulls
them back for a restore. The serving side exposes one directory through ``rrsync -ro``, so
the key used can read that tree and nothing else, and write nothing at all. A pull never
overwrites a file that is already there (``--ignore-existing``): a damaged source never
replaces a good copy; what was pulled is compared by checksum afterwards. Modes are kept
(``--perms``: backups stay private, restored uploads keep theirs); the owner is the pulling user.
"""

from __future__ import annotations

import os

from ansible_collections.healthbutler.recovery.plugins.module_utils.backup_create import offsite_differences, rsync_argv

# Never pulled: files still being written (backup_create's .partial names, the archive_command's .tmp).
EXCLUDES = ("*.partial", ".*.partial", "*.tmp")


def copied_files(stdout):
    """File paths an ``rsync --itemize-changes`` run transferred."""
    return [line[12:] for line in stdout.splitlines() if len(line) > 12 and line[1] == "f" and line[0] in "<>c"]


def pull(runner, source, dest, rsh=None, rsync="rsync", excludes=EXCLUDES, dry_run=False):
    """Pull the tree ``source`` (``user@host:path``) into the local ``dest`` without overwriting.

    Returns ``{"copied": [...], "differences": [...]}``; ``differences`` lists files pulled in
    this run whose checksum at ``dest`` differs from the source's (state ``mismatch`` or ``missing``).
    """
    if not dry_run:
        os.makedirs(dest, mode=0o700, exist_ok=True)
    for path in (source, dest):
        if any(c.isspace() for c in path):
            raise ValueError("paths pulled through rrsync may not contain white space, got %r" % path)
    # rrsync refuses --protect-args; white space is refused above instead.
    argv = rsync_argv(rsync, rsh, protect_args=False) + ["--ignore-existing", "--itemize-changes", "--perms"]
    argv += ["--exclude=" + pattern for pattern in excludes]
    if dry_run:
        argv.append("--dry-run")
    argv += [source.rstrip("/") + "/", dest.rstrip("/") + "/"]
    res = runner.check(argv, what="rsync pull from %s" % source.split(":")[0])
    copied = copied_files(res.stdout)
    diffs = []
    if copied and not dry_run:
        diffs = offsite_differences(runner, source, dest, sorted(copied), rsync, rsh, protect_args=False)
    return {"copied": copied, "differences": diffs}


def ssh_command(key_file, known_hosts, ssh="ssh", connect_timeout=10):
    """The remote shell rsync uses: this key only, this known_hosts only, no prompt, host key checked."""
    for path in (key_file, known_hosts):
        if not path or " " in path:
            raise ValueError("key and known_hosts paths must be set and contain no spaces, got %r" % path)
    return " ".join([ssh, "-i", key_file, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                     "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + known_hosts,
                     "-o", "ConnectTimeout=%d" % int(connect_timeout)])
