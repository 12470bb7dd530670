"""Tests for the seeded demo log generator (real files, no mocks)."""
from __future__ import annotations

import csv
import re
import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from alog_edge.data.demo_data import DemoFiles, generate

LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z edge-\d\d [a-z-]+\[\d+\]: (INFO|WARN|ERROR|DEBUG) .+$")
PARTS_RE = re.compile(r"^(\S+) (edge-\d\d) ([a-z-]+)\[(\d+)\]: (\w+) (.+)$")
SID_RE = re.compile(r"\bsid=([0-9a-f]{8})\b")
KINDS = {"unseen", "order", "missing", "rate", "correlation"}
SMALL = dict(seed=7, hosts=4, train_minutes=20, test_minutes=30)
HOUSEKEEPING = "housekeeping"
HOUSEKEEPING_SHAPES = 7

# Step names recognised from the message text; anything else is not a workflow step.
SENSOR_RX = re.compile(r"^(read|validate) \d+/\d+ (\w+) ")
STEPS = [(name, re.compile(rx)) for name, rx in [
    (HOUSEKEEPING, r"^(heap stats|gc cycle|fd usage|queue depth|config watch|stats flush|event loop)\b"),
    ("poll_start", r"^poll cycle \d+ start "), ("aggregate", r"^aggregate readings="),
    ("publish", r"^publish batch "), ("forward", r"^forward batch "), ("delivered", r"^delivered batch "),
    ("poll_done", r"^poll cycle \d+ done "),
    ("tls", r"^tls handshake ok "), ("received", r"^request received "), ("trace", r"^trace id assigned "),
    ("headers", r"^headers parsed "), ("auth", r"^auth token ok "), ("acl", r"^acl allow "),
    ("ratelimit", r"^ratelimit ok "), ("route", r"^route matched "), ("handler", r"^handler start "),
    ("lookup", r"^cache lookup "), ("hit", r"^cache hit "), ("miss", r"^cache miss "),
    ("up_connect", r"^upstream connect "), ("up_fetch", r"^upstream fetch "), ("store", r"^cache store "),
    ("render", r"^render response "), ("compress", r"^compress gzip "), ("response", r"^response sent "),
    ("access", r"^access \S+ \S+ \"GET "), ("metrics", r"^metrics recorded "), ("close", r"^conn closed "),
    ("connect", r"^connection from "), ("version", r"^remote software version "), ("kex", r"^kex algorithm "),
    ("hostkey", r"^server host key "), ("userauth", r"^userauth request "), ("accepted", r"^accepted publickey "),
    ("opened", r"^pam_unix\(sshd:session\): session opened "), ("logind", r"^new session \d+ of user "),
    ("pty", r"^pty allocated "), ("exec", r"^exec command="), ("disconnect", r"^received disconnect from "),
    ("disconnected", r"^disconnected from user "), ("closed", r"^pam_unix\(sshd:session\): session closed "),
    ("logout", r"^session \d+ logged out"), ("removed", r"^removed session "), ("invalid", r"^invalid user "),
    ("pam_fail", r"^pam_unix\(sshd:auth\): authentication failure"), ("pw_failed", r"^failed password for invalid "),
    ("max_tries", r"^error: maximum authentication attempts exceeded "), ("refused", r"^disconnecting invalid user "),
    ("pam_more", r"^PAM \d+ more authentication failures"), ("conn_closed", r"^connection closed by .*\[preauth\]"),
    ("hc_start", r"^health check start "), ("hc_check", r"^check \d+/16 \w+ \S+ status=ok "),
    ("hc_done", r"^health check done "),
]]
# Each workflow's normal step sequences (housekeeping lines left out), by the session's first step.
GRAMMAR = {
    "poll_start": r"poll_start(?: read:(\w+) validate:\1)+ aggregate publish forward delivered poll_done",
    "tls": r"tls received trace headers auth acl ratelimit route handler lookup (?:hit|miss up_connect up_fetch store)"
           r" render compress response access metrics close",
    "connect": r"connect version kex hostkey (?:userauth accepted opened logind pty(?: exec)+ disconnect disconnected"
               r" closed logout removed|invalid(?: pam_fail pw_failed)+ max_tries refused pam_more conn_closed)",
    "hc_start": r"hc_start(?: hc_check){16} hc_done",
}
MIN_PREFIX = 10  # order/missing anomalies leave at least this many session lines before the first affected one


