# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""The phases of a recovery from its time marks: back to back, summing to the wall time, and the app downtime."""

from __future__ import annotations

# What each mark starts; a phase runs from its mark to the next mark in time (the last one to the end).
LABELS = {
    "start": "pre-flight and plan (app serving)",
    "maintenance_on": "maintenance on, app stop",
    "app_stopped": "restore (app stopped)",
    "restored": "app start, maintenance off, /health 200",
    "failed": "roll-back to the preserved state, app start",
    "resumed": "re-run taking over (the phase before includes the time without a controller)",
    "serving": "record",
}


def phases(marks, end):
    """``{"phases": [{step, mark, seconds}], "wall_s", "downtime_s", "downtime"}`` from epoch-second ``marks``.

    Downtime runs from maintenance on to the app serving again (/health 200, maintenance off); a run that ends
    without the app serving counts to ``end`` and says so. No ``maintenance_on`` mark: no downtime.
    """
    known = sorted(((float(t), name) for name, t in (marks or {}).items() if name in LABELS and t not in (None, "")))
    end = float(end)
    out = []
    for i, (at, name) in enumerate(known):
        until = known[i + 1][0] if i + 1 < len(known) else end
        out.append({"step": LABELS[name], "mark": name, "seconds": round(max(until - at, 0.0), 3)})
    times = dict((name, at) for at, name in known)
    start = times.get("start", known[0][0] if known else end)
    down_from = times.get("maintenance_on")
    if down_from is None:
        downtime, what = 0.0, "none (the app was not taken down)"
    elif "serving" in times:
        downtime, what = times["serving"] - down_from, "maintenance on to /health 200 with maintenance off"
    else:
        downtime, what = end - down_from, "maintenance on to the end of the run: the app was NOT serving again"
    return {"phases": out, "wall_s": round(end - start, 3), "downtime_s": round(downtime, 3), "downtime": what}
