# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Point-in-time recovery planning: parse the target, choose the base backup, check the window.

Pure functions over a backup catalogue (``backup_catalog.scan``, see CATALOG.md) plus
one reader (``resolve_in_wal`` runs ``pg_waldump``). Nothing here changes anything.

Rules (docs/recover-db.md):

* The target is one dict with exactly one of ``time``, ``xid``, ``lsn``, ``name``,
  ``immediate``; plus ``inclusive`` (default true), ``timeline`` (``current`` = the
  base backup's timeline, ``latest`` or a number) and ``action`` (``promote``,
  ``pause``, ``shutdown``).
* A ``time`` must carry its zone (``Z``, ``UTC`` or ``+08:00``). A time without one is
  refused, always: the operator's, the controller's and the server's zones can
  differ, and PostgreSQL would read it in the restored server's ``TimeZone``.
* The base backup is chosen by its STOP point: the newest one that stopped before
  the target. ``xid`` and ``name`` are located in the archived WAL first (their commit
  or restore-point record gives an LSN and a time).
* WAL must be continuous from the base backup's start segment to the target.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re

from ansible_collections.healthbutler.recovery.plugins.module_utils import walnames

WAL_SEG_SIZE = walnames.WAL_SEG_SIZE
TARGET_KINDS = ("time", "xid", "lsn", "name", "immediate")
ACTIONS = ("promote", "pause", "shutdown")
PAST_LAST_COMMIT = ("refuse", "end_of_wal")
_TIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)?$")
MAX_XID = 2 ** 32 - 1


class PlanError(Exception):
    """The request cannot be planned; ``msg`` says why and what would be valid."""

    def __init__(self, msg, window=None, field=None):
        super().__init__(msg)
        self.msg = msg
        self.window = window
        self.field = field


# -- LSNs and WAL segment names (walnames, owned by the backups area) ---------------------------

parse_lsn = walnames.parse_lsn
format_lsn = walnames.format_lsn
segment_name = walnames.segment_name


def segno_of(lsn, seg_size=WAL_SEG_SIZE):
    return lsn // seg_size


# -- times ----------------------------------------------------------------------------------

def parse_time(text):
    """Parse an ISO-8601-like time that carries its zone; return an aware UTC datetime."""
    m = _TIME_RE.match(str(text).strip())
    if not m:
        raise PlanError("target.time %r is not a time like 2026-11-28T10:30:00+08:00" % (text,),
                        field="time")
    day, clock, zone = m.groups()
    if zone is None:
        raise PlanError(
            "target.time %r has no time zone; give it with an explicit offset, e.g. %sT%s+00:00 "
            "(UTC) or %sT%s+08:00. A time without a zone is always refused: it would be read in "
            "the restored server's TimeZone, which is not necessarily yours" % (text, day, clock, day, clock),
            field="time")
    if zone in ("Z", "UTC"):
        offset = "+00:00"
    elif len(zone) == 3:
        offset = zone + ":00"
    elif ":" not in zone:
        offset = zone[:3] + ":" + zone[3:]
    else:
        offset = zone
    if len(clock) == 5:
        clock += ":00"
    try:
        value = dt.datetime.fromisoformat("%sT%s%s" % (day, clock, offset))
    except ValueError as exc:
        raise PlanError("target.time %r is not a valid time: %s" % (text, exc), field="time") from exc
    return value.astimezone(dt.timezone.utc)


def iso(value):
    """UTC ISO-8601 with 'Z' (microseconds kept when present)."""
    if value is None:
        return None
    text = value.astimezone(dt.timezone.utc).isoformat()
    return text.replace("+00:00", "Z")


def parse_iso(text):
    if text is None:
        return None
    if isinstance(text, dt.datetime):
        return text if text.tzinfo else text.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00").replace(" ", "T"))


# -- the target -----------------------------------------------------------------------------

