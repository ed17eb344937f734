"""Helpers for the recover-db integration tests and the benchmark.

Backups are made here the way the backups area lays them out (CATALOG.md): a plain base
backup with a manifest plus its ``.json`` sidecar, and ``pg_dump -Fc`` with ``.sha256`` and
``.json`` (row counts per table) sidecars.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time


def read_json(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def read_text(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def utc_stamp():
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def iso_now():
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text):
    """Seconds since the epoch of an ISO time ending in Z (microseconds optional)."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def lsn(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def as_postgres(site, argv, check=True, **kw):
    cmd = ["su", "-s", "/bin/sh", "-c", 'exec "$0" "$@"', "--", site["hb_pg_os_user"]] + list(argv)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if check and proc.returncode != 0:
        raise AssertionError("%s failed: %s" % (argv[0], proc.stderr))
    return proc


def segment_of(lsn, tli):
    hi, lo = lsn.split("/")
    value = (int(hi, 16) << 32) | int(lo, 16)
    segno = value // (16 * 2 ** 20)
    return "%08X%08X%08X" % (tli, segno // 256, segno % 256)


def make_base_backup(box, label=None):
    """``pg_basebackup -Fp`` with a SHA256 manifest into backups/base/<stamp> + sidecar; returns its name."""
    site = box.site
    time.sleep(1.1)  # one stamp per second: never two backups with one name
    stamp = label or utc_stamp()
    root = os.path.join(site["hb_backup_dir"], "base")
    os.makedirs(root, exist_ok=True)
    shutil.chown(root, site["hb_pg_os_user"])
    path = os.path.join(root, stamp)
    start = iso_now()
    as_postgres(site, [os.path.join(site["hb_pg_bindir"], "pg_basebackup"), "-h", site["hb_pg_socket_dir"],
                       "-p", str(site["hb_pg_port"]), "-D", path, "-Fp", "-X", "stream", "-c", "fast",
                       "--manifest-checksums=SHA256"])
    end = iso_now()
    with open(os.path.join(path, "backup_manifest"), encoding="utf-8") as fh:
        ranges = json.load(fh)["WAL-Ranges"][0]
    tli = int(ranges["Timeline"])
    meta = {"start": start, "end": end, "start_lsn": ranges["Start-LSN"], "stop_lsn": ranges["End-LSN"],
            "timeline": tli, "start_wal": segment_of(ranges["Start-LSN"], tli),
            "stop_wal": segment_of(ranges["End-LSN"], tli), "server_version": box.scalar("SHOW server_version")}
    with open(path + ".json", "w", encoding="utf-8") as fh:
        json.dump(meta, fh)
    box.psql("SELECT pg_switch_wal()")
    return stamp


def table_counts(box, db=None):
    out = box.psql("SELECT json_object_agg(format('%I.%I', schemaname, tablename), "
                   "(xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', schemaname, "
                   "tablename), false, true, '')))[1]::text::bigint) FROM pg_tables "
                   "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')", db=db)
    return json.loads(out)


def make_dump(box):
    """``pg_dump -Fc`` of the app database into backups/dumps with .sha256 and .json sidecars (no writers)."""
    site = box.site
    root = os.path.join(site["hb_backup_dir"], "dumps")
    os.makedirs(root, exist_ok=True)
    shutil.chown(root, site["hb_pg_os_user"])
    time.sleep(1.1)
    name = "%s_%s.dump" % (site["hb_db_name"], utc_stamp())
    path = os.path.join(root, name)
    start = iso_now()
    tables = table_counts(box)
    as_postgres(site, [os.path.join(site["hb_pg_bindir"], "pg_dump"), "-h", site["hb_pg_socket_dir"],
                       "-p", str(site["hb_pg_port"]), "-Fc", "-f", path + ".partial", site["hb_db_name"]])
    os.rename(path + ".partial", path)
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    with open(path + ".sha256", "w", encoding="utf-8") as fh:
        fh.write("%s  %s\n" % (digest, name))
    with open(path + ".json", "w", encoding="utf-8") as fh:
        json.dump({"db": site["hb_db_name"], "start": start, "end": iso_now(), "size": os.path.getsize(path),
                   "tables": tables}, fh)
    return path


def insert_batch(box, tag, rows=50):
    """One committed batch of ``rows`` health_data rows tagged ``metric = tag``; returns its xid and commit LSN."""
    out = box.psql("BEGIN; INSERT INTO health_data (user_id, metric, value) "
                   "SELECT 1 + g %% 100, '%s', g FROM generate_series(1, %d) g; "
                   "SELECT pg_current_xact_id()::text; COMMIT; SELECT pg_current_wal_lsn()::text;" % (tag, rows))
    xid, lsn = out.split()[-2:]
    return {"xid": xid, "lsn": lsn, "committed": iso_now()}


def batch_counts(box, tags):
    out = box.psql("SELECT json_object_agg(metric, n) FROM (SELECT metric, count(*) n FROM health_data "
                   "WHERE metric = ANY(ARRAY[%s]) GROUP BY metric) s" % ",".join("'%s'" % t for t in tags))
    got = json.loads(out) if out else {}
    return {t: (got or {}).get(t, 0) for t in tags}


def data_dir_fingerprint(box):
    """Identity of the live data directory (inode + the system identifier) to prove 'unchanged'."""
    st = os.stat(box.site["hb_pg_data_dir"])
    ident = as_postgres(box.site, [os.path.join(box.site["hb_pg_bindir"], "pg_controldata"),
                                   "-D", box.site["hb_pg_data_dir"]]).stdout
    sysid = next(line.split(":")[1].strip() for line in ident.splitlines() if "system identifier" in line)
    tli = next(line.split(":")[1].strip() for line in ident.splitlines()
               if "Latest checkpoint's TimeLineID" in line)
    return {"inode": st.st_ino, "system_identifier": sysid, "timeline": tli, "pid": box.pg_pid()}


def preserved_dirs(box):
    parent = os.path.dirname(box.site["hb_pg_data_dir"])
    base = os.path.basename(box.site["hb_pg_data_dir"])
    return sorted(n for n in os.listdir(parent) if n.startswith(base + "."))


class Watcher(threading.Thread):
    """Polls ``condition()`` every 10 ms and runs ``action()`` once when it becomes true."""

    def __init__(self, condition, action, timeout=120):
        super().__init__(daemon=True)
        self.condition, self.action, self.timeout = condition, action, timeout
        self.fired = False
        self.error = None
        self._halt = threading.Event()

    def run(self):
        deadline = time.monotonic() + self.timeout
        while not self._halt.is_set() and time.monotonic() < deadline:
            try:
                if self.condition():
                    self.action()
                    self.fired = True
                    return
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.error = exc
                return
            time.sleep(0.01)

    def stop(self):
        self._halt.set()
        self.join(5)


def pids_of(*needles):
    """PIDs whose command line contains every needle (for killing one of our own pg_restore runs)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if all(n in cmd for n in needles) and "su -s" not in cmd:
            out.append(int(pid))
    return out


def port_free(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", int(port))) != 0


class OutageProbe(threading.Thread):
    """Asks /health every 0.1 s; ``span()`` is the time from the first to the last answer that was not 200."""

    def __init__(self, box):
        super().__init__(daemon=True)
        self.box, self.down = box, []
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            asked = time.time()
            if self.box.http("/health", timeout=2)[0] != 200:
                self.down.append((asked, time.time()))
            time.sleep(0.1)

    def stop(self):
        self._halt.set()
        self.join(5)

    def span(self):
        return self.down[-1][1] - self.down[0][0] if self.down else 0.0
