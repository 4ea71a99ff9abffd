#!/usr/bin/env python3
"""Creates N chats on a loopback chatd with POST /chat/New, each with its own member pair,
over C keep-alive connections, each with up to P requests pipelined.

usage: mkchats.py PORT N [C] [P] [START]
"""
import asyncio
import sys

port, n = int(sys.argv[1]), int(sys.argv[2])
conns = int(sys.argv[3]) if len(sys.argv) > 3 else 16
pipe = int(sys.argv[4]) if len(sys.argv) > 4 else 16
start = int(sys.argv[5]) if len(sys.argv) > 5 else 0


def request(i):
    body = b'{"user_ids":["idle-u%d-a","idle-u%d-b"]}' % (i, i)
    return (b"POST /chat/New HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length)
    if status != 200 or b"chat_id" not in body:
        raise RuntimeError(f"New answered {status}: {body[:200]!r}")


async def worker(w):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ids = list(range(start + w, start + n, conns))
    for k in range(0, len(ids), pipe):
        batch = ids[k:k + pipe]
        writer.write(b"".join(request(i) for i in batch))
        await writer.drain()
        for _ in batch:
            await read_response(reader)
    writer.close()


async def main():
    await asyncio.gather(*(worker(w) for w in range(conns)))
    print(f"created {n} chats")


asyncio.run(main())