def parse_target(target, now):
    """Validate the target dict; return ``{kind, value, inclusive, timeline, action, ...}``.

    ``now`` is an aware datetime (times in the future are refused).
    """
    if not isinstance(target, dict) or not target:
        raise PlanError("target must be a dict with exactly one of %s, e.g. -e '{\"target\": {\"time\": "
                        "\"2026-11-28T10:30:00+08:00\"}}' or -e '{\"target\": {\"xid\": \"1234567\"}}'; got %s"
                        % ("/".join(TARGET_KINDS), json.dumps(target) if target not in (None, {}) else "none"),
                        field="target")
    unknown = sorted(set(target) - set(TARGET_KINDS) - {"inclusive", "timeline", "action", "past_last_commit"})
    if unknown:
        raise PlanError("pitr target has unknown keys %s; valid keys: %s, inclusive, timeline, action, "
                        "past_last_commit" % (", ".join(unknown), ", ".join(TARGET_KINDS)), field="target")
    given = [k for k in TARGET_KINDS if k in target and target[k] not in (None, "", False)]
    if len(given) != 1:
        raise PlanError("pitr target needs exactly one kind of %s; got %s"
                        % ("/".join(TARGET_KINDS), ", ".join(given) or "none"), field="target")
    kind = given[0]
    raw = target[kind]
    out = {"kind": kind, "inclusive": _bool(target.get("inclusive", True), "inclusive"),
           "timeline": _timeline(target.get("timeline", "current")),
           "action": str(target.get("action") or "promote")}
    if out["action"] not in ACTIONS:
        raise PlanError("target.action %r is not one of %s" % (out["action"], ", ".join(ACTIONS)),
                        field="action")
    out["past_last_commit"] = str(target.get("past_last_commit") or "refuse")
    if out["past_last_commit"] not in PAST_LAST_COMMIT:
        raise PlanError("target.past_last_commit %r is not one of %s (end_of_wal: a time after the last archived "
                        "commit recovers to the end of the archived WAL)" % (
                            target.get("past_last_commit"), ", ".join(PAST_LAST_COMMIT)), field="past_last_commit")
    if kind == "time":
        value = parse_time(raw)
        if value > now:
            raise PlanError("target.time %s is in the future (now is %s)" % (iso(value), iso(now)),
                            field="time")
        out.update(value=iso(value), time=value)
    elif kind == "xid":
        text = str(raw).strip()
        if not text.isdigit() or not 3 <= int(text) <= MAX_XID:
            raise PlanError("target.xid %r is not a transaction id (an integer 3..%d, e.g. from "
                            "pg_current_xact_id())" % (raw, MAX_XID), field="xid")
        out["value"] = int(text)
    elif kind == "lsn":
        try:
            out["lsn"] = parse_lsn(str(raw))
        except ValueError:
            raise PlanError("target.lsn %r is not an LSN like 0/3000028 (hex/hex, from "
                            "pg_current_wal_lsn())" % (raw,), field="lsn") from None
        out["value"] = format_lsn(out["lsn"])
    elif kind == "name":
        text = str(raw)
        if len(text) >= 64:
            raise PlanError("target.name %r is longer than a restore point name can be (63)" % raw,
                            field="name")
        out["value"] = text
    else:
        if raw is not True and str(raw).lower() not in ("true", "yes", "1"):
            raise PlanError("target.immediate must be true", field="immediate")
        out["value"] = True
    return out


def _bool(value, name):
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise PlanError("target.%s %r is not a boolean" % (name, value), field=name)


def _timeline(value):
    if value in (None, ""):
        return "current"
    text = str(value).lower()
    if text in ("current", "latest"):
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise PlanError("target.timeline %r must be current, latest or a timeline number" % (value,),
                    field="timeline")


# -- WAL continuity ---------------------------------------------------------------------------

def contiguous_reach(wal, start_wal, tli, seg_size=WAL_SEG_SIZE):
    """Walk the archive from ``start_wal`` along ``tli``'s history (``walnames.contiguous_from``).

    Returns ``{"last": name or None, "time": mtime of last, "missing": first missing name or None,
    "end_lsn": LSN just past the last segment}``. ``missing`` is None when the walk ended at the
    newest archived segment (no gap, just the end).
    """
    segments = {s["name"]: s for s in wal.get("segments") or [] if walnames.is_segment(s.get("name", ""))}
    path = walnames.timeline_path(tli, wal.get("history") or {})
    newest = max((walnames.segment_number(n, seg_size) for n in segments), default=-1)
    last, missing = walnames.contiguous_from(start_wal, segments, path, newest, seg_size)
    return {"last": last, "time": segments[last]["mtime"] if last else None, "missing": missing,
            "end_lsn": format_lsn(walnames.segment_end_lsn(last, seg_size)) if last else None}


