"""An upper bound on what the fused kernels can reach on an H200, from the kernel report.

Nothing here is a measurement: it turns counts (what the kernels execute, from the emulator, and
what their machine code looks like, from the static SASS report) into the time those counts need
at least on an H200 SXM, and that into TFLOP/s at least as high as any real run can reach.  A change
that lowers a bound has made the kernels worse; one that raises it has removed waste.  Speed claims
still come only from bench/ on a GPU.

Inputs (keys of the merged kernel-report JSON):
  launches[]         counted emulated runs at a small shape (n = 256): per kernel launch its tensor
                     MACs and mma instructions, shared-memory wavefronts, global sectors (the
                     forwards with one column split, so that a block sweeps its row tiles' every
                     column tile as blocks do at the target sizes: kernel_counters.cpp);
  target_launches[]  dry runs of the same losses at the target sizes: the grids, blocks and shared
                     memory the host dispatch really chooses there;
  launch_configs[]   per kernel x configuration: block, logit tile (block_m x block_n), passes;
  kernels[]          static, per kernel x configuration x arch: the hot loop's instructions and
                     tensor instructions, the tile loop's instructions outside it.

Model, per kernel launch at the target size (n, m, d), counts scaled from the emulated shape by
(n m) / (n_e m_e) (the main kernels' work is proportional to the number of logit tiles; the small
kernels' traffic by (n + m) / (n_e + m_e), the counts pre-pass's by n m; the gradient kernels'
global stores by grid / grid_e: each block writes its rows' gradient, or its column split's f32
partials, once, whatever the number of tiles it sweeps (at the small shape the split partials are
f32 where the target writes 16-bit gradients: an overcount, so still a bound)):
  tensor  = executed MACs x 2 / (the path's tensor rate): mma.sync at half of wgmma's dense rate
            (2048 bf16/f16 FLOP per clock per SM, TF32 half that), wgmma at the full rate (4096);
  issue   = (executed warp-level tensor instructions (mma.sync; 4 per wgmma, one per warp of its
             warpgroup) x (instructions / tensor instructions of one steady
             iteration of the hot loop: the static report's path_steady)
             + logit tiles x warps running the epilogue (all, or a warp-specialised kernel's
             consumers) x the epilogue's instructions: the tile loop's
             outside the hot loop, or, where the epilogue sits inside the hot loop, the shortest
             iteration through it minus the steady one)
            (a hot loop without a steady path, whose every iteration through the hot block
             runs the epilogue, is one iteration per tile: executed tensor instructions x 1
             + tiles x warps x the non-tensor instructions of the shortest such iteration)
            / (4 warp instructions per clock per SM)   (one issue per clock per SM sub-partition;
            the epilogue count takes every non-tensor inner loop once: a lower bound);
  smem    = shared-memory wavefronts / (1 per clock per SM)   (128 bytes per clock per SM), with
            the operand bytes wgmma reads and TMA writes (the emulator does not see those as
            loads / stores) at 128 bytes per wavefront; TMA bytes scale with the tiles, except,
            in a kernel whose launch config names a resident_depth >= d, the bytes each block
            copied through the tensor map of its first copy (the emulator's
            tma_first_map_bytes: the resident operand, loaded once per block) by grid / grid_e;
  l2      = (global sectors + TMA bytes / 32) x 32 bytes / 8 TB/s   (H100/H200 measurements
            report 5.5-7.5 TB/s from L2; 8 is generous);
  each per-SM term is multiplied by ceil(grid / 132) x 132 / grid (idle SMs when the grid is small,
  the last partial wave otherwise); the launch takes the largest of the four (perfect overlap).
The loss's time is the sum over its launches (they run one after another on the stream).
Clock: 1.83 GHz, so that 132 SMs x 4096 FLOP x 1.83 GHz = 989 TFLOP/s, the H200's dense bf16 spec.
Not modelled (each would lower the bound further): latencies, occupancy and the pipeline's ability
to hide them, barriers, L1, register bank conflicts, DRAM (the inputs are read once per tile from
L2), clock throttling, launch overheads.

The fraction of cuBLAS uses 780 TFLOP/s, the H200 cuBLAS bf16 GEMM rate cited in the Hopper issue
(measured 760-795); the design's target is fused forward+backward >= 70% of the card's measured
cuBLAS rate on the Hopper path, >= 50% with mma.sync.
"""

import math

