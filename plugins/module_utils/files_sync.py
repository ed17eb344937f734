# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""rsync restores: argv, ``--itemize-changes`` parsing, file-backup selection, snapshots.

The ``uploads_restore`` module plans with ``rsync -n --itemize-changes``,
snapshots the live directory with hard links (``cp -al``, no space), then
syncs and checks that a second dry run finds nothing left to transfer.
"""

from __future__ import annotations

import datetime
import os
import re

from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError

# YXcstpoguax: update type, file type, then attribute letters (rsync >= 3.0).
ITEM_RE = re.compile(r"^([<>ch.*])([fdLDS])([^ ]{9}) (.*)$")


def with_slash(path):
    return path if path.endswith("/") else path + "/"


def rsync_argv(src, dest, rsync="rsync", dry_run=False, delete=False, checksum=False, link_dest=None,
               chown=None):
    """argv of an archive-mode rsync of ``src``'s contents into ``dest``, itemized.

    ``chown`` (``"uid:gid"``) gives every restored file that owner instead of the backup's.
    """
    argv = [rsync, "-a", "--itemize-changes", "--out-format=%i %n%L"]
    if chown:
        argv.append("--chown=%s" % chown)
    if dry_run:
        argv.append("--dry-run")
    if checksum:
        argv.append("--checksum")
    if delete:
        argv.append("--delete")
    if link_dest:
        argv.append("--link-dest=%s" % os.path.abspath(link_dest))
    return argv + [with_slash(src), with_slash(dest)]


def classify(update, kind, attrs):
    if update == "*":
        return "deleted"
    new = attrs.startswith("+")
    if update in "<>":
        return "created" if new else "updated"
    if update in "ch":
        return "created" if new else "changed"
    return "attributes"


def parse_itemize(out):
    """``rsync --itemize-changes`` output into ``[{"action", "kind", "path", "code"}]``.

    ``action`` is created, updated (content sent), changed (a link or device
    recreated), deleted, or attributes (only times/perms/owner differ).
    Lines that are not items (summaries, warnings) are ignored.
    """
    kinds = {"f": "file", "d": "dir", "L": "symlink", "D": "device", "S": "special"}
    items = []
    for line in out.splitlines():
        if line.startswith("*deleting"):
            path = line[len("*deleting"):].strip()
            items.append({"action": "deleted", "kind": "dir" if path.endswith("/") else "file",
                          "path": path, "code": "*deleting"})
            continue
        match = ITEM_RE.match(line)
        if not match:
            continue
        update, kind, attrs, path = match.groups()
        for arrow in (" -> ", " => "):  # symlink target, hard-link source
            if arrow in path:
                path = path.split(arrow, 1)[0]
        items.append({"action": classify(update, kind, attrs), "kind": kinds[kind], "path": path,
                      "code": update + kind + attrs})
    return items


def summarize(items):
    """Counts per action, e.g. ``{"created": 2, "updated": 1, "deleted": 0, ...}``."""
    counts = {"created": 0, "updated": 0, "changed": 0, "deleted": 0, "attributes": 0}
    for item in items:
        counts[item["action"]] += 1
    return counts


def content_changes(items):
    """Items that change content or existence (not just times or modes)."""
    return [i for i in items if i["action"] != "attributes"]


def snapshot_path(dest, stamp, snapshot_dir=None):
    """Where the pre-restore hard-link snapshot of ``dest`` goes (beside it by default)."""
    dest = dest.rstrip("/")
    return os.path.join(snapshot_dir or os.path.dirname(dest),
                        "%s.pre_restore_%s" % (os.path.basename(dest), stamp))


def snapshot(runner, src, dest):
    """Hard-link copy of ``src`` at ``dest`` (``cp -al``; same filesystem, no extra space).

    Falls back to a ``--link-dest`` rsync when ``cp`` lacks ``-l`` support (BSD). Written under
    ``<dest>.partial`` and renamed when complete.
    """
    if os.path.lexists(dest):
        raise CommandError("snapshot %s already exists; refusing to overwrite it" % dest)
    partial = dest + ".partial"  # named only once complete, so a killed copy is never taken for a snapshot
    runner.run(["rm", "-rf", partial])
    res = runner.run(["cp", "-al", src.rstrip("/"), partial])
    if res.rc != 0:
        runner.run(["rm", "-rf", partial])
        runner.check(rsync_argv(src, partial, link_dest=src), what="rsync --link-dest snapshot")
    os.rename(partial, dest)
    return dest


def sync(runner, src, dest, rsync="rsync", dry_run=False, delete=False, checksum=True, chown=None):
    """Run one itemized rsync; return ``(items, raw output lines)``."""
    res = runner.check(rsync_argv(src, dest, rsync, dry_run=dry_run, delete=delete, checksum=checksum,
                                  chown=chown),
                       what="rsync%s" % (" -n" if dry_run else ""))
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    return parse_itemize(res.stdout), lines


def judge_file_backup(entry, now_ts, max_age_seconds):
    """Verdict on the newest file backup (a catalogue entry of kind ``files``).

    Returns ``(status, evidence)`` with status ``OK``, ``WARNING`` (no file backup
    at all) or ``FAILED`` (older than ``max_age_seconds``, ``uploads/`` missing,
    ``env`` missing or readable by others than its owner).
    """
    if not entry:
        return "WARNING", "no file backup (files/<stamp>/uploads, env) found"
    path = entry["path"]
    problems = []
    uploads = os.path.join(path, "uploads")
    if not os.path.isdir(uploads):
        problems.append("uploads/ missing")
    env = os.path.join(path, "env")
    if not os.path.isfile(env):
        problems.append("env missing")
    elif os.stat(env).st_mode & 0o077:
        problems.append("env mode %04o (must be 0600)" % (os.stat(env).st_mode & 0o7777))
    when = entry.get("time_ts")
    if when is None:  # catalogue entries carry "time" as ISO-8601 UTC ("2026-11-28T03:00:00Z")
        when = datetime.datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    age = now_ts - when
    if age > max_age_seconds:
        problems.append("newest is %.1f h old (limit %.1f h)" % (age / 3600.0, max_age_seconds / 3600.0))
    files = sum(len(f) for _root, _dirs, f in os.walk(uploads)) if os.path.isdir(uploads) else 0
    evidence = "%s: %d upload file(s), env %s" % (entry["name"], files, "present" if os.path.isfile(env) else "absent")
    if problems:
        return "FAILED", "%s; %s" % (evidence, "; ".join(problems))
    return "OK", evidence
