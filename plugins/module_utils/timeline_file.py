# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Reading the ``timeline.jsonl`` that the incident_timeline callback writes."""

from __future__ import annotations

import json
import os


def iter_events(path):
    """Yield each decoded record of a timeline file; torn or foreign lines are skipped."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                yield rec
