"""Seeded demo log generator: an edge-device fleet with labelled anomalies.

``generate()`` writes a normal-only train log, a test log with injected
anomalies, and three label files (per line, per session, per event interval).
Same seed and arguments give byte-identical files.

Line format (a parser preset depends on it)::

    2026-03-14T08:00:00.123Z edge-03 sensor-hub[812]: INFO <content>

Nearly every line carries a ``sid=<8 hex>`` token naming its workflow session.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

log = logging.getLogger(__name__)

T0 = datetime(2026, 3, 14, 8, 0, 0, tzinfo=timezone.utc)
SEC = 1000
MIN = 60 * SEC
KINDS = ("unseen", "order", "missing", "rate", "correlation")

# Rates are lower than a real device's so that default sizes stay near
# 50k train / 20k test lines; the mix of workflows is what matters.
POLL_MS = 25 * SEC
HEALTH_MS = 60 * SEC
OTA_MS = 300 * SEC
LOGIN_MEAN_MS = 30 * MIN
MISC_MEAN_MS = 90 * SEC
CACHE_MISS_P = 0.15

_SENSORS = {  # kind: (chip, i2c addr, unit, baseline low, baseline high, noise sd)
    "temperature": ("tmp117", 0x48, "C", 18.0, 42.0, 0.3),
    "humidity": ("sht31", 0x44, "%RH", 25.0, 70.0, 1.0),
    "pressure": ("bmp388", 0x77, "hPa", 990.0, 1030.0, 0.4),
    "vibration": ("adxl345", 0x53, "g", 0.02, 0.30, 0.01),
}
_COMPONENTS = ("sensor-hub", "mqtt-bridge", "api-gateway", "ota-agent", "auth", "health", "chronyd")
_API_USERS = ("svc-dashboard", "svc-grafana", "fleet-mgr", "ops-admin")

# How order/missing anomalies mutate each workflow (by internal step name).
_SWAP = {"sensor": ("read", "publish"), "request": ("auth", "response"),
         "ota": ("verify", "apply"), "login": ("opened", "closed")}
_DROP = {"sensor": "delivered", "request": "auth", "ota": "verify", "login": "opened"}
_FORCE = {"ota": {"update": True}, "login": {"ok": True}}  # branch that has the steps
_MUTATE_WEIGHTS = {"sensor": 0.35, "request": 0.35, "ota": 0.2, "login": 0.1}


@dataclass(frozen=True)
class DemoFiles:
    train_log: Path        # normal operation only
    test_log: Path         # held-out part, with anomalies
    line_labels: Path      # CSV: line_no,label,kind (line_no 1-based)
    session_labels: Path   # CSV: session,label,kind
    events: Path           # CSV: kind,host,start,end,description


@dataclass
class _Host:
    name: str
    pids: dict[str, int]
    sensors: list[tuple[str, str, int, str, float, float]]
    req_gap_ms: float
    subnet: int
    fw: str
    broker: str
    cycle: int


# A line is [ts_ms, component, level, content, step, kind]; step is internal
# (lets anomalies mutate sessions by name), kind '' means normal.
@dataclass
class _Session:
    sid: str
    host: str
    wf: str
    lines: list[list]

    @property
    def start(self) -> int:
        return self.lines[0][0]

    @property
    def end(self) -> int:
        return self.lines[-1][0]

    def steps(self) -> list[str]:
        return [ln[4] for ln in self.lines]

    def is_normal(self) -> bool:
        return not any(ln[5] for ln in self.lines)

    def label(self, kind: str) -> None:
        for ln in self.lines:
            ln[5] = kind


class _Builder:
    """Accumulates one session's lines on a running clock."""

    def __init__(self, t: int) -> None:
        self.t0 = self.t = int(t)
        self.lines: list[list] = []

    def add(self, delay: float, comp: str, level: str, step: str, text: str) -> None:
        self.t += int(delay)
        self.lines.append([self.t, comp, level, text, step, ""])


