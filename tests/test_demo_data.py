"""Tests for the seeded demo log generator (real files, no mocks)."""
from __future__ import annotations

import csv
import re
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from alog_edge.demo_data import DemoFiles, generate

LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z edge-\d\d [a-z-]+\[\d+\]: (INFO|WARN|ERROR|DEBUG) .+$")
PARTS_RE = re.compile(r"^(\S+) (edge-\d\d) ([a-z-]+)\[(\d+)\]: (\w+) (.+)$")
SID_RE = re.compile(r"\bsid=([0-9a-f]{8})\b")
KINDS = {"unseen", "order", "missing", "rate", "correlation"}
SMALL = dict(seed=7, hosts=4, train_minutes=20, test_minutes=30)

# Step names recognised from the message text; anything else is not a workflow step.
STEPS = [(name, re.compile(rx)) for name, rx in [
    ("poll_start", r"^poll cycle \d+ start "), ("retry", r"^read retry "),
    ("read", r"^read (temperature|humidity|pressure|vibration) "), ("publish", r"^publish batch "),
    ("delivered", r"^delivered batch "), ("poll_done", r"^poll cycle \d+ done "),
    ("received", r"^request received "), ("auth", r"^auth ok "), ("lookup", r"^cache lookup "),
    ("hit", r"^cache hit "), ("miss", r"^cache miss "), ("upstream", r"^upstream fetch "),
    ("store", r"^cache store "), ("response", r"^response sent "),
    ("check", r"^update check "), ("manifest", r"^manifest fetched "), ("noupdate", r"^no update available "),
    ("next", r"^next check in "), ("available", r"^update available "), ("download", r"^download complete "),
    ("verify", r"^signature verify ok "), ("apply", r"^apply update "), ("applied", r"^apply complete "),
    ("reboot", r"^reboot scheduled "),
    ("connect", r"^connection from "), ("accepted", r"^accepted publickey "), ("opened", r"^session opened "),
    ("closed", r"^session closed "), ("failed", r"^password failed "),
    ("disconnect", r"^connection closed by .*\[preauth\]"),
    ("hc_start", r"^health check start "), ("cpu", r"^cpu "), ("mem", r"^mem "), ("disk", r"^disk "),
    ("temp", r"^temp "), ("hc_done", r"^health check done "),
]]
# In a normal session every `a` step comes before every `b` step.
BEFORE = [
    ("poll_start", "read"), ("read", "publish"), ("publish", "delivered"), ("delivered", "poll_done"),
    ("publish", "poll_done"), ("received", "auth"), ("auth", "lookup"), ("lookup", "hit"), ("lookup", "miss"),
    ("miss", "upstream"), ("upstream", "store"), ("store", "response"), ("hit", "response"), ("auth", "response"),
    ("check", "manifest"), ("manifest", "noupdate"), ("noupdate", "next"), ("manifest", "available"),
    ("available", "download"), ("download", "verify"), ("verify", "apply"), ("apply", "applied"),
    ("applied", "reboot"), ("connect", "accepted"), ("accepted", "opened"), ("opened", "closed"),
    ("connect", "failed"), ("failed", "disconnect"), ("hc_start", "cpu"), ("temp", "hc_done"),
]
# A normal session that has the key step also has all of these.
REQUIRES = {
    "poll_start": {"read", "publish", "delivered", "poll_done"}, "received": {"auth", "lookup", "response"},
    "check": {"manifest"}, "download": {"available", "verify", "apply", "applied", "reboot"},
    "accepted": {"opened", "closed"}, "hc_start": {"cpu", "mem", "disk", "temp", "hc_done"},
}


def step_of(content: str) -> str | None:
    return next((name for name, rx in STEPS if rx.search(content)), None)


def violates_order(steps: list[str]) -> bool:
    pos = defaultdict(list)
    for i, s in enumerate(steps):
        pos[s].append(i)
    return any(pos[a] and pos[b] and max(pos[a]) > min(pos[b]) for a, b in BEFORE)


def lacks_step(steps: list[str]) -> bool:
    return any(key in steps and not need <= set(steps) for key, need in REQUIRES.items())