# -- windows and the choice of base backup ------------------------------------------------------

def base_backups(catalog):
    """Usable base backups, oldest stop first."""
    bases = [b for b in catalog.get("backups") or [] if b.get("kind") == "base" and b.get("stop_lsn")]
    return sorted(bases, key=lambda b: parse_lsn(b["stop_lsn"]))


def window(catalog, tli=None, seg_size=WAL_SEG_SIZE):
    """Recoverable window per base backup and overall (earliest/latest) for timeline ``tli``."""
    wal = catalog.get("wal") or {}
    rows = []
    for base in base_backups(catalog):
        use_tli = base["timeline"] if tli in (None, "current") else tli
        reach = contiguous_reach(wal, base["start_wal"], use_tli, seg_size) if base.get("start_wal") else {}
        rows.append({"name": base["name"], "stop_time": base.get("stop_time") or base.get("time"),
                     "stop_lsn": base["stop_lsn"], "timeline": base["timeline"],
                     "reaches": {"time": reach.get("time"), "segment": reach.get("last"),
                                 "lsn": reach.get("end_lsn"), "gap_at": reach.get("missing")}})
    reached = [r for r in rows if r["reaches"]["time"]]
    out = {"base_backups": rows, "earliest": None, "latest": None}
    if rows:
        out["earliest"] = {"time": rows[0]["stop_time"], "lsn": rows[0]["stop_lsn"], "backup": rows[0]["name"]}
    if reached:
        best = max(reached, key=lambda r: parse_iso(r["reaches"]["time"]))
        out["latest"] = {"time": best["reaches"]["time"], "lsn": best["reaches"]["lsn"],
                         "segment": best["reaches"]["segment"]}
    return out


def describe_window(win):
    if not win.get("earliest"):
        return "no base backup in the catalogue: nothing can be recovered to a point in time"
    text = "recoverable window: earliest %s (LSN %s, stop of base backup %s), latest %s (LSN %s, end of %s)" % (
        win["earliest"]["time"], win["earliest"]["lsn"], win["earliest"]["backup"],
        (win.get("latest") or {}).get("time"), (win.get("latest") or {}).get("lsn"),
        (win.get("latest") or {}).get("segment"))
    gaps = [r["reaches"]["gap_at"] for r in win["base_backups"] if r["reaches"].get("gap_at")]
    if gaps:
        text += "; WAL gap: segment %s is missing" % sorted(set(gaps))[0]
    return text


def choose_base(catalog, target, backup_name=None):
    """The newest base backup that stopped before the target (time or LSN), or the named one."""
    bases = base_backups(catalog)
    if backup_name:
        named = [b for b in bases if b["name"] == backup_name or os.path.basename(b["path"]) == backup_name]
        if not named:
            raise PlanError("base backup %r is not in the catalogue; base backups: %s"
                            % (backup_name, ", ".join(b["name"] for b in bases) or "none"), field="backup")
        candidates = named
    else:
        candidates = bases
    if target["kind"] == "immediate":
        fit = candidates
    elif target.get("lsn") is not None:
        fit = [b for b in candidates if parse_lsn(b["stop_lsn"]) <= target["lsn"]]
    else:
        fit = [b for b in candidates if parse_iso(b.get("stop_time") or b["time"]) < target["time"]]
    if not fit:
        raise PlanError("target %s=%s is before the stop point of %s; %s" % (
            target["kind"], target["value"],
            "base backup %s" % backup_name if backup_name else "the oldest base backup",
            describe_window(window(catalog))), window=window(catalog), field=target["kind"])
    return fit[-1]


def check_in_window(catalog, target, base, seg_size=WAL_SEG_SIZE):
    """Raise PlanError unless WAL reaches the target continuously from ``base``.

    Returns the reach of WAL from the base backup (``contiguous_reach``) and the target timeline.
    """
    wal = catalog.get("wal") or {}
    tli = _target_tli(wal, target, base)
    reach = contiguous_reach(wal, base["start_wal"], tli, seg_size)
    win = window(catalog, tli)
    if target["kind"] == "immediate":
        stop_segno = segno_of(parse_lsn(base["stop_lsn"]) - 1, seg_size)
        if reach["last"] is None or walnames.segment_number(reach["last"], seg_size) < stop_segno:
            _fail_reach(target, base, reach, win, "the base backup's own WAL is not archived")
        return reach, tli
    if reach["last"] is None:
        _fail_reach(target, base, reach, win, "no archived WAL from the base backup's start segment")
    if target.get("lsn") is not None and target["lsn"] >= parse_lsn(reach["end_lsn"]):
        _fail_reach(target, base, reach, win, "LSN %s is past the end of continuous WAL (%s)"
                    % (target["value"], reach["end_lsn"]), branch_that_reaches(wal, target, base, tli, seg_size))
    if target.get("time") is not None and not reach_covers(reach, target["time"]):
        _fail_reach(target, base, reach, win, "time %s is after the newest continuously archived WAL (%s)"
                    % (iso(target["time"]), reach["time"]), branch_that_reaches(wal, target, base, tli, seg_size))
    return reach, tli


