# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Find the copies recover-db preserved, and which of them are older than N days.

Names are exact (never a glob on the live name): ``<data_dir>.pre_pitr_<UTC>``,
``<data_dir>.failed_pitr_<UTC>``, databases ``<db>_pre_restore_<UTC>`` /
``<db>_failed_restore_<UTC>``, safety dumps ``<db>_pre_restore_<UTC>.dump``; rows mode's kept copies
``<data_dir>.rows_copy_<UTC>`` and tables of overwritten rows ``<schema>.<table>_pre_rows_<utc>``.
"""

from __future__ import annotations

import datetime as dt
import os
import re

STAMP = r"(\d{8}T\d{6}Z)"


def parse_stamp(text):
    return dt.datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)


def data_dir_copies(data_dir):
    data_dir = data_dir.rstrip("/")
    parent, base = os.path.dirname(data_dir), os.path.basename(data_dir)
    pattern = re.compile(r"^%s\.(pre|failed)_(?:pitr|rejoin)_%s$" % (re.escape(base), STAMP))
    out = []
    for name in sorted(os.listdir(parent)) if os.path.isdir(parent) else []:
        m = pattern.match(name)
        if m and os.path.isdir(os.path.join(parent, name)):
            out.append({"kind": "data_dir", "name": os.path.join(parent, name), "stamp": m.group(2)})
    return out


def database_copies(db_name, databases):
    pattern = re.compile(r"^%s_(pre|failed)_restore_%s$" % (re.escape(db_name), STAMP))
    return [{"kind": "database", "name": d, "stamp": pattern.match(d).group(2)}
            for d in sorted(databases) if pattern.match(d)]


def dump_copies(db_name, dump_dir):
    pattern = re.compile(r"^%s_pre_restore_%s\.dump$" % (re.escape(db_name), STAMP))
    names = sorted(os.listdir(dump_dir)) if dump_dir and os.path.isdir(dump_dir) else []
    return [{"kind": "safety_dump", "name": os.path.join(dump_dir, n), "stamp": pattern.match(n).group(1)}
            for n in names if pattern.match(n)]


def rows_copies(data_dir):
    """Point-in-time copies kept by rows mode (``keep_copy``); removing one stops its server first."""
    data_dir = data_dir.rstrip("/")
    parent, base = os.path.dirname(data_dir), os.path.basename(data_dir)
    pattern = re.compile(r"^%s\.rows_copy_%s$" % (re.escape(base), STAMP))
    names = sorted(os.listdir(parent)) if os.path.isdir(parent) else []
    return [{"kind": "rows_copy", "name": os.path.join(parent, n), "stamp": pattern.match(n).group(1)}
            for n in names if pattern.match(n) and os.path.isdir(os.path.join(parent, n))]


PRE_ROWS_SQL = ("SELECT coalesce(json_agg(format('%s.%s', n.nspname, c.relname) ORDER BY 1), '[]') FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
                "AND c.relname ~ '_pre_rows_[0-9]{8}t[0-9]{6}z$'")


def pre_rows_tables(tables):
    """Tables of live rows that rows mode overwrote (``<table>_pre_rows_<utc>``, from ``PRE_ROWS_SQL``)."""
    pattern = re.compile(r"^.+_pre_rows_(\d{8}t\d{6}z)$")
    return [{"kind": "pre_rows_table", "name": t, "stamp": pattern.match(t).group(1).upper()}
            for t in sorted(tables) if pattern.match(t)]


def older_than(items, now, days, held=None):
    """Items with their age; ``remove`` is true for those older than ``days``.

    ``held`` (``{stamp: kind}`` of runs not yet ended, ``run_journal.open_runs``): their copies are kept
    whatever their age, with ``held_by`` saying why, since finishing or aborting that run needs them.
    """
    out = []
    for item in items:
        age = (now - parse_stamp(item["stamp"])).total_seconds() / 86400.0
        entry = dict(item, age_days=round(age, 2), remove=age > days)
        if (held or {}).get(item["stamp"]):
            entry.update(remove=False, held_by="interrupted %s run %s: finish it (re-run) or abort it first" % (
                held[item["stamp"]], item["stamp"]))
        out.append(entry)
    return out