SMS = 132
CLOCK_HZ = 1.83e9
WGMMA_FLOP_PER_CLK_SM = 4096  # dense bf16 / f16
MMA_SYNC_FRACTION = 0.5  # mma.sync's share of that rate on Hopper
ISSUE_PER_CLK_SM = 4
SMEM_WAVEFRONTS_PER_CLK_SM = 1
L2_BYTES_PER_S = 8e12
CUBLAS_BF16_TFLOPS = 780.0

CONFIG_OF_DTYPE = {"bf16": "mma_bf16", "f16": "mma_f16", "tf32": "mma_tf32", "f32": "generic_f32"}
MAIN_KERNELS = (
    "forward_main_kernel",
    "forward_mma_kernel",
    "forward_wgmma_kernel",
    "grad_kernel",
    "grad_mma_kernel",
    "grad_wgmma_kernel",
)
# Warps that run the tile epilogue, where not every warp of the block does (warp-specialised
# kernels: the producer warpgroup has no epilogue).
EPILOGUE_WARPS = {"forward_wgmma_kernel": 8, "grad_wgmma_kernel": 8}
# Kernels whose global stores are per block (their rows' outputs), not per logit tile.
PER_BLOCK_STORES = ("grad_kernel", "grad_mma_kernel", "grad_wgmma_kernel")


def short_name(demangled):
    """'void flashnce::kernels::grad_kernel<flashnce::kernels::MmaTraits<...> >(...)' ->
    'grad_kernel<MmaTraits<...>>'."""
    s = demangled
    if s.startswith("void "):
        s = s[5:]
    depth = 0
    for i, c in enumerate(s):  # drop the parameter list: the first '(' outside template brackets
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif c == "(" and depth == 0:
            s = s[:i]
            break
    return s.replace("flashnce::kernels::", "").replace(" ", "")


def is_main(name):
    return name.split("<")[0] in MAIN_KERNELS


def tensor_flop_per_clk_sm(dtype, hgmma):
    """The path's dense rate per SM: wgmma (HGMMA) at the full rate, mma.sync at half; TF32 at half
    the 16-bit rate; the exact f32 path has no tensor work."""
    rate = WGMMA_FLOP_PER_CLK_SM * (1.0 if hgmma else MMA_SYNC_FRACTION)
    return rate / 2 if dtype == "tf32" else rate


def same_name(a, b):
    return "".join(a.split()) == "".join(b.split())


def find_static(kernels, name, config, d, arch="sm_90"):
    """The static row of kernel `name` in `config` (the one for depth d when there are several);
    sm_90a's when the kernel exists only there (the Hopper kernels)."""
    rows = [k for k in kernels if same_name(k.get("name", ""), name) and k.get("arch") == arch]
    if not rows and arch == "sm_90":
        rows = [k for k in kernels if same_name(k.get("name", ""), name) and k.get("arch") == "sm_90a"]
    for want in (f"{config} d={d}", config):
        for k in rows:
            if k.get("config") == want:
                return k
    return rows[0] if rows else None


def find_config(configs, name, config, d):
    rows = [c for c in configs if same_name(c.get("kernel", ""), name)]
    for want in (f"{config} d={d}", config):
        for c in rows:
            if c.get("config") == want:
                return c
    return rows[0] if rows else None