def reach_covers(reach, when):
    """Whether WAL archived up to ``reach`` may hold time ``when``.

    The catalogue keeps a segment's mtime in whole seconds, truncated: the copy really ended up to a second
    later, so a target in that second is let through here. The last-commit check of the archived WAL
    (``pitr_wal.plan_with_wal``) then refuses it if replay would not reach it.
    """
    return when < parse_iso(reach["time"]) + dt.timedelta(seconds=1)


def _fail_reach(target, base, reach, win, why, branch=""):
    gap = (" WAL gap: segment %s is missing after %s." % (reach["missing"], reach["last"])
           if reach.get("missing") else "")
    raise PlanError("target %s=%s cannot be reached from base backup %s: %s.%s%s %s" % (
        target["kind"], target["value"], base["name"], why, gap, branch, describe_window(win)),
        window=win, field=target["kind"])


def branch_that_reaches(wal, target, base, tried, seg_size=WAL_SEG_SIZE):
    """' Timeline N reaches it: ...' when another branch from ``base`` holds a time/LSN target, else ''."""
    history = wal.get("history") or {}
    for tli in sorted((int(t) for t in wal.get("timelines") or []), reverse=True):
        if tli == tried or int(base["timeline"]) not in [t for t, _unused in walnames.timeline_path(tli, history)]:
            continue
        reach = contiguous_reach(wal, base["start_wal"], tli, seg_size)
        if not reach["last"]:
            continue
        if (target.get("lsn") is not None and target["lsn"] < parse_lsn(reach["end_lsn"])) or (
                target.get("time") is not None and reach_covers(reach, target["time"])):
            newest = max(int(t) for t in wal.get("timelines") or [tli])
            return ' Timeline %d (a later branch) reaches it: add "timeline": %d%s to the target.' % (
                tli, tli, ' (or "latest")' if tli == newest else "")
    return ""


def _target_tli(wal, target, base):
    want = target["timeline"]
    if want == "current":
        return int(base["timeline"])
    timelines = sorted(set(int(t) for t in wal.get("timelines") or []) | {int(base["timeline"])})
    if want == "latest":
        descendants = [t for t in timelines
                       if t == base["timeline"]
                       or base["timeline"] in [p for p, _unused in walnames.timeline_path(t, wal.get("history") or {})]]
        return max(descendants)
    if want != int(base["timeline"]) and str(want) not in (wal.get("history") or {}):
        raise PlanError("target.timeline %s has no history file in the WAL archive; timelines there: %s"
                        % (want, ", ".join(map(str, timelines))), field="timeline")
    return int(want)


# -- locating xid / restore point in WAL ----------------------------------------------------------

_WALDUMP_RE = re.compile(r"tx:\s*(\d+), lsn: ([0-9A-F]+/[0-9A-F]+),.*desc: (\w+) ?(.*)$")


def parse_waldump(text):
    """Commit and restore-point records from ``pg_waldump`` output (TZ=UTC)."""
    out = []
    for line in text.splitlines():
        m = _WALDUMP_RE.search(line)
        if not m:
            continue
        xid, lsn, what, rest = m.groups()
        if what == "COMMIT":
            stamp = rest.split(";")[0].strip()
            when = dt.datetime.strptime(stamp.replace(" UTC", ""), "%Y-%m-%d %H:%M:%S.%f") \
                if "." in stamp else dt.datetime.strptime(stamp.replace(" UTC", ""), "%Y-%m-%d %H:%M:%S")
            out.append({"kind": "commit", "xid": int(xid), "lsn": lsn,
                        "time": iso(when.replace(tzinfo=dt.timezone.utc))})
        elif what == "RESTORE_POINT":
            out.append({"kind": "restore_point", "name": rest.strip(), "lsn": lsn})
    return out


