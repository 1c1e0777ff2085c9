"""The memory floor of the prescribed HTTP stack: peak RSS of a do-nothing server.

hs must run on Python with asyncio (ssl), aiohttp and uvloop. This starts a minimal
server on exactly that stack (plus orjson and the standard library's sqlite3, as a
storage-less stand-in for hs's own imports), serves it load of the shape the bench's
scenarios send (concurrent JSON POSTs and GETs, long-polls held open), and reports its
peak RSS the way ``bench.load`` reads a server's (VmRSS sampled from /proc). Whatever a
homeserver adds comes on top; a memory target below this number cannot be met by any
server built on this stack.

    python -m bench.floor_rss [--requests 5000] [--concurrency 50] [--polls 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time

from bench.load.metrics import parse_status_kb

_SERVER = r"""
import asyncio, ssl, sqlite3, sys
import orjson, uvloop
from aiohttp import web

async def echo(request):
    body = await request.read()
    data = orjson.loads(body) if body else {}
    return web.Response(body=orjson.dumps({"event_id": "$x", "echo": len(data)}),
                        content_type="application/json")

async def poll(request):
    await asyncio.sleep(float(request.query.get("wait", "0")))
    return web.Response(body=orjson.dumps({"next_batch": "s1", "rooms": {}}),
                        content_type="application/json")

app = web.Application(client_max_size=1 << 20)
app.router.add_route("*", "/poll", poll)
app.router.add_route("*", "/{tail:.*}", echo)
uvloop.install()
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_kb(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        return parse_status_kb(f.read(), field) or 0


async def _load(port: int, requests: int, concurrency: int, polls: int, pid: int
                ) -> tuple[int, int]:
    """Peak RSS (kB) while serving the load, and the number of answers received."""
    import aiohttp

    peak = _rss_kb(pid)
    answered = 0
    url = f"http://127.0.0.1:{port}"
    body = {"msgtype": "m.text", "body": "x" * 200}
    async with aiohttp.ClientSession() as session:
        async def sample() -> None:
            nonlocal peak
            while True:
                peak = max(peak, _rss_kb(pid))
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        held = [asyncio.create_task(session.get(f"{url}/poll?wait=2")) for _ in range(polls)]
        queue = list(range(requests))

        async def worker() -> None:
            nonlocal answered
            while queue:
                n = queue.pop()
                path = f"/_matrix/client/v3/rooms/!r/send/m.room.message/t{n}"
                async with session.put(url + path, json=body) as resp:
                    if (await resp.json())["echo"] == len(body):
                        answered += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        for task in held:
            resp = await task
            answered += resp.status == 200
            resp.release()
        sampler.cancel()
    return max(peak, _rss_kb(pid)), answered


def measure(requests: int, concurrency: int, polls: int) -> tuple[int, int, int]:
    """Start the minimal server, load it; (idle RSS kB, peak RSS kB, answers)."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(port)],
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the floor server did not start") from None
                time.sleep(0.05)
        idle = _rss_kb(proc.pid)
        peak, answered = asyncio.run(_load(port, requests, concurrency, polls, proc.pid))
        return idle, peak, answered
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--polls", type=int, default=100)
    args = parser.parse_args()
    idle, peak, answered = measure(args.requests, args.concurrency, args.polls)
    print(f"minimal aiohttp+uvloop server (Python {sys.version.split()[0]}):"
          f" idle RSS {idle / 1024:.1f} MB, peak RSS under load {peak / 1024:.1f} MB"
          f" ({answered} of {args.requests + args.polls} requests answered,"
          f" {args.concurrency} concurrent, {args.polls} long-polls held)")


if __name__ == "__main__":
    main()
