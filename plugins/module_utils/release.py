# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Releases of a git-deployed app: where HEAD is, which tag to roll back to, what changes.

Plain functions over a ``CommandRunner`` (argv lists, no shell) so the rollback
planner is unit-tested with a fake runner. The ``app_release`` module is a thin
wrapper around ``plan``, ``preserve``, ``checkout`` and ``reroll``.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil

from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError, RecoveryError

DEFAULT_STABLE_PATTERN = r"^v?\d+\.\d+\.\d+$"
DEFAULT_MIGRATIONS_DIR = "prisma/migrations"
RECORD_NAME = "record.json"


class ReleaseError(RecoveryError):
    """A rollback input or repository state that makes the plan impossible."""


def utc_stamp(now=None):
    """``YYYYmmddTHHMMSSZ`` (the collection's timestamp format)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ")


def _git(runner, git, repo, *args, what=None):
    return runner.check([git, "-C", repo] + list(args), what=what or "git %s" % args[0]).stdout


# -- reading the repository ---------------------------------------------------

def list_tags(runner, git, repo):
    """Every tag as ``{"name", "commit"}``; annotated tags are peeled to their commit."""
    out = _git(runner, git, repo, "for-each-ref",
               "--format=%(refname:strip=2)%00%(objectname)%00%(*objectname)", "refs/tags")
    tags = []
    for line in out.splitlines():
        parts = line.split("\x00")
        if len(parts) != 3 or not parts[0]:
            continue
        name, obj, peeled = parts
        tags.append({"name": name, "commit": peeled or obj})
    return tags


def merged_tags(runner, git, repo, commit):
    """Names of the tags reachable from ``commit`` (its ancestors, itself included)."""
    return set(_git(runner, git, repo, "tag", "--merged", commit).split())


def head_state(runner, git, repo):
    """``{"commit", "branch"}`` of HEAD; branch is None when detached."""
    commit = _git(runner, git, repo, "rev-parse", "--verify", "HEAD^{commit}").strip()
    res = runner.run([git, "-C", repo, "symbolic-ref", "--quiet", "--short", "HEAD"])
    branch = res.stdout.strip() if res.rc == 0 and res.stdout.strip() else None
    return {"commit": commit, "branch": branch}


def parse_porcelain_z(out):
    """Parse ``git status --porcelain=v1 -z`` into ``[{"status", "path"}]``.

    Renames and copies carry the source path as a second NUL-separated field.
    """
    entries = []
    fields = out.split("\x00")
    i = 0
    while i < len(fields):
        field = fields[i]
        i += 1
        if len(field) < 4:
            continue
        status, path = field[:2], field[3:]
        entry = {"status": status, "path": path}
        if status[0] in "RC" and i < len(fields):
            entry["from"] = fields[i]
            i += 1
        entries.append(entry)
    return entries


# The copies this collection keeps inside an app directory (restore_files' uploads snapshot and kept .env): untracked,
# never touched by a checkout, so they do not make the tree dirty.
OWN_COPY = re.compile(r"(^|/)[^/]*\.pre_restore_\d{8}T\d{6}Z(\.partial)?(/|$)")


def dirty_files(runner, git, repo, include_untracked=True):
    """Changed (and, by default, untracked) files; git-ignored files and our own kept copies never count."""
    # --no-optional-locks: a read-only look never rewrites .git/index
    out = _git(runner, git, repo, "--no-optional-locks", "status", "--porcelain=v1", "-z",
               "--untracked-files=%s" % ("all" if include_untracked else "no"))
    return [e for e in parse_porcelain_z(out) if not (e["status"] == "??" and OWN_COPY.search(e["path"]))]


def remotes(runner, git, repo):
    return _git(runner, git, repo, "remote").split()


def migrations_at(runner, git, repo, commit, migrations_dir):
    """Migration directory names present in ``migrations_dir`` at ``commit``."""
    prefix = migrations_dir.strip("/") + "/"
    out = _git(runner, git, repo, "ls-tree", "-d", "--name-only", commit, "--", prefix)
    return {line[len(prefix):] for line in out.splitlines() if line.startswith(prefix)}


# -- deciding ----------------------------------------------------------------

def version_key(name):
    """Sort key: the numbers in a tag name (v1.10.0 > v1.9.3), then the name."""
    return (tuple(int(n) for n in re.findall(r"\d+", name)), name)


def compile_pattern(pattern):
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ReleaseError("stable_pattern %r is not a valid regular expression: %s" % (pattern, exc)) from exc


def select_target(tags, head_commit, merged, pattern=DEFAULT_STABLE_PATTERN, explicit=None):
    """Return the tag to roll back to.

    ``explicit`` wins when it exists. Otherwise the newest tag matching ``pattern``
    that is older than the current release: when a stable tag points at HEAD, the
    newest stable tag with a lower version; when HEAD is not a stable release,
    the newest stable tag among HEAD's ancestors.
    """
    by_name = {t["name"]: t for t in tags}
    known = sorted(by_name, key=version_key, reverse=True)
    if explicit:
        if explicit not in by_name:
            raise ReleaseError("tag %r does not exist in the app repository; known tags: %s"
                               % (explicit, ", ".join(known) or "none"), known_tags=known)
        return by_name[explicit]
    regex = compile_pattern(pattern)
    stable = [t for t in tags if regex.search(t["name"])]
    at_head = [t for t in stable if t["commit"] == head_commit]
    if at_head:
        current = max(at_head, key=lambda t: version_key(t["name"]))
        candidates = [t for t in stable if t["commit"] != head_commit
                      and version_key(t["name"]) < version_key(current["name"])]
    else:
        candidates = [t for t in stable if t["commit"] != head_commit and t["name"] in merged]
    if not candidates:
        raise ReleaseError("no stable tag (pattern %r) older than the current release; known tags: %s; "
                           "give the target explicitly" % (pattern, ", ".join(known) or "none"),
                           known_tags=known)
    return max(candidates, key=lambda t: version_key(t["name"]))


def current_release(tags, head_commit, merged, pattern=DEFAULT_STABLE_PATTERN):
    """Name of the release HEAD is on: a tag at HEAD, else ``<newest ancestor tag>+``."""
    regex = compile_pattern(pattern)
    at_head = sorted((t["name"] for t in tags if t["commit"] == head_commit), key=version_key)
    if at_head:
        stable = [n for n in at_head if regex.search(n)]
        return (stable or at_head)[-1]
    older = sorted((n for n in merged if regex.search(n)), key=version_key)
    return older[-1] + "+" if older else None


def migrations_to_roll_back(current, target):
    """Migrations present now but not in the target, newest first (Prisma names sort by time)."""
    return sorted(set(current) - set(target), reverse=True)


def format_dirty(entries, limit=50):
    lines = ["%s %s" % (e["status"], e["path"]) for e in entries[:limit]]
    if len(entries) > limit:
        lines.append("... and %d more" % (len(entries) - limit))
    return lines


def plan(runner, git, repo, tag=None, pattern=DEFAULT_STABLE_PATTERN,
         migrations_dir=DEFAULT_MIGRATIONS_DIR, include_untracked=True):
    """Everything a rollback will do, decided before anything changes."""
    head = head_state(runner, git, repo)
    tags = list_tags(runner, git, repo)
    merged = merged_tags(runner, git, repo, head["commit"])
    target = select_target(tags, head["commit"], merged, pattern, explicit=tag)
    current_migrations = migrations_at(runner, git, repo, head["commit"], migrations_dir)
    target_migrations = migrations_at(runner, git, repo, target["commit"], migrations_dir)
    dirty = dirty_files(runner, git, repo, include_untracked)
    return {
        "repo": repo,
        "from": {"commit": head["commit"], "short": head["commit"][:12], "branch": head["branch"],
                 "release": current_release(tags, head["commit"], merged, pattern)},
        "to": {"tag": target["name"], "commit": target["commit"], "short": target["commit"][:12]},
        "noop": target["commit"] == head["commit"],
        "migrations": migrations_to_roll_back(current_migrations, target_migrations),
        "migrations_dir": migrations_dir,
        "dirty": dirty,
        "dirty_files": format_dirty(dirty),
        "stable_tags": sorted((t["name"] for t in tags if compile_pattern(pattern).search(t["name"])),
                              key=version_key, reverse=True),
    }


def refuse_dirty(the_plan):
    """Raise when the working tree has changes; the message lists them."""
    if the_plan["dirty"]:
        raise ReleaseError(
            "the working tree of %s has %d changed file(s); commit, stash or remove them, then run "
            "again (nothing was changed): %s" % (the_plan["repo"], len(the_plan["dirty"]),
                                                 "; ".join(the_plan["dirty_files"])),
            dirty_files=the_plan["dirty_files"])


# -- changing ----------------------------------------------------------------

def fetch(runner, git, repo, remote=None):
    """Fetch tags from ``remote`` (default: origin, else the first remote).

    Returns ``{"fetched": bool, "remote", "msg"}``; a repository without a remote
    is not an error: the fetch is skipped and the message says so.
    """
    names = remotes(runner, git, repo)
    if remote and remote not in names:
        raise ReleaseError("remote %r is not configured in %s; configured: %s"
                           % (remote, repo, ", ".join(names) or "none"))
    if not names:
        return {"fetched": False, "remote": None, "changed": False,
                "msg": "no git remote configured in %s: fetch skipped, using local tags" % repo}
    remote = remote or ("origin" if "origin" in names else names[0])
    res = runner.check([git, "-C", repo, "fetch", "--tags", "--prune", remote], what="git fetch")
    updates = (res.stdout + res.stderr).strip()
    return {"fetched": True, "remote": remote, "changed": bool(updates),
            "msg": "fetched %s%s" % (remote, ": " + updates if updates else " (up to date)")}


def preserve(runner, repo, state_dir, head, target, copy_paths, link_paths, now=None):
    """Record HEAD and copy the current build output aside; return the record.

    ``copy_paths`` (build output such as ``.next`` or ``dist``) are copied with
    ``cp -a``; ``link_paths`` (``node_modules``) are hard-link copies (``cp -al``,
    no space; npm replaces files rather than rewriting them). Missing paths are skipped.
    """
    stamp = utc_stamp(now)
    run_dir = os.path.join(state_dir, stamp)
    keep_dir = os.path.join(run_dir, "preserved")
    os.makedirs(keep_dir, mode=0o700)
    kept = []
    for rel, flag in [(p, "-a") for p in copy_paths] + [(p, "-al") for p in link_paths]:
        src = os.path.join(repo, rel)
        if not os.path.lexists(src):
            continue
        dest = os.path.join(keep_dir, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        res = runner.run(["cp", flag, src, dest])
        if res.rc != 0 and flag == "-al":  # another filesystem: hard links impossible, copy
            runner.run(["rm", "-rf", dest])
            flag = "-a"
            res = runner.run(["cp", flag, src, dest])
        if res.rc != 0:
            raise CommandError("cp %s %s failed: %s" % (flag, rel, res.stderr.strip()), ["cp", flag, src, dest],
                               res.rc, res.stdout, res.stderr)
        kept.append({"path": rel, "copy": dest, "method": "hardlink" if flag == "-al" else "copy"})
    record = {"time": stamp, "repo": repo, "commit": head["commit"], "branch": head["branch"],
              "target": target, "preserved": kept, "dir": run_dir}
    path = os.path.join(run_dir, RECORD_NAME)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2)
    record["record"] = path
    return record


def load_record(path):
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ReleaseError("rollback record %s cannot be read: %s" % (path, exc)) from exc
    record["record"] = path
    return record


def checkout(runner, git, repo, commit, include_untracked=True):
    """Detach HEAD at ``commit``, refusing a dirty tree (checked again right before)."""
    dirty = dirty_files(runner, git, repo, include_untracked)
    refuse_dirty({"repo": repo, "dirty": dirty, "dirty_files": format_dirty(dirty)})
    runner.check([git, "-C", repo, "-c", "advice.detachedHead=false", "checkout", "--quiet",
                  "--detach", commit], what="git checkout")


def reroll(runner, git, repo, record, include_untracked=True):
    """Go back to the recorded commit and put the preserved build output back.

    Changes a failed rollback left in tracked files are stashed (kept, not lost);
    the failed target's build output is moved to ``<record dir>/failed/``.
    """
    steps = []
    dirty = dirty_files(runner, git, repo, include_untracked)
    if dirty:
        runner.check([git, "-C", repo, "stash", "push", "--include-untracked", "--message",
                      "hb-rollback %s: left by the failed rollback" % record["time"]], what="git stash")
        steps.append("stashed %d changed file(s) left by the failed rollback" % len(dirty))
    branch = record.get("branch")
    if branch:
        tip = runner.run([git, "-C", repo, "rev-parse", "--verify", "refs/heads/%s^{commit}" % branch])
        if tip.rc != 0 or tip.stdout.strip() != record["commit"]:
            branch = None
    ref = ["--detach", record["commit"]] if not branch else [branch]
    runner.check([git, "-C", repo, "-c", "advice.detachedHead=false", "checkout", "--quiet"] + ref,
                 what="git checkout")
    steps.append("checked out %s (%s)" % (branch or "detached", record["commit"][:12]))
    failed_dir = os.path.join(record["dir"], "failed")
    for item in record.get("preserved", []):
        live = os.path.join(repo, item["path"])
        if os.path.lexists(live):
            aside = os.path.join(failed_dir, item["path"])
            os.makedirs(os.path.dirname(aside), exist_ok=True)
            shutil.move(live, aside)
        os.makedirs(os.path.dirname(live), exist_ok=True)
        shutil.move(item["copy"], live)
        steps.append("put back %s" % item["path"])
    return steps


__all__ = ["CommandError", "ReleaseError", "plan", "fetch", "preserve", "checkout", "reroll",
           "load_record", "refuse_dirty", "select_target", "current_release", "parse_porcelain_z",
           "migrations_to_roll_back", "version_key", "utc_stamp"]