def step_of(content: str) -> str | None:
    m = SENSOR_RX.match(content)
    if m:
        return f"{m.group(1)}:{m.group(2)}"
    return next((name for name, rx in STEPS if rx.search(content)), None)


def valid(steps: list[str | None], sensors: tuple[str, ...] | None = None) -> bool:
    """A normal session: its steps (housekeeping aside) follow its workflow's grammar; a poll cycle
    reads the device's sensors (when given) in the device's order."""
    core = [s for s in steps if s != HOUSEKEEPING]
    if not core or core[0] not in GRAMMAR or None in core:
        return False
    if core[0] == "poll_start" and sensors is not None and tuple(s for s in core if s.startswith("read:")) != sensors:
        return False
    return re.fullmatch(GRAMMAR[core[0]], " ".join(core)) is not None  # type: ignore[arg-type]


def sensor_orders(sessions: dict[str, list[dict]]) -> dict[str, set[tuple[str, ...]]]:
    """Per host, the distinct sequences of sensors its poll cycles read."""
    orders = defaultdict(set)
    for lines in sessions.values():
        steps = [step_of(ln["content"]) for ln in lines]
        if steps[0] == "poll_start":
            orders[lines[0]["host"]].add(tuple(s for s in steps if s and s.startswith("read:")))
    return orders


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


