"""The anomalies the demo injects into its test log: count windows (rate, correlation) and sessions
(unseen, order, missing), each labelled on its lines and recorded as an event interval."""
from __future__ import annotations

from typing import Callable

import numpy as np

from alog_edge.data.demo_fleet import (CACHE_MISS_P, MIN, MIN_PREFIX, SEC, UNSEEN, Host, Line, Session, wf_login,
                                       wf_request)

MUTATE_WEIGHTS = {"sensor": 0.35, "request": 0.55, "login": 0.1}


def inject_windows(rng: np.random.Generator, hosts: dict[str, Host], test: list[Session], lo: int, hi: int,
                    new_sid: Callable[[], str]) -> tuple[list[Session], list[tuple]]:
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

    def in_window(s: Session, host: str, wf: str) -> bool:
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
        s.lines = wf_request(rng, hosts[cache_h], s.start, s.sid, miss=True)
        s.label("correlation")
    events.append(("correlation", cache_h, ws, we, f"cache-miss ratio ~90% instead of ~{CACHE_MISS_P:.0%} "
                                                   f"({len(hit)} extra misses)"))

    ws, we = window(3, 1 * MIN)  # brute-force burst: many normal-shaped failed logins
    burst = []
    for t in np.sort(rng.uniform(ws, we, int(rng.integers(7, 10)))):
        sid = new_sid()
        burst.append(Session(sid, burst_h, "login", wf_login(rng, hosts[burst_h], int(t), sid, ok=False)))
        burst[-1].label("rate")
    events.append(("rate", burst_h, burst[0].start, max(s.end for s in burst), f"burst of {len(burst)} failed logins"))
    return test + burst, events


def _movable(s: Session, unit: list[int]) -> bool:
    """A step an order/missing anomaly may start at: late enough, not a branch outcome, and not one of
    several steps of the same shape (dropping or swapping one of those changes no template sequence)."""
    return unit[0] >= MIN_PREFIX and not s.lines[unit[0]].after_branch and not s.lines[unit[0]].loop


def _swap_candidates(s: Session) -> list[tuple[list[int], list[int]]]:
    """Pairs of different steps 1 or 2 steps apart, the first one movable, neither of them right
    before a branch (the moved step would land where several lines are normal) nor the last."""
    units = s.units()
    names = [s.lines[u[0]].unit_name for u in units]
    ok = [not any(s.lines[i].quiet or s.lines[i].loop for i in u) for u in units]
    return [(units[a], units[b]) for a in range(len(units)) for b in range(a + 1, min(a + 3, len(units) - 1))
            if _movable(s, units[a]) and names[a] != names[b] and ok[a] and ok[b]]


def _drop_candidates(s: Session) -> list[list[int]]:
    """Movable steps of two or more lines, not the last step (nothing would follow the gap)."""
    units = s.units()
    return [u for u in units[:-1] if len(u) >= 2 and _movable(s, u)]


def _swap(s: Session, a: list[int], b: list[int]) -> None:
    """Step b's lines take the first places of both steps, then a's: what is logged moves, times stay."""
    places = sorted(a + b)
    moved = [s.lines[i] for i in b + a]
    times = [s.lines[i].t for i in places]
    for i, ln, t in zip(places, moved, times):
        ln.t = t
        s.lines[i] = ln


def inject_sessions(rng: np.random.Generator, test: list[Session], lo: int, hi: int,
                     per_kind: int, events: list[tuple]) -> None:
    """unseen/order/missing: each changes one normal session in place, so rates stay unchanged."""
    busy = [(h, s0, s1) for _, h, s0, s1, _ in events]  # keep window anomalies clear-cut

    def eligible(s: Session) -> bool:
        return s.is_normal() and lo <= s.start < hi and not any(
            s.host == h and s.start <= s1 and s.end >= s0 for h, s0, s1 in busy)

    pool = [int(i) for i in rng.permutation(len(test)) if eligible(test[int(i)])]
    by_wf = {wf: [i for i in pool if test[i].wf == wf] for wf in MUTATE_WEIGHTS}
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
        level, text = UNSEEN[int(rng.integers(len(UNSEEN)))](rng, s.lines[p - 1].comp)
        t = int(rng.integers(s.lines[p - 1].t, s.lines[p].t + 1))
        s.lines.insert(p, Line(t, s.lines[p - 1].comp, level, f"{text} sid={s.sid}", "unseen", kind="unseen"))
        events.append(("unseen", s.host, s.start, s.end,
                       f"unseen message in {s.wf} session {s.sid}: {text.split(':')[0]}"))

    names, weights = list(MUTATE_WEIGHTS), np.array(list(MUTATE_WEIGHTS.values()))
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
