#!/usr/bin/env python3
"""Turns criterion's estimates into the ratio table of BENCHMARKS.md.

Usage (from the repo root, after `cargo bench -p lowbit-websockets`):

    python3 crates/core/benches/ratios.py                 # the last run ("new")
    python3 crates/core/benches/ratios.py r1 r2 r3        # best of runs saved with
        # cargo bench -p lowbit-websockets --bench codec -- --save-baseline rN
        # (the `--bench` filter keeps the lib's libtest harness from seeing criterion's flag)

For each benchmark it takes criterion's median time per iteration (estimates.json), the best
(lowest) over the baselines named, and prints one Markdown table per family of groups: time,
throughput, and speed relative to tungstenite and to fastwebsockets (>1 = faster than that
library). Only the codec bench's groups are read. Best-of-N is used because this machine is shared: other jobs only ever make a run
slower, never faster.
"""

import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "target", "criterion")
LIBS = ["lowbit", "lowbit_rb128k", "lowbit_conn", "tungstenite", "tungstenite_rb4k", "fastwebsockets"]


def load(baselines):
    """{group_id: {function_id: (median_ns, throughput)}}"""
    out = {}
    for group_dir in sorted(os.listdir(ROOT)):
        gpath = os.path.join(ROOT, group_dir)
        if not os.path.isdir(gpath) or group_dir == "report":
            continue
        for fn_dir in sorted(os.listdir(gpath)):
            best = None
            for base in baselines:
                d = os.path.join(gpath, fn_dir, base)
                try:
                    with open(os.path.join(d, "benchmark.json")) as f:
                        meta = json.load(f)
                    with open(os.path.join(d, "estimates.json")) as f:
                        est = json.load(f)
                except FileNotFoundError:
                    continue
                t = est["median"]["point_estimate"]
                if best is None or t < best[0]:
                    best = (t, meta.get("throughput"), meta["group_id"], meta["function_id"])
            if best:
                t, tp, gid, fid = best
                out.setdefault(gid, {})[fid] = (t, tp)
    return out


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def fmt_tp(ns, tp):
    if not tp:
        return ""
    if "Bytes" in tp:
        return f"{tp['Bytes'] / ns:.2f} GB/s"  # bytes per ns = GB/s (10^9)
    if "Elements" in tp:
        return f"{tp['Elements'] / ns * 1e3:.2f} M msg/s"
    return ""


def ratio(other, ours):
    return f"{other / ours:.2f}×" if other else "–"


def family(gid):
    return gid.split("/")[0]


def main():
    baselines = sys.argv[1:] or ["new"]
    data = load(baselines)
    fams = {}
    for gid in data:
        fams.setdefault(family(gid), []).append(gid)
    order = ["unmask", "decode_text", "encode_server", "encode_client", "echo"]
    names = [f for f in order if f in fams]
    print(f"<!-- best of baselines: {', '.join(baselines)} -->")
    for fam in names:
        print(f"\n#### {fam}\n")
        print("| group | library | median time / iter | throughput | vs tungstenite | vs fastwebsockets |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        groups = sorted(fams[fam], key=lambda g: (len(g), g))
        # Sizes sort by their byte count, not alphabetically.
        def size_key(g):
            s = g.split("/", 1)[1] if "/" in g else g
            mult = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20}
            for suf in ("KiB", "MiB", "B"):
                if s.endswith(suf) and s[: -len(suf)].isdigit():
                    return int(s[: -len(suf)]) * mult[suf]
            return 0
        for gid in sorted(groups, key=size_key):
            fns = data[gid]
            fn_order = [f for f in LIBS if f in fns] + sorted(f for f in fns if f not in LIBS)
            tung = fns.get("tungstenite", (None,))[0]
            fast = fns.get("fastwebsockets", (None,))[0]
            for fn in fn_order:
                t, tp = fns[fn]
                print(f"| {gid} | {fn} | {fmt_time(t)} | {fmt_tp(t, tp)} | {ratio(tung, t)} | {ratio(fast, t)} |")


if __name__ == "__main__":
    main()
