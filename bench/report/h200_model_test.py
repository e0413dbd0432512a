"""Unit tests of h200_model.launch_bound's issue term on hand-made inputs, answers worked out by
hand: a pipelined hot loop (steady path), and a hot loop that is one iteration per logit tile
(no steady path; every iteration through the hot block runs the epilogue); the L2 term of a
kernel with a resident operand.

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


class ResidentTmaTest(unittest.TestCase):
    """The L2 term of a kernel whose first tensor map's operand stays resident: those bytes scale
    with the blocks, the streamed ones with the tiles."""

    target = {"n": 1024, "m": 1024, "grid": 264, "block": 384, "d": 512}

    def l2_seconds(self, cfg):
        # 132 blocks copied 1 MB through their first map (x) and 3 MB through the other (y)
        e = emulated(tma_bytes=4_000_000, tma_first_map_bytes=1_000_000)
        s, term = M.launch_bound(e, self.target, None, cfg, "bf16")
        self.assertEqual(term, "l2")  # (smem: the same bytes / 128 per clock per SM, less)
        return s

    def test_resident_operand_scales_with_blocks(self):
        cfg = {"block_m": 64, "block_n": 128, "passes": 1, "resident_depth": 512}
        # y: 3 MB x 16 (n m scale); x: 1 MB x 264 / 132 blocks
        want = (3e6 * 16 + 1e6 * 2) / M.L2_BYTES_PER_S
        self.assertAlmostEqual(self.l2_seconds(cfg), want, delta=want * 1e-9)

    def test_streaming_kernel_scales_all_bytes_with_tiles(self):
        for depth in (0, 256):  # no resident operand, or not at d = 512
            cfg = {"block_m": 64, "block_n": 128, "passes": 1, "resident_depth": depth}
            want = 4e6 * 16 / M.L2_BYTES_PER_S
            self.assertAlmostEqual(self.l2_seconds(cfg), want, delta=want * 1e-9)


if __name__ == "__main__":
    unittest.main()
