"""The demo fleet's devices and workflows: what each daemon logs, step by step, as `demo_data` schedules it.

A workflow is a list of steps on a running clock (`Builder`); most steps log one line, some two; now and
then a housekeeping line falls between two steps. See `demo_data` for why the fleet is shaped so.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import numpy as np


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

SENSORS = {  # kind: (chip, i2c addr, unit, baseline low, baseline high, noise sd, valid range)
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
COMPONENTS = ("sensor-hub", "mqtt-bridge", "api-gateway", "auth", "health", "chronyd")
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


@dataclass
class Host:
    name: str
    pids: dict[str, int]
    sensors: list[tuple[str, str, int, str, float, float, str]]
    req_gap_ms: float
    subnet: int
    broker: str
    cycle: int


@dataclass(slots=True)
class Line:
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
class Session:
    sid: str
    host: str
    wf: str
    lines: list[Line]

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


class Builder:
    """Accumulates one session's lines on a running clock."""

    def __init__(self, rng: np.random.Generator, t: int, comp: str, sid: str) -> None:
        self.rng = rng
        self.t0 = self.t = int(t)
        self.comp = comp
        self.sid = sid
        self.lines: list[Line] = []
        self.quiet: list[bool] = []
        self.busy = False  # from here on every line is quiet

    def add(self, delay: float, step: str, text: str, level: str = "INFO", comp: str | None = None,
            quiet: bool = False, unit: str = "", join: bool = False, loop: bool = False) -> None:
        """A line; join makes it part of the previous line's step. A quiet line has no housekeeping
        line after it: it comes right before a branch, or the daemon is busy. A loop line repeats
        the message shape of its neighbours (one template for all of them)."""
        quiet = quiet or self.busy
        self.t += int(delay)
        ln = Line(self.t, comp or self.comp, level, f"{text} sid={self.sid}", step, quiet=quiet, loop=loop)
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

    def finish(self) -> list[Line]:
        """The lines, with now and then a housekeeping line between two steps."""
        out: list[Line] = []
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
                out.append(Line(int(rng.integers(ln.t, nxt.t + 1)), ln.comp, "DEBUG",
                                 f"{_HOUSEKEEPING[k](rng)} sid={self.sid}", HOUSEKEEPING_STEP))
        return out


def _hex(rng: np.random.Generator, n: int) -> str:
    return "".join(f"{int(b):02x}" for b in rng.integers(0, 256, n // 2))


def _uuid(rng: np.random.Generator) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def wf_sensor(rng: np.random.Generator, h: Host, t: int, sid: str, cycle: int = 0) -> list[Line]:
    """Poll every sensor of the device in its fixed order, aggregate, publish; the bridge delivers."""
    b = Builder(rng, t, "sensor-hub", sid)
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


def wf_request(rng: np.random.Generator, h: Host, t: int, sid: str, miss: bool | None = None) -> list[Line]:
    """One API request through the gateway's middleware chain; a cache miss goes upstream."""
    b = Builder(rng, t, "api-gateway", sid)
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


def wf_login(rng: np.random.Generator, h: Host, t: int, sid: str, ok: bool | None = None) -> list[Line]:
    """An SSH login: key accepted, a few commands, logout; or a password-guessing client refused."""
    b = Builder(rng, t, "auth", sid)
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


def wf_health(rng: np.random.Generator, h: Host, t: int, sid: str) -> list[Line]:
    """Sixteen checks, always in the same order, each logged in the same shape
    (`check i/16 <name> <reading> status=ok`)."""
    b = Builder(rng, t, "health", sid)
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
        ("services", f"failed=0/{len(COMPONENTS) + 3}"),
        ("journal", f"size={rng.integers(8, 60)}MB"),
        ("uptime", f"days={int(t // SEC) // 86400 + 3}"),
    )
    b.add(0, "hc_start", f"health check start checks={len(checks)}")
    for i, (name, reading) in enumerate(checks, 1):
        b.add(rng.integers(1, 6), name, f"check {i}/{len(checks)} {name} {reading} status=ok", loop=True)
    b.add(rng.integers(1, 3), "hc_done", f"health check done status=ok checks={len(checks)} in {b.elapsed} ms")
    return b.finish()


WORKFLOWS: dict[str, Callable[..., list[Line]]] = {
    "sensor": wf_sensor, "request": wf_request, "login": wf_login, "health": wf_health}


def misc_line(rng: np.random.Generator, t: int) -> Line:
    """A line outside any session (clock sync, kernel chatter)."""
    if rng.random() < 0.7:
        text = (f"selected source 10.20.0.{rng.integers(1, 3)} offset {rng.normal(0, 3e-4):+.6f} s "
                f"freq {rng.normal(0, 2):+.3f} ppm")
        return Line(t, "chronyd", "INFO", text)
    text = f"mmc0: card {rng.integers(1, 9):04x} read-only check passed, {rng.integers(2, 64)} blocks cached"
    return Line(t, "kernel", "INFO", text)


# Messages that never occur in normal operation; each is logged by the
# session's own component right inside an otherwise normal session.
UNSEEN: tuple[Callable[[np.random.Generator, str], tuple[str, str]], ...] = (
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
