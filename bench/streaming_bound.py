#!/usr/bin/env python3
"""How fast can a streamed step be, at best, under a budget?

Reads the `measured_pass` of an `ebb generate --stream-layers --memory-report` report (each
acquisition of the measured step: block, bytes, compute, what all but weights held) and prints a
lower bound on the step time that holds for any choice of resident blocks and any upload
schedule with the same computation, the same budget and the same copy rate:

For every stretch L of consecutive acquisitions (wrapping from the pass's end to its start), the
weights of L's blocks on the device as L starts fit in B' = budget - (the least that all but
weights held at any acquisition); the rest of L's bytes must be copied while L runs, at no more
than the copy rate r, and the compute outside L takes its own time. So

    step >= compute outside L + max(compute in L, (distinct bytes of L's blocks - B') / r).

The bound is the largest such value over all stretches. A streamed step can reach it only with
copies spread perfectly; where it lies above a target, no placement of the weights reaches that
target with this computation and this memory.

    streaming_bound.py REPORT.json --budget GIB [--rate GBPS] [--resident-step-ms MS]
"""
import argparse
import json
import statistics


def steady_step_s(report):
    """The median time between step marks after the first step."""
    marks = [e["t"] for e in report["events"] if e["event"] == "mark" and e["component"] == "step"]
    gaps = [b - a for a, b in zip(marks, marks[1:])]
    return statistics.median(gaps) if gaps else None


def bound(pass_, room, rate_bytes_per_s):
    """The lower bound and the stretch that sets it, for one measured pass and `room` bytes
    for weights."""
    n = len(pass_)
    compute = [a["compute_s"] or 0.0 for a in pass_]
    total = sum(compute)
    best = {"step_s": total, "first": 0, "count": n, "bytes": 0, "compute_s": total}
    for first in range(n):
        blocks = {}
        inside = 0.0
        for count in range(1, n + 1):
            a = pass_[(first + count - 1) % n]
            blocks[a["block"]] = a["bytes"]
            inside += compute[(first + count - 1) % n]
            copies = max(0, sum(blocks.values()) - room) / rate_bytes_per_s
            step = total - inside + max(inside, copies)
            if step > best["step_s"]:
                best = {"step_s": step, "first": first, "count": count,
                        "bytes": sum(blocks.values()), "compute_s": inside}
    best["room_bytes"] = room
    best["streamed_bytes"] = sum({a["block"]: a["bytes"] for a in pass_ if not a["resident"]}.values())
    best["compute_total_s"] = total
    return best


def lower_bound(pass_, budget_bytes, rate_bytes_per_s):
    """bound() with the room the least that all but weights held leaves: for any placement."""
    return bound(pass_, budget_bytes - min(a["others_bytes"] for a in pass_), rate_bytes_per_s)


def describe(report, budget_gib, rate_gbps, resident_step_ms=None):
    pass_ = report.get("measured_pass")
    if not pass_:
        return "no measured pass in the report (not a streamed run, or fewer than two steps)"
    budget = budget_gib * 2**30
    b = lower_bound(pass_, budget, rate_gbps * 1e9)
    # The same with the others' peak at acquisitions kept free throughout, as a placement that
    # does not share that memory between weights and activations over time must.
    held = bound(pass_, budget - max(a["others_bytes"] for a in pass_), rate_gbps * 1e9)
    first, last = pass_[b["first"]]["block"], pass_[(b["first"] + b["count"] - 1) % len(pass_)]["block"]
    line = (f"bound {b['step_s'] * 1e3:.0f} ms (stretch {first} .. {last}: "
            f"{b['bytes'] / 2**30:.2f} GiB, {b['compute_s'] * 1e3:.0f} ms of "
            f"{b['compute_total_s'] * 1e3:.0f} ms compute; {b['room_bytes'] / 2**30:.2f} GiB for "
            f"weights), {held['step_s'] * 1e3:.0f} ms with the activations' peak kept free")
    step = steady_step_s(report)
    if step:
        line += f"; measured {step * 1e3:.0f} ms ({b['step_s'] / step:.0%} of it)"
    if resident_step_ms:
        target = 1.1 * max(resident_step_ms / 1e3, b["streamed_bytes"] / (rate_gbps * 1e9))
        line += f"; target {target * 1e3:.0f} ms{' is below the bound' if target < b['step_s'] else ''}"
    return line


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report")
    ap.add_argument("--budget", type=float, required=True, help="--max-vram of the run, GiB")
    ap.add_argument("--rate", type=float, default=53.5, help="pinned host-to-device GB/s")
    ap.add_argument("--resident-step-ms", type=float, help="the eager plan's steady step")
    args = ap.parse_args()
    with open(args.report) as f:
        report = json.load(f)
    print(describe(report, args.budget, args.rate, args.resident_step_ms))


if __name__ == "__main__":
    main()