def resolve_in_wal(runner, waldump, wal_dir, first, last, target):
    """Find the commit of ``target.xid`` or the restore point ``target.name`` in archived WAL.

    Returns ``{"lsn", "time"}`` (time for commits only); raises PlanError when not found.
    """
    rmgr = "Transaction" if target["kind"] == "xid" else "XLOG"
    res = runner.run([waldump, "--path", wal_dir, "--rmgr", rmgr, first, last], env={"TZ": "UTC"})
    records = parse_waldump(res.stdout)
    if target["kind"] == "xid":
        hits = [r for r in records if r["kind"] == "commit" and r["xid"] == target["value"]]
        what = "commit of transaction %s" % target["value"]
    else:
        hits = [r for r in records if r["kind"] == "restore_point" and r["name"] == target["value"]]
        what = "restore point %r" % target["value"]
    if not hits:
        names = sorted({r["name"] for r in records if r["kind"] == "restore_point"})
        hint = (" Restore points there: %s." % ", ".join(names)) if target["kind"] == "name" and names else ""
        raise PlanError("archived WAL %s..%s has no %s.%s" % (first, last, what, hint), field=target["kind"])
    hit = hits[-1] if target["kind"] == "name" else hits[0]
    return {"lsn": hit["lsn"], "time": hit.get("time")}


def locate_target(runner, waldump, wal_dir, catalog, target):
    """Find an xid / restore point along the target's timeline, from each base backup newest first.

    ``timeline: current`` searches each base backup's own timeline; a number or ``latest`` follows that
    timeline's history (the parent's segments up to each switch point, then the child's). Not found there but
    on another branch: refused naming the ``timeline`` value that reaches it. Returns ``{"lsn", "time",
    "timeline"}`` or raises PlanError naming every range searched.
    """
    from ansible_collections.healthbutler.recovery.plugins.module_utils import pitr_wal  # it reads our parser

    wal = catalog.get("wal") or {}
    history = wal.get("history") or {}
    bases = [b for b in reversed(base_backups(catalog)) if b.get("start_wal")]
    what = ("commit of transaction %s" % target["value"] if target["kind"] == "xid"
            else "restore point %r" % target["value"])
    searched = []
    for base in bases:
        tli = _target_tli(wal, target, base)
        reach = contiguous_reach(wal, base["start_wal"], tli)
        if not reach["last"]:
            continue
        searched.append("%s..%s (timeline %s, from base backup %s)" % (base["start_wal"], reach["last"], tli,
                                                                       base["name"]))
        hits = pitr_wal.locate_on_timelines(runner, waldump, wal_dir, base["start_wal"],
                                            {tli: (walnames.timeline_path(tli, history), reach["last"])}, target)
        if hits:
            return {"lsn": hits[tli]["lsn"], "time": hits[tli].get("time"), "timeline": tli}
    if not searched:
        raise PlanError("no base backup with archived WAL to search for %s=%s; %s" % (
            target["kind"], target["value"], describe_window(window(catalog))), field=target["kind"])
    others = {}
    tried = {_target_tli(wal, target, b) for b in bases}
    for base in bases:
        for tli in sorted(set(int(t) for t in wal.get("timelines") or []) - tried - set(others)):
            path = walnames.timeline_path(tli, history)
            if int(base["timeline"]) not in [t for t, _unused in path]:
                continue
            reach = contiguous_reach(wal, base["start_wal"], tli)
            hits = pitr_wal.locate_on_timelines(runner, waldump, wal_dir, base["start_wal"],
                                                {tli: (path, reach["last"])}, target)
            if hits:
                others[tli] = hits[tli]
    hint = ""
    if target["kind"] == "name" and not others:
        names = pitr_wal.restore_point_names(runner, waldump, wal_dir, bases[0]["start_wal"],
                                             contiguous_reach(wal, bases[0]["start_wal"], bases[0]["timeline"])["last"])
        hint = (" Restore points there: %s." % ", ".join(names)) if names else ""
    if others:
        newest = max(int(t) for t in wal.get("timelines") or [0])
        branch = ", ".join("timeline %s (at LSN %s%s)" % (t, h["lsn"], ", " + h["time"] if h.get("time") else "")
                           for t, h in sorted(others.items()))
        first = min(others)
        raise PlanError("the %s is not on the target's timeline (%s) but on another branch: %s. To recover to it, "
                        "add \"timeline\": %s%s to the target" % (
                            what, target["timeline"], branch, first,
                            ' (or "latest")' if first == newest else ""), field="timeline")
    raise PlanError("archived WAL %s has no %s.%s" % ("; ".join(searched), what, hint), field=target["kind"])


