"""Helpers for the drill and report tests: render HTML in headless Chromium, read a drill's record."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_binary():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise AssertionError("chromium is not installed (bindep.txt lists it; run scripts/bootstrap.sh)")
    return path


def render(html_path, screenshot):
    """Load the page in headless Chromium: (DOM after load, console messages). Takes a screenshot."""
    url = "file://" + os.path.abspath(html_path)
    with tempfile.TemporaryDirectory(prefix="hb-chromium-") as profile:
        shot = subprocess.run([chromium_binary(), *CHROMIUM_FLAGS, "--user-data-dir=" + profile,
                               "--enable-logging=stderr", "--v=0", "--window-size=1200,1600",
                               "--screenshot=" + screenshot, url],
                              capture_output=True, text=True, timeout=120, check=False)
    with tempfile.TemporaryDirectory(prefix="hb-chromium-") as profile:
        dom = subprocess.run([chromium_binary(), *CHROMIUM_FLAGS, "--user-data-dir=" + profile, "--dump-dom", url],
                             capture_output=True, text=True, timeout=120, check=False)
    console = [line for line in shot.stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]
    return dom.stdout, console


class _Rows(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "g" and "timeline-row" in (attrs.get("class") or "").split():
            self.rows.append(attrs.get("data-scenario"))


def timeline_rows(dom):
    parser = _Rows()
    parser.feed(dom)
    return parser.rows


def load_journal(run_dir):
    with open(os.path.join(run_dir, "journal.json"), encoding="utf-8") as fh:
        return json.load(fh)
