"""Make the collection importable as ansible_collections.healthbutler.recovery."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
link = os.path.join(COLLECTIONS, "ansible_collections", "healthbutler", "recovery")
if not os.path.exists(link):
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(ROOT, link)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

# ansible-playbook and friends come from the interpreter's own venv, pm2 from .tools, the settings from the
# checkout's ansible.cfg: what the Makefile exports, so that tests and bench/ scripts also run without make.
for _bindir in (os.path.dirname(sys.executable), os.path.join(ROOT, ".tools", "node_modules", ".bin")):
    if _bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = _bindir + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("ANSIBLE_CONFIG", os.path.join(ROOT, "ansible.cfg"))
os.environ.setdefault("ANSIBLE_HOME", os.path.join(ROOT, ".ansible"))
