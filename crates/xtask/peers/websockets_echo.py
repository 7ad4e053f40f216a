#!/usr/bin/env python3
"""Echo server on Python `websockets` (asyncio API, its defaults), the memory benchmark's
anchor: `websockets_echo.py --port PORT [--deflate]`. Without --deflate, compression is off;
with it, websockets' default permessage-deflate settings (server_max_window_bits=12,
memLevel=5). Prints one line once it listens."""

import argparse
import asyncio

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--deflate", action="store_true")
    args = parser.parse_args()
    compression = "deflate" if args.deflate else None
    async with serve(echo, "127.0.0.1", args.port, compression=compression, max_size=64 * 1024 * 1024):
        print(f"python websockets echo server on 127.0.0.1:{args.port}", flush=True)
        await asyncio.get_running_loop().create_future()


asyncio.run(main())
