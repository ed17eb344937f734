"""Refuse a task run as another user that reads from the checkout or the installed collection.

A task with ``become_user`` (or ``become: true``, which is root on a managed host but a different user from
the controller's) runs on the managed host, where ``role_path``, ``playbook_dir``, ``inventory_dir`` and the
repository root are the controller's paths: under a 0700 home, or on another host, they cannot be read.
Files go there through ``copy``/``template``/``script`` (read by the controller) or a lookup instead. The sandbox role
is exempt: it builds this machine's sandbox from the checkout, as root, on purpose.
Exit 1 listing each offending task.
"""

import os
import re
import sys

import yaml

CONTROLLER_PATHS = ("role_path", "playbook_dir", "inventory_dir", "hb_repo_root")
# Module arguments the controller reads (and ships) itself, and lookups (evaluated on the controller).
CONTROLLER_READS = {"src"}
LOOKUP = re.compile(r"(lookup|query|q)\([^)]*\)")
EXEMPT = ("roles/sandbox/",)
TASK_DIRS = ("roles", "playbooks")


def tasks(node):
    """Every task dict in a play/task list, blocks included."""
    if isinstance(node, list):
        for item in node:
            yield from tasks(item)
    elif isinstance(node, dict):
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            if key in node:
                yield from tasks(node[key])
        if not any(k in node for k in ("block", "tasks", "hosts")):
            yield node


def strings(value, skip=()):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in skip:
                yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def offences(path):
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    for task in tasks(doc):
        if not (task.get("become_user") or task.get("become") is True):
            continue
        keywords = ("name", "when", "loop", "become", "become_user", "register", "delegate_to", "vars")
        args = {k: v for k, v in task.items() if k not in keywords}
        for module_args in args.values():
            for text in strings(module_args, skip=CONTROLLER_READS):
                text = LOOKUP.sub("", text)
                hit = [p for p in CONTROLLER_PATHS if p in text]
                if hit:
                    yield "%s: task %r runs as another user and uses %s" % (path, task.get("name"), ", ".join(hit))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.chdir(root)
    found, checked = [], 0
    for top in TASK_DIRS:
        for dirpath, _dirs, files in os.walk(top):
            for name in files:
                path = os.path.join(dirpath, name)
                if not name.endswith((".yml", ".yaml")) or path.startswith(EXEMPT) or "/meta/" in path \
                        or "/defaults/" in path or "/vars/" in path:
                    continue
                checked += 1
                found.extend(offences(path))
    for line in found:
        print(line)
    print("become paths: %d task file(s) checked, %d task(s) run as another user read the checkout"
          % (checked, len(found)))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
