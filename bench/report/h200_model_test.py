"""Unit tests of h200_model.launch_bound's issue term on hand-made inputs, answers worked out by
hand: a pipelined hot loop (steady path), and a hot loop that is one iteration per logit tile
(no steady path; every iteration through the hot block runs the epilogue).

Run: python3 -m unittest h200_model_test   (in bench/report; no GPU, no build needed)
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h200_model as M  # noqa: E402

PER_SM_CLK = M.SMS * M.CLOCK_HZ * M.ISSUE_PER_CLK_SM  # warp instructions per second, all SMs


def emulated(**kw):
    e = {"kernel": "grad_wgmma_kernel<X>", "n": 256, "m": 256, "grid": 132, "tensor_macs": 0,
         "mma_instructions": 0, "wgmma_instructions": 0, "tma_bytes": 0,
         "smem_load_wavefronts": 0, "smem_store_wavefronts": 0, "gmem_load_sectors": 0,
         "gmem_store_sectors": 0}
    e.update(kw)
    return e


class IssueTermTest(unittest.TestCase):
    # target = emulated shape x 4 (n m x 16), grid 132: one full wave, no quantisation
    target = {"n": 1024, "m": 1024, "grid": 132, "block": 384}
    cfg = {"block_m": 64, "block_n": 128, "passes": 1}

    def seconds(self, hot, wgmma=100):
        # launch_bound returns the largest term only: with tensor_macs = 1 and no memory traffic
        # the issue term is that one
        e = emulated(wgmma_instructions=wgmma, tensor_macs=1)
        s, term = M.launch_bound(e, self.target, {"hot_loop": hot, "tile_loop": None}, self.cfg,
                                 "bf16")
        self.assertEqual(term, "issue")
        return s

    def test_per_tile_hot_loop(self):
        hot = {"instructions": 2000, "tensor": 36, "gmma": 36, "path_steady": None,
               "path_epilogue": {"instructions": 1000, "tensor": 8}}
        # executed warp tensor instructions: 4 x 100 x 16 (scale) = 6400, one issue each; tiles
        # (1024 / 64) x (1024 / 128) = 128, x 8 consumer warps x (1000 - 8)
        want = (6400 + 128 * 8 * 992) / PER_SM_CLK
        self.assertAlmostEqual(self.seconds(hot), want, delta=want * 1e-9)

    def test_steady_hot_loop(self):
        hot = {"instructions": 2000, "tensor": 36, "gmma": 36,
               "path_steady": {"instructions": 40, "tensor": 4},
               "path_epilogue": {"instructions": 300, "tensor": 4}}
        # 6400 x 40 / 4 + 128 tiles x 8 warps x (300 - 40)
        want = (6400 * 10 + 128 * 8 * 260) / PER_SM_CLK
        self.assertAlmostEqual(self.seconds(hot), want, delta=want * 1e-9)

    def test_whole_body_without_paths(self):
        hot = {"instructions": 2000, "tensor": 40, "gmma": 40, "path_steady": None,
               "path_epilogue": None}
        want = 6400 * 50 / PER_SM_CLK  # the whole static body's ratio, no tile loop
        self.assertAlmostEqual(self.seconds(hot), want, delta=want * 1e-9)


if __name__ == "__main__":
    unittest.main()
