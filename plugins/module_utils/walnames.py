# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""PostgreSQL WAL names, LSNs and timeline history, as plain functions.

A segment name is ``TTTTTTTTXXXXXXXXYYYYYYYY``: timeline, then the segment
number split into a "log" id and a segment within it (256 segments of 16 MiB
per log id). LSNs are in PostgreSQL's text form ``X/Y`` (hex).

Recovery reads each segment number from the newest timeline of the target's
history whose switch point is at or before that segment (the segment that
holds a switch point is read from the new timeline), which is what
``expected_segment`` reproduces.
"""

from __future__ import annotations

import re

WAL_SEG_SIZE = 16 * 1024 * 1024
SEGMENT_RE = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
HISTORY_RE = re.compile(r"^([0-9A-F]{8})\.history$")
BACKUP_FILE_RE = re.compile(r"^([0-9A-F]{24})\.([0-9A-F]{8})\.backup$")
PARTIAL_RE = re.compile(r"^([0-9A-F]{24})\.partial$")
LSN_RE = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")


def parse_lsn(text):
    """``"0/3000028"`` -> 50331688. Raises ``ValueError`` on anything else."""
    match = LSN_RE.match(str(text).strip())
    if not match:
        raise ValueError("not an LSN (want X/Y in hex): %r" % (text,))
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def format_lsn(value):
    """50331688 -> ``"0/3000028"``."""
    value = int(value)
    return "%X/%X" % (value >> 32, value & 0xFFFFFFFF)


def segments_per_log(wal_seg_size=WAL_SEG_SIZE):
    return 0x100000000 // wal_seg_size


def is_segment(name):
    return bool(SEGMENT_RE.match(name))


def is_history(name):
    return bool(HISTORY_RE.match(name))


def parse_segment(name):
    """``"000000010000000000000002"`` -> ``(1, 0, 2)``. Raises ``ValueError``."""
    match = SEGMENT_RE.match(name)
    if not match:
        raise ValueError("not a WAL segment name (want 24 hex digits): %r" % (name,))
    return tuple(int(g, 16) for g in match.groups())


def segment_name(timeline, segno, wal_seg_size=WAL_SEG_SIZE):
    per = segments_per_log(wal_seg_size)
    return "%08X%08X%08X" % (timeline, segno // per, segno % per)


def segment_number(name, wal_seg_size=WAL_SEG_SIZE):
    """Position of a segment in the WAL stream (timeline ignored)."""
    _tli, log, seg = parse_segment(name)
    return log * segments_per_log(wal_seg_size) + seg


def timeline_of(name):
    return parse_segment(name)[0]


def segment_of(lsn, timeline, wal_seg_size=WAL_SEG_SIZE):
    """Name of the segment holding ``lsn`` (int or text) on ``timeline``."""
    if not isinstance(lsn, int):
        lsn = parse_lsn(lsn)
    return segment_name(int(timeline), lsn // wal_seg_size, wal_seg_size)


def segment_start_lsn(name, wal_seg_size=WAL_SEG_SIZE):
    return segment_number(name, wal_seg_size) * wal_seg_size


def segment_end_lsn(name, wal_seg_size=WAL_SEG_SIZE):
    """First LSN after the segment (exclusive end)."""
    return (segment_number(name, wal_seg_size) + 1) * wal_seg_size


def next_segment(name, wal_seg_size=WAL_SEG_SIZE):
    return segment_name(timeline_of(name), segment_number(name, wal_seg_size) + 1, wal_seg_size)


def segment_range(first, last, wal_seg_size=WAL_SEG_SIZE):
    """Every segment name from ``first`` to ``last`` inclusive, on ``first``'s timeline."""
    tli = timeline_of(first)
    start, end = segment_number(first, wal_seg_size), segment_number(last, wal_seg_size)
    return [segment_name(tli, n, wal_seg_size) for n in range(start, end + 1)]


def parse_history(text):
    """Parse a ``NNNNNNNN.history`` file into ``[{parent_tli, switch_lsn, reason}]``.

    Each line is ``<parent tli>\\t<switch LSN>\\t<reason>``; comments and blank
    lines are skipped.
    """
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = re.split(r"\s+", line, maxsplit=2)
        if len(fields) < 2:
            continue
        entries.append({"parent_tli": int(fields[0]), "switch_lsn": format_lsn(parse_lsn(fields[1])),
                        "reason": fields[2].strip() if len(fields) > 2 else ""})
    return entries


def timeline_path(target_tli, history):
    """The timelines recovery walks to reach ``target_tli``, oldest first.

    ``history`` maps a timeline (int or str) to its parsed history entries.
    Returns ``[(tli, begin_lsn_int)]``; the first timeline begins at 0.
    """
    target_tli = int(target_tli)
    entries = history.get(target_tli) or history.get(str(target_tli)) or []
    path, begin = [], 0
    for entry in entries:
        path.append((int(entry["parent_tli"]), begin))
        begin = parse_lsn(entry["switch_lsn"])
    path.append((target_tli, begin))
    return path


def expected_segment(segno, path, wal_seg_size=WAL_SEG_SIZE):
    """Name recovery asks for at ``segno`` along ``path`` (from ``timeline_path``)."""
    tli = path[0][0]
    for path_tli, begin in path:
        if segno >= begin // wal_seg_size:
            tli = path_tli
    return segment_name(tli, segno, wal_seg_size)


def on_path(timeline, lsn, path):
    """True when ``(timeline, lsn)`` lies on ``path`` (the timeline is current at ``lsn``)."""
    lsn = parse_lsn(lsn) if not isinstance(lsn, int) else lsn
    for index, (tli, begin) in enumerate(path):
        end = path[index + 1][1] if index + 1 < len(path) else None
        if tli == int(timeline) and lsn >= begin and (end is None or lsn < end):
            return True
    return False


def contiguous_from(start_segment, available, path, last_segno, wal_seg_size=WAL_SEG_SIZE):
    """Walk from ``start_segment`` along ``path`` while segments are in ``available``.

    Returns ``(last_present_name_or_None, first_missing_name_or_None)``; the walk
    stops at ``last_segno`` (the newest segment number archived).
    """
    segno = segment_number(start_segment, wal_seg_size)
    last_present = None
    while segno <= last_segno:
        name = expected_segment(segno, path, wal_seg_size)
        if name not in available:
            return last_present, name
        last_present = name
        segno += 1
    return last_present, None
