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
# 60k train / 25k test lines; the mix of workflows is what matters.
POLL_MS = 60 * SEC
HEALTH_MS = 240 * SEC
LOGIN_MEAN_MS = 6 * MIN
MISC_MEAN_MS = 90 * SEC
CACHE_MISS_P = 0.2
LOGIN_FAIL_P = 0.3
HOUSEKEEPING_P = 0.25  # chance of a housekeeping line after a step (not after the last, nor before a branch),
HOUSEKEEPING_GAP = 3  # at least this many steps after the previous one,
MAX_SESSION_LINES = 30  # and not beyond this length
# order/missing anomalies leave at least this many lines of their session before the
# first affected one (DeepLog's window h=10 judges only keys that have h keys before them).
MIN_PREFIX = 10
SESSION_ANOMALIES_PER_90_MIN = 60  # of each kind: unseen, order, missing

_SENSORS = {  # kind: (chip, i2c addr, unit, baseline low, baseline high, noise sd, valid range)
    "temperature": ("tmp117", 0x48, "C", 18.0, 42.0, 0.3, "[-40,125]"),
    "humidity": ("sht31", 0x44, "%RH", 25.0, 70.0, 1.0, "[0,100]"),
    "pressure": ("bmp388", 0x77, "hPa", 990.0, 1030.0, 0.4, "[300,1250]"),
    "vibration": ("adxl345", 0x53, "g", 0.02, 0.30, 0.01, "[0,16]"),
    "voltage": ("ina219", 0x40, "V", 11.8, 12.6, 0.02, "[0,26]"),
    "current": ("ina226", 0x41, "mA", 120.0, 900.0, 5.0, "[0,3200]"),
    "light": ("veml7700", 0x10, "lux", 50.0, 900.0, 4.0, "[0,120000]"),
    "gas": ("scd41", 0x62, "ppm", 400.0, 900.0, 6.0, "[400,5000]"),
    "tvoc": ("sgp40", 0x59, "index", 80.0, 160.0, 3.0, "[0,500]"),
    "distance": ("vl53l1x", 0x29, "mm", 300.0, 2500.0, 2.0, "[40,4000]"),
}
_COMPONENTS = ("sensor-hub", "mqtt-bridge", "api-gateway", "auth", "health", "chronyd")
_API_USERS = ("svc-dashboard", "svc-grafana", "fleet-mgr", "ops-admin")
_USER_AGENTS = ("grafana/10.2.3", "python-requests/2.31.0", "Go-http-client/1.1", "curl/8.5.0")
_SSH_CLIENTS = ("OpenSSH_9.2p1", "OpenSSH_8.9p1", "PuTTY_Release_0.79")
_SSH_USERS = {"ops": 1001, "admin": 1002, "fleet": 1003}
_SSH_INVALID = ("pi", "ubuntu", "test", "oracle", "git", "support")
_COMMANDS = ("/usr/bin/journalctl", "/usr/bin/systemctl", "/usr/bin/top", "/bin/ls", "/usr/bin/vcgencmd",
             "/usr/sbin/i2cdetect", "/usr/bin/df")

# Housekeeping a daemon logs now and then between the steps of whatever it is doing.
_HOUSEKEEPING: tuple[Callable[[np.random.Generator], str], ...] = (
    lambda r: f"heap stats used={r.uniform(5, 40):.1f} MB objects={r.integers(10000, 90000)}",
    lambda r: f"gc cycle freed={r.uniform(0.1, 4):.1f} MB pause={r.integers(1, 9)} ms",
    lambda r: f"fd usage open={r.integers(20, 200)} limit=1024",
    lambda r: f"queue depth={r.integers(0, 12)} capacity=64",
    lambda r: f"config watch unchanged generation={r.integers(10, 40)}",
    lambda r: f"stats flush counters={r.integers(20, 60)} gauges={r.integers(5, 20)}",
    lambda r: f"event loop lag={r.integers(1, 12)} ms",
)
HOUSEKEEPING_STEP = "housekeeping"

# Which workflows order/missing anomalies hit, and how often.
_MUTATE_WEIGHTS = {"sensor": 0.35, "request": 0.55, "login": 0.1}


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
    sensors: list[tuple[str, str, int, str, float, float, str]]
    req_gap_ms: float
    subnet: int
    broker: str
    cycle: int