# -- the plan -----------------------------------------------------------------------------------

def build_plan(catalog, target, now, backup_name=None, resolved=None, seg_size=WAL_SEG_SIZE, exclude=()):
    """Choose the base backup and check the window; return the plan (no side effects).

    ``target`` is the output of ``parse_target``; ``resolved`` the output of ``resolve_in_wal``
    for xid/name targets (gives them an LSN, so the base backup can be chosen by stop LSN).
    """
    target = dict(target)
    if resolved:
        target["lsn"] = parse_lsn(resolved["lsn"])
        target["located_at"] = resolved
    if exclude:
        catalog = dict(catalog, backups=[b for b in catalog.get("backups") or [] if b.get("name") not in exclude])
    base = choose_base(catalog, target, backup_name)
    if target.get("time") is not None and target["time"] <= parse_iso(base.get("stop_time") or base["time"]):
        raise PlanError("target.time %s is not after the stop time %s of base backup %s; %s"
                        % (target["value"], base.get("stop_time"), base["name"], describe_window(window(catalog))),
                        field="time")
    reach, tli = check_in_window(catalog, target, base, seg_size)
    loss_from = target["value"] if target["kind"] == "time" else (
        (resolved or {}).get("time") or base.get("stop_time"))
    return {
        "target": {k: v for k, v in target.items() if k not in ("time", "lsn")},
        "base_backup": {k: base.get(k) for k in ("name", "path", "stop_time", "stop_lsn", "start_lsn",
                                                 "timeline", "start_wal", "stop_wal", "size")},
        "recovery_timeline": tli,
        "wal_reach": reach,
        "window": window(catalog, tli),
        "expected_loss": {"from": loss_from, "to": iso(now),
                          "note": "changes committed after the target are not in the restored cluster; "
                                  "they stay in the preserved data directory"},
    }


def recovery_settings(target, restore_command, timeline, extra=None):
    """Ordered ``[(name, value)]`` of recovery settings for the plan's target."""
    settings = [("restore_command", restore_command)]
    kind = target["kind"]
    if kind == "immediate":
        settings.append(("recovery_target", "immediate"))
    else:
        key = {"time": "recovery_target_time", "xid": "recovery_target_xid",
               "lsn": "recovery_target_lsn", "name": "recovery_target_name"}[kind]
        value = target["value"]
        if kind == "time":
            value = parse_iso(value).strftime("%Y-%m-%d %H:%M:%S.%f+00")
        settings.append((key, str(value)))
        settings.append(("recovery_target_inclusive", "on" if target["inclusive"] else "off"))
    settings.append(("recovery_target_timeline", str(timeline)))
    settings.append(("recovery_target_action", target["action"]))
    for name, value in sorted((extra or {}).items()):
        settings.append((str(name), str(value)))
    return settings


def render_settings(settings, pg_major):
    """File name and text that carry the settings for this major version."""
    lines = ["%s = '%s'" % (k, str(v).replace("'", "''")) for k, v in settings]
    if int(pg_major) >= 12:
        return "postgresql.auto.conf", "# recovery settings written by healthbutler.recovery pitr\n" + \
            "\n".join(lines) + "\n"
    return "recovery.conf", "# written by healthbutler.recovery pitr\nstandby_mode = 'off'\n" + "\n".join(lines) + "\n"


def restore_command(wal_dir):
    """``cp`` from the archive; quoted for the shell PostgreSQL runs it with."""
    return "cp \"%s/%%f\" \"%%p\"" % wal_dir.replace('"', '\\"')


def disk_check(free_bytes, restore_bytes, preserve_bytes, margin=64 * 1024 * 1024):
    """``(ok, needed)``: room for the restore plus the preserved copy plus a margin."""
    needed = int(restore_bytes) + int(preserve_bytes) + margin
    return free_bytes >= needed, needed
