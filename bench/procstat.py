"""CPU time per process group, from /proc.

A group is one or more root processes and all their descendants (found by walking
``/proc/*/stat`` parent ids). A process's CPU is ``utime + stime + cutime + cstime``:
the last two hold the time of children it has already reaped, so a PostgreSQL backend
that exits moves into the postmaster's figure instead of vanishing. Summing over the
live processes of a group counts every CPU second once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcTimes:
    ppid: int
    comm: str
    own: int  # utime + stime, ticks
    children: int  # cutime + cstime (reaped children), ticks


def read_proc(pid: int) -> ProcTimes | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may contain spaces and parentheses.
    close = raw.rfind(b")")
    rest = raw[close + 2 :].split()
    return ProcTimes(
        ppid=int(rest[1]),
        comm=raw[raw.find(b"(") + 1 : close].decode("utf-8", "replace"),
        own=int(rest[11]) + int(rest[12]),
        children=int(rest[13]) + int(rest[14]),
    )


def all_procs() -> dict[int, ProcTimes]:
    procs: dict[int, ProcTimes] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            t = read_proc(int(entry.name))
            if t is not None:
                procs[int(entry.name)] = t
    return procs


def descendants(roots: Iterable[int], procs: Mapping[int, ProcTimes]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, t in procs.items():
        children.setdefault(t.ppid, []).append(pid)
    found: set[int] = set()
    stack = [r for r in roots if r in procs]
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found.add(pid)
        stack.extend(children.get(pid, []))
    return found


@dataclass
class Group:
    name: str
    roots: list[int]
    harness: bool = False
    # Only the roots themselves, not their descendants (the bench process, whose
    # descendants are the whole stack), and only their own time.
    roots_only: bool = False
    # Processes to leave out (e.g. the bench's monitoring backend, counted apart).
    exclude: set[int] = field(default_factory=set)


def machine() -> dict[str, float]:
    """CPU seconds of the whole machine since boot, from /proc/stat (in a container:
    usually the host's): ``machine_busy_s`` (everything but idle and iowait), of it
    ``machine_irq_s`` (hard and soft interrupts, e.g. loopback networking, which no
    process is charged for), and ``machine_total_s``."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal
    return {
        "machine_busy_s": busy / CLK_TCK,
        "machine_irq_s": (irq + softirq) / CLK_TCK,
        "machine_total_s": (busy + idle + iowait) / CLK_TCK,
    }


@dataclass
class Snapshot:
    cpu: dict[str, float]  # CPU seconds so far per group, plus the machine's
    procs: dict[int, ProcTimes]
    members: set[int]  # every process counted in some group


def take(groups: list[Group]) -> Snapshot:
    procs = all_procs()
    out: dict[str, float] = {}
    counted: set[int] = set()
    for g in groups:
        if g.roots_only:
            members = {p for p in g.roots if p in procs}
            ticks = sum(procs[p].own for p in members)
        else:
            members = descendants(g.roots, procs) - g.exclude
            ticks = sum(procs[p].own + procs[p].children for p in members)
        counted |= members
        out[g.name] = ticks / CLK_TCK
    return Snapshot(out | machine(), procs, counted)


def sample(groups: list[Group]) -> dict[str, float]:
    """CPU seconds so far of each group, plus the machine's (see :func:`machine`)."""
    return take(groups).cpu


def others(a: Snapshot, b: Snapshot, n: int = 5) -> list[dict[str, object]]:
    """The processes outside every group that used the most CPU between a and b (what
    else ran on the machine)."""
    rows: list[tuple[float, int, str]] = []
    for pid, t in b.procs.items():
        if pid in b.members or pid in a.members:
            continue
        before = a.procs.get(pid)
        ticks = t.own + t.children - (before.own + before.children if before else 0)
        if ticks > 0:
            rows.append((ticks / CLK_TCK, pid, t.comm))
    rows.sort(reverse=True)
    return [{"pid": pid, "comm": comm, "cpu_s": round(cpu, 2)} for cpu, pid, comm in rows[:n]]


def pids_cpu(pids: Iterable[int]) -> float:
    """CPU seconds so far of exactly these processes (own time)."""
    total = 0
    for pid in pids:
        t = read_proc(pid)
        if t is not None:
            total += t.own
    return total / CLK_TCK


def delta(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    return {k: round(b[k] - a[k], 3) for k in b if k in a}