def by_session(lines: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for ln in lines:
        if ln["sid"]:
            out[ln["sid"]].append(ln)
    return out


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
        self.by_sid = by_session(self.test)
        self.train_by_sid = by_session(self.train)
        self.sess_kinds = {r["session"]: set(filter(None, r["kind"].split(";"))) for r in self.sessions}
        # Each device's sensor order, as its training log shows it.
        self.sensors = {h: next(iter(o)) for h, o in sensor_orders(self.train_by_sid).items() if len(o) == 1}
        self.event_of = {}
        for e in self.events:
            m = re.search(r"session ([0-9a-f]{8})", e["description"])
            if m:
                self.event_of[m.group(1)] = e

    def sids_with(self, kind: str) -> list[str]:
        return [sid for sid, kinds in self.sess_kinds.items() if kind in kinds]

    def steps(self, sid: str) -> list[str | None]:
        return [step_of(ln["content"]) for ln in self.by_sid[sid]]

    def valid(self, sid: str, steps: list[str | None] | None = None) -> bool:
        """The test session (or the given steps for it) is a normal one for its device."""
        return valid(self.steps(sid) if steps is None else steps, self.sensors.get(self.by_sid[sid][0]["host"]))

    def repaired(self, sid: str) -> tuple[list[str | None], int]:
        """The session's steps as they were before its order/missing anomaly, and the 0-based index
        of the first line the anomaly changed (from the event's description)."""
        steps, kinds, desc = self.steps(sid), self.sess_kinds[sid], self.event_of[sid]["description"]
        if "order" in kinds:
            m = re.search(r"swapped \(lines ([\d,]+) and ([\d,]+)\)", desc)
            a, b = ([int(x) - 1 for x in g.split(",")] for g in m.groups())
            places = sorted(a + b)  # b's lines now fill the first places, then a's
            fixed = list(steps)
            for i, p in enumerate(b + a):
                fixed[p] = steps[places[i]]
            return fixed, places[0]
        m = re.search(r"missing \(([\w:+]+) before line (\d+)\)", desc)
        at = int(m.group(2)) - 1
        return steps[:at] + m.group(1).split("+") + steps[at:], at


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return Demo(generate(tmp_path_factory.mktemp("small"), **SMALL))


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return Demo(generate(tmp_path_factory.mktemp("default")))


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
    assert small.train_by_sid and not set(small.train_by_sid) & set(small.by_sid)
    assert all(len({ln["host"] for ln in lines}) == 1 for lines in small.by_sid.values())
    # Every id has a digit and a letter, so a template miner masks them all alike.
    assert all(re.search(r"\d", sid) and re.search(r"[a-f]", sid) for sid in [*small.train_by_sid, *small.by_sid])


def test_sessions_are_long_enough_for_deeplog(small: Demo) -> None:
    """14-30 lines a session; anomalies change that only by the lines they add or drop."""
    assert all(14 <= len(lines) <= 30 for lines in small.train_by_sid.values())
    for sid, lines in small.by_sid.items():
        kinds = small.sess_kinds[sid]
        n = len(lines) - ("unseen" in kinds)
        if kinds & {"order", "missing"} and "correlation" not in kinds:
            n = len(small.repaired(sid)[0])
        elif kinds == {"correlation", "missing"}:
            n += 2  # the bridge's two lines
        assert 14 <= n <= 30, (sid, kinds, len(lines))


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
    for sid in small.sids_with("unseen"):  # only the inserted line is labelled; the rest is a normal session
        assert sum(ln["label"] for ln in small.by_sid[sid]) == 1
        assert small.valid(sid, [s for s in small.steps(sid) if s is not None])


def test_workflow_shapes_match_labels(small: Demo) -> None:
    # Every session line is a known step, except the inserted unseen ones.
    for ln in small.train + small.test:
        if ln["sid"] and "unseen" not in ln.get("kind", ""):
            assert step_of(ln["content"]), ln["raw"]
    for sid, lines in small.train_by_sid.items():
        assert valid([step_of(ln["content"]) for ln in lines], small.sensors.get(lines[0]["host"])), sid
    assert small.sids_with("order") and small.sids_with("missing")
    for sid, kinds in small.sess_kinds.items():
        if "unseen" in kinds:
            continue
        assert small.valid(sid) == (not kinds & {"order", "missing"}), (sid, kinds, small.steps(sid))
        if "order" in kinds or "missing" in kinds:
            assert all(ln["label"] for ln in small.by_sid[sid])


def test_order_and_missing_come_after_ten_lines_of_their_session(small: Demo) -> None:
    """Undoing the anomaly the event describes gives a normal session, and the anomaly leaves at
    least 10 lines of the session untouched before it (DeepLog with h=10 cannot judge earlier keys)."""
    sids = [s for s in small.sids_with("order") + small.sids_with("missing") if "correlation" not in small.sess_kinds[s]]
    assert sids
    for sid in sids:
        fixed, first = small.repaired(sid)
        steps = small.steps(sid)
        assert small.valid(sid, fixed) and not small.valid(sid), (sid, steps)
        assert first >= MIN_PREFIX
        assert steps[:first] == fixed[:first] and steps[first] != fixed[first]
        if "order" in small.sess_kinds[sid]:
            assert sorted(steps) == sorted(fixed)
        else:
            assert 2 <= len(fixed) - len(steps) <= 3  # a whole step of two or three lines
    for sid in small.sids_with("correlation"):  # the bridge going silent: also well after the first 10 lines
        if "missing" in small.sess_kinds[sid]:
            steps = small.steps(sid)
            at = steps.index("publish") + 1
            assert at >= MIN_PREFIX and small.valid(sid, steps[:at] + ["forward", "delivered"] + steps[at:])


def test_each_device_polls_its_own_sensors_in_a_fixed_order(small: Demo) -> None:
    normal = {s: small.by_sid[s] for s, k in small.sess_kinds.items() if not k}
    orders = sensor_orders({**small.train_by_sid, **normal})
    assert len(orders) == SMALL["hosts"]
    assert all(len(o) == 1 and 6 <= len(next(iter(o))) <= 10 for o in orders.values())
    assert len({next(iter(o)) for o in orders.values()}) == len(orders)


def test_workflows_are_low_entropy(small: Demo) -> None:
    """Few distinct step sequences per workflow (housekeeping aside): normal sessions are predictable."""
    variants = defaultdict(set)
    for lines in small.train_by_sid.values():
        core = tuple(s for s in (step_of(ln["content"]) for ln in lines) if s != HOUSEKEEPING)
        variants[core[0]].add(core)
    assert set(variants) == set(GRAMMAR)
    assert all(len(v) <= 12 for v in variants.values()), {k: len(v) for k, v in variants.items()}


def test_rate_burst_and_drop(small: Demo) -> None:
    burst = drop = None
    for e in (e for e in small.events if e["kind"] == "rate"):
        lo, hi = ts(e["start"]), ts(e["end"])
        labelled = [ln for ln in small.test
                    if "rate" in ln["kind"] and ln["host"] == e["host"] and lo <= ln["ts"] <= hi]
        burst, drop = (e, drop) if labelled else (burst, e)
    assert burst and drop
    sids = small.sids_with("rate")
    assert 6 <= len(sids) <= 10
    assert {small.by_sid[s][0]["host"] for s in sids} == {burst["host"]}
    assert ts(burst["end"]) - ts(burst["start"]) <= timedelta(seconds=90)
    for sid in sids:  # each a normal-shaped failed login
        steps = small.steps(sid)
        assert steps[0] == "connect" and "pw_failed" in steps and steps[-1] == "conn_closed" and small.valid(sid)
    # Drop: the host's poll cycles stop inside the window but run before and after it.
    lo, hi = ts(drop["start"]), ts(drop["end"])
    polls = [ln["ts"] for ln in small.test if ln["host"] == drop["host"] and ln["comp"] == "sensor-hub"]
    assert hi - lo >= timedelta(minutes=2)
    assert not [t for t in polls if lo + timedelta(seconds=1) < t <= hi]
    assert any(lo - timedelta(seconds=90) < t < lo for t in polls)
    assert any(hi < t < hi + timedelta(seconds=90) for t in polls)


def test_correlation_anomalies(small: Demo) -> None:
    events = {e["description"].split()[0]: e for e in small.events if e["kind"] == "correlation"}
    cache, mqtt = events["cache-miss"], events["mqtt-bridge"]
    assert cache["host"] != mqtt["host"]
    # Cache: flipped sessions are normal-shaped misses; the window's miss ratio jumps.
    flipped = [s for s, k in small.sess_kinds.items() if k == {"correlation"}]
    assert flipped
    for sid in flipped:
        steps = small.steps(sid)
        assert small.by_sid[sid][0]["host"] == cache["host"] and "miss" in steps and small.valid(sid)

    def miss_ratio(inside: bool) -> float:
        lo, hi = ts(cache["start"]), ts(cache["end"])
        reqs = [small.steps(s) for s, lines in small.by_sid.items()
                if lines[0]["comp"] == "api-gateway" and lines[0]["host"] == cache["host"]
                and (lo <= lines[0]["ts"] < hi) == inside]
        return sum("miss" in s for s in reqs) / len(reqs)

    assert miss_ratio(True) >= 0.6 and miss_ratio(False) <= 0.35
    # MQTT: polls go on in the window, but the bridge logs nothing: no batch is forwarded or delivered.
    lo, hi = ts(mqtt["start"]), ts(mqtt["end"])
    in_win = [s for s, lines in small.by_sid.items() if lines[0]["host"] == mqtt["host"]
              and lines[0]["comp"] == "sensor-hub" and lo <= lines[0]["ts"] < hi]
    assert in_win and {s for s in small.sids_with("correlation") if small.sess_kinds[s] >= {"missing"}} == set(in_win)
    for sid in in_win:
        assert small.sess_kinds[sid] == {"correlation", "missing"}
        steps = small.steps(sid)
        assert "publish" in steps and "forward" not in steps and "delivered" not in steps
        assert not any(ln["comp"] == "mqtt-bridge" for ln in small.by_sid[sid])


def test_default_size_and_counts(default: Demo) -> None:
    demo = default
    assert 50_000 <= len(demo.train) <= 70_000
    assert 20_000 <= len(demo.test) <= 30_000
    lengths = [len(lines) for lines in demo.train_by_sid.values()]
    assert 18 <= statistics.median(lengths) <= 22
    counts = {k: sum(kinds == {k} for kinds in demo.sess_kinds.values()) for k in KINDS}
    assert counts["unseen"] == counts["order"] == counts["missing"] == 60
    assert 6 <= counts["rate"] <= 10
    assert 4 <= counts["correlation"] <= 12  # cache misses: invisible to a per-session model
    assert 5 <= sum(k == {"correlation", "missing"} for k in demo.sess_kinds.values()) <= 12  # mqtt bridge
    # Anomalies are spread over the test part, not bunched together.
    starts = sorted(ts(e["start"]) for e in demo.events)
    assert starts[-1] - starts[0] >= timedelta(minutes=60)
    # One message shape per step, one for all reads (validations, health checks) of a loop: a template
    # miner has a moderate number of templates to find, and MSCRED's templates x templates matrices stay small.
    shapes = {re.sub(r":\w+$", "", step_of(ln["content"])) for ln in demo.train if ln["sid"]} - {HOUSEKEEPING}
    assert 45 <= len(shapes) + HOUSEKEEPING_SHAPES <= 65


def test_default_anomalies_sit_where_a_session_model_can_see_them(default: Demo) -> None:
    demo = default
    for sid, kinds in demo.sess_kinds.items():
        if kinds in ({"order"}, {"missing"}):
            fixed, first = demo.repaired(sid)
            assert first >= MIN_PREFIX and demo.valid(sid, fixed) and not demo.valid(sid)


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
