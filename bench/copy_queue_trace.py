#!/usr/bin/env python3
"""Is the copy queue of a streaming run busy, and how fast does it copy while it is?

Reads the CSV that bench/cupti_copy_trace.cpp writes for one `ebb generate --stream-layers` run
and prints, over the steady part of the run (from the first copy after the first `--skip`
fraction of the copies to the last copy), for the copy stream (the stream with the most
host-to-device bytes): bytes, busy time, the rate while copying (bytes / busy time, by source
memory kind), and how the span splits between copies and kernels running together, copies
alone, kernels alone and neither. "Copies too slow" shows as a low rate while copying; "copies
not back to back" as time with kernels alone while streamed bytes are still to come.

Traces with the enqueuing calls (correlation ids) also split each queue's idle gaps by cause:
the host enqueued the next copy or kernel late (its call ended after the queue went idle), or
the queue waited on the device (a copy for a compute fence, a kernel for an upload or another
event), and sum the host's synchronising calls over the span.

    copy_queue_trace.py TRACE.csv [--skip 0.5] [--until 1.0]

--skip and --until bound the span by fractions of the copies (e.g. 0.3 and 0.8 of a 10-step
run: steps 4 to 8, leaving out the first steps and the VAE stage's uploads at the end).
"""
import argparse
import bisect
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


def gap_causes(ops, enqueued, copy_ends=()):
    """Idle time between `ops` (start, end, correlation id), sorted by start: (host late, waited
    for a copy that ended just before, waited for something else on the device)."""
    host = copy_wait = other = 0
    prev_end = None
    for s, e, corr in ops:
        if prev_end is not None and s > prev_end:
            gap = s - prev_end
            q = enqueued.get(corr)
            late = min(gap, max(0, q - prev_end)) if q is not None else 0
            host += late
            i = bisect.bisect_right(copy_ends, s)
            if i and s - copy_ends[i - 1] < 30_000 and copy_ends[i - 1] > prev_end:
                copy_wait += gap - late
            else:
                other += gap - late
        prev_end = e if prev_end is None else max(prev_end, e)
    return host, copy_wait, other


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--skip", type=float, default=0.5)
    ap.add_argument("--until", type=float, default=1.0)
    args = ap.parse_args()
    copies, kernels = defaultdict(list), []
    kernels_by_stream = defaultdict(list)
    enqueued, calls = {}, []  # correlation id -> the end of its call; (name, start, end)
    with open(args.trace) as f:
        for row in csv.reader(f):
            kind, start, end, size, stream, copy_kind, src = row[:7]
            corr = int(row[7]) if len(row) > 7 else None
            if kind == "memcpy" and copy_kind == "1":  # host to device
                copies[stream].append((int(start), int(end), int(size), int(src), corr))
            elif kind == "kernel":
                kernels.append((int(start), int(end)))
                kernels_by_stream[stream].append((int(start), int(end), corr))
            elif kind == "api":
                enqueued[corr] = int(end)
                calls.append((copy_kind, int(start), int(end)))
    if not copies:
        print("no host-to-device copies in the trace")
        return
    stream, c = max(copies.items(), key=lambda kv: sum(r[2] for r in kv[1]))
    c.sort()
    c = c[int(len(c) * args.skip):max(int(len(c) * args.until), int(len(c) * args.skip) + 1)]
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
    for s, e, size, src, _ in c:
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
    if not enqueued:
        return
    ms = lambda t: f"{t / 1e6:.1f} ms"
    host, _, device = gap_causes([(s, e, corr) for s, e, *_, corr in c], enqueued)
    print(f"copy-queue idle: host enqueued late {ms(host)}, waited on the device {ms(device)}")
    compute_stream, k = max(kernels_by_stream.items(),
                            key=lambda kv: sum(e - s for s, e, _ in kv[1]))
    k = sorted(r for r in k if lo <= r[0] < hi)
    copy_ends = sorted(e for s, e, *_ in c)
    host, copy_wait, other = gap_causes(k, enqueued, copy_ends)
    print(f"compute stream {compute_stream} idle: host enqueued late {ms(host)}, waited for an "
          f"upload {ms(copy_wait)}, waited on other device work {ms(other)}")
    syncs = defaultdict(lambda: [0, 0])
    for name, s, e in calls:
        if "ynchronize" in name and s < hi and e > lo:
            syncs[name][0] += 1
            syncs[name][1] += min(e, hi) - max(s, lo)
    for name, (n, t) in sorted(syncs.items(), key=lambda kv: -kv[1][1]):
        print(f"  host in {name}: {n} calls, {ms(t)}")


if __name__ == "__main__":
    main()
