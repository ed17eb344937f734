# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Host section of the diagnosis: memory, CPU and load, disks, top processes.

Reads ``/proc`` directly (the runbook's ``free -h``, ``top -bn1``) and ``ps`` for
the process table; parsers are plain functions over text for unit tests.
Only the command name of a process is reported, never its arguments (they can
hold secrets).
"""

from __future__ import annotations

import os
import time


def parse_meminfo(text):
    """``/proc/meminfo`` -> {total_mb, available_mb, used_mb, used_percent, swap_used_mb}."""
    kb = {}
    for line in text.splitlines():
        name, _unused, rest = line.partition(":")
        fields = rest.split()
        if fields:
            try:
                kb[name.strip()] = int(fields[0])
            except ValueError:
                continue
    total = kb.get("MemTotal", 0)
    available = kb.get("MemAvailable", kb.get("MemFree", 0) + kb.get("Buffers", 0) + kb.get("Cached", 0))
    used = max(0, total - available)
    return {
        "total_mb": round(total / 1024.0, 1),
        "available_mb": round(available / 1024.0, 1),
        "used_mb": round(used / 1024.0, 1),
        "used_percent": round(100.0 * used / total, 1) if total else None,
        "swap_used_mb": round((kb.get("SwapTotal", 0) - kb.get("SwapFree", 0)) / 1024.0, 1),
    }


def parse_loadavg(text, cores):
    """``/proc/loadavg`` -> {load1, load5, load15, cores, load_per_core}."""
    fields = text.split()
    load1, load5, load15 = (float(f) for f in fields[:3])
    cores = max(1, int(cores or 1))
    return {"load1": load1, "load5": load5, "load15": load15, "cores": cores,
            "load_per_core": round(load1 / cores, 2)}


def parse_cpu_times(text):
    """First ``cpu`` line of ``/proc/stat`` -> (busy, total) jiffies."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            total = sum(values[:8])  # guest time is already counted in user/nice
            return total - idle, total
    raise ValueError("no cpu line in /proc/stat")


def cpu_percent(before, after):
    """Busy percent between two ``parse_cpu_times`` samples (like the %Cpu line of ``top -bn1``)."""
    busy = after[0] - before[0]
    total = after[1] - before[1]
    return round(100.0 * busy / total, 1) if total > 0 else 0.0


def parse_ps(text, limit):
    """``ps -eo pid=,rss=,pcpu=,comm= --sort=-rss`` -> top ``limit`` [{pid, rss_mb, cpu_percent, command}]."""
    procs = []
    for line in text.splitlines():
        fields = line.split(None, 3)
        if len(fields) < 4:
            continue
        try:
            procs.append({"pid": int(fields[0]), "rss_mb": round(int(fields[1]) / 1024.0, 1),
                          "cpu_percent": float(fields[2]), "command": fields[3].strip()})
        except ValueError:
            continue
    procs.sort(key=lambda p: p["rss_mb"], reverse=True)
    return procs[:limit]


def disk_usage(path):
    """Use of the filesystem holding ``path`` (the nearest existing parent), or an error."""
    probe = path
    while probe and not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    try:
        st = os.statvfs(probe)
    except OSError as exc:
        return {"path": path, "error": str(exc)}
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    used = total - st.f_bfree * st.f_frsize
    return {"path": path, "exists": os.path.exists(path), "total_gb": round(total / 1024.0 ** 3, 2),
            "free_gb": round(free / 1024.0 ** 3, 2),
            "used_percent": round(100.0 * used / (used + free), 1) if used + free else None}


def largest_entries(path, limit=5, max_files=20000, now=None):
    """What fills ``path``: its biggest direct entries [{path, size_mb, newest_age_s}], biggest first.

    ``newest_age_s`` is the age of the most recently written file inside an entry: a small age marks
    what is growing now. Stops counting after ``max_files`` files (the result says ``truncated``).
    """
    now = now if now is not None else time.time()
    entries, seen, truncated = [], 0, False
    try:
        children = list(os.scandir(path))
    except OSError:
        return {"entries": [], "truncated": False}
    for child in children:
        size, newest = 0, 0.0
        try:
            if child.is_file(follow_symlinks=False):
                st = child.stat(follow_symlinks=False)
                size, newest = st.st_size, st.st_mtime
                seen += 1
            elif child.is_dir(follow_symlinks=False):
                for base, _dirs, files in os.walk(child.path):
                    for name in files:
                        seen += 1
                        try:
                            st = os.lstat(os.path.join(base, name))
                        except OSError:
                            continue
                        size += st.st_size
                        newest = max(newest, st.st_mtime)
                    if seen > max_files:
                        truncated = True
                        break
        except OSError:
            continue
        entries.append({"path": child.path, "size_mb": round(size / 1024.0 ** 2, 1),
                        "newest_age_s": int(now - newest) if newest else None})
        if truncated:
            break
    entries.sort(key=lambda e: -e["size_mb"])
    return {"entries": entries[:limit], "truncated": truncated}


def _read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def collect(runner, paths=(), top=5, cpu_sample_s=0.5, proc_root="/proc", detail_over_percent=90.0):
    """The host section: memory, cpu (sampled), load versus cores, disk of ``paths``, top processes.

    A disk fuller than ``detail_over_percent`` also gets ``largest`` (see ``largest_entries``).
    """
    out = {"ok": True, "errors": []}
    try:
        out["memory"] = parse_meminfo(_read(os.path.join(proc_root, "meminfo")))
    except (OSError, ValueError) as exc:
        out["errors"].append("memory: %s" % exc)
    try:
        before = parse_cpu_times(_read(os.path.join(proc_root, "stat")))
        time.sleep(cpu_sample_s)
        after = parse_cpu_times(_read(os.path.join(proc_root, "stat")))
        out["cpu"] = {"used_percent": cpu_percent(before, after), "sample_s": cpu_sample_s}
    except (OSError, ValueError) as exc:
        out["errors"].append("cpu: %s" % exc)
    try:
        out["load"] = parse_loadavg(_read(os.path.join(proc_root, "loadavg")), os.cpu_count())
    except (OSError, ValueError) as exc:
        out["errors"].append("load: %s" % exc)
    out["disks"] = [disk_usage(p) for p in paths if p]
    for disk in out["disks"]:
        if (disk.get("used_percent") or 0) > detail_over_percent and disk.get("exists"):
            found = largest_entries(disk["path"])
            disk["largest"], disk["largest_truncated"] = found["entries"], found["truncated"]
    res = runner.run(["ps", "-eo", "pid=,rss=,pcpu=,comm=", "--sort=-rss"])
    if res.rc == 0:
        out["top_processes"] = parse_ps(res.stdout, top)
    else:
        out["errors"].append("ps: rc=%s %s" % (res.rc, res.stderr.strip()[:200]))
    out["ok"] = not out["errors"]
    return out