@dataclass(slots=True)
class _Line:
    t: int                     # ms since T0
    comp: str
    level: str
    text: str                  # content, sid included
    step: str = ""             # internal name of the message shape ('' outside sessions)
    unit: int = -1             # the workflow step (one or more lines) it belongs to; -1: housekeeping
    unit_name: str = ""
    after_branch: bool = False  # first line of a step after a quiet line: no housekeeping crowds it
    quiet: bool = False        # no housekeeping line may follow (before a branch, or a busy daemon)
    kind: str = ""             # anomaly kinds, ';'-joined; '' means normal
    loop: bool = False         # one of several steps of the same message shape (a sensor read, a health check)


@dataclass
class _Session:
    sid: str
    host: str
    wf: str
    lines: list[_Line]

    @property
    def start(self) -> int:
        return self.lines[0].t

    @property
    def end(self) -> int:
        return self.lines[-1].t

    def steps(self) -> list[str]:
        return [ln.step for ln in self.lines]

    def is_normal(self) -> bool:
        return not any(ln.kind for ln in self.lines)

    def label(self, kind: str) -> None:
        for ln in self.lines:
            ln.kind = kind

    def units(self) -> list[list[int]]:
        """Line indices of each workflow step, in order (housekeeping lines are no step)."""
        out: dict[int, list[int]] = {}
        for i, ln in enumerate(self.lines):
            if ln.unit >= 0:
                out.setdefault(ln.unit, []).append(i)
        return list(out.values())


class _Builder:
    """Accumulates one session's lines on a running clock."""

    def __init__(self, rng: np.random.Generator, t: int, comp: str, sid: str) -> None:
        self.rng = rng
        self.t0 = self.t = int(t)
        self.comp = comp
        self.sid = sid
        self.lines: list[_Line] = []
        self.quiet: list[bool] = []
        self.busy = False  # from here on every line is quiet

    def add(self, delay: float, step: str, text: str, level: str = "INFO", comp: str | None = None,
            quiet: bool = False, unit: str = "", join: bool = False, loop: bool = False) -> None:
        """A line; join makes it part of the previous line's step. A quiet line has no housekeeping
        line after it: it comes right before a branch, or the daemon is busy. A loop line repeats
        the message shape of its neighbours (one template for all of them)."""
        quiet = quiet or self.busy
        self.t += int(delay)
        ln = _Line(self.t, comp or self.comp, level, f"{text} sid={self.sid}", step, quiet=quiet, loop=loop)
        if join:
            ln.unit, ln.unit_name = self.lines[-1].unit, self.lines[-1].unit_name
        else:
            ln.unit = self.lines[-1].unit + 1 if self.lines else 0
            ln.unit_name = unit or step
            ln.after_branch = bool(self.quiet and self.quiet[-1])
        self.lines.append(ln)
        self.quiet.append(quiet)

    @property
    def elapsed(self) -> int:
        return self.t - self.t0 + 1

    def finish(self) -> list[_Line]:
        """The lines, with now and then a housekeeping line between two steps."""
        out: list[_Line] = []
        rng = self.rng
        room, since = MAX_SESSION_LINES - len(self.lines), HOUSEKEEPING_GAP
        for i, ln in enumerate(self.lines):
            out.append(ln)
            since += 1
            nxt = self.lines[i + 1] if i + 1 < len(self.lines) else None
            if (nxt is not None and not self.quiet[i] and room > 0 and since >= HOUSEKEEPING_GAP
                    and rng.random() < HOUSEKEEPING_P):
                room, since = room - 1, 0
                k = int(rng.integers(len(_HOUSEKEEPING)))
                out.append(_Line(int(rng.integers(ln.t, nxt.t + 1)), ln.comp, "DEBUG",
                                 f"{_HOUSEKEEPING[k](rng)} sid={self.sid}", HOUSEKEEPING_STEP))
        return out