def launch_bound(e, t, static, cfg, dtype, terms_out=None):
    """Seconds the target launch `t` needs at least, from the emulated launch `e` of the same kernel
    at a smaller shape; returns (seconds, the binding term).  `terms_out` (a dict), if given,
    receives every term's seconds."""
    name = short_name(e["kernel"])
    main = is_main(name) or e["tensor_macs"] > 0  # (any tensor work scales with the tiles)
    if main:
        scale = (t["n"] * t["m"]) / (e["n"] * e["m"])
    elif name.startswith("counts_kernel"):
        scale = (t["n"] * t["m"]) / (e["n"] * e["m"])
    else:
        scale = (t["n"] + t["m"]) / (e["n"] + e["m"])
    grid = max(1, t["grid"])
    quant = math.ceil(grid / SMS) * SMS / grid
    per_sm = SMS * CLOCK_HZ
    terms = {}
    hot = static.get("hot_loop") if static else None
    hgmma = bool(hot) and hot.get("gmma", 0) > 0
    macs = e["tensor_macs"] * scale
    if macs > 0:
        terms["tensor"] = macs * 2 / (tensor_flop_per_clk_sm(dtype, hgmma) * per_sm) * quant
    # Warp-level tensor instructions executed: mma.sync per warp; a wgmma is issued by each of the
    # 4 warps of its warpgroup (one HGMMA each in the SASS the static report counts).
    tensor_instr = e["mma_instructions"] + 4 * e.get("wgmma_instructions", 0)
    if main and hot and hot.get("tensor"):
        steady = hot.get("path_steady") or {}
        epi_path = hot.get("path_epilogue")
        per_tile = False
        if steady.get("tensor"):  # one steady iteration: what a chunk of the pipeline executes
            slots = tensor_instr * scale * steady["instructions"] / steady["tensor"]
        elif epi_path:
            # Every iteration through the hot block runs the epilogue (a MUFU): one iteration
            # per logit tile (the Hopper gradient kernel's consumer loop: logit items, the
            # coefficients, gradient items).  Each executed tensor instruction is one issue,
            # and each tile at least the shortest such iteration's other instructions.
            slots = tensor_instr * scale
            per_tile = True
        else:  # (the whole static body: more than one iteration executes)
            slots = tensor_instr * scale * hot["instructions"] / hot["tensor"]
        if per_tile:
            epi = max(0, epi_path["instructions"] - epi_path["tensor"])
        elif epi_path and steady.get("instructions"):  # epilogue inside the main loop
            epi = max(0, epi_path["instructions"] - steady["instructions"])
        else:  # epilogue in the tile loop around it
            tile = static.get("tile_loop") or {}
            epi = tile.get("epilogue_instructions", 0) or 0
        if cfg and cfg.get("block_m") and cfg.get("block_n"):
            tiles = (
                math.ceil(t["n"] / cfg["block_m"])
                * math.ceil(t["m"] / cfg["block_n"])
                * cfg.get("passes", 1)
            )
            warps = EPILOGUE_WARPS.get(name.split("<")[0], t["block"] // 32)
            slots += tiles * warps * epi
        terms["issue"] = slots / (ISSUE_PER_CLK_SM * per_sm) * quant
    wavefronts = (
        e["smem_load_wavefronts"] + e["smem_store_wavefronts"]
    ) * scale
    # wgmma reads its shared-memory operands itself (not seen as loads by the emulator): A 64 x 16
    # and B N x 16 16-bit elements per instruction, at 128 bytes per wavefront; TMA writes its
    # boxes into shared memory likewise.
    wg = e.get("wgmma_instructions", 0)
    if wg > 0:
        n_per = e["tensor_macs"] / wg / (64 * 16)
        wavefronts += wg * (64 * 16 * 2 + n_per * 16 * 2) / 128 * scale
    # TMA bytes at the target: those through the first tensor map of each block are the operand
    # a resident kernel keeps in shared memory for its whole sweep (the Hopper forward's a row
    # tile at d <= its resident depth, the Hopper gradient kernel's x rows): loaded once per
    # block, so scaled by grid / grid_e, not by the logit tiles (at the small shape a block sweeps
    # 1-2 column tiles, at the target ~128); the other bytes (the streamed operand) per tile.
    tma = e.get("tma_bytes", 0) * scale
    first = e.get("tma_first_map_bytes", 0)
    resident = cfg is not None and cfg.get("resident_depth", 0) >= t.get("d", e.get("d", 0)) > 0
    if resident and 0 < first < e.get("tma_bytes", 0):
        tma = (e["tma_bytes"] - first) * scale + first * max(1, t["grid"]) / max(1, e["grid"])
    wavefronts += tma / 128
    if wavefronts > 0:
        terms["smem"] = wavefronts / (SMEM_WAVEFRONTS_PER_CLK_SM * per_sm) * quant
    # (TMA boxes come from L2 like any load: their bytes in 32-byte sectors)
    stores = e["gmem_store_sectors"] * scale
    if name.split("<")[0] in PER_BLOCK_STORES:
        stores = e["gmem_store_sectors"] * max(1, t["grid"]) / max(1, e["grid"])
    sectors = e["gmem_load_sectors"] * scale + tma / 32 + stores
    if sectors > 0:
        terms["l2"] = sectors * 32 / L2_BYTES_PER_S
    if terms_out is not None:
        terms_out.update(terms)
    if not terms:
        return 0.0, "-"
    binding = max(terms, key=terms.get)
    return terms[binding], binding


def model_rows(report):
    """One row per loss x dtype x d x target n: the forward and forward+backward bounds."""
    kernels = report.get("kernels", [])
    configs = report.get("launch_configs", [])
    emulated = report.get("launches", [])
    targets = report.get("target_launches", [])
    groups = {}
    for e in emulated:
        groups.setdefault((e["loss"], e["dtype"], e["d"]), []).append(e)
    tgroups = {}
    for t in targets:
        tgroups.setdefault((t["loss"], t["dtype"], t["d"], t["n"]), []).append(t)
    rows = []
    for (loss, dtype, d, n), tl in sorted(tgroups.items()):
        el = groups.get((loss, dtype, d))
        if not el:
            continue
        config = CONFIG_OF_DTYPE.get(dtype, dtype)
        seconds = {"forward": 0.0, "backward": 0.0}
        limits = {"forward": "", "backward": ""}
        ok = True
        per_launch = []  # (phase, kernel, {term: seconds})
        for phase in ("forward", "backward"):
            ep = [x for x in el if x["phase"] == phase]
            tp = [x for x in tl if x["phase"] == phase]
            # Each target launch with the next emulated launch of the same kernel; emulated
            # launches the target size does not make (e.g. the split reduction the small shape
            # needs) are left out; a target kernel the emulated run lacks: no pairing.
            pairs, used = [], set()
            for t in tp:
                k = next((i for i, e in enumerate(ep) if i not in used
                          and short_name(e["kernel"]) == short_name(t["kernel"])), None)
                if k is None:
                    break
                used.add(k)
                pairs.append((ep[k], t))
            if len(pairs) != len(tp):
                ok = False  # the dispatch launches other kernels at this size: no pairing
                break
            worst = 0.0
            for e, t in pairs:
                name = short_name(e["kernel"])
                static = find_static(kernels, name, config, d)
                cfg = find_config(configs, name, config, d)
                terms = {}
                s, term = launch_bound(e, t, static, cfg, dtype, terms)
                per_launch.append({"phase": phase, "kernel": name, "terms": terms})
                seconds[phase] += s
                if is_main(name) and s > worst:
                    worst = s
                    limits[phase] = term
        if not ok:
            continue
        m = tl[0]["m"]
        flop = 2.0 * n * m * d
        fwd = flop / seconds["forward"] / 1e12 if seconds["forward"] > 0 else None
        total = seconds["forward"] + seconds["backward"]
        both = 4 * flop / total / 1e12 if total > 0 else None
        rows.append(
            {
                "loss": loss,
                "dtype": dtype,
                "n": n,
                "m": m,
                "d": d,
                "fwd_tflops_bound": fwd,
                "fwdbwd_tflops_bound": both,
                "fwd_limit": limits["forward"],
                "bwd_limit": limits["backward"],
                "fwdbwd_cublas_fraction": both / CUBLAS_BF16_TFLOPS if both else None,
                "launches": per_launch,
            }
        )
    return rows


def summary_rows(report, rows):
    """The before/after line of bench/RESULTS.md: per headline loss (bf16, d = 512, n = m =
    16384) the main kernels' registers and steady hot-loop tensor share on sm_90, the emulated
    MAC ratios and shared-memory conflict ratios, and the model's bounds."""
    out = []
    for loss in ("infonce", "clip"):
        emu = [e for e in report.get("emulated", [])
               if e["loss"] == loss and e["dtype"] == "bf16" and e["d"] == 512]
        mod = [r for r in rows
               if r["loss"] == loss and r["dtype"] == "bf16" and r["d"] == 512 and r["n"] == 16384]
        if not emu or not mod:
            continue
        kernels = {}
        for phase in ("forward", "backward"):
            names = [short_name(x["kernel"]) for x in report.get("launches", [])
                     if x["loss"] == loss and x["dtype"] == "bf16" and x["d"] == 512
                     and x["phase"] == phase and is_main(short_name(x["kernel"]))]
            stat = [find_static(report.get("kernels", []), nm, "mma_bf16", 512) for nm in names]
            stat = [k for k in stat if k]
            regs = max((k["registers"] for k in stat), default=None)
            shares = []
            for k in stat:
                h = k.get("hot_loop") or {}
                st = h.get("path_steady") or {}
                shares.append(st.get("tensor_share", h.get("tensor_share")))
            spill = max((k.get("spill_bytes") or 0 for k in stat), default=None)
            kernels[phase] = (regs, min((x for x in shares if x is not None), default=None), spill)
        e, m = emu[0], mod[0]
        out.append({"loss": loss, "fwd_regs": kernels["forward"][0],
                    "fwd_share": kernels["forward"][1], "bwd_regs": kernels["backward"][0],
                    "bwd_share": kernels["backward"][1], "fwd_mac": e["fwd_mac_ratio"],
                    "bwd_mac": e["bwd_mac_ratio"], "fwd_conf": e.get("fwd_smem_conflict_ratio"),
                    "bwd_conf": e.get("bwd_smem_conflict_ratio"),
                    "fwd_bound": m["fwd_tflops_bound"], "both_bound": m["fwdbwd_tflops_bound"]})
    return out


def apply(report):
    """Adds report['h200_model'] (the rows) and returns them as a Markdown table."""
    rows = model_rows(report)
    report["h200_model"] = {
        "assumptions": {
            "sms": SMS,
            "clock_hz": CLOCK_HZ,
            "wgmma_flop_per_clk_sm": WGMMA_FLOP_PER_CLK_SM,
            "mma_sync_fraction": MMA_SYNC_FRACTION,
            "issue_per_clk_sm": ISSUE_PER_CLK_SM,
            "smem_wavefronts_per_clk_sm": SMEM_WAVEFRONTS_PER_CLK_SM,
            "l2_bytes_per_s": L2_BYTES_PER_S,
            "cublas_bf16_tflops": CUBLAS_BF16_TFLOPS,
        },
        "rows": rows,
    }
    if not rows:
        return "\n(H200 model: no emulated launches to scale; run flashnce_kernel_counters)\n"
    summary = summary_rows(report, rows)
    report["h200_model"]["summary"] = summary
    f = lambda v, spec: format(v, spec) if v is not None else "-"
    out = [
        "",
        f"### Summary ({report.get('commit', '?')}; bf16, d = 512, n = m = 16384; sm_90)",
        "",
        "| loss | fwd regs | fwd steady tensor share | bwd regs | bwd steady tensor share | fwd MACs / nmd | bwd MACs / nmd | fwd smem conflicts | bwd smem conflicts | fwd TFLOP/s ≤ | fwd+bwd TFLOP/s ≤ |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in summary:
        out.append(
            f"| {r['loss']} | {f(r['fwd_regs'], 'd')} | {f(r['fwd_share'], '.3f')} | "
            f"{f(r['bwd_regs'], 'd')} | {f(r['bwd_share'], '.3f')} | {f(r['fwd_mac'], '.2f')} | "
            f"{f(r['bwd_mac'], '.2f')} | {f(r['fwd_conf'], '.3f')} | {f(r['bwd_conf'], '.3f')} | "
            f"{f(r['fwd_bound'], '.0f')} | {f(r['both_bound'], '.0f')} |")
    out += [
        "",
        "### H200 upper-bound model (bench/report/h200_model.py; not a measurement)",
        "",
        "| loss | dtype | n = m | d | fwd TFLOP/s ≤ | fwd+bwd TFLOP/s ≤ | of cuBLAS 780 | fwd limit | bwd limit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["dtype"] != "bf16":
            continue  # the JSON has every dtype; the table the headline one
        fmt = lambda v: f"{v:.0f}" if v is not None else "-"
        frac = f"{100 * r['fwdbwd_cublas_fraction']:.0f}%" if r["fwdbwd_cublas_fraction"] else "-"
        nm = f"{r['n']}" if r["n"] == r["m"] else f"{r['n']} x {r['m']}"
        out.append(
            f"| {r['loss']} | {r['dtype']} | {nm} | {r['d']} | {fmt(r['fwd_tflops_bound'])} | "
            f"{fmt(r['fwdbwd_tflops_bound'])} | {frac} | {r['fwd_limit']} | {r['bwd_limit']} |"
        )
    # Every term of the headline rows' main launches: which resource binds, and by how much.
    out += [
        "",
        "### Main launches' terms (ms; bf16, d = 512, n = m = 16384; the largest binds)",
        "",
        "| loss | phase | kernel | tensor | issue | smem | l2 |",
        "|---|---|---|--:|--:|--:|--:|",
    ]
    for r in rows:
        if r["dtype"] != "bf16" or r["d"] != 512 or r["n"] != 16384 or r["m"] != 16384:
            continue
        for x in r["launches"]:
            if not is_main(x["kernel"]):
                continue
            ms = lambda k: f"{1e3 * x['terms'][k]:.3f}" if k in x["terms"] else "-"
            out.append(f"| {r['loss']} | {x['phase']} | `{x['kernel']}` | {ms('tensor')} | "
                       f"{ms('issue')} | {ms('smem')} | {ms('l2')} |")
    return "\n".join(out) + "\n"
