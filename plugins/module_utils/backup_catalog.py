# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Catalogue of a backup location: what is there, when, how big, intact or not.

The layout (see CATALOG.md) under a backup directory::

    dumps/<db>_<stamp>.dump (+ .sha256, .json)   base/<stamp>/ (+ <stamp>.json)
    incremental/<stamp>/manifest.json            files/<stamp>/
    legacy dumps such as backup_20250102.dump    (LEGACY_DUMP_PATTERN)

plus a flat WAL archive directory. ``scan`` reads it with the standard library
only; it never writes. Times are UTC ISO-8601 with a ``Z``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime, timezone

from ansible_collections.healthbutler.recovery.plugins.module_utils import walnames

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
STAMP_RE = r"\d{8}T\d{6}Z"
LEGACY_DUMP_PATTERN = r"^backup_(?P<date>\d{8})(?:[_T-]?(?P<time>\d{6}))?\.dump$"
CHUNK = 1024 * 1024


# -- time -----------------------------------------------------------------
def iso(ts):
    """Epoch seconds or datetime -> ``2026-11-28T03:00:05Z``."""
    if ts is None:
        return None
    if not isinstance(ts, datetime):
        ts = datetime.fromtimestamp(float(ts), tz=timezone.utc)
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text):
    """Parse ``...Z``, ``+00:00`` or PostgreSQL ``YYYY-mm-dd HH:MM:SS UTC`` forms to an aware datetime."""
    if text is None:
        return None
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=timezone.utc)
    value = str(text).strip().replace(" UTC", "+00:00")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    if re.match(r"^\d{8}T\d{6}\+00:00$", value):
        return datetime.strptime(value[:15], "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(value.replace(" ", "T", 1))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def epoch(text):
    parsed = parse_time(text)
    return parsed.timestamp() if parsed else None


def stamp(ts):
    """Datetime or epoch -> ``20261128T030000Z`` (the name part of every backup)."""
    if not isinstance(ts, datetime):
        ts = datetime.fromtimestamp(float(ts), tz=timezone.utc)
    return ts.astimezone(timezone.utc).strftime(STAMP_FORMAT)


# -- files ----------------------------------------------------------------
def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sidecar_sha256(path):
    """First field of a ``sha256sum``-format sidecar, or None."""
    try:
        with open(path, encoding="utf-8") as fh:
            fields = fh.read().split()
    except OSError:
        return None
    if fields and re.match(r"^[0-9a-f]{64}$", fields[0]):
        return fields[0]
    return None


def read_json(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def tree_size(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


# -- base backups ---------------------------------------------------------
def parse_backup_label(text):
    """``backup_label`` -> dict with start_lsn, start_wal, start_time, timeline, label."""
    out = {}
    for line in text.splitlines():
        key, _unused, value = line.partition(": ")
        value = value.strip()
        if key == "START WAL LOCATION":
            match = re.match(r"^(\S+) \(file ([0-9A-F]{24})\)", value)
            if match:
                out["start_lsn"] = walnames.format_lsn(walnames.parse_lsn(match.group(1)))
                out["start_wal"] = match.group(2)
        elif key == "START TIME":
            out["start_time"] = iso(parse_time(value))
        elif key == "START TIMELINE":
            out["timeline"] = int(value)
        elif key == "LABEL":
            out["label"] = value
    return out


def parse_backup_history(text):
    """A ``<segment>.<offset>.backup`` file: start/stop LSN and times of one base backup."""
    out = parse_backup_label(text)
    for line in text.splitlines():
        key, _unused, value = line.partition(": ")
        if key == "STOP WAL LOCATION":
            match = re.match(r"^(\S+) \(file ([0-9A-F]{24})\)", value.strip())
            if match:
                out["stop_lsn"] = walnames.format_lsn(walnames.parse_lsn(match.group(1)))
                out["stop_wal"] = match.group(2)
        elif key == "STOP TIME":
            out["stop_time"] = iso(parse_time(value.strip()))
    return out


def manifest_checksum_state(raw):
    """Check a ``backup_manifest``'s own SHA-256 (covers everything before its last line)."""
    pos = raw.rfind(b'\n"Manifest-Checksum"')
    if pos < 0:
        return "missing"
    match = re.search(rb'"Manifest-Checksum"\s*:\s*"([0-9a-f]{64})"', raw[pos:])
    if not match:
        return "missing"
    return "ok" if hashlib.sha256(raw[:pos + 1]).hexdigest() == match.group(1).decode() else "mismatch"


def parse_manifest(raw):
    """``backup_manifest`` bytes -> {wal_ranges, files, checksum_state} (None when not JSON)."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except ValueError:
        return None
    ranges = [{"timeline": int(r["Timeline"]),
               "start_lsn": walnames.format_lsn(walnames.parse_lsn(r["Start-LSN"])),
               "end_lsn": walnames.format_lsn(walnames.parse_lsn(r["End-LSN"]))}
              for r in doc.get("WAL-Ranges", [])]
    return {"wal_ranges": ranges, "files": len(doc.get("Files", [])),
            "checksum_state": manifest_checksum_state(raw)}


def base_entry(base_dir, name, wal_seg_size=walnames.WAL_SEG_SIZE):
    path = os.path.join(base_dir, name)
    meta = read_json(path + ".json") or {}
    entry = {"kind": "base", "name": name, "path": path, "meta": meta, "size": tree_size(path),
             "start_lsn": meta.get("start_lsn"), "stop_lsn": meta.get("stop_lsn"),
             "timeline": meta.get("timeline"), "start_wal": meta.get("start_wal"),
             "stop_wal": meta.get("stop_wal"), "start_time": meta.get("start"),
             "stop_time": meta.get("end"), "has_manifest": False,
             "checksum": {"state": "missing", "sha256": None}}
    try:
        with open(os.path.join(path, "backup_label"), encoding="utf-8") as fh:
            label = parse_backup_label(fh.read())
    except OSError:
        label = {}
    entry["has_label"] = bool(label)
    for key in ("start_lsn", "start_wal", "timeline"):
        if label.get(key) is not None:
            entry[key] = label[key]
    entry["start_time"] = entry["start_time"] or label.get("start_time")
    manifest_path = os.path.join(path, "backup_manifest")
    if os.path.isfile(manifest_path):
        with open(manifest_path, "rb") as fh:
            manifest = parse_manifest(fh.read())
        entry["has_manifest"] = manifest is not None
        if manifest:
            entry["checksum"]["state"] = manifest["checksum_state"]
            if manifest["wal_ranges"]:
                last = manifest["wal_ranges"][-1]
                entry["stop_lsn"] = last["end_lsn"]
                entry["timeline"] = entry["timeline"] or last["timeline"]
                entry["start_lsn"] = entry["start_lsn"] or manifest["wal_ranges"][0]["start_lsn"]
        if not entry["stop_time"]:
            entry["stop_time"] = iso(os.stat(manifest_path).st_mtime)
    if entry["stop_lsn"] and entry["timeline"]:
        entry["stop_wal"] = walnames.segment_of(walnames.parse_lsn(entry["stop_lsn"]) - 1
                                                if walnames.parse_lsn(entry["stop_lsn"]) % wal_seg_size == 0
                                                else walnames.parse_lsn(entry["stop_lsn"]),
                                                entry["timeline"], wal_seg_size)
    if entry["start_lsn"] and entry["timeline"] and not entry["start_wal"]:
        entry["start_wal"] = walnames.segment_of(entry["start_lsn"], entry["timeline"], wal_seg_size)
    entry["time"] = entry["stop_time"] or iso(os.stat(path).st_mtime)
    return entry


# -- dumps, incrementals, files ---------------------------------------------
def dump_time_from_name(name, legacy_re):
    match = re.search(r"_(%s)\.dump$" % STAMP_RE, name)
    if match:
        return iso(parse_time(match.group(1)))
    match = legacy_re.match(name)
    if match:
        hhmmss = match.groupdict().get("time") or "000000"
        try:
            return iso(datetime.strptime(match.group("date") + hhmmss, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc))
        except (ValueError, IndexError):
            return None
    return None


def dump_entry(path, legacy_re, verify_checksums=True):
    name = os.path.basename(path)
    meta = read_json(path + ".json") or {}
    stat = os.stat(path)
    expected = read_sidecar_sha256(path + ".sha256")
    checksum = {"state": "missing" if expected is None else "unchecked", "sha256": expected}
    if expected is not None and verify_checksums:
        actual = sha256_file(path)
        checksum = {"state": "ok" if actual == expected else "mismatch", "sha256": actual,
                    "expected": expected}
    return {"kind": "dump", "name": name, "path": path, "size": stat.st_size,
            "time": meta.get("end") or dump_time_from_name(name, legacy_re) or iso(stat.st_mtime),
            "start_time": meta.get("start") or dump_time_from_name(name, legacy_re),
            "checksum": checksum, "meta": meta, "legacy": not name.endswith(".dump") or
            not re.search(r"_%s\.dump$" % STAMP_RE, name)}


def incremental_entry(path, verify_checksums=True):
    name = os.path.basename(path)
    manifest = read_json(os.path.join(path, "manifest.json"))
    entry = {"kind": "incremental", "name": name, "path": path, "size": tree_size(path),
             "meta": manifest or {}, "start_time": iso(parse_time(name)) if re.match(STAMP_RE, name) else None,
             "checksum": {"state": "missing", "sha256": None}, "segments": []}
    entry["time"] = (manifest or {}).get("time") or entry["start_time"] or iso(os.stat(path).st_mtime)
    if manifest is None:
        return entry
    segments = manifest.get("segments") or {}
    entry["segments"] = sorted(segments)
    entry["segment_mtimes"] = {}
    for seg in entry["segments"]:
        try:
            entry["segment_mtimes"][seg] = iso(os.stat(os.path.join(path, seg)).st_mtime)
        except OSError:
            pass
    state, bad = "unchecked", []
    if verify_checksums:
        for seg, expected in sorted(segments.items()):
            seg_path = os.path.join(path, seg)
            if not os.path.isfile(seg_path) or sha256_file(seg_path) != expected:
                bad.append(seg)
        state = "mismatch" if bad else "ok"
    entry["checksum"] = {"state": state, "sha256": None, "bad": bad}
    return entry


def files_entry(path):
    name = os.path.basename(path)
    start = iso(parse_time(name)) if re.match(STAMP_RE + "$", name) else None
    return {"kind": "files", "name": name, "path": path, "size": tree_size(path),
            "time": start or iso(os.stat(path).st_mtime), "start_time": start, "meta": {},
            "checksum": {"state": "unchecked", "sha256": None}}


# -- WAL archive --------------------------------------------------------------
def wal_gaps(names, wal_seg_size=walnames.WAL_SEG_SIZE):
    """Holes inside each timeline's run of archived segment names."""
    by_tli = {}
    for name in names:
        by_tli.setdefault(walnames.timeline_of(name), []).append(walnames.segment_number(name, wal_seg_size))
    gaps = []
    for tli, numbers in sorted(by_tli.items()):
        numbers.sort()
        for prev, cur in zip(numbers, numbers[1:]):
            if cur - prev > 1:
                gaps.append({"after": walnames.segment_name(tli, prev, wal_seg_size),
                             "missing_first": walnames.segment_name(tli, prev + 1, wal_seg_size),
                             "missing_last": walnames.segment_name(tli, cur - 1, wal_seg_size),
                             "timeline": tli})
    return gaps


def scan_wal(wal_dir, wal_seg_size=walnames.WAL_SEG_SIZE, include_segments=True):
    """Describe a flat WAL archive directory."""
    out = {"dir": wal_dir, "first": None, "last": None, "count": 0, "newest_time": None, "gaps": [],
           "timelines": [], "history": {}, "segments": [], "partial": [], "backup_files": []}
    if not wal_dir or not os.path.isdir(wal_dir):
        out["exists"] = False
        return out
    out["exists"] = True
    segments = []
    for name in sorted(os.listdir(wal_dir)):
        path = os.path.join(wal_dir, name)
        if walnames.is_segment(name):
            stat = os.stat(path)
            segments.append({"name": name, "mtime": iso(stat.st_mtime), "size": stat.st_size,
                             "_mtime": stat.st_mtime})
        elif walnames.is_history(name):
            with open(path, encoding="utf-8") as fh:
                out["history"][str(int(name[:8], 16))] = walnames.parse_history(fh.read())
        elif walnames.PARTIAL_RE.match(name):
            out["partial"].append(name)
        elif walnames.BACKUP_FILE_RE.match(name):
            out["backup_files"].append(name)
            with open(path, encoding="utf-8", errors="replace") as fh:
                out.setdefault("backup_history", {})[name] = parse_backup_history(fh.read())
    names = [s["name"] for s in segments]
    out["count"] = len(names)
    if names:
        out["first"], out["last"] = names[0], names[-1]
        newest = max(segments, key=lambda s: s["_mtime"])
        out["newest_time"] = newest["mtime"]
    out["timelines"] = sorted({walnames.timeline_of(n) for n in names} |
                              {int(t) for t in out["history"]})
    out["gaps"] = wal_gaps(names, wal_seg_size)
    for seg in segments:
        seg.pop("_mtime")
    out["segments"] = segments if include_segments else []
    return out


# -- the catalogue ---------------------------------------------------------------
def _time_key(entry):
    return epoch(entry.get("time")) or 0


def scan(location, wal_dir=None, legacy_pattern=LEGACY_DUMP_PATTERN, verify_checksums=True,
         include_segments=True, now=None, wal_seg_size=walnames.WAL_SEG_SIZE):
    """Catalogue the backups under ``location`` and the WAL archive ``wal_dir``.

    Returns the dict described in CATALOG.md; backups oldest first.
    """
    legacy_re = re.compile(legacy_pattern)
    backups = []
    dumps_dirs = [os.path.join(location, "dumps"), location]
    for folder in dumps_dirs:
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if not os.path.isfile(path) or not name.endswith(".dump"):
                continue
            if folder == location and not legacy_re.match(name):
                continue
            backups.append(dump_entry(path, legacy_re, verify_checksums))
    base_dir = os.path.join(location, "base")
    if os.path.isdir(base_dir):
        for name in sorted(os.listdir(base_dir)):
            if os.path.isdir(os.path.join(base_dir, name)) and not name.startswith("."):
                backups.append(base_entry(base_dir, name, wal_seg_size))
    for kind, builder in (("incremental", lambda p: incremental_entry(p, verify_checksums)),
                          ("files", files_entry)):
        folder = os.path.join(location, kind)
        if os.path.isdir(folder):
            for name in sorted(os.listdir(folder)):
                path = os.path.join(folder, name)
                if os.path.isdir(path) and not name.startswith("."):
                    backups.append(builder(path))
    wal = scan_wal(wal_dir, wal_seg_size, include_segments)
    by_start = {h.get("start_lsn"): h for h in (wal.get("backup_history") or {}).values()}
    for entry in backups:
        found = by_start.get(entry.get("start_lsn")) if entry["kind"] == "base" else None
        if found and found.get("stop_time") and found.get("stop_lsn") == entry.get("stop_lsn"):
            entry["stop_time"] = entry["time"] = found["stop_time"]
    backups.sort(key=_time_key)
    return {"location": location, "exists": os.path.isdir(location),
            "scanned_at": iso(now if now is not None else datetime.now(timezone.utc)),
            "backups": backups, "wal": wal}


def newest(catalog, kind):
    """The newest backup of ``kind`` in a catalogue, or None."""
    found = [b for b in catalog.get("backups", []) if b.get("kind") == kind]
    return max(found, key=_time_key) if found else None


def summary(catalog):
    """Counts and newest times per kind, for the diagnose report and the console."""
    out = {}
    for entry in catalog.get("backups", []):
        item = out.setdefault(entry["kind"], {"count": 0, "newest": None, "newest_name": None, "bytes": 0})
        item["count"] += 1
        item["bytes"] += entry.get("size") or 0
        if item["newest"] is None or (epoch(entry["time"]) or 0) >= (epoch(item["newest"]) or 0):
            item["newest"], item["newest_name"] = entry["time"], entry["name"]
    wal = catalog.get("wal") or {}
    out["wal"] = {"count": wal.get("count", 0), "first": wal.get("first"), "last": wal.get("last"),
                  "newest": wal.get("newest_time"), "gaps": len(wal.get("gaps") or [])}
    return out


# -- recovery window ----------------------------------------------------------------
def _available_wal(catalog, use_bundles):
    """Segment name -> mtime (ISO) from the archive and, if asked, the shipped bundles."""
    available = {s["name"]: s.get("mtime") for s in (catalog.get("wal") or {}).get("segments") or []}
    if use_bundles:
        for entry in catalog.get("backups", []):
            if entry.get("kind") == "incremental" and entry.get("checksum", {}).get("state") != "mismatch":
                for seg in entry.get("segments") or []:
                    if os.path.basename(seg) == seg and walnames.is_segment(seg):
                        available.setdefault(seg, (entry.get("segment_mtimes") or {}).get(seg) or entry.get("time"))
    return available


def _later(first, second):
    if not first or not second:
        return first or second
    return first if epoch(first) >= epoch(second) else second


def _usable_bases(catalog):
    return [b for b in catalog.get("backups", []) if b.get("kind") == "base" and b.get("has_manifest")
            and (b.get("checksum") or {}).get("state") != "mismatch"
            and b.get("stop_lsn") and b.get("start_wal") and b.get("timeline")]


def recovery_window(catalog, offsite=False, wal_seg_size=walnames.WAL_SEG_SIZE):
    """Earliest and latest recoverable points of a catalogue (see CATALOG.md).

    ``offsite=False``: base backups + the WAL archive of ``catalog``.
    ``offsite=True``: ``catalog`` is an offsite copy; WAL comes from the shipped
    incremental bundles as well. ``offsite=<catalogue dict>``: merge that offsite
    catalogue's base backups and bundles with the local ones.
    """
    merged = dict(catalog)
    use_bundles = offsite is True
    if isinstance(offsite, dict):
        merged["backups"] = list(catalog.get("backups", [])) + list(offsite.get("backups", []))
        merged_wal = dict(catalog.get("wal") or {})
        merged_wal["history"] = dict((offsite.get("wal") or {}).get("history") or {},
                                     **(merged_wal.get("history") or {}))
        merged_wal["segments"] = list(merged_wal.get("segments") or []) + list(
            (offsite.get("wal") or {}).get("segments") or [])
        merged["wal"] = merged_wal
        use_bundles = True
    wal = merged.get("wal") or {}
    available = _available_wal(merged, use_bundles)
    history = {int(k): v for k, v in (wal.get("history") or {}).items()}
    out = {"recoverable": False, "earliest": None, "latest": None, "base_backups": [],
           "gaps": list(wal.get("gaps") or []), "reason": ""}
    bases = _usable_bases(merged)
    if not bases:
        out["reason"] = "no base backup with a valid backup_manifest"
        return out
    if not available:
        out["reason"] = "no archived WAL segment"
        return out
    timelines = {walnames.timeline_of(n) for n in available} | set(history)
    target_tli = max(timelines)
    last_segno = max(walnames.segment_number(n, wal_seg_size) for n in available)
    seen = set()
    for base in sorted(bases, key=lambda b: walnames.parse_lsn(b["stop_lsn"])):
        if base["name"] in seen:
            continue
        seen.add(base["name"])
        path = walnames.timeline_path(target_tli, history)
        if not walnames.on_path(base["timeline"], base["start_lsn"] or base["stop_lsn"], path):
            path = walnames.timeline_path(base["timeline"], history)
        last, missing = walnames.contiguous_from(base["start_wal"], available, path, last_segno, wal_seg_size)
        stop_segno = walnames.segment_number(base["stop_wal"] or base["start_wal"], wal_seg_size)
        usable = last is not None and walnames.segment_number(last, wal_seg_size) >= stop_segno
        if not usable and missing is None:
            next_segno = walnames.segment_number(last, wal_seg_size) + 1 if last else stop_segno
            missing = walnames.expected_segment(next_segno, path, wal_seg_size)
        out["base_backups"].append({
            "name": base["name"], "stop_time": base.get("stop_time"), "stop_lsn": base["stop_lsn"],
            "start_wal": base["start_wal"], "timeline": base["timeline"], "usable": usable,
            "first_missing": missing,
            "reaches": {"segment": last, "time": _later(available.get(last), base.get("stop_time")) if last else None,
                        "lsn": walnames.format_lsn(walnames.segment_end_lsn(last, wal_seg_size)) if last else None}})
    usable = [b for b in out["base_backups"] if b["usable"]]
    if not usable:
        first = out["base_backups"][-1]
        out["reason"] = "no base backup can be made consistent: segment %s is missing" % (
            first["first_missing"] or first["start_wal"])
        return out
    oldest = usable[0]
    best = max(usable, key=lambda b: (walnames.segment_number(b["reaches"]["segment"], wal_seg_size),
                                      walnames.timeline_of(b["reaches"]["segment"])))
    out["recoverable"] = True
    out["earliest"] = {"time": oldest["stop_time"], "lsn": oldest["stop_lsn"], "backup": oldest["name"]}
    out["latest"] = dict(best["reaches"], backup=best["name"], first_missing=best["first_missing"])
    return out


def diagnose_section(location, wal_dir=None, now=None, legacy_pattern=LEGACY_DUMP_PATTERN):
    """What the diagnose module reports about backups (RUNBOOK 场景5 检查备份状态), cheaply.

    No checksums are recomputed; returns per-kind counts/newest with ages, WAL gaps and the window.
    """
    if now is None:
        now_ts = datetime.now(timezone.utc).timestamp()
    else:
        now_ts = float(now) if isinstance(now, (int, float)) else epoch(now)
    catalog = scan(location, wal_dir, legacy_pattern=legacy_pattern, verify_checksums=False, now=now_ts)
    out = summary(catalog)
    for item in out.values():
        if item.get("newest"):
            item["age_hours"] = round((now_ts - epoch(item["newest"])) / 3600.0, 2)
    window = recovery_window(catalog)
    return {"location": location, "exists": catalog["exists"], "kinds": out,
            "window": {k: window[k] for k in ("recoverable", "earliest", "latest", "reason")},
            "wal_gaps": catalog["wal"]["gaps"]}
