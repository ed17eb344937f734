# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""The backup policy (RUNBOOK 备份策略) as data: what violates it, what retention removes.

Policy: a full backup every day (03:00), an incremental every 4 hours, 30 days
kept, an offsite copy. Every function here is pure: catalogue(s) + policy +
``now`` in, plain data out.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_catalog as bc
from ansible_collections.healthbutler.recovery.plugins.module_utils import walnames

DEFAULT_POLICY = {
    "full_interval_hours": 24,
    "incremental_interval_hours": 4,
    "grace_hours": 1,
    "retention_days": 30,
    "offsite_required": True,
    "full_kinds": ["dump", "base"],
}


def policy_with_defaults(policy=None):
    merged = dict(DEFAULT_POLICY)
    merged.update({k: v for k, v in (policy or {}).items() if v is not None})
    for key in ("full_interval_hours", "incremental_interval_hours", "grace_hours", "retention_days"):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError("policy.%s must be a number >= 0, got %r" % (key, value))
    return merged


def _now(now):
    if now is None:
        return datetime.now(timezone.utc)
    return bc.parse_time(now)


def _hours(seconds):
    return round(seconds / 3600.0, 2)


def _violation(kind, message, severity="failed", **evidence):
    return dict({"kind": kind, "severity": severity, "message": message}, **evidence)


def violations(catalog, policy=None, now=None, offsite_catalog=None):
    """Every way ``catalog`` breaks ``policy`` at ``now``: ``[{kind, severity, message, ...}]``.

    Kinds: ``full_missing``, ``full_stale``, ``incremental_missing``, ``incremental_gap``,
    ``retention_short`` (window does not reach back the retention period: a warning while the site
    is younger than it), ``retention_excess`` (something older than the window is kept beyond what
    retention allows), ``offsite_missing``, ``offsite_stale``.
    """
    pol = policy_with_defaults(policy)
    now_dt = _now(now)
    now_ts = now_dt.timestamp()
    grace = pol["grace_hours"] * 3600
    out = []
    backups = catalog.get("backups", [])
    for kind in pol["full_kinds"]:
        newest = bc.newest(catalog, kind)
        limit = pol["full_interval_hours"] * 3600 + grace
        if newest is None:
            out.append(_violation("full_missing", "no %s backup at all" % kind, backup_kind=kind))
        elif now_ts - bc.epoch(newest["time"]) > limit:
            out.append(_violation("full_stale", "newest %s backup %s is %.1f h old (limit %s h + %s h grace)" % (
                kind, newest["name"], _hours(now_ts - bc.epoch(newest["time"])), pol["full_interval_hours"],
                pol["grace_hours"]), backup_kind=kind, newest=newest["name"], newest_time=newest["time"]))
    out += _incremental_violations(backups, pol, now_ts, grace)
    out += _retention_violations(catalog, pol, now_dt)
    if pol["offsite_required"]:
        out += _offsite_violations(catalog, offsite_catalog, pol, now_ts, grace)
    return out


def _incremental_violations(backups, pol, now_ts, grace):
    limit = pol["incremental_interval_hours"] * 3600 + grace
    window_start = now_ts - pol["retention_days"] * 86400
    times = sorted(bc.epoch(b["time"]) for b in backups if b["kind"] == "incremental")
    if not times:
        oldest = min((bc.epoch(b["time"]) for b in backups), default=None)
        if oldest is not None and now_ts - oldest > limit:
            return [_violation("incremental_missing", "no incremental backup although backups exist since %s"
                               % bc.iso(oldest))]
        return []
    out = []
    # An incremental from before the window counts from the window's start.
    points = ([window_start] if times[0] < window_start else []) + [t for t in times if t >= window_start] + [now_ts]
    for prev, cur in zip(points, points[1:]):
        if cur - prev > limit:
            out.append(_violation("incremental_gap", "%.1f h without an incremental backup, from %s to %s "
                                  "(limit %s h + %s h grace)" % (_hours(cur - prev), bc.iso(prev),
                                                                 "now" if cur == now_ts else bc.iso(cur),
                                                                 pol["incremental_interval_hours"],
                                                                 pol["grace_hours"]),
                                  gap_start=bc.iso(prev), gap_end=bc.iso(cur), gap_hours=_hours(cur - prev)))
    return out


def _retention_violations(catalog, pol, now_dt):
    out = []
    plan = plan_retention(catalog, pol, now_dt)
    if plan["remove"]:
        out.append(_violation("retention_excess", "%d backup(s)/segment(s) older than the %s-day window are kept "
                              "beyond the policy" % (len(plan["remove"]), pol["retention_days"]),
                              severity="warning", items=[r["name"] for r in plan["remove"][:50]]))
    window_start = now_dt.timestamp() - pol["retention_days"] * 86400
    fulls = [bc.epoch(b["time"]) for b in catalog.get("backups", []) if b["kind"] in pol["full_kinds"]]
    if fulls and min(fulls) > window_start:
        out.append(_violation("retention_short", "oldest full backup %s is younger than the %s-day window: the "
                              "window does not reach back %s days" % (bc.iso(min(fulls)), pol["retention_days"],
                                                                      pol["retention_days"]),
                              severity="warning", oldest_full=bc.iso(min(fulls))))
    return out


