"""An HTTP load generator in its own processes, so that it is not the ceiling it measures.

    result = fire(port, requests, processes=2, connections=64)

`requests` are pre-built HTTP/1.1 requests (bytes, messages in each): signing and JSON are paid
before the clock starts. Each process keeps its share of keep-alive connections busy with a
minimal asyncio client (no HTTP library: httpx costs more CPU per request than the hub's
parse). The processes start together; the result holds the wall time from the common start to
the last answer, every latency, the messages answered 200 and the CPU seconds the generator
itself used (to show it had room). Written here rather than wrk: wrk is not packaged for this
machine, and wrk would need a Lua script to send distinct pre-signed bodies anyway.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import resource
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

Request = tuple[bytes, int]  # the whole HTTP request, messages in it


def http_post(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{head}\r\n"
    ).encode("latin-1") + body


@dataclass
class Result:
    elapsed_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    ok_messages: int = 0
    failed_messages: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    cpu_s: float = 0.0


async def _one_connection(port: int, work: deque[Request], out: Result) -> None:
    reader = writer = None
    while work:
        raw, n = work.popleft()
        t0 = time.perf_counter()
        status = "error"
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12].decode("latin-1")
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"connection" and b"close" in value.lower():
                    close = True
            await reader.readexactly(length)
            if close:
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            if writer is not None:
                writer.close()
            writer = None
        out.latencies.append(time.perf_counter() - t0)
        out.statuses[status] += 1
        if status == "200":
            out.ok_messages += n
        else:
            out.failed_messages += n
    if writer is not None:
        writer.close()


def _process(port: int, share: list[Request], connections: int, start: Any, q: Any) -> None:
    out = Result()
    work = deque(share)

    async def main() -> None:
        await asyncio.gather(*(_one_connection(port, work, out) for _ in range(connections)))

    start.wait()
    t0 = time.time()
    asyncio.run(main())
    t1 = time.time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    q.put((t0, t1, out.latencies, out.ok_messages, out.failed_messages, dict(out.statuses),
           usage.ru_utime + usage.ru_stime))


def fire(port: int, requests: list[Request], processes: int = 2,
         connections: int = 64) -> Result:
    ctx = mp.get_context("fork")
    start = ctx.Barrier(processes + 1)  # every child connected to its work, then all at once
    q = ctx.Queue()
    per = max(1, connections // processes)
    procs = [ctx.Process(target=_process, args=(port, requests[i::processes], per, start, q))
             for i in range(processes)]
    for p in procs:
        p.start()
    start.wait(timeout=60)
    parts = [q.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    total = Result()
    total.elapsed_s = max(p[1] for p in parts) - min(p[0] for p in parts)
    for _t0, _t1, lat, ok, bad, statuses, cpu in parts:
        total.latencies += lat
        total.ok_messages += ok
        total.failed_messages += bad
        total.statuses.update(statuses)
        total.cpu_s += cpu
    return total