def _hex(rng: np.random.Generator, n: int) -> str:
    return "".join(f"{int(b):02x}" for b in rng.integers(0, 256, n // 2))


def _wf_sensor(rng: np.random.Generator, h: _Host, t: int, sid: str, cycle: int = 0) -> list[list]:
    b = _Builder(t)
    b.add(0, "sensor-hub", "INFO", "start", f"poll cycle {cycle} start sid={sid} sensors={len(h.sensors)}")
    retry_at = int(rng.integers(len(h.sensors))) if rng.random() < 0.03 else -1
    for i, (kind, chip, addr, unit, base, sd) in enumerate(h.sensors):
        if i == retry_at:
            wait = int(rng.integers(10, 60))
            b.add(wait, "sensor-hub", "WARN", "retry",
                  f"read retry sensor={chip}@0x{addr:02x} attempt=2 after {wait}ms: i2c timeout sid={sid}")
        value = abs(base + rng.normal(0, sd))
        b.add(rng.integers(2, 25), "sensor-hub", "DEBUG", "read",
              f"read {kind} sensor={chip}@0x{addr:02x} value={value:.2f}{unit} sid={sid}")
    b.add(rng.integers(1, 6), "sensor-hub", "INFO", "publish",
          f"publish batch sid={sid} readings={len(h.sensors)} topic=fleet/{h.name}/telemetry seq={cycle}")
    lat = int(3 + rng.gamma(2.0, 8.0))
    b.add(lat, "mqtt-bridge", "INFO", "delivered",
          f"delivered batch seq={cycle} to broker {h.broker} in {lat} ms sid={sid}")
    b.add(rng.integers(1, 5), "sensor-hub", "INFO", "done", f"poll cycle {cycle} done in {b.t - b.t0 + 1} ms sid={sid}")
    return b.lines


def _api_path(rng: np.random.Generator, h: _Host) -> str:
    paths = (lambda: f"/api/v1/sensors/{h.sensors[int(rng.integers(len(h.sensors)))][0]}",
             lambda: f"/api/v1/devices/{h.name}/status",
             lambda: f"/api/v1/telemetry?since={rng.integers(60, 3600)}s",
             lambda: f"/api/v1/logs/{h.name}?lines={rng.choice([50, 100, 200])}",
             lambda: "/metrics")
    return paths[int(rng.integers(len(paths)))]()


def _wf_request(rng: np.random.Generator, h: _Host, t: int, sid: str, miss: bool | None = None) -> list[list]:
    b = _Builder(t)
    path = _api_path(rng, h)
    client = f"192.168.{h.subnet}.{rng.integers(2, 254)}:{rng.integers(32768, 61000)}"
    size = int(rng.integers(180, 24000))
    b.add(0, "api-gateway", "INFO", "received", f"request received sid={sid} method=GET path={path} client={client}")
    b.add(rng.integers(1, 6), "api-gateway", "INFO", "auth",
          f"auth ok sid={sid} user={rng.choice(_API_USERS)} token_age={rng.integers(5, 3600)}s")
    b.add(rng.integers(1, 3), "api-gateway", "DEBUG", "lookup", f"cache lookup sid={sid} key={path}")
    if miss is None:
        miss = bool(rng.random() < CACHE_MISS_P)
    if miss:
        b.add(1, "api-gateway", "DEBUG", "miss", f"cache miss sid={sid} key={path}")
        up = int(15 + rng.gamma(2.0, 40.0))
        b.add(up, "api-gateway", "INFO", "upstream",
              f"upstream fetch sid={sid} url=http://127.0.0.1:8081{path} status=200 bytes={size} in {up} ms")
        b.add(rng.integers(1, 4), "api-gateway", "DEBUG", "store",
              f"cache store sid={sid} key={path} ttl={rng.choice([30, 60, 120])}s bytes={size}")
    else:
        b.add(rng.integers(1, 3), "api-gateway", "DEBUG", "hit",
              f"cache hit sid={sid} key={path} age={rng.integers(0, 60)}s")
    b.add(rng.integers(1, 6), "api-gateway", "INFO", "response",
          f"response sent sid={sid} status=200 bytes={size} duration={b.t - b.t0 + 1}ms")
    return b.lines


def _wf_ota(rng: np.random.Generator, h: _Host, t: int, sid: str, update: bool | None = None) -> list[list]:
    b = _Builder(t)
    b.add(0, "ota-agent", "INFO", "check",
          f"update check sid={sid} current={h.fw} channel=stable server=ota.fleet.example.net")
    ms = int(40 + rng.gamma(2.0, 60.0))
    b.add(ms, "ota-agent", "INFO", "manifest",
          f"manifest fetched sid={sid} entries={rng.integers(3, 12)} etag={_hex(rng, 8)} in {ms} ms")
    if update is None:
        update = bool(rng.random() < 0.06)
    if not update:
        b.add(rng.integers(1, 5), "ota-agent", "INFO", "noupdate", f"no update available sid={sid} latest={h.fw}")
        b.add(rng.integers(1, 3), "ota-agent", "DEBUG", "next", f"next check in {OTA_MS // SEC} s sid={sid}")
        return b.lines
    major, minor, patch = (int(x) for x in h.fw.split("."))
    new = f"{major}.{minor}.{patch + int(rng.integers(1, 4))}"
    kb = int(rng.integers(30000, 60000))
    b.add(rng.integers(2, 10), "ota-agent", "INFO", "available",
          f"update available sid={sid} version={new} size={kb} KB")
    dl = int(kb / rng.uniform(2.0, 8.0))  # KB per ms
    b.add(dl, "ota-agent", "INFO", "download",
          f"download complete sid={sid} file=/var/lib/ota/fw-{new}.bin size={kb} KB in {dl / SEC:.1f} s")
    b.add(rng.integers(200, 900), "ota-agent", "INFO", "verify",
          f"signature verify ok sid={sid} key=fleet-2026 sha256={_hex(rng, 16)}")
    slot = "B" if rng.random() < 0.5 else "A"
    b.add(rng.integers(50, 200), "ota-agent", "INFO", "apply", f"apply update sid={sid} slot={slot} version={new}")
    ap = int(rng.integers(3000, 15000))
    b.add(ap, "ota-agent", "INFO", "applied", f"apply complete sid={sid} slot={slot} in {ap} ms")
    b.add(rng.integers(1, 10), "ota-agent", "INFO", "reboot",
          f"reboot scheduled sid={sid} at 03:{rng.integers(0, 60):02d} local version={new}")
    return b.lines


def _wf_login(rng: np.random.Generator, h: _Host, t: int, sid: str, ok: bool | None = None) -> list[list]:
    b = _Builder(t)
    ip = f"10.{rng.integers(0, 4)}.{rng.integers(0, 256)}.{rng.integers(2, 255)}"
    port = int(rng.integers(32768, 61000))
    b.add(0, "auth", "INFO", "connect", f"connection from {ip} port {port} sid={sid}")
    if ok is None:
        ok = bool(rng.random() >= 0.10)
    if ok:
        user = str(rng.choice(["admin", "ops", "fleet"]))
        b.add(rng.integers(50, 400), "auth", "INFO", "accepted",
              f"accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:{_hex(rng, 12)} sid={sid}")
        b.add(rng.integers(2, 20), "auth", "INFO", "opened", f"session opened for user {user} by (uid=0) sid={sid}")
        dur = int(rng.integers(20, 900))
        b.add(dur * SEC, "auth", "INFO", "closed", f"session closed for user {user} after {dur} s sid={sid}")
    else:
        user = str(rng.choice(["root", "admin", "pi", "ubuntu", "test"]))
        for attempt in range(1, int(rng.integers(2, 4)) + 1):
            b.add(rng.integers(1500, 3500), "auth", "WARN", "failed",
                  f"password failed for user {user} from {ip} port {port} attempt={attempt} sid={sid}")
        b.add(rng.integers(10, 100), "auth", "INFO", "disconnect",
              f"connection closed by {ip} port {port} [preauth] sid={sid}")
    return b.lines


def _wf_health(rng: np.random.Generator, h: _Host, t: int, sid: str) -> list[list]:
    b = _Builder(t)
    b.add(0, "health", "INFO", "start", f"health check start sid={sid} checks=4")
    b.add(rng.integers(1, 4), "health", "INFO", "cpu",
          f"cpu load1={rng.gamma(2.0, 0.2):.2f} usage={rng.integers(5, 60)}% sid={sid}")
    used = int(rng.integers(200, 420))
    b.add(rng.integers(1, 4), "health", "INFO", "mem", f"mem used={used}MB free={512 - used}MB sid={sid}")
    b.add(rng.integers(2, 8), "health", "INFO", "disk",
          f"disk /data used={rng.integers(40, 75)}% free={rng.uniform(1.5, 5.0):.1f}GB sid={sid}")
    b.add(rng.integers(1, 4), "health", "INFO", "temp", f"temp soc={rng.uniform(42.0, 61.0):.1f}C sid={sid}")
    b.add(rng.integers(1, 3), "health", "INFO", "done", f"health check done sid={sid} status=ok in {b.t - b.t0 + 1} ms")
    return b.lines


_WORKFLOWS: dict[str, Callable[..., list[list]]] = {
    "sensor": _wf_sensor, "request": _wf_request, "ota": _wf_ota, "login": _wf_login, "health": _wf_health}


def _misc_line(rng: np.random.Generator, t: int) -> list:
    """A line outside any session (clock sync, kernel chatter)."""
    if rng.random() < 0.7:
        text = (f"selected source 10.20.0.{rng.integers(1, 3)} offset {rng.normal(0, 3e-4):+.6f} s "
                f"freq {rng.normal(0, 2):+.3f} ppm")
        return [t, "chronyd", "INFO", text, "", ""]
    texts = (f"usb 1-1.{rng.integers(1, 5)}: reset high-speed USB device number {rng.integers(2, 9)} using dwc_otg",
             f"eth0: Link is Up - {rng.choice([100, 1000])}Mbps/Full - flow control rx/tx",
             f"mmc0: card {rng.integers(1, 9):04x} read-only check passed, {rng.integers(2, 64)} blocks cached")
    return [t, "kernel", "INFO", texts[int(rng.integers(len(texts)))], "", ""]


# Messages that never occur in normal operation; each is logged by the
# session's own component right inside an otherwise normal session.
_UNSEEN: tuple[Callable[[np.random.Generator, str], tuple[str, str]], ...] = (
    lambda r, c: ("ERROR", f"EXT4-fs error (device mmcblk0p2): ext4_find_entry:{r.integers(1000, 2000)}: "
                           f"inode #{r.integers(2, 90000)}: comm {c}: reading directory lblock 0"),
    lambda r, c: ("ERROR", f"watchdog: BUG: soft lockup - CPU#{r.integers(0, 4)} stuck for {r.integers(21, 60)}s!"
                           f" [{c}]"),
    lambda r, c: ("ERROR", f"segfault at 0 ip 00007f{_hex(r, 8)} sp 00007ffd{_hex(r, 8)} error 4"
                           f" in libsensor.so.{r.integers(1, 3)}"),
    lambda r, c: ("ERROR", f"certificate verify failed: unable to get local issuer certificate"
                           f" depth={r.integers(0, 3)}"),
    lambda r, c: ("ERROR", f"Out of memory: Killed process {r.integers(300, 4000)} ({c})"
                           f" total-vm:{r.integers(50000, 90000)}kB"),
    lambda r, c: ("WARN", f"under-voltage detected! throttling cpu to {r.choice([600, 800])} MHz"),
)


def _make_hosts(rng: np.random.Generator, n: int) -> list[_Host]:
    hosts = []
    for i in range(1, n + 1):
        # A fixed subset per device, in a fixed order: devices differ, cycles don't.
        kinds = sorted(rng.choice(list(_SENSORS), size=int(rng.integers(2, 5)), replace=False),
                       key=list(_SENSORS).index)
        sensors = []
        for k in kinds:
            chip, addr, unit, lo, hi, sd = _SENSORS[str(k)]
            sensors.append((str(k), chip, addr, unit, float(rng.uniform(lo, hi)), sd))
        pids = {c: int(rng.integers(300, 4000)) for c in _COMPONENTS}
        pids["kernel"] = 0
        hosts.append(_Host(name=f"edge-{i:02d}", pids=pids, sensors=sensors,
                           req_gap_ms=float(rng.uniform(20, 30)) * SEC, subnet=int(rng.integers(1, 250)),
                           fw=f"2.{rng.integers(3, 6)}.{rng.integers(0, 9)}",
                           broker=f"10.20.0.{rng.integers(5, 9)}:8883", cycle=int(rng.integers(1000, 90000))))
    return hosts


def _ticks(end: int, t: float, gap: Callable[[], float]) -> Iterator[int]:
    while t < end:
        yield int(t)
        t += gap()


def _schedule(rng: np.random.Generator, hosts: list[_Host], end: int,
              new_sid: Callable[[], str]) -> tuple[list[_Session], list[list]]:
    """Normal operation of every host over [0, end) ms."""
    sessions: list[_Session] = []
    misc: list[tuple[str, list]] = []
    for h in hosts:
        for t in _ticks(end, rng.uniform(0, POLL_MS), lambda: POLL_MS + rng.normal(0, 200)):
            h.cycle += 1
            sid = new_sid()
            sessions.append(_Session(sid, h.name, "sensor", _wf_sensor(rng, h, t, sid, cycle=h.cycle)))
        plans = (("request", rng.exponential(h.req_gap_ms), lambda: rng.exponential(h.req_gap_ms)),
                 ("health", rng.uniform(0, HEALTH_MS), lambda: HEALTH_MS + rng.normal(0, 50)),
                 ("ota", rng.uniform(0, OTA_MS), lambda: OTA_MS + rng.normal(0, 2000)),
                 ("login", rng.exponential(LOGIN_MEAN_MS), lambda: rng.exponential(LOGIN_MEAN_MS)))
        for wf, first, gap in plans:
            for t in _ticks(end, first, gap):
                sid = new_sid()
                sessions.append(_Session(sid, h.name, wf, _WORKFLOWS[wf](rng, h, t, sid)))
        for t in _ticks(end, rng.exponential(MISC_MEAN_MS), lambda: rng.exponential(MISC_MEAN_MS)):
            misc.append((h.name, _misc_line(rng, t)))
    return sessions, misc


def _inject_windows(rng: np.random.Generator, hosts: dict[str, _Host], test: list[_Session], lo: int, hi: int,
                    new_sid: Callable[[], str]) -> tuple[list[_Session], list[tuple]]:
    """Rate and correlation anomalies, each over a time window on one host."""
    events: list[tuple] = []
    slot = (hi - lo) / 4
    slots = rng.permutation(4)

    def window(i: int, nominal: int) -> tuple[int, int]:
        length = min(nominal, 0.8 * slot)  # each window in its own slot: spread out
        s0 = lo + int(slots[i]) * slot + rng.uniform(0, slot - length)
        return int(s0), int(s0 + length)

    # The busiest API host shows the cache shift best; the others are drawn at random.
    cache_h = min(hosts.values(), key=lambda h: h.req_gap_ms).name
    rest = [n for n in (list(hosts)[int(i)] for i in rng.permutation(len(hosts))) if n != cache_h]
    drop_h, mqtt_h, burst_h = (rest[i % len(rest)] for i in range(3))

    def in_window(s: _Session, host: str, wf: str) -> bool:
        return s.host == host and s.wf == wf and ws <= s.start < we

    ws, we = window(0, 5 * MIN)  # rate drop: the host's poll loop stalls
    test = [s for s in test if not in_window(s, drop_h, "sensor")]
    events.append(("rate", drop_h, ws, we, f"sensor poll cycles stopped for {(we - ws) // SEC} s"))

    ws, we = window(1, 5 * MIN)  # polls go on but the broker link silently drops batches
    hit = [s for s in test if in_window(s, mqtt_h, "sensor")]
    for s in hit:
        s.lines = [ln for ln in s.lines if ln[4] != "delivered"]
        s.label("correlation;missing")
    events.append(("correlation", mqtt_h, ws, we,
                   f"mqtt-bridge stopped delivering batches while polls continued ({len(hit)} cycles)"))

    ws, we = window(2, 5 * MIN)  # cache misses jump from ~15% to ~90%
    flip_p = (0.9 - CACHE_MISS_P) / (1 - CACHE_MISS_P)
    # Only the flipped sessions are the excess; natural misses stay unlabelled.
    hit = [s for s in test if in_window(s, cache_h, "request") and "hit" in s.steps() and rng.random() < flip_p]
    for s in hit:
        s.lines = _wf_request(rng, hosts[cache_h], s.start, s.sid, miss=True)
        s.label("correlation")
    events.append(("correlation", cache_h, ws, we, f"cache-miss ratio ~90% instead of ~15% ({len(hit)} extra misses)"))

    ws, we = window(3, 1 * MIN)  # brute-force burst: many normal-shaped failed logins
    burst = []
    for t in np.sort(rng.uniform(ws, we, int(rng.integers(15, 21)))):
        sid = new_sid()
        burst.append(_Session(sid, burst_h, "login", _wf_login(rng, hosts[burst_h], int(t), sid, ok=False)))
        burst[-1].label("rate")
    events.append(("rate", burst_h, burst[0].start, max(s.end for s in burst), f"burst of {len(burst)} failed logins"))
    return test + burst, events


def _inject_sessions(rng: np.random.Generator, hosts: dict[str, _Host], test: list[_Session], lo: int, hi: int,
                     end: int, per_kind: int, events: list[tuple]) -> None:
    """unseen/order/missing: each replaces one normal session, so rates stay unchanged."""
    busy = [(h, s0, s1) for _, h, s0, s1, _ in events]  # keep window anomalies clear-cut

    def eligible(s: _Session) -> bool:
        return s.is_normal() and lo <= s.start < hi and not any(
            s.host == h and s.start <= s1 and s.end >= s0 for h, s0, s1 in busy)

    pool = [int(i) for i in rng.permutation(len(test)) if eligible(test[int(i)])]
    by_wf = {wf: [i for i in pool if test[i].wf == wf] for wf in _MUTATE_WEIGHTS}
    used: set[int] = set()

    def take(cands: list[int]) -> int | None:
        while cands:
            i = cands.pop()
            if i not in used:
                used.add(i)
                return i
        return None

    for _ in range(per_kind):
        i = take(pool)
        if i is None:
            break
        s = test[i]
        p = int(rng.integers(1, len(s.lines)))  # between two existing steps
        level, text = _UNSEEN[int(rng.integers(len(_UNSEEN)))](rng, s.lines[p - 1][1])
        t = int(rng.integers(s.lines[p - 1][0], s.lines[p][0] + 1))
        s.lines.insert(p, [t, s.lines[p - 1][1], level, f"{text} sid={s.sid}", "unseen", "unseen"])
        events.append(("unseen", s.host, s.start, s.end,
                       f"unseen message in {s.wf} session {s.sid}: {text.split(':')[0]}"))

    names, weights = list(_MUTATE_WEIGHTS), np.array(list(_MUTATE_WEIGHTS.values()))
    for kind in ("order", "missing"):
        done = 0
        while done < per_kind and any(by_wf.values()):
            w = weights * np.array([bool(by_wf[wf]) for wf in names])
            wf = names[int(rng.choice(len(names), p=w / w.sum()))]
            i = take(by_wf[wf])
            if i is None:
                continue
            s = test[i]
            need = _SWAP[wf] if kind == "order" else (_DROP[wf],)
            lines = s.lines
            if not all(st in s.steps() for st in need):
                lines = _WORKFLOWS[wf](rng, hosts[s.host], s.start, s.sid, **_FORCE[wf])
                if lines[-1][0] >= end:
                    continue  # forced branch would run past the end of the log
            steps = [ln[4] for ln in lines]
            if kind == "order":
                x, y = steps.index(need[0]), steps.index(need[1])
                for k in (1, 2, 3, 4):  # swap what is logged, keep the timestamps
                    lines[x][k], lines[y][k] = lines[y][k], lines[x][k]
                desc = f"steps '{need[0]}' and '{need[1]}' swapped in {wf} session {s.sid}"
            else:
                lines.pop(steps.index(need[0]))
                desc = f"step '{need[0]}' missing in {wf} session {s.sid}"
            s.lines = lines
            s.label(kind)
            events.append((kind, s.host, s.start, s.end, desc))
            done += 1


def _fmt_ts(ms: int) -> str:
    s, m = divmod(int(ms), SEC)
    return f"{(T0 + timedelta(seconds=s)).strftime('%Y-%m-%dT%H:%M:%S')}.{m:03d}Z"


def _render(hosts: list[_Host], sessions: list[_Session], misc: list[tuple[str, list]]) -> tuple[str, list[tuple]]:
    """Log text plus per-line (sid, kind) in log order."""
    pids = {h.name: h.pids for h in hosts}
    recs = [(ln, s.host, s.sid) for s in sessions for ln in s.lines] + [(ln, host, "") for host, ln in misc]
    recs.sort(key=lambda r: r[0][0])  # stable: ties keep session order
    out = [f"{_fmt_ts(ln[0])} {host} {ln[1]}[{pids[host][ln[1]]}]: {ln[2]} {ln[3]}\n" for ln, host, _ in recs]
    return "".join(out), [(sid, ln[5]) for ln, _, sid in recs]


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
            if sid not in seen:
                seen.add(sid)
                return sid

    fleet = _make_hosts(rng, hosts)
    split, end = train_minutes * MIN, (train_minutes + test_minutes) * MIN
    sessions, misc = _schedule(rng, fleet, end, new_sid)
    # Sessions straddling the split or the end are dropped: each part is self-contained.
    train = [s for s in sessions if s.end < split]
    test = [s for s in sessions if s.start >= split and s.end < end]
    train_misc = [m for m in misc if m[1][0] < split]
    test_misc = [m for m in misc if m[1][0] >= split]
    by_name = {h.name: h for h in fleet}
    lo, hi = split + 10 * MIN, end - 2 * MIN  # quiet first 10 min; room for sessions to finish
    test, events = _inject_windows(rng, by_name, test, lo, hi, new_sid)
    _inject_sessions(rng, by_name, test, lo, hi, end, max(1, round(50 * test_minutes / 90)), events)

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
