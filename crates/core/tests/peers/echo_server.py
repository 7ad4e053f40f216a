#!/usr/bin/env python3
"""Echo server for lowbit-websockets' interop tests, on Python `websockets` (sync API).

usage: echo_server.py PORT [--no-deflate] [--snct] [--cnct] [--smwb N] [--cmwb N]
                           [--require-cmwb] [--mem N]

PORT 0 picks a free port. Prints "LISTENING <port>" once it accepts connections, then echoes
every message (text as text, binary as binary) until its standard input closes.

The options build the ServerPerMessageDeflateFactory used for every connection:
  --no-deflate     decline permessage-deflate
  --snct, --cnct   server_no_context_takeover, client_no_context_takeover
  --smwb N         server_max_window_bits (9..15)
  --cmwb N         client_max_window_bits (8..15)
  --require-cmwb   require_client_max_window_bits
  --mem N          zlib memLevel for compression
A connection's query string overrides them for that connection only:
  /?deflate=0|1&snct=0|1&cnct=0|1&smwb=N&cmwb=N&req=0|1&mem=N
so one server process covers a whole parameter matrix.
"""

import argparse
import sys
import threading
import urllib.parse

from websockets.exceptions import ConnectionClosedError
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.sync.server import serve


def factory(opts):
    if not opts["deflate"]:
        return None
    settings = {"memLevel": opts["mem"]} if opts["mem"] else None
    return [
        ServerPerMessageDeflateFactory(
            server_no_context_takeover=opts["snct"],
            client_no_context_takeover=opts["cnct"],
            server_max_window_bits=opts["smwb"],
            client_max_window_bits=opts["cmwb"],
            compress_settings=settings,
            require_client_max_window_bits=opts["req"],
        )
    ]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--no-deflate", action="store_true")
    p.add_argument("--snct", action="store_true")
    p.add_argument("--cnct", action="store_true")
    p.add_argument("--smwb", type=int)
    p.add_argument("--cmwb", type=int)
    p.add_argument("--require-cmwb", action="store_true")
    p.add_argument("--mem", type=int)
    a = p.parse_args()
    defaults = {
        "deflate": not a.no_deflate,
        "snct": a.snct,
        "cnct": a.cnct,
        "smwb": a.smwb,
        "cmwb": a.cmwb,
        "req": a.require_cmwb,
        "mem": a.mem,
    }

    def process_request(connection, request):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)
        opts = dict(defaults)
        for key, values in query.items():
            v = values[-1]
            if key in ("deflate", "snct", "cnct", "req"):
                opts[key] = v == "1"
            elif key in ("smwb", "cmwb", "mem"):
                opts[key] = int(v) if v else None
        # The factories are read when the handshake answer is built, right after this hook.
        connection.protocol.available_extensions = factory(opts)
        return None

    def handler(ws):
        try:
            for message in ws:
                ws.send(message)
        except ConnectionClosedError:
            pass  # the client vanished (some tests fail a handshake or a connection on purpose)

    with serve(
        handler,
        "127.0.0.1",
        a.port,
        extensions=factory(defaults),
        compression=None,
        process_request=process_request,
        max_size=None,
        max_queue=None,
        ping_interval=None,
        open_timeout=30,
        close_timeout=30,
    ) as server:
        port = server.socket.getsockname()[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"LISTENING {port}", flush=True)
        sys.stdin.read()  # until the test closes our stdin
        server.shutdown()


if __name__ == "__main__":
    main()