def _hex(rng: np.random.Generator, n: int) -> str:
    return "".join(f"{int(b):02x}" for b in rng.integers(0, 256, n // 2))


def _uuid(rng: np.random.Generator) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _wf_sensor(rng: np.random.Generator, h: _Host, t: int, sid: str, cycle: int = 0) -> list[_Line]:
    """Poll every sensor of the device in its fixed order, aggregate, publish; the bridge delivers."""
    b = _Builder(rng, t, "sensor-hub", sid)
    n = len(h.sensors)
    b.add(0, "poll_start", f"poll cycle {cycle} start sensors={n} interval={POLL_MS // SEC} s")
    quality = 1.0
    for i, (kind, chip, addr, unit, base, sd, span) in enumerate(h.sensors, 1):
        value = abs(base + rng.normal(0, sd))
        b.add(rng.integers(2, 25), f"read:{kind}",
              f"read {i}/{n} {kind} chip={chip}@0x{addr:02x} raw=0x{int(rng.integers(0x100, 0x10000)):04x} "
              f"value={value:.2f} {unit}", "DEBUG", unit=f"poll:{kind}", loop=True)
        q = float(rng.uniform(0.9, 1.0))
        quality = min(quality, q)
        b.add(rng.integers(1, 3), f"validate:{kind}",
              f"validate {i}/{n} {kind} value={value:.2f} {unit} range={span} quality={q:.2f} ok", "DEBUG",
              join=True, loop=True)
    b.add(rng.integers(1, 4), "aggregate", f"aggregate readings={n} window={POLL_MS // SEC} s quality={quality:.2f}")
    b.add(rng.integers(1, 6), "publish",
          f"publish batch seq={cycle} readings={n} payload={int(40 * n + rng.integers(20, 90))} B "
          f"topic=fleet/{h.name}/telemetry qos=1")
    b.add(rng.integers(1, 4), "forward", f"forward batch seq={cycle} broker={h.broker} qos=1 inflight=1",
          "DEBUG", comp="mqtt-bridge", unit="bridge")
    lat = int(3 + rng.gamma(2.0, 8.0))
    b.add(lat, "delivered", f"delivered batch seq={cycle} to broker {h.broker} in {lat} ms", comp="mqtt-bridge",
          join=True)
    b.add(rng.integers(1, 5), "poll_done", f"poll cycle {cycle} done readings={n} in {b.elapsed} ms")
    return b.finish()


_ROUTES = (  # handler, resource, path maker
    ("sensors.get", "sensors", lambda r, h: f"/api/v1/sensors/{h.sensors[int(r.integers(len(h.sensors)))][0]}"),
    ("status.get", "devices", lambda r, h: f"/api/v1/devices/{h.name}/status"),
    ("telemetry.latest", "telemetry", lambda r, h: "/api/v1/telemetry/latest"),
    ("logs.tail", "logs", lambda r, h: f"/api/v1/logs/{h.name}/tail"),
    ("metrics.get", "metrics", lambda r, h: "/metrics"),
)


def _wf_request(rng: np.random.Generator, h: _Host, t: int, sid: str, miss: bool | None = None) -> list[_Line]:
    """One API request through the gateway's middleware chain; a cache miss goes upstream."""
    b = _Builder(rng, t, "api-gateway", sid)
    handler, resource, make_path = _ROUTES[int(rng.integers(len(_ROUTES)))]
    path = make_path(rng, h)
    ip = f"192.168.{h.subnet}.{rng.integers(2, 254)}"
    client = f"{ip}:{rng.integers(32768, 61000)}"
    user = str(rng.choice(_API_USERS))
    size = int(rng.integers(180, 24000))
    b.add(0, "tls", f"tls handshake ok client={client} version=TLSv1.3 cipher=TLS_AES_128_GCM_SHA256 "
                    f"in {rng.integers(2, 9)} ms")
    b.add(rng.integers(1, 4), "received", f"request received method=GET path={path}", unit="accept")
    b.add(0, "trace", f"trace id assigned trace={_uuid(rng)} span={_hex(rng, 16)}", "DEBUG", join=True)
    b.add(1, "headers", f"headers parsed count={rng.integers(6, 15)} user_agent={rng.choice(_USER_AGENTS)} "
                        f"accept=application/json")
    b.add(rng.integers(1, 4), "auth", f"auth token ok user={user} scope=read token_age={rng.integers(5, 3600)} s",
          unit="authorize")
    b.add(1, "acl", f"acl allow user={user} resource={resource} action=read", join=True)
    b.add(1, "ratelimit", f"ratelimit ok bucket={user} tokens={rng.integers(1, 60)}/60")
    b.add(1, "route", f"route matched handler={handler}", unit="dispatch")
    b.add(1, "handler", f"handler start handler={handler} worker={rng.integers(1, 5)}", join=True)
    b.add(rng.integers(1, 3), "lookup", f"cache lookup key={path}", "DEBUG", quiet=True)
    if miss is None:
        miss = bool(rng.random() < CACHE_MISS_P)
    if miss:
        b.add(1, "miss", f"cache miss key={path} reason=expired stale_for={rng.integers(1, 600)} s", "DEBUG")
        ms = int(rng.integers(1, 6))
        b.add(ms, "up_connect", f"upstream connect backend=127.0.0.1:8081 pool=local in {ms} ms", unit="upstream")
        up = int(15 + rng.gamma(2.0, 40.0))
        b.add(up, "up_fetch", f"upstream fetch url=http://127.0.0.1:8081{path} status=200 size={size} B in {up} ms",
              join=True)
        b.add(rng.integers(1, 4), "store",
              f"cache store key={path} ttl={rng.choice([30, 60, 120])} s size={size} B entries={rng.integers(40, 400)}",
              "DEBUG")
    else:
        b.add(rng.integers(1, 3), "hit", f"cache hit key={path} age={rng.integers(0, 60)} s", "DEBUG")
    ms = int(rng.integers(1, 8))
    b.add(ms, "render", f"render response format=json items={rng.integers(1, 60)} in {ms} ms", unit="encode")
    out = int(size * rng.uniform(0.15, 0.4))
    b.add(rng.integers(1, 4), "compress", f"compress gzip in={size} B out={out} B level=6", join=True)
    b.add(rng.integers(1, 4), "response", f"response sent status=200 size={out} B duration={b.elapsed} ms",
          unit="respond")
    b.add(0, "access", f'access {ip} {user} "GET {path} HTTP/1.1" 200 {out} {b.elapsed} ms', join=True)
    b.add(1, "metrics", f"metrics recorded handler={handler} latency={b.elapsed} ms cache={'miss' if miss else 'hit'}",
          "DEBUG")
    b.add(rng.integers(1, 30), "close", f"conn closed client={client} requests=1 keepalive=no")
    return b.finish()


def _wf_login(rng: np.random.Generator, h: _Host, t: int, sid: str, ok: bool | None = None) -> list[_Line]:
    """An SSH login: key accepted, a few commands, logout; or a password-guessing client refused."""
    b = _Builder(rng, t, "auth", sid)
    ip = f"10.{rng.integers(0, 4)}.{rng.integers(0, 256)}.{rng.integers(2, 255)}"
    port = int(rng.integers(32768, 61000))
    if ok is None:
        ok = bool(rng.random() >= LOGIN_FAIL_P)
    b.add(0, "connect", f"connection from {ip} port {port} on 0.0.0.0 port 22")
    b.add(rng.integers(5, 40), "version", f"remote software version {rng.choice(_SSH_CLIENTS)}", "DEBUG")
    b.add(rng.integers(5, 40), "kex", "kex algorithm curve25519-sha256 negotiated cipher=chacha20-poly1305", "DEBUG")
    b.add(rng.integers(5, 40), "hostkey", f"server host key ssh-ed25519 SHA256:{_hex(rng, 32)}", "DEBUG",
          quiet=True)
    if ok:
        user = str(rng.choice(list(_SSH_USERS)))
        n = int(rng.integers(100, 999))
        b.add(rng.integers(5, 40), "userauth", f"userauth request user={user} method=publickey", "DEBUG")
        b.add(rng.integers(50, 400), "accepted",
              f"accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:{_hex(rng, 32)}")
        b.add(rng.integers(2, 20), "opened", f"pam_unix(sshd:session): session opened for user "
                                             f"{user}(uid={_SSH_USERS[user]}) by (uid=0)", unit="session")
        b.add(rng.integers(2, 20), "logind", f"new session {n} of user {user}", join=True)
        b.add(rng.integers(2, 20), "pty", f"pty allocated /dev/pts/{rng.integers(0, 4)} for {user}")
        for _ in range(int(rng.integers(1, 7))):  # quiet: another command or the logout comes next
            b.add(rng.integers(3, 120) * SEC, "exec",
                  f"exec command={rng.choice(_COMMANDS)} user={user} pid={rng.integers(1000, 30000)}", quiet=True)
        b.add(rng.integers(5, 300) * SEC, "disconnect", f"received disconnect from {ip} port {port}:11: "
                                                        f"disconnected by user", unit="hangup")
        b.add(rng.integers(1, 10), "disconnected", f"disconnected from user {user} {ip} port {port}", join=True)
        b.add(rng.integers(1, 10), "closed", f"pam_unix(sshd:session): session closed for user {user}",
              unit="teardown")
        b.add(rng.integers(1, 10), "logout", f"session {n} logged out, waiting for processes to exit", join=True)
        b.add(rng.integers(1, 10), "removed", f"removed session {n}")
        return b.finish()
    user = str(rng.choice(_SSH_INVALID))
    attempts = int(rng.integers(3, 7))
    b.add(rng.integers(5, 40), "invalid", f"invalid user {user} from {ip} port {port}", "WARN")
    for _ in range(attempts):  # quiet after each failure: another attempt or the lockout comes next
        b.add(rng.integers(1000, 2500), "pam_fail", f"pam_unix(sshd:auth): authentication failure; logname= uid=0 "
                                                    f"euid=0 tty=ssh ruser= rhost={ip} user={user}", "WARN",
              unit="attempt")
        b.add(rng.integers(2, 20), "pw_failed", f"failed password for invalid user {user} from {ip} port {port} ssh2",
              "WARN", quiet=True, join=True)
    b.add(rng.integers(2, 20), "max_tries", f"error: maximum authentication attempts exceeded for invalid user "
                                            f"{user} from {ip} port {port} ssh2 [preauth]", "WARN", unit="lockout")
    b.add(1, "refused", f"disconnecting invalid user {user} {ip} port {port}: too many authentication failures "
                        f"[preauth]", join=True)
    b.add(1, "pam_more", f"PAM {attempts - 1} more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= "
                         f"rhost={ip}")
    b.add(rng.integers(1, 10), "conn_closed", f"connection closed by invalid user {user} {ip} port {port} [preauth]")
    return b.finish()


def _wf_health(rng: np.random.Generator, h: _Host, t: int, sid: str) -> list[_Line]:
    """Sixteen checks, always in the same order, each logged in the same shape
    (`check i/16 <name> <reading> status=ok`)."""
    b = _Builder(rng, t, "health", sid)
    used = int(rng.integers(200, 420))
    checks = (
        ("cpu", f"load1={rng.gamma(2.0, 0.2):.2f}"),
        ("memory", f"used={used}MB"),
        ("swap", f"used={rng.integers(0, 40)}MB"),
        ("rootfs", f"used={rng.integers(30, 70)}%"),
        ("datafs", f"used={rng.integers(40, 75)}%"),
        ("inodes", f"used={rng.integers(1, 20)}%"),
        ("soc", f"temperature={rng.uniform(42.0, 61.0):.1f}C"),
        ("power", f"vcore={rng.uniform(0.82, 0.88):.2f}V"),
        ("clock", f"offset={abs(rng.normal(0, 3e-4)):.6f}s"),
        ("network", f"rx_drop={rng.integers(0, 5)}"),
        ("modem", f"rssi=-{rng.integers(60, 95)}dBm"),
        ("mqtt", f"rtt={rng.integers(4, 60)}ms"),
        ("watchdog", f"last_kick={rng.integers(1, 15)}s"),
        ("services", f"failed=0/{len(_COMPONENTS) + 3}"),
        ("journal", f"size={rng.integers(8, 60)}MB"),
        ("uptime", f"days={int(t // SEC) // 86400 + 3}"),
    )
    b.add(0, "hc_start", f"health check start checks={len(checks)}")
    for i, (name, reading) in enumerate(checks, 1):
        b.add(rng.integers(1, 6), name, f"check {i}/{len(checks)} {name} {reading} status=ok", loop=True)
    b.add(rng.integers(1, 3), "hc_done", f"health check done status=ok checks={len(checks)} in {b.elapsed} ms")
    return b.finish()


_WORKFLOWS: dict[str, Callable[..., list[_Line]]] = {
    "sensor": _wf_sensor, "request": _wf_request, "login": _wf_login, "health": _wf_health}


def _misc_line(rng: np.random.Generator, t: int) -> _Line:
    """A line outside any session (clock sync, kernel chatter)."""
    if rng.random() < 0.7:
        text = (f"selected source 10.20.0.{rng.integers(1, 3)} offset {rng.normal(0, 3e-4):+.6f} s "
                f"freq {rng.normal(0, 2):+.3f} ppm")
        return _Line(t, "chronyd", "INFO", text)
    text = f"mmc0: card {rng.integers(1, 9):04x} read-only check passed, {rng.integers(2, 64)} blocks cached"
    return _Line(t, "kernel", "INFO", text)


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
    # One device serves the fleet dashboard and sees several times the API traffic of the others.
    busy = int(rng.integers(n))
    for i in range(n):
        # A fixed subset per device, in a fixed (configured) order: devices differ, cycles don't.
        kinds = rng.choice(list(_SENSORS), size=int(rng.integers(6, 8)), replace=False)
        sensors = []
        for k in kinds:
            chip, addr, unit, lo, hi, sd, span = _SENSORS[str(k)]
            sensors.append((str(k), chip, addr, unit, float(rng.uniform(lo, hi)), sd, span))
        pids = {c: int(rng.integers(300, 4000)) for c in _COMPONENTS}
        pids["kernel"] = 0
        gap = rng.uniform(30, 40) if i == busy else rng.uniform(150, 250)
        hosts.append(_Host(name=f"edge-{i + 1:02d}", pids=pids, sensors=sensors, req_gap_ms=float(gap) * SEC,
                           subnet=int(rng.integers(1, 250)), broker=f"10.20.0.{rng.integers(5, 9)}:8883",
                           cycle=int(rng.integers(1000, 90000))))
    return hosts


def _ticks(end: int, t: float, gap: Callable[[], float]) -> Iterator[int]:
    while t < end:
        yield int(t)
        t += gap()


def _schedule(rng: np.random.Generator, hosts: list[_Host], end: int,
              new_sid: Callable[[], str]) -> tuple[list[_Session], list[tuple[str, _Line]]]:
    """Normal operation of every host over [0, end) ms."""
    sessions: list[_Session] = []
    misc: list[tuple[str, _Line]] = []
    for h in hosts:
        for t in _ticks(end, rng.uniform(0, POLL_MS), lambda: POLL_MS + rng.normal(0, 200)):
            h.cycle += 1
            sid = new_sid()
            sessions.append(_Session(sid, h.name, "sensor", _wf_sensor(rng, h, t, sid, cycle=h.cycle)))
        # Requests come from dashboards and scripts polling now and then: irregular, but not bursty.
        plans = (("request", rng.uniform(0, h.req_gap_ms), lambda: rng.gamma(4.0, h.req_gap_ms / 4)),
                 ("health", rng.uniform(0, HEALTH_MS), lambda: HEALTH_MS + rng.normal(0, 50)),
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

    ws, we = window(1, 7 * MIN + 30 * SEC)  # polls go on but the broker link is down: the bridge logs nothing
    hit = [s for s in test if in_window(s, mqtt_h, "sensor")]
    for s in hit:
        s.lines = [ln for ln in s.lines if ln.comp != "mqtt-bridge"]  # its housekeeping lines too
        s.label("correlation;missing")
    events.append(("correlation", mqtt_h, ws, we,
                   f"mqtt-bridge stopped delivering batches while polls continued ({len(hit)} cycles)"))

    ws, we = window(2, 6 * MIN)  # cache misses jump from ~20% to ~90%
    reqs = [s for s in test if in_window(s, cache_h, "request")]
    hits = [s for s in reqs if "hit" in s.steps()]
    # Hits turn into misses until ~90% of the window's requests miss. Only the flipped sessions are the
    # excess; natural misses stay unlabelled.
    flips = max(0, min(len(hits), round(0.9 * len(reqs)) - (len(reqs) - len(hits))))
    hit = [hits[int(i)] for i in np.sort(rng.choice(len(hits), flips, replace=False))]
    for s in hit:
        s.lines = _wf_request(rng, hosts[cache_h], s.start, s.sid, miss=True)
        s.label("correlation")
    events.append(("correlation", cache_h, ws, we, f"cache-miss ratio ~90% instead of ~{CACHE_MISS_P:.0%} "
                                                   f"({len(hit)} extra misses)"))

    ws, we = window(3, 1 * MIN)  # brute-force burst: many normal-shaped failed logins
    burst = []
    for t in np.sort(rng.uniform(ws, we, int(rng.integers(7, 10)))):
        sid = new_sid()
        burst.append(_Session(sid, burst_h, "login", _wf_login(rng, hosts[burst_h], int(t), sid, ok=False)))
        burst[-1].label("rate")
    events.append(("rate", burst_h, burst[0].start, max(s.end for s in burst), f"burst of {len(burst)} failed logins"))
    return test + burst, events


def _movable(s: _Session, unit: list[int]) -> bool:
    """A step an order/missing anomaly may start at: late enough, not a branch outcome, and not one of
    several steps of the same shape (dropping or swapping one of those changes no template sequence)."""
    return unit[0] >= MIN_PREFIX and not s.lines[unit[0]].after_branch and not s.lines[unit[0]].loop


def _swap_candidates(s: _Session) -> list[tuple[list[int], list[int]]]:
    """Pairs of different steps 1 or 2 steps apart, the first one movable, neither of them right
    before a branch (the moved step would land where several lines are normal) nor the last."""
    units = s.units()
    names = [s.lines[u[0]].unit_name for u in units]
    ok = [not any(s.lines[i].quiet or s.lines[i].loop for i in u) for u in units]
    return [(units[a], units[b]) for a in range(len(units)) for b in range(a + 1, min(a + 3, len(units) - 1))
            if _movable(s, units[a]) and names[a] != names[b] and ok[a] and ok[b]]


def _drop_candidates(s: _Session) -> list[list[int]]:
    """Movable steps of two or more lines, not the last step (nothing would follow the gap)."""
    units = s.units()
    return [u for u in units[:-1] if len(u) >= 2 and _movable(s, u)]


def _swap(s: _Session, a: list[int], b: list[int]) -> None:
    """Step b's lines take the first places of both steps, then a's: what is logged moves, times stay."""
    places = sorted(a + b)
    moved = [s.lines[i] for i in b + a]
    times = [s.lines[i].t for i in places]
    for i, ln, t in zip(places, moved, times):
        ln.t = t
        s.lines[i] = ln


def _inject_sessions(rng: np.random.Generator, test: list[_Session], lo: int, hi: int,
                     per_kind: int, events: list[tuple]) -> None:
    """unseen/order/missing: each changes one normal session in place, so rates stay unchanged."""
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

    for _ in range(per_kind):  # the unseen message may come anywhere in the session
        i = take(pool)
        if i is None:
            break
        s = test[i]
        p = int(rng.integers(1, len(s.lines)))  # between two existing lines
        level, text = _UNSEEN[int(rng.integers(len(_UNSEEN)))](rng, s.lines[p - 1].comp)
        t = int(rng.integers(s.lines[p - 1].t, s.lines[p].t + 1))
        s.lines.insert(p, _Line(t, s.lines[p - 1].comp, level, f"{text} sid={s.sid}", "unseen", kind="unseen"))
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
            if kind == "order":
                pairs = _swap_candidates(s)
                if not pairs:
                    continue
                a, b = pairs[int(rng.integers(len(pairs)))]
                na, nb = s.lines[a[0]].unit_name, s.lines[b[0]].unit_name
                desc = (f"steps '{na}' and '{nb}' swapped (lines {','.join(str(x + 1) for x in a)} and "
                        f"{','.join(str(x + 1) for x in b)}) in {wf} session {s.sid}")
                _swap(s, a, b)
            else:
                drops = _drop_candidates(s)
                if not drops:
                    continue
                u = drops[int(rng.integers(len(drops)))]
                gone = [s.lines[x].step for x in u]
                desc = (f"step '{s.lines[u[0]].unit_name}' missing ({'+'.join(gone)} before line "
                        f"{u[0] + 1}) in {wf} session {s.sid}")
                s.lines = [ln for x, ln in enumerate(s.lines) if x not in u]
            s.label(kind)
            events.append((kind, s.host, s.start, s.end, desc))
            done += 1


def _fmt_ts(ms: int) -> str:
    s, m = divmod(int(ms), SEC)
    return f"{(T0 + timedelta(seconds=s)).strftime('%Y-%m-%dT%H:%M:%S')}.{m:03d}Z"


def _render(hosts: list[_Host], sessions: list[_Session],
            misc: list[tuple[str, _Line]]) -> tuple[str, list[tuple[str, str]]]:
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
    test, events = _inject_windows(rng, by_name, test, lo + min(10 * MIN, (hi - lo) // 3), hi, new_sid)
    _inject_sessions(rng, test, lo, hi, max(1, round(SESSION_ANOMALIES_PER_90_MIN * test_minutes / 90)), events)

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
