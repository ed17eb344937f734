# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Find the copies recover-db preserved, and which of them are older than N days.

Names are exact (never a glob on the live name): ``<data_dir>.pre_pitr_<UTC>``,
``<data_dir>.failed_pitr_<UTC>``, databases ``<db>_pre_restore_<UTC>`` /
``<db>_failed_restore_<UTC>``, safety dumps ``<db>_pre_restore_<UTC>.dump``.
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


def older_than(items, now, days):
    """Items with their age; ``remove`` is true for those older than ``days``."""
    out = []
    for item in items:
        age = (now - parse_stamp(item["stamp"])).total_seconds() / 86400.0
        out.append(dict(item, age_days=round(age, 2), remove=age > days))
    return out
