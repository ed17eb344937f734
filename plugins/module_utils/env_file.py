# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""``.env`` files: parse, compare by key with redacted values, replace safely.

Values never leave this module: comparisons report key names and a masked
description of each value (``<redacted: 40 chars>``), never the value itself.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile

from ansible_collections.healthbutler.recovery.plugins.module_utils import redact

ABSENT = "<absent>"


def mask(value):
    """A value's stand-in: its length only, for every key.

    Stricter than ``redact.redact_env_text`` (which masks secret-looking keys and
    shows the rest): a restore diff never shows any value, not even ``PORT``.
    """
    if value is None:
        return ABSENT
    if value == "":
        return "<empty>"
    return "<redacted: %d chars>" % len(value)


def parse_env(text):
    """``KEY=VALUE`` lines into a dict (last assignment wins), parsed like the app's loader.

    Uses ``redact.parse_env_text`` (comments, ``export``, matching quotes).
    """
    return {key: value for key, value in redact.parse_env_text(text) if key}


def read_env(path):
    with open(path, encoding="utf-8") as fh:
        return parse_env(fh.read())


def diff_keys(current, wanted):
    """Compare two parsed files by key; values are masked.

    Returns ``{"added", "removed", "changed", "same", "differ", "lines"}``: ``added``
    keys exist only in ``wanted`` (the backup), ``removed`` only in ``current``,
    ``changed`` in both with different values; ``lines`` is a redacted, printable
    summary such as ``~ JWT_SECRET: <redacted: 40 chars> -> <redacted: 40 chars>``.
    """
    added = [k for k in wanted if k not in current]
    removed = [k for k in current if k not in wanted]
    changed = [k for k in wanted if k in current and current[k] != wanted[k]]
    same = [k for k in wanted if k in current and current[k] == wanted[k]]
    lines = ["+ %s: %s" % (k, mask(wanted[k])) for k in added]
    lines += ["- %s: %s" % (k, mask(current[k])) for k in removed]
    lines += ["~ %s: %s -> %s" % (k, mask(current[k]), mask(wanted[k])) for k in changed]
    return {"added": added, "removed": removed, "changed": changed, "same": len(same),
            "differ": bool(added or removed or changed), "lines": lines}


def redacted_view(env):
    """``{key: mask(value)}``: what a diff or report may show of a file."""
    return {k: mask(v) for k, v in env.items()}


def file_identity(path):
    st = os.stat(path)
    return {"mode": "%04o" % (st.st_mode & 0o7777), "uid": st.st_uid, "gid": st.st_gid}


def keep_previous(path, stamp, tag="pre_restore"):
    """Copy ``path`` to ``<path>.<tag>_<stamp>`` keeping its mode and owner."""
    dest = "%s.%s_%s" % (path, tag, stamp)
    if os.path.lexists(dest):
        raise FileExistsError("%s already exists; refusing to overwrite a kept copy" % dest)
    st = os.stat(path)
    shutil.copy2(path, dest)
    os.chown(dest, st.st_uid, st.st_gid)
    os.chmod(dest, st.st_mode & 0o7777)
    return dest


def install(src, dest, mode=0o600, uid=None, gid=None):
    """Copy ``src`` over ``dest`` atomically (temp file in dest's dir, then rename)."""
    directory = os.path.dirname(os.path.abspath(dest))
    fd, tmp = tempfile.mkstemp(prefix=".env.restore.", dir=directory)
    try:
        os.fchmod(fd, mode)
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            shutil.copyfileobj(fin, fout)
            fout.flush()
            os.fsync(fout.fileno())
        if uid is not None or gid is not None:
            os.chown(tmp, -1 if uid is None else uid, -1 if gid is None else gid)
        os.chmod(tmp, mode)
        os.rename(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def replace_value(text, key, value):
    """``text`` with the last ``key=`` assignment's value replaced, every other byte kept.

    Raises ``KeyError`` when the file does not assign ``key``.
    """
    lines = text.splitlines(keepends=True)
    rx = re.compile(r"^(\s*(?:export\s+)?%s\s*=\s*)(.*?)(\r?\n)?$" % re.escape(key))
    for i in range(len(lines) - 1, -1, -1):
        match = rx.match(lines[i])
        if match:
            old = match.group(2).strip()
            quote = old[0] if len(old) >= 2 and old[0] in "'\"" and old[-1] == old[0] else ""
            lines[i] = match.group(1) + quote + value + quote + (match.group(3) or "")
            return "".join(lines)
    raise KeyError(key)
