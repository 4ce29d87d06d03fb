#!/usr/bin/env python3
"""Is the copy queue of a streaming run busy, and how fast does it copy while it is?

Reads the CSV that bench/cupti_copy_trace.cpp writes for one `ebb generate --stream-layers` run
and prints, over the steady part of the run (from the first copy after the first `--skip`
fraction of the copies to the last copy), for the copy stream (the stream with the most
host-to-device bytes): bytes, busy time, the rate while copying (bytes / busy time, by source
memory kind), and how the span splits between copies and kernels running together, copies
alone, kernels alone and neither. "Copies too slow" shows as a low rate while copying; "copies
not back to back" as time with kernels alone while streamed bytes are still to come.

    copy_queue_trace.py TRACE.csv [--skip 0.5]
"""
import argparse
import csv
from collections import defaultdict

MEMORY_KINDS = {0: "unknown", 1: "pageable", 2: "pinned", 3: "device"}


def union(intervals):
    merged = []
    for s, e in sorted(intervals):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return merged


def overlap(a, b):
    i = j = total = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        total += max(0, hi - lo)
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def clip(intervals, lo, hi):
    return [[max(s, lo), min(e, hi)] for s, e in intervals if e > lo and s < hi]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--skip", type=float, default=0.5)
    args = ap.parse_args()
    copies, kernels = defaultdict(list), []
    with open(args.trace) as f:
        for kind, start, end, size, stream, copy_kind, src in csv.reader(f):
            if kind == "memcpy" and copy_kind == "1":  # host to device
                copies[stream].append((int(start), int(end), int(size), int(src)))
            elif kind == "kernel":
                kernels.append((int(start), int(end)))
    if not copies:
        print("no host-to-device copies in the trace")
        return
    stream, c = max(copies.items(), key=lambda kv: sum(r[2] for r in kv[1]))
    c.sort()
    c = c[int(len(c) * args.skip):]
    lo, hi = c[0][0], c[-1][1]
    span = hi - lo
    moved = sum(r[2] for r in c)
    copy_busy = union([(s, e) for s, e, *_ in c])
    busy = sum(e - s for s, e in copy_busy)
    compute = union(clip(kernels, lo, hi))
    compute_busy = sum(e - s for s, e in compute)
    both = overlap(copy_busy, compute)
    print(f"copy stream {stream}: {len(c)} copies, {moved / 2**30:.2f} GiB in {span / 1e6:.1f} ms "
          f"({moved / span:.1f} GB/s over the span); copying {busy / 1e6:.1f} ms at "
          f"{moved / busy:.1f} GB/s")
    by_kind = defaultdict(lambda: [0, 0])
    for s, e, size, src in c:
        by_kind[MEMORY_KINDS.get(src, src)][0] += size
        by_kind[MEMORY_KINDS.get(src, src)][1] += e - s
    for kind, (size, t) in by_kind.items():
        print(f"  from {kind} memory: {size / 2**30:.2f} GiB at {size / t:.1f} GB/s while copying")
    pct = lambda t: f"{t / 1e6:.1f} ms ({100 * t / span:.0f}%)"
    print(f"span split: copies and kernels {pct(both)}, copies alone {pct(busy - both)}, "
          f"kernels alone {pct(compute_busy - both)}, neither {pct(span - busy - compute_busy + both)}")
    gaps = [b[0] - a[1] for a, b in zip(copy_busy, copy_busy[1:])]
    for g_lo, g_hi in ((0, 0.05), (0.05, 0.5), (0.5, 1e9)):
        g = [x for x in gaps if g_lo * 1e6 <= x < g_hi * 1e6]
        print(f"  copy-queue idle gaps {g_lo:g}-{g_hi:g} ms: {len(g)}, {sum(g) / 1e6:.1f} ms")


if __name__ == "__main__":
    main()
