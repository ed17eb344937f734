"""Helpers for the rollback and file-restore tests: release commits in the sandbox app repo, digests."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess

STABLE = "v1.1.0"


def git(sandbox, *args, check=True):
    proc = subprocess.run(["git", "-C", sandbox["hb_app_dir"]] + list(args), capture_output=True, text=True,
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError("git %s failed: %s" % (" ".join(args), proc.stderr))
    return proc.stdout.strip()


def head(sandbox):
    return git(sandbox, "rev-parse", "HEAD")


def tag_commit(sandbox, tag):
    return git(sandbox, "rev-parse", "%s^{commit}" % tag)


def commit_release(sandbox, tag, build=None, migrations=(), stay=True):
    """Commit a release on top of HEAD and tag it; return to the previous commit unless ``stay``."""
    app = sandbox["hb_app_dir"]
    before = git(sandbox, "symbolic-ref", "-q", "--short", "HEAD", check=False) or head(sandbox)
    if not stay:  # commit beside the branch, which stays where it is
        git(sandbox, "-c", "advice.detachedHead=false", "checkout", "-q", "--detach")
    with open(os.path.join(app, "build.json"), "w", encoding="utf-8") as fh:
        json.dump(build or {}, fh)
    with open(os.path.join(app, "VERSION"), "w", encoding="utf-8") as fh:
        fh.write(tag.lstrip("v") + "\n")
    for name in migrations:
        path = os.path.join(app, "prisma", "migrations", name)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "migration.sql"), "w", encoding="utf-8") as fh:
            fh.write("-- %s\nSELECT 1;\n" % name)
    git(sandbox, "add", "-A")
    git(sandbox, "commit", "-q", "-m", "release %s" % tag)
    git(sandbox, "tag", "-a", tag, "-m", "release %s" % tag)
    if not stay:
        git(sandbox, "-c", "advice.detachedHead=false", "checkout", "-q", before)
    return tag_commit(sandbox, tag)


def build_and_restart(sandbox):
    """Deploy what is checked out: build, restart under PM2."""
    subprocess.run(["npm", "run", "build", "--silent"], cwd=sandbox["hb_app_dir"], check=True,
                   capture_output=True)
    assert sandbox.pm2("restart", sandbox["hb_app_name"]).returncode == 0


def build_info(sandbox):
    with open(os.path.join(sandbox["hb_app_dir"], "dist", "BUILD_INFO.json"), encoding="utf-8") as fh:
        return json.load(fh)


def reset_app(sandbox, extra_tags=()):
    """Back to the sandbox's own state: main at v1.1.0, built, serving."""
    git(sandbox, "stash", "clear", check=False)
    git(sandbox, "checkout", "-q", "-f", "main")
    git(sandbox, "reset", "-q", "--hard", STABLE)
    git(sandbox, "clean", "-q", "-fd")
    for tag in extra_tags:
        git(sandbox, "tag", "-d", tag, check=False)
    if not os.path.exists(os.path.join(sandbox["hb_app_dir"], "node_modules", "pg")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=sandbox["hb_app_dir"], check=True,
                       capture_output=True)
    info = build_info(sandbox) if os.path.exists(os.path.join(sandbox["hb_app_dir"], "dist",
                                                              "BUILD_INFO.json")) else {}
    if info.get("commit") != head(sandbox) or not sandbox.is_healthy():
        build_and_restart(sandbox)
    sandbox.wait_health(200)


def tree_digest(path):
    """sha256 over every entry under ``path``: relative name, type, mode, bytes or link target."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(root, name)
            st = os.lstat(full)
            digest.update(("%s\0%o\0" % (os.path.relpath(full, path), st.st_mode)).encode())
            if stat.S_ISLNK(st.st_mode):
                digest.update(os.readlink(full).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as fh:
                    digest.update(hashlib.sha256(fh.read()).digest())
    return digest.hexdigest()


def file_sha(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()
