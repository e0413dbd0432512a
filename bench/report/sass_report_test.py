"""Unit tests of sass_report.py on small synthetic SASS (cuobjdump -sass layout), with answers
worked out by hand: parsing, classes, loops, the hot-loop choice, iteration paths, the tile-loop
epilogue, launch-configuration rows and the CTAs-per-SM arithmetic.

Run: python3 -m unittest bench/report/sass_report_test.py   (no cuobjdump, no GPU needed)
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sass_report as S  # noqa: E402


def sass(name: str, body: list[str], arch: str = "sm_90") -> str:
    """cuobjdump -sass text of one function; one instruction per 0x10, encodings as comments."""
    lines = ["", "Fatbin elf code:", "================", f"arch = {arch}", "",
             f"\tcode for {arch}", f"\t\tFunction : {name}",
             '\t.headerflags\t@"EF_CUDA_SM90 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM90)"']
    for i, text in enumerate(body):
        lines.append(f"        /*{i * 16:04x}*/{text:>60} ;  /* 0x000fe20000000f00 */")
        lines.append(" " * 94 + "/* 0x000fe20000000f00 */")
    lines.append("\t\t..........")
    return "\n".join(lines) + "\n"


# A tile loop [0x20, 0xe0] around a chunk loop [0x40, 0x80] with 2 HMMA and a store loop
# [0xb0, 0xc0] without; then a second tensor loop [0x100, 0x120] with 1 HMMA, then 4 HMMA in
# straight-line code (no loop: never the hot block).
NESTED = [
    "S2R R0, SR_TID.X",                          # 0x000
    "MOV R1, RZ",                                # 0x010
    "IADD3 R1, R1, 0x1, RZ",                     # 0x020 tile loop head
    "ISETP.GE.AND P0, PT, R1, 0x4, PT",          # 0x030
    "LDSM.16.M88.4 R4, [R2]",                    # 0x040 chunk loop head
    "HMMA.16816.F32.BF16 R8, R4, R6, R8",        # 0x050
    "HMMA.16816.F32.BF16 R12, R4, R7, R12",      # 0x060
    "ISETP.NE.AND P1, PT, R3, RZ, PT",           # 0x070
    "@P1 BRA 0x40",                              # 0x080 chunk loop back-edge
    "FFMA R8, R8, R9, R10",                      # 0x090
    "MUFU.EX2 R8, R8",                           # 0x0a0
    "STS [R2], R8",                              # 0x0b0 store loop head
    "@P2 BRA 0xb0",                              # 0x0c0
    "NOP",                                       # 0x0d0
    "@!P0 BRA 0x20",                             # 0x0e0 tile loop back-edge
    "LDS R4, [R2]",                              # 0x0f0
    "HMMA.16816.F32.BF16 R8, R4, R6, R8",        # 0x100 second tensor loop head
    "@P3 BRA 0x100",                             # 0x110
    "@!PT LDS RZ, [RZ]",                         # 0x120 never executes
    "@P4 BRA 0x100",                             # 0x130 second back-edge to 0x100: merged
    "HMMA.16816.F32.BF16 R8, R4, R6, R8",        # 0x140
    "HMMA.16816.F32.BF16 R8, R4, R6, R8",        # 0x150
    "HMMA.16816.F32.BF16 R8, R4, R6, R8",        # 0x160
    "HMMA.16816.F32.BF16 R8, R4, R6, R8",        # 0x170
    "EXIT",                                      # 0x180
]

# One pipelined chunk loop [0x10, 0xc0]: skip the prefetch on the last trip, or load through a
# slow (2 LDG) or a fast (1 LDGSTS) variant, then the MMA block.
VARIANTS = [
    "MOV R0, RZ",                                # 0x000
    "IADD3 R0, R0, 0x1, RZ",                     # 0x010 head
    "@P0 BRA 0x90",                              # 0x020 last trip: no prefetch
    "@!P1 BRA 0x70",                             # 0x030 variant select
    "LDG.E R4, desc[UR4][R2.64]",                # 0x040 slow variant
    "LDG.E R5, desc[UR4][R2.64+0x4]",            # 0x050
    "BRA 0x80",                                  # 0x060 unconditional: no fall-through
    "LDGSTS.E.BYPASS.128 [R6], desc[UR4][R2.64]",  # 0x070 fast variant
    "LDGDEPBAR",                                 # 0x080
    "LDSM.16.M88.4 R8, [R6]",                    # 0x090 hot block
    "HMMA.16816.F32.BF16 R12, R8, R10, R12",     # 0x0a0
    "HMMA.16816.F32.BF16 R16, R8, R11, R16",     # 0x0b0
    "@P2 BRA 0x10",                              # 0x0c0 back-edge
    "EXIT",                                      # 0x0d0
]

# The tensor-core forward's shape: one loop over (tile, chunk) items [0x10, 0xb0] whose last chunk
# of a tile runs the epilogue (3 instructions with a MUFU) inside the same loop.
FUSED = [
    "MOV R0, RZ",                                # 0x000
    "LDGSTS.E.BYPASS.128 [R6], desc[UR4][R2.64]",  # 0x010 head: the prefetch
    "LDSM.16.M88.4 R8, [R6]",                    # 0x020 hot block
    "HMMA.16816.F32.BF16 R12, R8, R10, R12",     # 0x030
    "HMMA.16816.F32.BF16 R16, R8, R11, R16",     # 0x040
    "@!P0 BRA 0x90",                             # 0x050 not the tile's last chunk
    "FMUL R12, R12, R20",                        # 0x060 epilogue
    "MUFU.EX2 R12, R12",                         # 0x070
    "FADD R21, R21, R12",                        # 0x080
    "IADD3 R0, R0, 0x1, RZ",                     # 0x090
    "ISETP.NE.AND P1, PT, R0, R1, PT",           # 0x0a0
    "@P1 BRA 0x10",                              # 0x0b0 back-edge
    "EXIT",                                      # 0x0c0
]


# A warp-specialised consumer loop: it waits on the stage's mbarrier, runs the wgmmas and frees
# the stage; the tile's epilogue (a global load of a norm, MUFU) sits behind a branch; the copies
# are another warp's.
CONSUMER = [
    "MOV R0, RZ",                                       # 0x000
    "SYNCS.PHASECHK.TRANS64.TRYWAIT P2, [UR4], R3",    # 0x010 head: wait for the stage
    "@!P2 BRA 0x10",                                    # 0x020 (the try_wait spin)
    "WARPGROUP.ARRIVE",                                 # 0x030 hot block
    "HGMMA.64x128x16.F32.BF16 R24, gdesc[UR8], R24",    # 0x040
    "HGMMA.64x128x16.F32.BF16 R24, gdesc[UR12], R24",   # 0x050
    "SYNCS.ARRIVE.TRANS64.RED.A1T0 RZ, [UR6], RZ",      # 0x060 free the stage
    "@!P0 BRA 0xb0",                                    # 0x070 not the tile's last chunk
    "LDG.E R20, desc[UR4][R8.64]",                      # 0x080 epilogue
    "MUFU.EX2 R12, R24",                                # 0x090
    "FADD R21, R21, R12",                               # 0x0a0
    "IADD3 R0, R0, 0x1, RZ",                            # 0x0b0
    "ISETP.NE.AND P1, PT, R0, R1, PT",                  # 0x0c0
    "@P1 BRA 0x10",                                     # 0x0d0 back-edge
    "EXIT",                                             # 0x0e0
]


# A consumer loop [0x10, 0xa0] whose mbarrier wait retries out of line, as ptxas lays it out: the
# retry block 0xc0 spins on itself and branches back to 0x30, where the fast path continues.
# That branch is backward by its offsets but no back-edge (0x30 does not dominate 0xc0: the
# retry is entered from 0x20), so [0x30, 0xf0] is no loop.
COLD_RETRY = [
    "MOV R0, RZ",                                       # 0x000
    "SYNCS.PHASECHK.TRANS64.TRYWAIT P2, [UR4], R3",    # 0x010 head
    "@!P2 BRA 0xc0",                                    # 0x020 to the retry, out of line
    "WARPGROUP.ARRIVE",                                 # 0x030 where the retry returns
    "HGMMA.64x128x16.F32.BF16 R24, gdesc[UR8], R24",    # 0x040
    "HGMMA.64x128x16.F32.BF16 R24, gdesc[UR12], R24",   # 0x050
    "MUFU.EX2 R12, R24",                                # 0x060 (the tile's epilogue)
    "IADD3 R0, R0, 0x1, RZ",                            # 0x070
    "ISETP.NE.AND P1, PT, R0, R1, PT",                  # 0x080
    "@P1 BRA 0x10",                                     # 0x090 back-edge
    "EXIT",                                             # 0x0a0
    "NOP",                                              # 0x0b0
    "YIELD",                                            # 0x0c0 the retry
    "SYNCS.PHASECHK.TRANS64.TRYWAIT P2, [UR4], R3",    # 0x0d0
    "@!P2 BRA 0xc0",                                    # 0x0e0 (a real loop: it spins)
    "BRA 0x30",                                         # 0x0f0 back to the fast path
]


def functions(body, name="_Z1kv"):
    arch, fns = S.parse_sass(sass(name, body))
    return arch, fns[name]


class ParseTest(unittest.TestCase):
    def test_instructions(self):
        arch, ins = functions(NESTED)
        self.assertEqual(arch, "sm_90")
        self.assertEqual(len(ins), len(NESTED))
        self.assertEqual((ins[8].offset, ins[8].pred, ins[8].opcode, ins[8].operands),
                         (0x80, "@P1", "BRA", "0x40"))
        self.assertEqual(ins[5].opcode, "HMMA.16816.F32.BF16")
        self.assertEqual(ins[18].pred, "@!PT")
        self.assertFalse(S.counted(ins[18]))  # @!PT
        self.assertFalse(S.counted(ins[13]))  # NOP

    def test_res_usage(self):
        text = (" Function _Z1kv:\n  REG:163 STACK:16 SHARED:1424 LOCAL:8 CONSTANT[0]:736 "
                "TEXTURE:0\n Function _Z1gv:\n  REG:32 STACK:0 SHARED:0 LOCAL:0\n")
        usage = S.parse_res_usage(text)
        self.assertEqual(usage["_Z1kv"]["REG"], 163)
        self.assertEqual(usage["_Z1kv"]["SHARED"], 1424)
        self.assertEqual(usage["_Z1kv"]["CONSTANT[0]"], 736)
        self.assertEqual(usage["_Z1gv"]["STACK"], 0)

    def test_reserved_smem(self):
        self.assertEqual(S.split_static_smem("sm_90", 1424), (400, 1024))
        self.assertEqual(S.split_static_smem("sm_90", 0), (0, 0))
        self.assertEqual(S.split_static_smem("sm_80", 400), (400, 0))


class ClassifyTest(unittest.TestCase):
    def test_classes(self):
        expect = {
            "HMMA.16816.F32.BF16": "tensor", "HGMMA.64x128x16.F32.BF16": "tensor",
            "IMMA.16832.S8.S8": "tensor", "LDSM.16.M88.4": "ldsm",
            "LDGSTS.E.BYPASS.128.ZFILL": "async_copy", "LDGDEPBAR": "async_copy",
            "DEPBAR.LE": "async_copy", "UTMALDG.2D": "async_copy",
            "SYNCS.ARRIVE.TRANS64.RED.A1T0": "async_copy", "LDS.U16": "lds", "STS.128": "sts",
            "LDG.E.U16": "ldg_stg", "STG.E": "ldg_stg", "LD.E": "ldg_stg", "STL": "local",
            "FFMA": "fp32", "FMNMX": "fp32", "FSETP.GT.AND": "fp32", "FCHK": "fp32",
            "MUFU.EX2": "mufu", "SHFL.BFLY": "shfl", "BAR.SYNC.DEFER_BLOCKING": "bar",
            "WARPSYNC": "bar", "BSSY": "branch", "BSYNC": "branch", "BRA": "branch",
            "EXIT": "branch", "CALL.REL.NOINC": "branch", "RET.REL.NODEC": "branch",
            "IMAD.WIDE.U32": "integer", "IADD3": "integer", "LOP3.LUT": "integer",
            "UIADD3": "integer", "USHF.L.U32": "integer", "ULDC.64": "integer",
            "S2R": "integer", "CS2R": "integer", "VIADD": "integer", "LDC": "integer",
            "F2FP.BF16.F32.PACK_AB": "conversion", "I2F": "conversion", "F2I.TRUNC": "conversion",
            "DFMA": "other",
        }
        for opcode, cls in expect.items():
            self.assertEqual(S.classify(opcode), cls, opcode)


class LoopTest(unittest.TestCase):
    def test_loops(self):
        _, ins = functions(NESTED)
        loops = S.find_loops(ins)
        got = [(l.start, l.end, l.instructions, l.tensor) for l in loops]
        # [0x20, 0xe0]: 13 slots less the NOP; [0x100, 0x130]: 4 slots less the @!PT LDS
        self.assertEqual(got, [(0x20, 0xE0, 12, 2), (0x40, 0x80, 5, 2), (0xB0, 0xC0, 2, 0),
                               (0x100, 0x130, 3, 1)])
        self.assertEqual(loops[3].latches, [0x110, 0x130])

    def test_blocks(self):
        _, ins = functions(NESTED)
        starts = [b.start for b in S.basic_blocks(ins)]
        self.assertEqual(starts, [0x0, 0x20, 0x40, 0x90, 0xB0, 0xD0, 0xF0, 0x100, 0x120, 0x140])

    def test_hot_loop_and_tile_loop(self):
        _, ins = functions(NESTED)
        r = S.analyse_function(ins)
        h = r["hot_loop"]
        # the 4 straight-line HMMA are in no loop; the 2-HMMA block beats the 1-HMMA loop
        self.assertEqual((h["start"], h["end"], h["instructions"], h["tensor"]),
                         ("0x0040", "0x0080", 5, 2))
        self.assertEqual(h["classes"]["ldsm"], 1)
        self.assertEqual(h["classes"]["integer"], 1)
        self.assertEqual(h["classes"]["branch"], 1)
        self.assertAlmostEqual(h["tensor_share"], 0.4)
        self.assertEqual(h["depth"], 1)
        self.assertEqual(h["hot_block"], {"start": "0x0040", "end": "0x0080", "instructions": 5,
                                          "tensor": 2})
        self.assertEqual(h["path_min"]["instructions"], 5)
        self.assertEqual(h["path_max"]["instructions"], 5)
        self.assertIsNone(h["path_steady"])  # no global load in the loop
        self.assertEqual([(t["start"], t["end"], t["tensor"]) for t in r["tensor_loops"]],
                         [("0x0020", "0x00e0", 2), ("0x0040", "0x0080", 2),
                          ("0x0100", "0x0130", 1)])
        t = r["tile_loop"]
        self.assertEqual((t["start"], t["end"], t["instructions"]), ("0x0020", "0x00e0", 12))
        # outside the chunk loop: IADD3 ISETP | FFMA MUFU STS BRA(store loop, one trip) | BRA
        self.assertEqual(t["epilogue_instructions"], 7)
        e = t["epilogue_classes"]
        self.assertEqual((e["integer"], e["fp32"], e["mufu"], e["sts"], e["branch"]),
                         (2, 1, 1, 1, 2))
        self.assertEqual(r["sass_instructions"], len(NESTED) - 2)  # less NOP and @!PT
        self.assertEqual(r["classes"]["tensor"], 7)

    def test_iteration_paths(self):
        _, ins = functions(VARIANTS)
        h = S.analyse_function(ins)["hot_loop"]
        self.assertEqual((h["start"], h["end"], h["instructions"], h["tensor"]),
                         ("0x0010", "0x00c0", 12, 2))
        c = h["classes"]
        self.assertEqual((c["ldg_stg"], c["async_copy"], c["ldsm"], c["integer"], c["branch"]),
                         (2, 2, 1, 1, 4))
        self.assertAlmostEqual(h["tensor_share"], 0.1667)
        # min: head (2) + MMA block (4); max: head + select + slow (3) + LDGDEPBAR + MMA;
        # steady: head + select + fast (1) + LDGDEPBAR + MMA
        self.assertEqual(h["path_min"], {"instructions": 6, "tensor": 2, "tensor_share": 0.3333})
        self.assertEqual(h["path_max"]["instructions"], 11)
        self.assertEqual(h["path_steady"]["instructions"], 9)
        self.assertIsNone(S.analyse_function(ins)["tile_loop"])

    def test_epilogue_path(self):
        _, ins = functions(FUSED)
        h = S.analyse_function(ins)["hot_loop"]
        # steady: every block but the epilogue (8); epilogue: the same with its 3 instructions
        self.assertEqual(h["path_steady"]["instructions"], 8)
        self.assertEqual(h["path_epilogue"]["instructions"], 11)
        self.assertEqual(h["path_epilogue"]["tensor"], 2)
        # a loop without MUFU has no epilogue path
        _, ins = functions(VARIANTS)
        self.assertIsNone(S.analyse_function(ins)["hot_loop"]["path_epilogue"])

    def test_consumer_steady_path(self):
        _, ins = functions(CONSUMER)
        h = S.analyse_function(ins)["hot_loop"]
        # steady: the iteration without the epilogue (wait, branch, hot block 5, branch, 3);
        # epilogue: the same plus its 3 instructions; min = steady here
        self.assertEqual(h["path_steady"], {"instructions": 10, "tensor": 2, "tensor_share": 0.2})
        self.assertEqual(h["path_epilogue"]["instructions"], 13)
        self.assertEqual(h["path_min"]["instructions"], 10)
        self.assertEqual(h["gmma"], 2)
        _, ins = functions(FUSED)
        self.assertEqual(S.analyse_function(ins)["hot_loop"]["gmma"], 0)  # HMMA: mma.sync

    def test_cold_code_is_no_loop(self):
        _, ins = functions(COLD_RETRY)
        got = [(l.start, l.end) for l in S.find_loops(ins)]
        self.assertEqual(got, [(0x10, 0x90), (0xC0, 0xE0)])
        h = S.analyse_function(ins)["hot_loop"]
        self.assertEqual((h["start"], h["end"], h["tensor"]), ("0x0010", "0x0090", 2))
        # the iteration: head 2 + hot block 7 (WARPGROUP.ARRIVE .. BRA); every one has the MUFU
        self.assertEqual(h["path_epilogue"], {"instructions": 9, "tensor": 2,
                                              "tensor_share": 0.2222})
        self.assertIsNone(h["path_steady"])

    def test_no_loop(self):
        _, ins = functions(["HMMA.16816.F32.BF16 R8, R4, R6, R8", "EXIT"])
        r = S.analyse_function(ins)
        self.assertIsNone(r["hot_loop"])
        self.assertEqual(r["tensor_loops"], [])


class OccupancyTest(unittest.TestCase):
    def test_register_bound(self):
        # 163 regs -> 5216 per warp -> 5376 allocated; 16384 // 5376 = 3 warps per partition,
        # 12 per SM; a 256-thread CTA is 8 warps -> 1.  smem: 37888 + 1024 = 38912 -> 6.
        self.assertEqual(S.ctas_per_sm("sm_90", 163, 256, 37888), (1, "registers"))
        # 96 regs -> 3072 per warp; 5 per partition, 20 per SM -> 2 CTAs of 8 warps
        self.assertEqual(S.ctas_per_sm("sm_90", 96, 256, 0), (2, "registers"))

    def test_smem_bound(self):
        # 100000 + 1024 = 101024 -> 101120 (128 B units); 233472 // 101120 = 2; regs 32 -> 16 CTAs
        # of 4 warps; threads 2048 // 128 = 16
        self.assertEqual(S.ctas_per_sm("sm_90", 32, 128, 100000), (2, "smem"))
        # on an A100 (164 KB): 167936 // 101120 = 1
        self.assertEqual(S.ctas_per_sm("sm_80", 32, 128, 100000), (1, "smem"))

    def test_thread_and_cta_bounds(self):
        self.assertEqual(S.ctas_per_sm("sm_90", 32, 256, 0), (8, "registers+threads"))
        self.assertEqual(S.ctas_per_sm("sm_90", 24, 256, 0), (8, "threads"))
        self.assertEqual(S.ctas_per_sm("sm_90", 16, 32, 0), (32, "ctas"))

    def test_limits(self):
        self.assertEqual(S.ctas_per_sm("sm_90", 32, 256, 232448)[0], 0)  # + 1 KB > 227 KB
        self.assertEqual(S.ctas_per_sm("sm_90", 32, 256, 231424)[0], 1)  # exactly 227 KB
        self.assertEqual(S.ctas_per_sm("sm_80", 32, 256, 180000)[0], 0)  # > 163 KB
        self.assertEqual(S.ctas_per_sm("sm_90", 32, 2048, 0)[0], 0)      # > 1024 threads
        self.assertEqual(S.ctas_per_sm("sm_90", 255, 256, 0)[0], 1)      # 8192/warp: 2/partition
        self.assertEqual(S.ctas_per_sm("sm_90", 32, None, 0), (None, None))
        self.assertEqual(S.ctas_per_sm("sm_75", 32, 256, 0), (None, None))


class NameTest(unittest.TestCase):
    def test_short_name(self):
        self.assertEqual(S.short_name(
            "void flashnce::kernels::forward_main_kernel<flashnce::kernels::MmaTraits<"
            "flashnce::kernels::bfloat16_t> >(flashnce::kernels::ForwardParams)"),
            "forward_main_kernel<MmaTraits<bfloat16_t>>")
        self.assertEqual(S.short_name("void flashnce::kernels::scale_reduce_kernel<256>("
                                      "flashnce::kernels::BackwardParams, long)"),
                         "scale_reduce_kernel<256>")
        self.assertEqual(S.short_name("k0(float*)"), "k0")
        self.assertEqual(S.short_name("void (anonymous namespace)::f<int, 4>(int)"), "f<int, 4>")

    def test_rows(self):
        kernel = {"name": "grad_kernel<MmaTraits<bfloat16_t>>", "mangled": "_Zg", "object": "obj",
                  "arch": "sm_90", "registers": 194, "spill_bytes": 0, "static_smem_bytes": 0,
                  "hot_loop": None}
        other = dict(kernel, name="counts_kernel<256>", mangled="_Zc", registers=33)
        configs = [{"kernel": "grad_kernel<MmaTraits<bfloat16_t> >", "config": "mma_bf16 d=512",
                    "threads": 256, "dynamic_smem_bytes": 180000, "d": 512},
                   {"kernel": "grad_kernel<MmaTraits<bfloat16_t>>", "config": "mma_bf16 d=128",
                    "threads": 256, "dynamic_smem_bytes": 70000, "d": 128},
                   {"kernel": "missing<int>", "config": "x", "threads": 32,
                    "dynamic_smem_bytes": 0, "d": None}]
        rows, unmatched = S.build_rows([kernel, other], configs)
        self.assertEqual([(r["name"], r["config"]) for r in rows],
                         [("counts_kernel<256>", "obj"),
                          ("grad_kernel<MmaTraits<bfloat16_t>>", "mma_bf16 d=128"),
                          ("grad_kernel<MmaTraits<bfloat16_t>>", "mma_bf16 d=512")])
        self.assertIsNone(rows[0]["ctas_per_sm"])
        self.assertIsNone(rows[0]["smem_bytes"])
        self.assertEqual((rows[2]["smem_bytes"], rows[2]["ctas_per_sm"]), (180000, 1))
        self.assertEqual([c["kernel"] for c in unmatched], ["missing<int>"])
        text = S.markdown({"kernels": rows})
        self.assertIn("| `grad_kernel<MmaTraits<bfloat16_t>>` | mma_bf16 d=512 | sm_90 | 194 |",
                      text)


if __name__ == "__main__":
    unittest.main()