def _offsite_violations(catalog, offsite_catalog, pol, now_ts, grace):
    if offsite_catalog is None or not offsite_catalog.get("exists", True):
        return [_violation("offsite_missing", "no offsite copy was catalogued")]
    out = []
    off_names = {(b["kind"], b["name"]) for b in offsite_catalog.get("backups", [])}
    window_start = now_ts - pol["retention_days"] * 86400
    missing = [b["name"] for b in catalog.get("backups", [])
               if b["kind"] in ("dump", "base", "incremental") and bc.epoch(b["time"]) >= window_start
               and (b["kind"], b["name"]) not in off_names]
    if missing:
        out.append(_violation("offsite_missing", "%d backup(s) inside the window are not offsite" % len(missing),
                              items=missing))
    newest_off = max((bc.epoch(b["time"]) for b in offsite_catalog.get("backups", [])), default=None)
    limit = pol["incremental_interval_hours"] * 3600 + grace
    if newest_off is None or now_ts - newest_off > limit:
        out.append(_violation("offsite_stale", "newest offsite backup is %s" % (
            "absent" if newest_off is None else "%.1f h old (limit %s h + %s h grace)" % (
                _hours(now_ts - newest_off), pol["incremental_interval_hours"], pol["grace_hours"])),
            newest_time=bc.iso(newest_off) if newest_off else None))
    return out


def plan_retention(catalog, policy=None, now=None, wal_seg_size=walnames.WAL_SEG_SIZE):
    """What retention keeps and removes.

    Inside the window (``now - retention_days``) everything is kept. Older: the newest
    backup of each kind older than the window is kept (so every point inside the window
    stays reachable), the rest removed. WAL segments are kept from the start segment of
    the oldest kept base backup on; older segments and bundles holding only older
    segments are removed. History files are always kept.
    """
    pol = policy_with_defaults(policy)
    now_dt = _now(now)
    window_start = now_dt.timestamp() - pol["retention_days"] * 86400
    keep, remove = [], []
    by_kind = {}
    for entry in catalog.get("backups", []):
        by_kind.setdefault(entry["kind"], []).append(entry)
    kept_bases = []
    for kind, entries in by_kind.items():
        if kind == "incremental":
            continue
        older = sorted((e for e in entries if bc.epoch(e["time"]) < window_start), key=lambda e: bc.epoch(e["time"]))
        anchor = older[-1] if older else None
        for entry in entries:
            item = {"kind": kind, "name": entry["name"], "path": entry["path"], "time": entry["time"]}
            if bc.epoch(entry["time"]) >= window_start or entry is anchor:
                item["why"] = "inside the window" if entry is not anchor else "newest %s older than the window" % kind
                keep.append(item)
                if kind == "base":
                    kept_bases.append(entry)
            else:
                item["why"] = "older than the window and not needed"
                remove.append(item)
    oldest_base = min(kept_bases, key=lambda e: bc.epoch(e["time"])) if kept_bases else None
    first_needed = None
    if oldest_base and oldest_base.get("start_wal"):
        first_needed = walnames.segment_number(oldest_base["start_wal"], wal_seg_size)
    for entry in by_kind.get("incremental", []):
        item = {"kind": "incremental", "name": entry["name"], "path": entry["path"], "time": entry["time"]}
        segnos = [walnames.segment_number(s, wal_seg_size) for s in entry.get("segments") or []
                  if walnames.is_segment(s)]
        needed = first_needed is None or not segnos or max(segnos) >= first_needed
        if bc.epoch(entry["time"]) >= window_start or needed:
            item["why"] = "inside the window" if bc.epoch(entry["time"]) >= window_start else \
                "holds WAL needed by a kept base backup"
            keep.append(item)
        else:
            item["why"] = "WAL older than the oldest kept base backup"
            remove.append(item)
    wal = catalog.get("wal") or {}
    for seg in wal.get("segments") or []:
        item = {"kind": "wal", "name": seg["name"], "path": "%s/%s" % (wal.get("dir"), seg["name"]),
                "time": seg.get("mtime")}
        if (first_needed is not None and walnames.segment_number(seg["name"], wal_seg_size) < first_needed
                and (bc.epoch(seg.get("mtime")) or 0) < window_start):
            item["why"] = "older than the window and before the start of the oldest kept base backup"
            remove.append(item)
        else:
            keep.append(item)
    return {"window_start": bc.iso(window_start), "keep": keep, "remove": remove,
            "oldest_kept_base": oldest_base["name"] if oldest_base else None,
            "first_needed_segment": oldest_base.get("start_wal") if oldest_base else None}


def window_start(now, retention_days):
    return bc.iso(_now(now) - timedelta(days=retention_days))
