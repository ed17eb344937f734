#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: app_release
short_description: Plan, preserve, check out and re-roll a git-deployed app release
version_added: "0.1.0"
description:
  - Works on the git checkout of a Node.js app (the runbook's C(/app)) for the emergency rollback.
  - C(state=planned) fetches tags (skipped with a message when the repository has no remote), decides
    the target tag (explicit, or the newest tag matching O(stable_pattern) older than the current release),
    lists the migrations added since the target and the changed files of the working tree. It never
    changes the working tree and refuses a dirty tree unless O(refuse_dirty=false).
  - C(state=preserved) records the current commit and copies the current build output aside
    (O(copy_paths) with C(cp -a), O(link_paths) as hard-link copies) so a re-roll needs no rebuild.
  - C(state=checked_out) detaches HEAD at O(tag), refusing a dirty tree with the changed files listed.
  - C(state=restored) goes back to the commit in O(record) and puts the preserved build output back;
    changes a failed rollback left in tracked files are stashed, the failed build output is kept aside.
  - Uses only C(git) and C(cp) on the managed host.
author:
  - Health Butler SRE (@healthbutler)
options:
  path:
    description: The app's git working tree.
    type: path
    required: true
  state:
    description: What to do (see the description).
    type: str
    choices: [planned, preserved, checked_out, restored]
    default: planned
  tag:
    description:
      - The target tag. With C(state=planned), an explicit choice (default is automatic);
        required with C(state=preserved) and C(state=checked_out).
    type: str
  stable_pattern:
    description: Regular expression (searched) a tag must match to be a stable release.
    type: str
    default: '^v?\d+\.\d+\.\d+$'
  migrations_dir:
    description: Directory whose sub-directories are migrations (Prisma layout).
    type: str
    default: prisma/migrations
  fetch:
    description: With C(state=planned), fetch tags from O(remote) first (never in check mode).
    type: bool
    default: true
  remote:
    description: Remote to fetch from; default C(origin), else the first remote.
    type: str
  refuse_dirty:
    description: With C(state=planned), fail when the working tree has changes.
    type: bool
    default: true
  include_untracked:
    description: Count untracked (not git-ignored) files as changes.
    type: bool
    default: true
  copy_paths:
    description: Build output (relative to O(path)) copied aside by C(state=preserved).
    type: list
    elements: str
    default: [.next, dist]
  link_paths:
    description: Directories preserved as hard-link copies (C(cp -al)); npm replaces, never rewrites, files.
    type: list
    elements: str
    default: [node_modules]
  state_dir:
    description: Where C(state=preserved) writes C(<UTC stamp>/record.json) and the copies.
    type: path
  record:
    description: The C(record.json) written by C(state=preserved); required with C(state=restored).
    type: path
notes:
  - Check mode is supported; C(state=planned) behaves the same except that it does not fetch.
  - The result never contains file contents or environment values.
seealso:
  - module: healthbutler.recovery.env_restore
"""

EXAMPLES = r"""
- name: Plan the rollback (newest stable tag older than the current release)
  healthbutler.recovery.app_release:
    path: /app
    state: planned
  register: plan

- name: Record the current commit and keep its build output
  healthbutler.recovery.app_release:
    path: /app
    state: preserved
    tag: "{{ plan.plan.to.tag }}"
    state_dir: /var/lib/healthbutler-recovery/runs/rollback
  register: kept

- name: Check out the target
  healthbutler.recovery.app_release:
    path: /app
    state: checked_out
    tag: "{{ plan.plan.to.tag }}"

- name: Re-roll to the recorded commit and build
  healthbutler.recovery.app_release:
    path: /app
    state: restored
    record: "{{ kept.record.record }}"
"""

RETURN = r"""
plan:
  description: The rollback plan (C(state=planned)).
  returned: state is planned
  type: dict
  contains:
    from:
      description: C(commit), C(short), C(branch) (null when detached), C(release) (tag at HEAD or C(<tag>+)).
      type: dict
    to:
      description: C(tag), C(commit), C(short) of the target.
      type: dict
    noop:
      description: The target is the commit already checked out.
      type: bool
    migrations:
      description: Migrations present now but not in the target, newest first.
      type: list
      elements: str
    dirty_files:
      description: C(<status> <path>) of each changed file (empty when clean).
      type: list
      elements: str
    stable_tags:
      description: Stable tags, newest first.
      type: list
      elements: str
  sample:
    from: {commit: 3f2a..., short: 3f2a1b2c3d4e, branch: main, release: v1.2.0}
    to: {tag: v1.1.0, commit: 6af2..., short: 6af261bd1c4f}
    noop: false
    migrations: [20261128090000_add_sleep]
    dirty_files: []
fetch:
  description: What the fetch did (C(fetched), C(remote), C(msg)).
  returned: state is planned
  type: dict
  sample: {fetched: false, remote: null, msg: "no git remote configured in /app: fetch skipped, using local tags"}
record:
  description: The rollback record (C(state=preserved)) or the record used (C(state=restored)).
  returned: state is preserved or restored
  type: dict
  sample: {commit: 3f2a..., branch: main, record: /runs/rollback/20261128T234500Z/record.json,
           preserved: [{path: dist, method: copy, copy: /runs/rollback/20261128T234500Z/preserved/dist}]}
steps:
  description: What C(state=restored) did, in order.
  returned: state is restored
  type: list
  elements: str
commit:
  description: HEAD after the module ran.
  returned: state is checked_out or restored
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import release
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import (
    AnsibleRunner,
    RecoveryError,
    fail_from,
)


def run_planned(module, runner, git, params):
    fetched = {"fetched": False, "remote": None, "changed": False, "msg": "fetch disabled"}
    if params["fetch"]:
        if module.check_mode:
            names = release.remotes(runner, git, params["path"])
            fetched["msg"] = ("check mode: would fetch tags from %s" % ", ".join(names) if names
                              else "no git remote configured in %s: fetch skipped" % params["path"])
        else:
            fetched = release.fetch(runner, git, params["path"], params["remote"])
    plan = release.plan(runner, git, params["path"], params["tag"], params["stable_pattern"],
                        params["migrations_dir"], params["include_untracked"])
    if params["refuse_dirty"]:
        try:
            release.refuse_dirty(plan)
        except release.ReleaseError as exc:
            module.fail_json(msg=exc.msg, plan=plan, fetch=fetched)
    module.exit_json(changed=fetched["changed"], plan=plan, fetch=fetched)


def run_preserved(module, runner, git, params):
    if not params["state_dir"]:
        module.fail_json(msg="state_dir is required with state=preserved")
    head = release.head_state(runner, git, params["path"])
    if module.check_mode:
        module.exit_json(changed=True, record={"commit": head["commit"], "branch": head["branch"],
                                               "target": params["tag"], "preserved": []})
    record = release.preserve(runner, params["path"], params["state_dir"], head, params["tag"],
                              params["copy_paths"], params["link_paths"])
    module.exit_json(changed=True, record=record)


def run_checked_out(module, runner, git, params):
    if not params["tag"]:
        module.fail_json(msg="tag is required with state=checked_out")
    path = params["path"]
    tags = {t["name"]: t for t in release.list_tags(runner, git, path)}
    if params["tag"] not in tags:
        module.fail_json(msg="tag %r does not exist in %s; known tags: %s"
                         % (params["tag"], path, ", ".join(sorted(tags, key=release.version_key)) or "none"))
    commit = tags[params["tag"]]["commit"]
    head = release.head_state(runner, git, path)
    if head["commit"] == commit and not head["branch"]:
        module.exit_json(changed=False, commit=commit)
    dirty = release.dirty_files(runner, git, path, params["include_untracked"])
    release.refuse_dirty({"repo": path, "dirty": dirty, "dirty_files": release.format_dirty(dirty)})
    if not module.check_mode:
        release.checkout(runner, git, path, commit, params["include_untracked"])
    module.exit_json(changed=True, commit=commit)


def run_restored(module, runner, git, params):
    if not params["record"]:
        module.fail_json(msg="record is required with state=restored")
    record = release.load_record(params["record"])
    if module.check_mode:
        module.exit_json(changed=True, record=record, steps=["check mode: would re-roll"],
                         commit=record["commit"])
    steps = release.reroll(runner, git, params["path"], record, params["include_untracked"])
    head = release.head_state(runner, git, params["path"])
    module.exit_json(changed=True, record=record, steps=steps, commit=head["commit"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", default="planned",
                       choices=["planned", "preserved", "checked_out", "restored"]),
            tag=dict(type="str"),
            stable_pattern=dict(type="str", default=release.DEFAULT_STABLE_PATTERN),
            migrations_dir=dict(type="str", default=release.DEFAULT_MIGRATIONS_DIR),
            fetch=dict(type="bool", default=True),
            remote=dict(type="str"),
            refuse_dirty=dict(type="bool", default=True),
            include_untracked=dict(type="bool", default=True),
            copy_paths=dict(type="list", elements="str", default=[".next", "dist"]),
            link_paths=dict(type="list", elements="str", default=["node_modules"]),
            state_dir=dict(type="path"),
            record=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    git = module.get_bin_path("git", required=True)
    runner = AnsibleRunner(module)
    handlers = {"planned": run_planned, "preserved": run_preserved,
                "checked_out": run_checked_out, "restored": run_restored}
    try:
        release.compile_pattern(params["stable_pattern"])
        if runner.run([git, "-C", params["path"], "rev-parse", "--git-dir"]).rc != 0:
            module.fail_json(msg="path %s is not a git working tree" % params["path"])
        handlers[params["state"]](module, runner, git, params)
    except RecoveryError as exc:  # a ReleaseError or a failed command
        fail_from(module, exc)
    except OSError as exc:
        module.fail_json(msg="%s: %s" % (type(exc).__name__, exc))


if __name__ == "__main__":
    main()
