"""Seeded demo log generator: an edge-device fleet with labelled anomalies.

``generate()`` writes a normal-only train log, a test log with injected
anomalies, and three label files (per line, per session, per event interval).
Same seed and arguments give byte-identical files.

Line format (a parser preset depends on it)::

    2026-03-14T08:00:00.123Z edge-03 sensor-hub[812]: INFO <content>

Nearly every line carries a ``sid=<8 hex>`` token naming its workflow session.

Workflows are long (14-30 lines) and mostly deterministic, like real device
daemons: a poll cycle walks the device's fixed sensor list, an API request goes
through the same middleware chain every time, and so on. Branching is rare and
fixed (cache hit or miss, a login accepted or refused). A workflow is a list of
steps; most steps log one line, some log two (a sensor is read, then validated).
Between steps a daemon now and then logs one of a few housekeeping lines (heap
stats, gc, queue depth, ...).

Four workflows run on every device: sensor poll cycles, API requests, SSH
logins and health checks. Repeated steps log one message shape, as real daemons
do: every sensor read of a poll cycle is ``read i/n <sensor> ...``, every health
check ``check i/16 <name> ...``. The fleet then logs about 60 templates: MSCRED's
signature matrices are templates x templates, so its cost grows with the square
of that number (120 templates cost it four times as much), and fewer templates
give denser counts. Such loop steps carry no order a session model could check
(one repetition looks like another), so order/missing anomalies never touch them.

That shape is chosen for session models such as DeepLog, which predict each key
from the h keys before it in its session and call it normal when it is among the
top g predictions (paper defaults h=10, g=9):

* ``order`` and ``missing`` anomalies start after at least ``MIN_PREFIX`` lines of
  their session, since the first h keys of a session are never predicted;
* with a strict step order alone, a predictor ranks the steps just before and
  after the expected one right behind it, so a swapped or skipped step would
  stay in the top g. The housekeeping lines are always plausible and fill those
  places: ``len(_HOUSEKEEPING)`` + the expected key stays below g, leaving one
  place of slack;
* ``missing`` drops a whole step of two or more lines (the next line is then two
  or more steps ahead), ``order`` swaps two steps 1 or 2 steps apart;
* no anomaly starts right at a branch outcome (cache hit/miss, the end of a
  loop), where several next lines are normal.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from alog_edge.data.demo_anomalies import inject_sessions, inject_windows
from alog_edge.data.demo_fleet import (COMPONENTS, HEALTH_MS, LOGIN_MEAN_MS, MIN, MISC_MEAN_MS, POLL_MS, SEC, SENSORS,
                                       SESSION_ANOMALIES_PER_90_MIN, T0, WORKFLOWS, Host, Line, Session, misc_line,
                                       wf_sensor)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoFiles:
    train_log: Path        # normal operation only
    test_log: Path         # held-out part, with anomalies
    line_labels: Path      # CSV: line_no,label,kind (line_no 1-based)
    session_labels: Path   # CSV: session,label,kind
    events: Path           # CSV: kind,host,start,end,description


def _make_hosts(rng: np.random.Generator, n: int) -> list[Host]:
    hosts = []
    # One device serves the fleet dashboard and sees several times the API traffic of the others.
    busy = int(rng.integers(n))
    for i in range(n):
        # A fixed subset per device, in a fixed (configured) order: devices differ, cycles don't.
        kinds = rng.choice(list(SENSORS), size=int(rng.integers(6, 8)), replace=False)
        sensors = []
        for k in kinds:
            chip, addr, unit, lo, hi, sd, span = SENSORS[str(k)]
            sensors.append((str(k), chip, addr, unit, float(rng.uniform(lo, hi)), sd, span))
        pids = {c: int(rng.integers(300, 4000)) for c in COMPONENTS}
        pids["kernel"] = 0
        gap = rng.uniform(30, 40) if i == busy else rng.uniform(150, 250)
        hosts.append(Host(name=f"edge-{i + 1:02d}", pids=pids, sensors=sensors, req_gap_ms=float(gap) * SEC,
                           subnet=int(rng.integers(1, 250)), broker=f"10.20.0.{rng.integers(5, 9)}:8883",
                           cycle=int(rng.integers(1000, 90000))))
    return hosts


def _ticks(end: int, t: float, gap: Callable[[], float]) -> Iterator[int]:
    while t < end:
        yield int(t)
        t += gap()


def _schedule(rng: np.random.Generator, hosts: list[Host], end: int,
              new_sid: Callable[[], str]) -> tuple[list[Session], list[tuple[str, Line]]]:
    """Normal operation of every host over [0, end) ms."""
    sessions: list[Session] = []
    misc: list[tuple[str, Line]] = []
    for h in hosts:
        for t in _ticks(end, rng.uniform(0, POLL_MS), lambda: POLL_MS + rng.normal(0, 200)):
            h.cycle += 1
            sid = new_sid()
            sessions.append(Session(sid, h.name, "sensor", wf_sensor(rng, h, t, sid, cycle=h.cycle)))
        # Requests come from dashboards and scripts polling now and then: irregular, but not bursty.
        plans = (("request", rng.uniform(0, h.req_gap_ms), lambda: rng.gamma(4.0, h.req_gap_ms / 4)),
                 ("health", rng.uniform(0, HEALTH_MS), lambda: HEALTH_MS + rng.normal(0, 50)),
                 ("login", rng.exponential(LOGIN_MEAN_MS), lambda: rng.exponential(LOGIN_MEAN_MS)))
        for wf, first, gap in plans:
            for t in _ticks(end, first, gap):
                sid = new_sid()
                sessions.append(Session(sid, h.name, wf, WORKFLOWS[wf](rng, h, t, sid)))
        for t in _ticks(end, rng.exponential(MISC_MEAN_MS), lambda: rng.exponential(MISC_MEAN_MS)):
            misc.append((h.name, misc_line(rng, t)))
    return sessions, misc


def _fmt_ts(ms: int) -> str:
    s, m = divmod(int(ms), SEC)
    return f"{(T0 + timedelta(seconds=s)).strftime('%Y-%m-%dT%H:%M:%S')}.{m:03d}Z"


def _render(hosts: list[Host], sessions: list[Session],
            misc: list[tuple[str, Line]]) -> tuple[str, list[tuple[str, str]]]:
    """Log text plus per-line (sid, kind) in log order."""
    pids = {h.name: h.pids for h in hosts}
    recs = [(ln, s.host, s.sid) for s in sessions for ln in s.lines] + [(ln, host, "") for host, ln in misc]
    recs.sort(key=lambda r: r[0].t)  # stable: ties keep session order
    out = [f"{_fmt_ts(ln.t)} {host} {ln.comp}[{pids[host][ln.comp]}]: {ln.level} {ln.text}\n" for ln, host, _ in recs]
    return "".join(out), [(sid, ln.kind) for ln, _, sid in recs]


def _csv(rows: list[tuple]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _write_all(files: dict[Path, str]) -> None:
    """Write every file to a temp file beside it, then move each into place."""
    temps: list[str] = []
    try:
        staged = []
        for path, text in files.items():
            with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp",
                                             delete=False, encoding="utf-8", newline="\n") as f:
                temps.append(f.name)
                f.write(text)
            staged.append((f.name, path))
        for tmp, path in staged:
            os.chmod(tmp, 0o644)  # temp files are created 0600; outputs are ordinary files
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)


def generate(out_dir: Path, seed: int = 7, hosts: int = 6, train_minutes: int = 240,
             test_minutes: int = 90) -> DemoFiles:
    """Write the demo train/test logs and label files into out_dir."""
    if not 2 <= hosts <= 99:
        raise ValueError("hosts must be in 2..99")
    if train_minutes < 10 or test_minutes < 30:
        raise ValueError("need train_minutes >= 10 and test_minutes >= 30 (room for every anomaly kind)")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    seen: set[str] = set()

    def new_sid() -> str:
        while True:
            sid = f"{rng.integers(0, 2**32):08x}"
            # Both a digit and a letter: every id then looks alike to a template miner's masks.
            if sid not in seen and not sid.isdigit() and not sid.isalpha():
                seen.add(sid)
                return sid

    fleet = _make_hosts(rng, hosts)
    split, end = train_minutes * MIN, (train_minutes + test_minutes) * MIN
    sessions, misc = _schedule(rng, fleet, end, new_sid)
    # Sessions straddling the split or the end are dropped: each part is self-contained.
    train = [s for s in sessions if s.end < split]
    test = [s for s in sessions if s.start >= split and s.end < end]
    train_misc = [m for m in misc if m[1].t < split]
    test_misc = [m for m in misc if m[1].t >= split]
    by_name = {h.name: h for h in fleet}
    lo, hi = split + 10 * MIN, end - 2 * MIN  # quiet first 10 min; room for sessions to finish
    # Rate and correlation anomalies come 10 min later still: a window model such as MSCRED judges a moment
    # by the 1000 s before it (100 buckets of 10 s), so by then it has enough of the test part to see them whole.
    test, events = inject_windows(rng, by_name, test, lo + min(10 * MIN, (hi - lo) // 3), hi, new_sid)
    inject_sessions(rng, test, lo, hi, max(1, round(SESSION_ANOMALIES_PER_90_MIN * test_minutes / 90)), events)

    train_text, _ = _render(fleet, train, train_misc)
    test_text, line_info = _render(fleet, test, test_misc)
    line_rows: list[tuple] = [("line_no", "label", "kind")]
    sess: dict[str, list[str]] = {}  # sid -> kinds, in first-seen order
    for no, (sid, kind) in enumerate(line_info, 1):
        line_rows.append((no, int(bool(kind)), kind))
        if sid:
            kinds = sess.setdefault(sid, [])
            kinds.extend(k for k in kind.split(";") if k and k not in kinds)
    sess_rows: list[tuple] = [("session", "label", "kind")]
    sess_rows += [(sid, int(bool(k)), ";".join(k)) for sid, k in sess.items()]
    ev_rows: list[tuple] = [("kind", "host", "start", "end", "description")]
    ev_rows += [(k, h, _fmt_ts(s), _fmt_ts(e), d) for k, h, s, e, d in sorted(events, key=lambda ev: (ev[2], ev[0]))]

    files = DemoFiles(train_log=out_dir / "train.log", test_log=out_dir / "test.log",
                      line_labels=out_dir / "line_labels.csv", session_labels=out_dir / "session_labels.csv",
                      events=out_dir / "events.csv")
    _write_all({files.train_log: train_text, files.test_log: test_text, files.line_labels: _csv(line_rows),
                files.session_labels: _csv(sess_rows), files.events: _csv(ev_rows)})
    log.info("demo data in %s: %d train lines, %d test lines, %d events (%.2fs)", out_dir,
             train_text.count("\n"), len(line_info), len(events), time.perf_counter() - started)
    return files
