#!/usr/bin/env python3
"""streaming_bound.py on passes small enough to bound by hand."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import streaming_bound  # noqa: E402

MB = 1e6
RATE = 1e9  # 1 MB per ms


def acquisition(block, mb, ms, others=0, resident=False):
    return {"block": block, "bytes": int(mb * MB), "compute_s": ms / 1e3,
            "others_bytes": others, "resident": resident}


class BoundTest(unittest.TestCase):
    def test_room_for_every_weight_leaves_the_compute(self):
        pass_ = [acquisition("a", 5, 3), acquisition("b", 5, 4)]
        b = streaming_bound.bound(pass_, 10 * MB, RATE)
        self.assertAlmostEqual(b["step_s"], 7e-3)

    def test_the_stretch_whose_copies_outlast_its_compute_sets_the_bound(self):
        # Light compute on heavy weights in the middle: of its 20 MB, 12 fit beforehand, 8 MB
        # must be copied while it runs (8 ms against 2 ms of compute), and the ends take 20 ms.
        pass_ = [acquisition("a", 1, 10), acquisition("b", 10, 1), acquisition("c", 10, 1),
                 acquisition("d", 1, 10)]
        b = streaming_bound.bound(pass_, 12 * MB, RATE)
        self.assertAlmostEqual(b["step_s"], 28e-3)
        self.assertEqual((b["first"], b["count"]), (1, 2))

    def test_a_block_acquired_twice_in_a_stretch_counts_once(self):
        pass_ = [acquisition("a", 10, 1), acquisition("b", 10, 1), acquisition("a", 10, 1)]
        b = streaming_bound.bound(pass_, 0, RATE)
        # Counted twice, the whole pass would need 30 ms of copies; the bound comes from b and
        # the second a copied after the first a computed: 20 ms of copies and 1 ms before them.
        self.assertAlmostEqual(b["step_s"], 21e-3)

    def test_the_lower_bound_leaves_room_beside_the_least_held_by_the_rest(self):
        pass_ = [acquisition("a", 10, 1, others=int(4 * MB)),
                 acquisition("b", 10, 1, others=int(2 * MB), resident=True)]
        b = streaming_bound.lower_bound(pass_, 12 * MB, RATE)
        self.assertEqual(b["room_bytes"], 10 * MB)
        self.assertAlmostEqual(b["step_s"], 10e-3)
        self.assertEqual(b["streamed_bytes"], 10 * MB)

    def test_describe_compares_with_the_measured_step_and_the_target(self):
        pass_ = [acquisition("a", 1, 10), acquisition("b", 10, 1), acquisition("c", 10, 1),
                 acquisition("d", 1, 10)]
        marks = [{"event": "mark", "component": "step", "t": t} for t in (0.0, 0.05, 0.08, 0.11)]
        report = {"measured_pass": pass_, "events": marks}
        line = streaming_bound.describe(report, 12 * MB / 2**30, 1.0, resident_step_ms=22)
        self.assertIn("bound 28 ms (stretch b .. c", line)
        self.assertIn("measured 30 ms (93% of it)", line)
        self.assertIn("target 24 ms is below the bound", line)

    def test_the_simulated_step_is_the_compute_when_every_block_is_resident(self):
        pass_ = [acquisition("a", 10, 3, resident=True), acquisition("b", 10, 4, resident=True)]
        step, copied = streaming_bound.simulate(pass_, 0, RATE)
        self.assertAlmostEqual(step, 7e-3)
        self.assertEqual(copied, 0)

    def test_a_ring_of_one_block_copies_each_after_the_other_computed(self):
        # x's copy cannot start before y computed and the other way round: 2 × (10 + 1) ms.
        pass_ = [acquisition("x", 10, 1), acquisition("y", 10, 1)]
        step, copied = streaming_bound.simulate(pass_, 10 * MB, RATE)
        self.assertAlmostEqual(step, 22e-3)
        self.assertEqual(copied, 20 * MB)

    def test_a_ring_of_two_blocks_copies_back_to_back(self):
        pass_ = [acquisition("x", 10, 1), acquisition("y", 10, 1), acquisition("z", 10, 1)]
        step, copied = streaming_bound.simulate(pass_, 20 * MB, RATE)
        self.assertAlmostEqual(step, 30e-3)
        self.assertEqual(copied, 30 * MB)

    def test_blocks_that_all_fit_in_the_ring_stay(self):
        pass_ = [acquisition("x", 10, 1), acquisition("y", 10, 1)]
        step, copied = streaming_bound.simulate(pass_, 20 * MB, RATE)
        self.assertAlmostEqual(step, 2e-3)
        self.assertEqual(copied, 0)

    def test_a_block_still_in_the_window_is_not_copied_again(self):
        # a, b, a, c: with room for two blocks, a stays on the device while b computes, and
        # while c computes too (the next pass's a is next), so only b and c are copied.
        pass_ = [acquisition("a", 10, 5), acquisition("b", 10, 5), acquisition("a", 10, 5),
                 acquisition("c", 10, 5)]
        self.assertEqual(streaming_bound.simulate(pass_, 20 * MB, RATE)[1], 20 * MB)
        self.assertEqual(streaming_bound.simulate(pass_, 10 * MB, RATE)[1], 40 * MB)

    def test_a_report_without_a_measured_pass_says_so(self):
        self.assertIn("no measured pass", streaming_bound.describe({"events": []}, 4, 53.5))


if __name__ == "__main__":
    unittest.main()
