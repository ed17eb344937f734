# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Markdown and self-contained HTML (inline SVG, no external assets) for drill and incident reports."""

from __future__ import annotations

import html

from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_measure as measure
from ansible_collections.healthbutler.recovery.plugins.module_utils.drill_journal import format_table, table_rows

PHASE_COLOURS = {"detect": "#f0ad4e", "recover": "#d9534f", "steady": "#5bc0de", "up": "#5cb85c"}
STYLE = """body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f4f4f4}
.passed{color:#2d7a2d;font-weight:bold}.failed,.aborted{color:#b52b27;font-weight:bold}.unavailable{color:#888}
svg text{font-size:11px;font-family:sans-serif}.muted{color:#777}"""


def esc(value):
    return html.escape("" if value is None else str(value))


def _page(title, body, lang="en"):
    return ('<!DOCTYPE html>\n<html lang="%s"><head><meta charset="utf-8"><title>%s</title>'
            '<style>%s</style></head><body>\n%s\n</body></html>\n' % (lang, esc(title), STYLE, body))


def _md_table(heads, rows):
    out = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _unused in heads) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(out)


def _html_table(heads, rows, classes=None):
    out = ["<table><tr>" + "".join("<th>%s</th>" % esc(h) for h in heads) + "</tr>"]
    for i, row in enumerate(rows):
        cls = (classes or {}).get(i)
        out.append("<tr>" + "".join(
            '<td%s>%s</td>' % (' class="%s"' % esc(cls) if cls and j == len(row) - 1 else "", esc(c))
            for j, c in enumerate(row)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


# -- drill ---------------------------------------------------------------------
def _phases(entry):
    """(start offset s, end offset s, phase) bars of one scenario, relative to the injection."""
    t0 = entry.get("injected_at")
    if not t0:
        return []
    base = measure.parse_iso(t0)
    det = entry.get("detection") or {}
    steps = {s["name"]: s for s in entry.get("steps") or []}
    bars = []
    detected = det.get("detected_at")
    rec = steps.get("recover") or {}
    steady = entry.get("steady_at")
    d_end = measure.parse_iso(detected) - base if detected else None
    if d_end is not None:
        bars.append((0.0, d_end, "detect"))
    if rec.get("start") and rec.get("end"):
        bars.append((measure.parse_iso(rec["start"]) - base, measure.parse_iso(rec["end"]) - base, "recover"))
    if steady and rec.get("end"):
        bars.append((measure.parse_iso(rec["end"]) - base, measure.parse_iso(steady) - base, "steady"))
    return [b for b in bars if b[1] >= b[0]]


def drill_svg(entries):
    """One row (``<g class="timeline-row">``) per scenario: phases after injection, RTO and its target."""
    width, label_w, row_h = 900, 170, 28
    spans = [b[1] for e in entries for b in _phases(e)] + [e.get("rto_s") or 0 for e in entries]
    axis = max(spans + [1.0]) * 1.15
    scale = (width - label_w - 20) / axis
    height = row_h * len(entries) + 40
    out = ['<svg xmlns="http://www.w3.org/2000/svg" id="drill-timeline" width="%d" height="%d" '
           'viewBox="0 0 %d %d" role="img" aria-label="drill timeline">' % (width, height, width, height)]
    for i, entry in enumerate(entries):
        y = 10 + i * row_h
        out.append('<g class="timeline-row" data-scenario="%s" data-status="%s">' % (esc(entry["name"]),
                                                                                     esc(entry["status"])))
        out.append('<text x="4" y="%d">%s</text>' % (y + 15, esc(entry["name"])))
        for start, end, phase in _phases(entry):
            out.append('<rect class="phase-%s" x="%.1f" y="%d" width="%.1f" height="18" fill="%s">'
                       '<title>%s %.1f-%.1f s</title></rect>' % (
                           phase, label_w + start * scale, y + 2, max((end - start) * scale, 1.0),
                           PHASE_COLOURS[phase], phase, start, end))
        targets = entry.get("targets") or {}
        if targets:
            target_s = targets["resolution_s"]
            x = label_w + min(target_s, axis) * scale
            out.append('<line class="target" x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333" '
                       'stroke-dasharray="3,2"/>' % (x, y, x, y + 22))
            text = "target %s%s" % (_dur(target_s), " →" if target_s > axis else "")
            out.append('<text x="%.1f" y="%d" text-anchor="end" class="muted">%s</text>' % (x - 3, y + 15, esc(text)))
        if entry["status"] not in ("passed", "failed", "aborted"):
            out.append('<text x="%d" y="%d" fill="#888">%s</text>' % (
                label_w + 4, y + 15, esc((entry.get("deviations") or [entry["status"]])[0])))
        elif entry.get("rto_s") is not None:
            out.append('<text x="%.1f" y="%d">RTO %.1f s</text>' % (
                label_w + entry["rto_s"] * scale + 4, y + 15, entry["rto_s"]))
        out.append("</g>")
    axis_y = 10 + len(entries) * row_h + 12
    out.append('<text x="%d" y="%d" class="muted">0 s = injection; axis %.0f s; colours: detect, recover, '
               'back to steady state</text>' % (label_w, axis_y, axis))
    out.append("</svg>")
    return "\n".join(out)


def _dur(seconds):
    if seconds >= 3600 and seconds % 3600 == 0:
        return "%dh" % (seconds // 3600)
    return "%dm" % (seconds // 60) if seconds >= 60 else "%ds" % seconds


def drill_markdown(journal):
    rows = table_rows(journal["scenarios"])
    out = ["# Drill %s" % (journal.get("start") or ""), "",
           "Inventory: `%s` (environment %s). Result: **%s** (%s)." % (
               journal.get("inventory"), journal.get("environment"), journal["status"],
               ", ".join("%s %d" % kv for kv in sorted(journal["counts"].items()))), "",
           format_table(rows), ""]
    for e in journal["scenarios"]:
        out += ["## %s: %s" % (e["name"], e["status"]), "", e.get("description") or "", ""]
        if e.get("effect"):
            out += [effect_line(e["effect"]), ""]
        if e.get("deviations"):
            out += ["Deviations:", ""] + ["- %s" % d for d in e["deviations"]] + [""]
        if e.get("steps"):
            out.append(_md_table(["step", "status", "start", "duration s", "detail"], [
                [s["name"], s["status"], s.get("start") or "-",
                 "-" if s.get("duration_s") is None else "%.1f" % s["duration_s"], s.get("detail") or ""]
                for s in e["steps"]]))
            out.append("")
        if e.get("writes"):
            w = e["writes"]
            out.append("Writes after injection: %d attempts, %d acknowledged, %d failed (downtime %.1f s, "
                       "not data loss)." % (w["attempts"], w["acknowledged"], w["failed"], w["downtime_s"]))
        if e.get("rpo"):
            r = e["rpo"]
            out.append("RPO: %d acknowledged write(s) lost of %d%s." % (
                r["lost_writes"], r["acknowledged"],
                "; %d written after the restore point %s were discarded by the point-in-time recovery"
                % (r["discarded_after_cutoff"], r["cutoff"]) if r.get("cutoff") else ""))
        out.append("")
    out += ["## 演练检查清单 (drill checklist)", ""]
    out += ["- [%s] %s (%s): %s — %s" % ("x" if i["done"] else " ", i["zh"], i["en"],
                                         "done by the drill" if i["by"] == "drill" else "manual", i["note"])
            for i in journal["checklist"]]
    return "\n".join(out) + "\n"


def effect_line(effect):
    """The effect probe's observation in one sentence."""
    if effect.get("seen"):
        return "Effect seen %.1f s after the injection (%s): %s." % (
            effect.get("after_injection_s") or 0, effect.get("expect") or effect.get("kind"), effect["observation"])
    return "Effect NOT seen within %s s (%s); last look: %s." % (
        effect.get("bound_s"), effect.get("expect") or effect.get("kind"), effect.get("observation"))


def drill_html(journal):
    rows = table_rows(journal["scenarios"])
    heads = ["scenario", "effect s", "detected as", "P got/exp", "detect s", "RTO s", "RPO", "target resp/res",
             "result"]
    body = ["<h1>Drill %s</h1>" % esc(journal.get("start")),
            "<p>Inventory <code>%s</code>, environment %s: <span class=\"%s\">%s</span></p>" % (
                esc(journal.get("inventory")), esc(journal.get("environment")), esc(journal["status"]),
                esc(journal["status"])),
            drill_svg(journal["scenarios"]),
            _html_table(heads, [[r[k] for k in ("scenario", "effect_s", "detected_as", "p_level", "detect_s", "rto_s",
                                                "rpo", "target", "result")] for r in rows],
                        {i: e["status"] for i, e in enumerate(journal["scenarios"])})]
    for e in journal["scenarios"]:
        body.append('<h2 id="%s">%s: <span class="%s">%s</span></h2>' % (esc(e["name"]), esc(e["name"]),
                                                                         esc(e["status"]), esc(e["status"])))
        if e.get("effect"):
            body.append('<p class="effect">%s</p>' % esc(effect_line(e["effect"])))
        if e.get("deviations"):
            body.append("<ul>" + "".join("<li>%s</li>" % esc(d) for d in e["deviations"]) + "</ul>")
        if e.get("steps"):
            body.append(_html_table(["step", "status", "start", "duration s", "detail"], [
                [s["name"], s["status"], s.get("start") or "-",
                 "-" if s.get("duration_s") is None else "%.1f" % s["duration_s"], s.get("detail") or ""]
                for s in e["steps"]]))
    body.append("<h2>演练检查清单</h2><ul>" + "".join(
        "<li>%s %s (%s): %s</li>" % ("&#9745;" if i["done"] else "&#9744;", esc(i["zh"]), esc(i["en"]),
                                     esc(i["note"])) for i in journal["checklist"]) + "</ul>")
    return _page("Drill %s" % journal.get("start"), "\n".join(body))
