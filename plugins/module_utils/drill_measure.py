# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""RTO, RPO and write downtime from the drill writer's log.

The writer POSTs a row every 100 ms and logs one JSON line per attempt:
``{"t": <epoch s>, "status": <HTTP status, 0 when nothing answered>, "id": <row id or null>, "ms": <latency>}``.
An *acknowledged* write is a 201 with an id. A failed write is downtime, never data loss: only
acknowledged rows that are gone after recovery count for the RPO.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone


def parse_iso(text):
    """Epoch seconds from an ISO-8601 time (``Z`` or an offset)."""
    if isinstance(text, (int, float)):
        return float(text)
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_writes(text):
    """Writer log lines → attempts sorted by time; torn or foreign lines are skipped."""
    writes = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "t" in rec:
            writes.append({"t": float(rec["t"]), "status": int(rec.get("status") or 0), "id": rec.get("id"),
                           "ms": rec.get("ms"), "host": rec.get("host") or ""})
    return sorted(writes, key=lambda w: w["t"])


def is_acknowledged(write):
    return write["status"] == 201 and write["id"] is not None


def acknowledged(writes):
    return [w for w in writes if is_acknowledged(w)]


def outages(writes):
    """Runs of consecutive failed writes: ``[{"start", "end", "failed"}]`` (epoch seconds).

    The window of one run reaches from its first failed attempt to the next acknowledged one (or the
    last failed attempt when none followed).
    """
    runs, current = [], None
    for write in writes:
        if is_acknowledged(write):
            if current:
                current["end"] = write["t"]
                runs.append(current)
                current = None
        elif current is None:
            current = {"start": write["t"], "end": write["t"], "failed": 1}
        else:
            current["end"] = write["t"]
            current["failed"] += 1
    if current:
        runs.append(current)
    return runs


def _host_summary(scoped):
    runs = outages(scoped)
    return {
        "attempts": len(scoped), "acknowledged": len(acknowledged(scoped)),
        "failed": sum(1 for w in scoped if not is_acknowledged(w)),
        "downtime_s": round(sum(r["end"] - r["start"] for r in runs), 3),
        "outages": [{"start": iso(r["start"]), "end": iso(r["end"]), "failed": r["failed"],
                     "duration_s": round(r["end"] - r["start"], 3)} for r in runs],
    }


def write_summary(writes, since=None):
    """Counts and downtime of the attempts at or after ``since``.

    Writes spread over several app hosts are judged per host (``by_host``): an outage is a run of failed
    writes through one host, and the downtime is that of the host that was down longest.
    """
    scoped = [w for w in writes if since is None or w["t"] >= since]
    hosts = sorted({w.get("host") or "" for w in scoped})
    if len(hosts) <= 1:
        return _host_summary(scoped)
    by_host = {h: _host_summary([w for w in scoped if (w.get("host") or "") == h]) for h in hosts}
    worst = max(hosts, key=lambda h: by_host[h]["downtime_s"])
    out = dict(by_host[worst], attempts=len(scoped), acknowledged=len(acknowledged(scoped)),
               failed=sum(1 for w in scoped if not is_acknowledged(w)))
    out["by_host"] = {h: {k: v for k, v in s.items() if k != "outages"} for h, s in by_host.items()}
    out["worst_host"] = worst
    return out


def blast_radius(summary, faulted):
    """Deviations when app hosts the fault did not touch failed writes: ``[str]`` (empty: contained)."""
    out = []
    for host, part in sorted((summary or {}).get("by_host", {}).items()):
        if host not in faulted and part["failed"]:
            out.append("blast radius: %s (not faulted) failed %d of %d write(s), down %.1f s" % (
                host, part["failed"], part["attempts"], part["downtime_s"]))
    return out


def rpo(writes, present_ids, cutoff=None):
    """Acknowledged writes that are gone after recovery.

    ``present_ids`` are the ids found in the database after recovery (at least those inside the id
    range of the acknowledged writes). With a ``cutoff`` (epoch s, e.g. the restore point of a PITR
    drill), writes acknowledged after it are reported apart: a recovery to that point discards them by
    design, and the RPO proper counts only the writes acknowledged before it.
    """
    present = {int(i) for i in present_ids}
    lost = [w for w in acknowledged(writes) if int(w["id"]) not in present]
    before = [w for w in lost if cutoff is None or w["t"] <= cutoff]
    after = [w for w in lost if cutoff is not None and w["t"] > cutoff]

    def span(items):
        if not items:
            return None
        return {"first": iso(items[0]["t"]), "last": iso(items[-1]["t"]),
                "seconds": round(items[-1]["t"] - items[0]["t"], 3)}

    return {
        "acknowledged": len(acknowledged(writes)),
        "lost_writes": len(before), "lost_span": span(before), "lost_ids": [int(w["id"]) for w in before][:50],
        "discarded_after_cutoff": len(after), "discarded_span": span(after),
        "cutoff": iso(cutoff) if cutoff is not None else None,
    }


def id_range(writes):
    ids = [int(w["id"]) for w in acknowledged(writes)]
    return (min(ids), max(ids)) if ids else (None, None)


def rto(injected_at, steady_at):
    """Seconds from injection to steady state, or None when steady state was never reached."""
    if injected_at is None or steady_at is None:
        return None
    return round(parse_iso(steady_at) - parse_iso(injected_at), 3)


def replication_window(rpo_result, facts, slack_s=2.0):
    """Whether the acknowledged writes lost fall in the asynchronous replication window of a killed primary.

    ``facts``: ``killed_at`` (ISO, read just before the kill) and ``replay_lag_s_at_kill``. A write acknowledged by
    the primary and not yet sent to the standby when it died is lost by design of asynchronous replication; the
    window is ``[killed_at - lag - slack, killed_at + slack]`` (slack: the kill follows the reading within a second).
    Returns ``{explained, start, end, lag_bytes_at_kill, lost_writes}`` or None without the facts.
    """
    if not rpo_result or not facts.get("killed_at"):
        return None
    killed = parse_iso(facts["killed_at"])
    lag = float(facts.get("replay_lag_s_at_kill") or 0)
    start, end = killed - lag - slack_s, killed + slack_s
    span = rpo_result.get("lost_span") or {}
    lost = rpo_result.get("lost_writes") or 0
    inside = lost == 0 or (span.get("first") and span.get("last") and parse_iso(span["first"]) >= start
                           and parse_iso(span["last"]) <= end)
    return {"explained": bool(inside), "start": iso(start), "end": iso(end), "lost_writes": lost,
            "lag_bytes_at_kill": facts.get("lag_bytes_at_kill")}
