"""A plain Python model of the fair queue's rules (`imagine.fair`), written from its docstring, to compare the
Redis structure with: the same rules, none of the sorted sets."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field


@dataclass
class Server:
    tag: int
    vt: int = 0  # the members' virtual time
    jobs: dict[int, list[tuple[int, str]]] = field(default_factory=dict)  # member -> [(seq, id)] oldest first
    tags: dict[int, int] = field(default_factory=dict)  # tags of members with jobs
    idle: dict[int, int] = field(default_factory=dict)  # tags of idle members still ahead of vt


@dataclass
class FairModel:
    vt: int = 0
    seq: int = 0
    servers: dict[int, Server] = field(default_factory=dict)  # servers with jobs waiting (paused or not)
    idle: dict[int, int] = field(default_factory=dict)  # tags of idle servers still ahead of vt
    paused: set[int] = field(default_factory=set)

    def enqueue(self, job_id: str, g: int, u: int) -> None:
        self.seq += 1
        if g not in self.servers:
            self.servers[g] = Server(tag=max(self.idle.pop(g, self.vt), self.vt))
        sv = self.servers[g]
        if u not in sv.jobs:
            sv.tags[u] = max(sv.idle.pop(u, sv.vt), sv.vt)
            sv.jobs[u] = []
        sv.jobs[u].append((self.seq, job_id))

    def _next_member(self, sv: Server) -> int:
        return min(sv.jobs, key=lambda u: (sv.tags[u], sv.jobs[u][0][0]))

    def pop(self) -> str | None:
        ready = [g for g in self.servers if g not in self.paused]
        if not ready:
            return None

        def key(g: int) -> tuple[int, int]:
            sv = self.servers[g]
            return sv.tag, sv.jobs[self._next_member(sv)][0][0]

        g = min(ready, key=key)
        sv = self.servers[g]
        u = self._next_member(sv)
        _, job_id = sv.jobs[u].pop(0)
        self.vt = max(self.vt, sv.tag)
        sv.tag += 1
        sv.vt = sv.tags[u]
        sv.tags[u] += 1
        if not sv.jobs[u]:
            del sv.jobs[u]
            sv.idle[u] = sv.tags.pop(u)
        sv.idle = {m: t for m, t in sv.idle.items() if t > sv.vt}
        self._maybe_idle(g)
        self.idle = {s: t for s, t in self.idle.items() if t > self.vt}
        return job_id

    def cancel(self, job_id: str) -> bool:
        for g, sv in self.servers.items():
            for u, jobs in sv.jobs.items():
                for entry in jobs:
                    if entry[1] == job_id:
                        jobs.remove(entry)
                        if not jobs:
                            del sv.jobs[u]
                            tag = sv.tags.pop(u)
                            if tag > sv.vt:
                                sv.idle[u] = tag
                        self._maybe_idle(g)
                        return True
        return False

    def _maybe_idle(self, g: int) -> None:
        sv = self.servers[g]
        if sv.jobs:
            return
        del self.servers[g]  # its members' tags go with it
        if sv.tag > self.vt:
            self.idle[g] = sv.tag

    def pause(self, g: int) -> None:
        self.paused.add(g)

    def resume(self, g: int) -> None:
        self.paused.discard(g)
        if g in self.servers:
            self.servers[g].tag = max(self.servers[g].tag, self.vt)

    def order(self) -> list[str]:
        twin = copy.deepcopy(self)
        out = []
        while (job_id := twin.pop()) is not None:
            out.append(job_id)
        return out

    def waiting(self) -> list[str]:
        return [job_id for sv in self.servers.values() for jobs in sv.jobs.values() for _, job_id in jobs]
