#!/usr/bin/env python3
"""Echo client for lowbit-websockets' interop tests, on Python `websockets` (sync API).

usage: echo_client.py BASE_URL PLAN_FILE

PLAN_FILE is JSON: {"connections": [CONNECTION, ...]} where a CONNECTION is
  {"path": "/...",
   "offers": null | [OFFER, ...],     # null: no permessage-deflate offer
   "messages": [[KIND, SIZE, SEED, FRAGMENT], ...]}
an OFFER sets a ClientPerMessageDeflateFactory (several offers: several extension elements):
  {"snct": bool, "cnct": bool, "smwb": null | 8..15, "cmwb": null | true | 9..15, "mem": null | 1..9}
and KIND is "t" (JSON-like text, some non-ASCII), "b" (random bytes) or "r" (repetitive bytes).
Content is a deterministic function of (KIND, SIZE, SEED). FRAGMENT > 0 sends the message in
fragments of that many characters or bytes.

Each message is sent and its echo compared byte for byte, one connection after another; each
connection is then closed with 1000. Per connection it prints one tab-separated line:
  CONN <index> <Sec-WebSocket-Extensions answer or -> <negotiated or -> <messages> <bytes>
where negotiated is "remote_nct,local_nct,remote_bits,local_bits" of the PerMessageDeflate
extension in use. Prints "DONE" at the end; on a mismatch prints "FAIL ..." and exits 1.
"""

import json
import random
import sys

from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect

WORDS = ["alpha", "beta", "gamma", "delta", "lowbit", "socket", "frame", "déjà", "über", "naïve", "漢字", "ß"]


def json_text(size, seed):
    r = random.Random(seed)
    parts = []
    total = 0
    while total < size:
        tags = ",".join('"%s"' % r.choice(WORDS) for _ in range(r.randint(0, 4)))
        rec = '{"id":%d,"name":"%s %s","active":%s,"score":%.4f,"tags":[%s]},' % (
            r.randint(0, 10**9),
            r.choice(WORDS),
            r.choice(WORDS),
            "true" if r.random() < 0.5 else "false",
            r.random() * 1000,
            tags,
        )
        parts.append(rec)
        total += len(rec.encode())
    raw = "".join(parts).encode()[:size]
    text = raw.decode("utf-8", errors="ignore")  # drop a character cut in half
    return text + " " * (size - len(text.encode()))


def content(kind, size, seed):
    if kind == "t":
        return json_text(size, seed)
    r = random.Random(seed)
    if kind == "b":
        return r.randbytes(size)
    if kind == "r":
        pattern = r.randbytes(r.randint(1, 64))
        data = bytearray((pattern * (size // len(pattern) + 1))[:size])
        for _ in range(size // 1000):
            data[r.randrange(size)] = r.randrange(256)
        return bytes(data)
    raise ValueError(kind)


def factories(offers):
    if offers is None:
        return None
    out = []
    for o in offers:
        mem = o.get("mem")
        out.append(
            ClientPerMessageDeflateFactory(
                server_no_context_takeover=o.get("snct", False),
                client_no_context_takeover=o.get("cnct", False),
                server_max_window_bits=o.get("smwb"),
                client_max_window_bits=o.get("cmwb"),
                compress_settings={"memLevel": mem} if mem else None,
            )
        )
    return out


def negotiated(ws):
    for ext in ws.protocol.extensions:
        if ext.name == "permessage-deflate":
            return "%d,%d,%d,%d" % (
                ext.remote_no_context_takeover,
                ext.local_no_context_takeover,
                ext.remote_max_window_bits,
                ext.local_max_window_bits,
            )
    return "-"


def fragments(message, size):
    return (message[i : i + size] for i in range(0, len(message), size))


def main():
    base, plan_file = sys.argv[1], sys.argv[2]
    with open(plan_file) as f:
        plan = json.load(f)
    for index, c in enumerate(plan["connections"]):
        with connect(
            base + c["path"],
            extensions=factories(c["offers"]),
            compression=None,
            max_size=None,
            max_queue=None,
            ping_interval=None,
            open_timeout=30,
            close_timeout=30,
        ) as ws:
            answer = ws.response.headers.get("Sec-WebSocket-Extensions") or "-"
            total = 0
            for n, (kind, size, seed, frag) in enumerate(c["messages"]):
                message = content(kind, size, seed)
                if frag and size > frag:
                    ws.send(fragments(message, frag))
                else:
                    ws.send(message)
                echo = ws.recv(timeout=30)
                if type(echo) is not type(message) or echo != message:
                    print(
                        "FAIL connection %d message %d (%s, %d bytes): echo of %d %s differs"
                        % (index, n, kind, size, len(echo), type(echo).__name__),
                        flush=True,
                    )
                    sys.exit(1)
                total += size
            print("CONN\t%d\t%s\t%s\t%d\t%d" % (index, answer, negotiated(ws), len(c["messages"]), total), flush=True)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
