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

--ring-mib also simulates Ebb's own schedule for the pass as placed (simulate()) with upload
rings of the given sizes: what holding more blocks ahead would gain at the same residency.

    streaming_bound.py REPORT.json --budget GIB [--rate GBPS] [--resident-step-ms MS]
                       [--ring-mib MIB ...]
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
        seen, held, inside = set(), 0, 0.0
        for count in range(1, n + 1):
            a = pass_[(first + count - 1) % n]
            if a["block"] not in seen:
                seen.add(a["block"])
                held += a["bytes"]
            inside += compute[(first + count - 1) % n]
            copies = max(0, held - room) / rate_bytes_per_s
            step = total - inside + max(inside, copies)
            if step > best["step_s"]:
                best = {"step_s": step, "first": first, "count": count, "bytes": held,
                        "compute_s": inside}
    best["room_bytes"] = room
    best["streamed_bytes"] = sum({a["block"]: a["bytes"] for a in pass_ if not a["resident"]}.values())
    best["compute_total_s"] = total
    return best


def simulate(pass_, ring_bytes, rate_bytes_per_s):
    """The steady step of Ebb's streaming schedule for the pass as placed (its `resident` flags)
    with an upload ring of `ring_bytes`: at each acquisition the window runs ahead while the
    distinct streamed blocks from it fit in the ring; a block's copy starts, in order on one
    copy queue, once the acquisition that brought it into the window has started computing
    (the ring's room is freed by the blocks before it); a block still in the window from its
    last acquisition is not copied again; compute waits for its block's copy. Three passes are
    run and the last is timed. Returns (step seconds, bytes copied in that pass)."""
    n = len(pass_)
    acq = pass_ * 3
    start = [0.0] * len(acq)
    end = [0.0] * len(acq)
    copy_free = 0.0
    last = {}
    copied = 0
    for k, a in enumerate(acq):
        ready = end[k - 1] if k else 0.0
        if not a["resident"]:
            first, seen, held = k, set(), 0
            for i in range(k, max(-1, k - n), -1):
                b = acq[i]
                if not b["resident"] and b["block"] not in seen:
                    seen.add(b["block"])
                    held += b["bytes"]
                    if held > ring_bytes:
                        break
                first = i
            previous = last.get(a["block"])
            if previous is None or previous < first - 1:
                gate = start[first] if first < k else ready
                copy_free = max(copy_free, gate) + a["bytes"] / rate_bytes_per_s
                ready = max(ready, copy_free)
                copied += a["bytes"] if k >= 2 * n else 0
            last[a["block"]] = k
        start[k] = ready
        end[k] = ready + (a["compute_s"] or 0.0)
    return end[-1] - end[2 * n - 1], copied


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
    ap.add_argument("--ring-mib", type=float, nargs="*", default=[],
                    help="also simulate the step as placed with upload rings of these sizes")
    args = ap.parse_args()
    with open(args.report) as f:
        report = json.load(f)
    print(describe(report, args.budget, args.rate, args.resident_step_ms))
    for mib in args.ring_mib:
        step, copied = simulate(report["measured_pass"], mib * 2**20, args.rate * 1e9)
        print(f"simulated with a {mib:.0f} MiB ring: {step * 1e3:.1f} ms, {copied / 2**30:.2f} GiB copied")


if __name__ == "__main__":
    main()