def ts(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")


def read_log(path: Path) -> list[dict]:
    raw = path.read_bytes()
    assert b"\r" not in raw and raw.endswith(b"\n")
    out = []
    for line in raw.decode("ascii").splitlines():
        t, host, comp, pid, level, content = PARTS_RE.match(line).groups()
        sid = SID_RE.search(content)
        out.append(dict(raw=line, ts=ts(t), host=host, comp=comp, level=level, content=content,
                        sid=sid.group(1) if sid else None))
    return out


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


class Demo:
    """Parsed view of one generated data set."""

    def __init__(self, files: DemoFiles) -> None:
        self.files = files
        self.train = read_log(files.train_log)
        self.test = read_log(files.test_log)
        self.labels = read_csv(files.line_labels)
        self.sessions = read_csv(files.session_labels)
        self.events = read_csv(files.events)
        for ln, lab in zip(self.test, self.labels):
            ln["label"], ln["kind"] = int(lab["label"]), lab["kind"]
        self.by_sid: dict[str, list[dict]] = defaultdict(list)
        for ln in self.test:
            if ln["sid"]:
                self.by_sid[ln["sid"]].append(ln)
        self.sess_kinds = {r["session"]: set(filter(None, r["kind"].split(";"))) for r in self.sessions}

    def sids_with(self, kind: str) -> list[str]:
        return [sid for sid, kinds in self.sess_kinds.items() if kind in kinds]

    def steps(self, sid: str) -> list[str]:
        return [s for s in (step_of(ln["content"]) for ln in self.by_sid[sid]) if s]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return Demo(generate(tmp_path_factory.mktemp("small"), **SMALL))


def all_bytes(files: DemoFiles) -> list[bytes]:
    return [Path(p).read_bytes() for p in (files.train_log, files.test_log, files.line_labels,
                                           files.session_labels, files.events)]


def test_same_seed_identical_other_seed_differs(tmp_path: Path) -> None:
    a = all_bytes(generate(tmp_path / "a", **SMALL))
    b = all_bytes(generate(tmp_path / "b", **SMALL))
    c = all_bytes(generate(tmp_path / "c", **{**SMALL, "seed": 8}))
    assert a == b
    assert a[0] != c[0] and a[1] != c[1]


def test_line_format_and_time_order(small: Demo) -> None:
    for part in (small.train, small.test):
        assert part
        for ln in part:
            assert LINE_RE.match(ln["raw"]), ln["raw"]
        times = [ln["ts"] for ln in part]
        assert times == sorted(times)
    assert small.train[0]["ts"] >= datetime(2026, 3, 14, 8, 0, 0)
    assert small.train[-1]["ts"] < small.test[0]["ts"]
    split = datetime(2026, 3, 14, 8, 0, 0) + timedelta(minutes=SMALL["train_minutes"])
    assert small.train[-1]["ts"] < split <= small.test[0]["ts"] < split + timedelta(minutes=1)
    # One pid per host+component, as on a real device.
    pids = defaultdict(set)
    for ln in small.train + small.test:
        pids[ln["host"], ln["comp"]].add(PARTS_RE.match(ln["raw"]).group(4))
    assert all(len(p) == 1 for p in pids.values())


def test_sessions_cover_most_lines_and_ids_are_disjoint(small: Demo) -> None:
    for part in (small.train, small.test):
        without = sum(ln["sid"] is None for ln in part)
        assert 0 < without < 0.05 * len(part)
    train_sids = {ln["sid"] for ln in small.train if ln["sid"]}
    assert train_sids and not train_sids & set(small.by_sid)
    assert all(len({ln["host"] for ln in lines}) == 1 for lines in small.by_sid.values())
    assert all(4 <= len(small.steps(sid)) <= 15 for sid in small.by_sid
               if not small.sess_kinds[sid] & {"missing", "unseen"})


def test_line_labels_one_row_per_test_line(small: Demo) -> None:
    assert [int(r["line_no"]) for r in small.labels] == list(range(1, len(small.test) + 1))
    for r in small.labels:
        assert r["label"] in ("0", "1")
        assert (r["label"] == "1") == (r["kind"] != "")
        assert set(filter(None, r["kind"].split(";"))) <= KINDS


def test_session_labels_agree_with_line_labels(small: Demo) -> None:
    expect = {}
    for sid, lines in small.by_sid.items():
        kinds = set()
        for ln in lines:
            kinds |= set(filter(None, ln["kind"].split(";")))
        expect[sid] = (int(any(ln["label"] for ln in lines)), kinds)
    got = {r["session"]: (int(r["label"]), small.sess_kinds[r["session"]]) for r in small.sessions}
    assert got == expect
    assert [r["session"] for r in small.sessions] == list(small.by_sid)  # first-seen order


def test_every_kind_present_and_in_events(small: Demo) -> None:
    line_kinds = set()
    for ln in small.test:
        line_kinds |= set(filter(None, ln["kind"].split(";")))
    assert line_kinds == KINDS
    assert {e["kind"] for e in small.events} == KINDS
    assert sum(e["kind"] == "rate" for e in small.events) == 2  # burst and drop
    assert sum(e["kind"] == "correlation" for e in small.events) == 2
    # Quiet start: nothing in the first 10 minutes of the test part.
    quiet = datetime(2026, 3, 14, 8, 0, 0) + timedelta(minutes=SMALL["train_minutes"] + 10)
    assert all(ts(e["start"]) >= quiet and ts(e["end"]) >= ts(e["start"]) for e in small.events)
    assert all(ln["ts"] >= quiet for ln in small.test if ln["label"])
    # Each session anomaly has its own event over the session's span.
    for e in small.events:
        if e["kind"] in ("unseen", "order", "missing"):
            sid = re.search(r"session ([0-9a-f]{8})", e["description"]).group(1)
            lines = small.by_sid[sid]
            assert e["kind"] in small.sess_kinds[sid] and lines[0]["host"] == e["host"]
            assert (ts(e["start"]), ts(e["end"])) == (lines[0]["ts"], lines[-1]["ts"])


def test_unseen_messages_never_in_train(small: Demo) -> None:
    def norm(content: str) -> str:
        return re.sub(r"\d+", "#", SID_RE.sub("", content))

    train_norm = {norm(ln["content"]) for ln in small.train}
    train_text = "\n".join(ln["content"] for ln in small.train)
    unseen = [ln for ln in small.test if "unseen" in ln["kind"]]
    assert unseen
    for ln in unseen:
        assert norm(ln["content"]) not in train_norm
        head = " ".join(ln["content"].split()[:2])
        assert head not in train_text, head
        assert step_of(ln["content"]) is None
    for sid in small.sids_with("unseen"):  # only the inserted line is labelled
        assert sum(ln["label"] for ln in small.by_sid[sid]) == 1
        assert not violates_order(small.steps(sid)) and not lacks_step(small.steps(sid))


def test_workflow_shapes_match_labels(small: Demo) -> None:
    # Every session line is a known step, except the inserted unseen ones.
    for ln in small.train + small.test:
        if ln["sid"] and "unseen" not in ln.get("kind", ""):
            assert step_of(ln["content"]), ln["raw"]
    train_sids = defaultdict(list)
    for ln in small.train:
        if ln["sid"]:
            train_sids[ln["sid"]].append(step_of(ln["content"]))
    assert not any(violates_order(s) or lacks_step(s) for s in train_sids.values())
    assert small.sids_with("order") and small.sids_with("missing")
    for sid, kinds in small.sess_kinds.items():
        steps = small.steps(sid)
        assert violates_order(steps) == ("order" in kinds), (sid, steps)
        assert lacks_step(steps) == ("missing" in kinds), (sid, steps)
        if "order" in kinds or "missing" in kinds:
            assert all(ln["label"] for ln in small.by_sid[sid])


def test_rate_burst_and_drop(small: Demo) -> None:
    burst = drop = None
    for e in (e for e in small.events if e["kind"] == "rate"):
        lo, hi = ts(e["start"]), ts(e["end"])
        labelled = [ln for ln in small.test
                    if "rate" in ln["kind"] and ln["host"] == e["host"] and lo <= ln["ts"] <= hi]
        burst, drop = (e, drop) if labelled else (burst, e)
    assert burst and drop
    sids = small.sids_with("rate")
    assert 15 <= len(sids) <= 20
    assert {small.by_sid[s][0]["host"] for s in sids} == {burst["host"]}
    assert ts(burst["end"]) - ts(burst["start"]) <= timedelta(seconds=90)
    for sid in sids:  # each a normal-shaped failed login
        steps = small.steps(sid)
        assert steps[0] == "connect" and "failed" in steps and steps[-1] == "disconnect"
    # Drop: the host's poll cycles stop inside the window but run before and after it.
    lo, hi = ts(drop["start"]), ts(drop["end"])
    polls = [ln["ts"] for ln in small.test if ln["host"] == drop["host"] and ln["comp"] == "sensor-hub"]
    assert hi - lo >= timedelta(minutes=2)
    assert not [t for t in polls if lo + timedelta(seconds=1) < t <= hi]
    assert any(lo - timedelta(minutes=1) < t < lo for t in polls)
    assert any(hi < t < hi + timedelta(minutes=1) for t in polls)


def test_correlation_anomalies(small: Demo) -> None:
    events = {e["description"].split()[0]: e for e in small.events if e["kind"] == "correlation"}
    cache, mqtt = events["cache-miss"], events["mqtt-bridge"]
    assert cache["host"] != mqtt["host"]
    # Cache: flipped sessions are normal-shaped misses; the window's miss ratio jumps.
    flipped = [s for s, k in small.sess_kinds.items() if k == {"correlation"}]
    assert flipped
    for sid in flipped:
        steps = small.steps(sid)
        assert small.by_sid[sid][0]["host"] == cache["host"] and "miss" in steps
        assert not violates_order(steps) and not lacks_step(steps)

    def miss_ratio(inside: bool) -> float:
        lo, hi = ts(cache["start"]), ts(cache["end"])
        reqs = [small.steps(s) for s, lines in small.by_sid.items()
                if lines[0]["comp"] == "api-gateway" and lines[0]["host"] == cache["host"]
                and (lo <= lines[0]["ts"] < hi) == inside]
        return sum("miss" in s for s in reqs) / len(reqs)

    assert miss_ratio(True) >= 0.6 and miss_ratio(False) <= 0.3
    # MQTT: polls go on in the window, but no batch is delivered.
    lo, hi = ts(mqtt["start"]), ts(mqtt["end"])
    in_win = [s for s, lines in small.by_sid.items() if lines[0]["host"] == mqtt["host"]
              and lines[0]["comp"] == "sensor-hub" and lo <= lines[0]["ts"] < hi]
    assert in_win and {s for s in small.sids_with("correlation") if small.sess_kinds[s] >= {"missing"}} == set(in_win)
    for sid in in_win:
        assert small.sess_kinds[sid] == {"correlation", "missing"}
        assert "publish" in small.steps(sid) and "delivered" not in small.steps(sid)


def test_default_size(tmp_path: Path) -> None:
    started = time.perf_counter()
    files = generate(tmp_path)
    elapsed = time.perf_counter() - started
    demo = Demo(files)
    assert elapsed < 5.0
    assert 40_000 <= len(demo.train) <= 60_000
    assert 15_000 <= len(demo.test) <= 25_000
    counts = {k: sum(kinds == {k} for kinds in demo.sess_kinds.values()) for k in KINDS}
    assert counts["unseen"] == counts["order"] == counts["missing"] == 50
    assert 15 <= counts["rate"] <= 20
    assert 10 <= len(demo.sids_with("correlation")) <= 40
    # Anomalies are spread over the test part, not bunched together.
    starts = sorted(ts(e["start"]) for e in demo.events)
    assert starts[-1] - starts[0] >= timedelta(minutes=60)


def test_atomic_writes_leave_no_temp_files(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "dir"
    files = generate(out, **SMALL)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        Path(p).name for p in (files.train_log, files.test_log, files.line_labels, files.session_labels, files.events))
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in out.iterdir())
    # A directory in the way of one target makes the final move fail.
    blocked = tmp_path / "blocked"
    (blocked / "events.csv").mkdir(parents=True)
    with pytest.raises(OSError):
        generate(blocked, **SMALL)
    assert not [p for p in blocked.iterdir() if p.name.endswith(".tmp")]


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, hosts=1)
    with pytest.raises(ValueError):
        generate(tmp_path, test_minutes=5)
