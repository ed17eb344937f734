"""WAL names, LSNs and timeline paths."""

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import walnames as w


@pytest.mark.parametrize("text,value", [
    ("0/0", 0), ("0/3000028", 0x3000028), ("1/0", 1 << 32), ("FFFFFFFF/FFFFFFFF", (1 << 64) - 1),
    ("a/b", 0xA00000000 + 0xB),
])
def test_lsn_round_trip(text, value):
    assert w.parse_lsn(text) == value
    assert w.parse_lsn(w.format_lsn(value)) == value


@pytest.mark.parametrize("bad", ["", "0", "0/", "G/1", "0/123456789", None, "1/2/3"])
def test_parse_lsn_rejects(bad):
    with pytest.raises(ValueError):
        w.parse_lsn(bad)


def test_segment_of_boundaries():
    assert w.segment_of("0/3000028", 1) == "000000010000000000000003"
    assert w.segment_of(0xFFFFFF, 1) == "000000010000000000000000"
    assert w.segment_of(0x1000000, 2) == "000000020000000000000001"
    # segment 0xFF of log 0 is followed by segment 0 of log 1
    assert w.segment_of(0xFFFFFFFF, 1) == "0000000100000000000000FF"
    assert w.segment_of(1 << 32, 1) == "000000010000000100000000"


def test_parse_and_next_segment_cross_log_boundary():
    assert w.parse_segment("0000000200000001000000FE") == (2, 1, 0xFE)
    assert w.next_segment("0000000100000000000000FF") == "000000010000000100000000"
    assert w.segment_range("0000000100000000000000FE", "000000010000000100000001") == [
        "0000000100000000000000FE", "0000000100000000000000FF",
        "000000010000000100000000", "000000010000000100000001"]
    assert w.segment_range("000000010000000000000005", "000000010000000000000004") == []


@pytest.mark.parametrize("bad", ["00000001000000000000000", "00000001000000000000000g", "x" * 24,
                                 "000000010000000000000001.partial"])
def test_parse_segment_rejects(bad):
    with pytest.raises(ValueError):
        w.parse_segment(bad)


def test_segment_lsn_bounds():
    name = "000000010000000000000003"
    assert w.segment_start_lsn(name) == 0x3000000
    assert w.segment_end_lsn(name) == 0x4000000


def test_parse_history_skips_comments():
    text = "# comment\n\n1\t0/3000000\tno recovery target specified\n2\t0/5000060\tbefore 2026-11-28\n"
    assert w.parse_history(text) == [
        {"parent_tli": 1, "switch_lsn": "0/3000000", "reason": "no recovery target specified"},
        {"parent_tli": 2, "switch_lsn": "0/5000060", "reason": "before 2026-11-28"}]


def test_timeline_path_and_expected_segment():
    history = {3: [{"parent_tli": 1, "switch_lsn": "0/3000000", "reason": ""},
                   {"parent_tli": 2, "switch_lsn": "0/5000060", "reason": ""}]}
    path = w.timeline_path(3, history)
    assert path == [(1, 0), (2, 0x3000000), (3, 0x5000060)]
    assert w.expected_segment(2, path) == "000000010000000000000002"
    # the segment holding a switch point is read from the new timeline
    assert w.expected_segment(3, path) == "000000020000000000000003"
    assert w.expected_segment(4, path) == "000000020000000000000004"
    assert w.expected_segment(5, path) == "000000030000000000000005"
    assert w.on_path(1, "0/2FFFFFF", path) and not w.on_path(1, "0/3000000", path)
    assert w.on_path(3, "0/6000000", path)
    assert w.timeline_path(1, {}) == [(1, 0)]


def test_contiguous_from_names_first_missing():
    path = [(1, 0)]
    have = {w.segment_name(1, n) for n in (2, 3, 4, 6)}
    assert w.contiguous_from("000000010000000000000002", have, path, 6) == (
        "000000010000000000000004", "000000010000000000000005")
    assert w.contiguous_from("000000010000000000000002", have, path, 4) == ("000000010000000000000004", None)
    assert w.contiguous_from("000000010000000000000001", have, path, 6) == (None, "000000010000000000000001")


def test_kinds_of_archive_names():
    assert w.is_segment("000000010000000000000001")
    assert w.is_history("00000002.history")
    assert w.BACKUP_FILE_RE.match("000000010000000000000002.00000028.backup")
    assert w.PARTIAL_RE.match("000000010000000000000003.partial")
    assert not w.is_segment("00000002.history")
