#!/usr/bin/env python3
"""Static kernel report: registers, spills, shared memory, occupancy and the SASS of the hot loop.

Reads CUDA object files (fatbins) or cubins with `cuobjdump` (the PyPI wheel
nvidia-cuda-cuobjdump when the toolkit lacks it) and computes, per kernel and per cubin arch:

- registers, stack/local bytes and static shared memory (`cuobjdump -res-usage`);
- the SASS instruction mix of the whole kernel by class (CLASS_ORDER; classify());
- the loops: every backward `BRA` (its target offset <= its own) whose target dominates it (over
  the graph of direct branches and fall-throughs) closes a loop whose body is [target, branch];
  back-edges to one target are merged into one loop.  (Cold code that ptxas places after the
  body, e.g. an mbarrier try_wait's retry, branches back to where the fast path continues: no
  loop);
- the hot loop: among the loops whose body holds tensor instructions (HMMA, HGMMA, IMMA, any
  *MMA), take the basic block with the most tensor instructions (ties: the more deeply nested,
  then the denser, then the first) and the innermost loop holding it.  Its static body is
  counted by class, `tensor_share` = tensor / all instructions of that body;
- paths through one iteration of the hot loop that pass the hot block (forward edges only, inner
  loops counted once): the shortest (path_min, usually the last trip), the longest (path_max),
  and the shortest that issues a global load (path_steady, a lower bound on a pipelined loop's
  steady state: it takes every skip, e.g. of out-of-bounds address code).  They bracket what one
  iteration executes when the body holds alternative code paths (bounds-checked loaders);
- the tile loop: the loop directly enclosing the hot loop, with the instructions of its body
  outside any inner loop that holds tensor instructions (the per-tile epilogue; non-tensor inner
  loops are counted with one trip, so this is a lower bound);
- CTAs per SM on the arch's reference part (sm_80: A100, sm_90/sm_90a: H100/H200), by the rules
  of CUDA's occupancy calculator (cuda_occupancy.h), when the block size and the dynamic shared
  memory are known from --launch-configs.

Limits: everything is static.  Instruction counts are per warp and per static occurrence, not
executed counts (the emulator's counters are the executed half, --emulated).  Code reached by
CALL is not part of the body of the loop that calls it (the CALL counts once).  Instructions
predicated on @!PT never execute and are skipped, like NOP.  On sm_90 cuobjdump's SHARED
includes the 1 KB that the system reserves per CTA; it is subtracted (static_smem_bytes is what
the kernel declares, as ptxas -v prints it) and the reserve is added back once in the occupancy.
spill_bytes is the stack frame plus local memory per thread: 0 means no spills; a non-zero value
may also be a local array or a call frame.

Usage: sass_report.py [--launch-configs F] [--emulated F] [--json OUT] OBJECT_OR_CUBIN_OR_DIR...
Prints Markdown tables on stdout.  Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import site
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

# ---- tools -------------------------------------------------------------------------------------


def find_tool(name: str) -> str | None:
    """PATH, then the CUDA toolkit, then the nvidia-* wheels in site-packages (system and user)."""
    found = shutil.which(name)
    if found:
        return found
    roots = [os.environ.get("CUDA_HOME", ""), os.environ.get("CUDA_PATH", ""), "/usr/local/cuda"]
    for root in roots:
        candidate = os.path.join(root, "bin", name) if root else ""
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    dirs = list(site.getsitepackages())
    user = site.getusersitepackages()
    if isinstance(user, str):
        dirs.append(user)
    for d in dirs:
        for candidate in sorted(glob.glob(os.path.join(d, "nvidia", "*", "bin", name))):
            if os.access(candidate, os.X_OK):
                return candidate
    return None


def run_tool(args: list[str], cwd: str | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): "
                           f"{result.stderr.strip()}")
    return result.stdout


# ---- SASS parsing ------------------------------------------------------------------------------


@dataclass
class Instr:
    offset: int
    pred: str  # "" when unguarded, else e.g. "@!P0"
    opcode: str  # full opcode with modifiers, e.g. "HMMA.16816.F32.BF16"
    operands: str

    @property
    def base(self) -> str:
        return self.opcode.split(".")[0]


SASS_LINE = re.compile(
    r"^\s*/\*([0-9a-fA-F]+)\*/\s+(@!?U?P(?:T|\d+)\s+)?([A-Z][A-Za-z0-9_.]*)\s*([^;]*);")
FUNCTION_LINE = re.compile(r"^\s*Function\s*:\s*(\S+)")
CODE_FOR_LINE = re.compile(r"code for (sm_\w+)")


def parse_sass(text: str) -> tuple[str | None, dict[str, list[Instr]]]:
    """cuobjdump -sass text of one cubin -> (arch, {mangled name: instructions in order})."""
    arch = None
    functions: dict[str, list[Instr]] = {}
    current: list[Instr] | None = None
    for line in text.splitlines():
        m = SASS_LINE.match(line)
        if m:
            if current is not None:
                current.append(Instr(int(m.group(1), 16), (m.group(2) or "").strip(),
                                     m.group(3), m.group(4).strip()))
            continue
        m = FUNCTION_LINE.match(line)
        if m:
            current = functions.setdefault(m.group(1), [])
            continue
        m = CODE_FOR_LINE.search(line)
        if m and arch is None:
            arch = m.group(1)
    return arch, functions


RES_FUNCTION = re.compile(r"^\s*Function\s+(\S+?):\s*$")
RES_FIELD = re.compile(r"([A-Z]+(?:\[\d+\])?):(\d+)")


def parse_res_usage(text: str) -> dict[str, dict[str, int]]:
    """cuobjdump -res-usage text of one cubin -> {mangled: {"REG": .., "STACK": .., ...}}."""
    out: dict[str, dict[str, int]] = {}
    current = None
    for line in text.splitlines():
        m = RES_FUNCTION.match(line)
        if m:
            current = m.group(1)
            continue
        if current and "REG:" in line:
            out[current] = {k: int(v) for k, v in RES_FIELD.findall(line)}
            current = None
    return out


# ---- instruction classes -----------------------------------------------------------------------

CLASS_ORDER = ["tensor", "ldsm", "async_copy", "lds", "sts", "ldg_stg", "local", "atomic", "fp32",
               "mufu", "shfl", "bar", "branch", "integer", "conversion", "other"]

_SETS = {
    "ldsm": {"LDSM"},
    "async_copy": {"LDGSTS", "LDGDEPBAR", "DEPBAR", "UTMALDG", "UTMASTG", "UTMAPF", "UTMACCTL",
                   "UTMACMDFLUSH", "UBLKCP", "UBLKRED", "UBLKPF", "SYNCS", "ARRIVES"},
    "lds": {"LDS"},
    "sts": {"STS", "STSM"},
    "ldg_stg": {"LDG", "STG", "LD", "ST"},
    "local": {"LDL", "STL"},
    "atomic": {"ATOM", "ATOMG", "ATOMS", "RED"},
    "fp32": {"FFMA", "FFMA32I", "FMUL", "FMUL32I", "FADD", "FADD32I", "FMNMX", "FSETP", "FSET",
             "FSEL", "FCHK", "FSWZADD", "HFMA2", "HADD2", "HMUL2", "HMNMX2", "HSETP2", "HSET2"},
    "mufu": {"MUFU"},
    "shfl": {"SHFL", "VOTE", "VOTEU", "MATCH", "REDUX"},
    "bar": {"BAR", "WARPSYNC", "MEMBAR", "ERRBAR", "WARPGROUP", "CCTL"},
    "branch": {"BRA", "BRX", "JMP", "JMX", "BSSY", "BSYNC", "EXIT", "RET", "CALL", "BREAK", "BPT",
               "KILL", "YIELD", "BMOV", "NANOSLEEP", "ACQBULK"},
    "integer": {"IMAD", "IMADSP", "IMUL", "IADD", "IADD3", "IADD32I", "LOP", "LOP3", "LOP32I",
                "ISETP", "ISET", "SHF", "SHL", "SHR", "LEA", "SEL", "PRMT", "IABS", "IMNMX",
                "VIMNMX", "VIMNMX3", "VIADD", "VIADDMNMX", "IDP", "IDP4A", "FLO", "POPC", "BREV",
                "BMSK", "SGXT", "PLOP3", "PSETP", "P2R", "R2P", "MOV", "MOV32I", "S2R", "CS2R",
                "S2UR", "R2UR", "LDC", "ULDC", "ISCADD", "VABSDIFF", "VABSDIFF4", "LEPC", "B2R",
                "R2B", "CS2UR"},
    "conversion": {"F2F", "F2I", "I2F", "I2FP", "F2IP", "F2FP", "FRND", "I2I", "I2IP"},
}
CLASS_OF = {op: cls for cls, ops in _SETS.items() for op in ops}


def classify(opcode: str) -> str:
    """The class of one opcode (with or without modifiers)."""
    base = opcode.split(".")[0]
    if "MMA" in base:  # HMMA, HGMMA, IMMA, IGMMA, DMMA, BMMA, WGMMA*, UTC*MMA
        return "tensor"
    cls = CLASS_OF.get(base)
    if cls:
        return cls
    if base.startswith("U"):  # uniform-datapath integer ops: UIADD3, ULOP3, UMOV, USHF, ...
        return "integer"
    return "other"


def counted(instr: Instr) -> bool:
    """NOPs and instructions predicated on @!PT (never executed) are not counted."""
    return instr.base != "NOP" and instr.pred != "@!PT"


def class_counts(instrs: list[Instr]) -> dict[str, int]:
    counts = {c: 0 for c in CLASS_ORDER}
    for ins in instrs:
        if counted(ins):
            counts[classify(ins.opcode)] += 1
    return counts


# ---- control flow: blocks and loops ------------------------------------------------------------

HEX = re.compile(r"0x[0-9a-fA-F]+")
PRED_OPERAND = re.compile(r"(^|[\s,])!?U?P[0-6](?![0-9])")
TERMINATORS = {"BRA", "BRX", "JMP", "JMX", "EXIT", "RET", "KILL"}


def branch_target(ins: Instr) -> int | None:
    """Absolute target of a direct BRA / JMP (cuobjdump prints it as hex), else None."""
    if ins.base not in ("BRA", "JMP"):
        return None
    targets = HEX.findall(ins.operands)
    return int(targets[-1], 16) if targets else None


def is_conditional(ins: Instr) -> bool:
    if ins.pred not in ("", "@PT"):
        return True
    if ins.base in ("BRA", "JMP") and PRED_OPERAND.search(ins.operands):
        return True  # BRA P1, target / BRA !UP0, target
    return any(m in ins.opcode.split(".")[1:] for m in ("DIV", "CONV"))


def falls_through(ins: Instr) -> bool:
    return not (ins.base in TERMINATORS and not is_conditional(ins))


@dataclass
class Block:
    first: int  # index of its first instruction
    last: int  # index of its last instruction (inclusive)
    start: int  # offset of the first instruction
    end: int  # offset of the last instruction
    instructions: int = 0  # counted instructions
    tensor: int = 0


def basic_blocks(instrs: list[Instr]) -> list[Block]:
    """Leaders: the first instruction, branch targets, and every instruction after a branch."""
    if not instrs:
        return []
    leaders = {0}
    index_of = {ins.offset: i for i, ins in enumerate(instrs)}
    for i, ins in enumerate(instrs):
        target = branch_target(ins)
        if target is not None and target in index_of:
            leaders.add(index_of[target])
        if ins.base in TERMINATORS and i + 1 < len(instrs):
            leaders.add(i + 1)
    starts = sorted(leaders)
    blocks = []
    for k, first in enumerate(starts):
        last = (starts[k + 1] if k + 1 < len(starts) else len(instrs)) - 1
        body = [x for x in instrs[first:last + 1] if counted(x)]
        blocks.append(Block(first, last, instrs[first].offset, instrs[last].offset, len(body),
                            sum(1 for x in body if classify(x.opcode) == "tensor")))
    return blocks


@dataclass
class Loop:
    start: int  # offset of the header (the back-edge target)
    end: int  # offset of the last back-edge branch
    latches: list[int] = field(default_factory=list)  # offsets of its back-edge branches
    instructions: int = 0
    tensor: int = 0

    def contains(self, start: int, end: int) -> bool:
        return self.start <= start and end <= self.end

    @property
    def span(self) -> int:
        return self.end - self.start


def dominators(instrs: list[Instr], blocks: list[Block]) -> list[int | None]:
    """Per block, the set of blocks that dominate it (bit k: block k), over the control-flow graph
    of direct branches and fall-throughs from the first block; None for a block that is not
    reachable that way (an indirect branch's target, dead code).  An edge the graph misses (BRX)
    can only add dominators, never remove one."""
    index = {b.start: k for k, b in enumerate(blocks)}
    succ: list[list[int]] = []
    for k, b in enumerate(blocks):
        last = instrs[b.last]
        out = []
        target = branch_target(last)
        if target is not None and target in index:
            out.append(index[target])
        if falls_through(last) and k + 1 < len(blocks):
            out.append(k + 1)
        succ.append(out)
    # reverse postorder from block 0 (iterative depth-first search)
    order, seen, stack = [], {0}, [(0, iter(succ[0]))] if blocks else []
    while stack:
        k, it = stack[-1]
        nxt = next((s for s in it if s not in seen), None)
        if nxt is None:
            order.append(k)
            stack.pop()
        else:
            seen.add(nxt)
            stack.append((nxt, iter(succ[nxt])))
    order.reverse()
    preds: list[list[int]] = [[] for _ in blocks]
    for k in order:
        for s in succ[k]:
            preds[s].append(k)
    dom: list[int | None] = [None] * len(blocks)
    everything = (1 << len(blocks)) - 1
    for k in order:
        dom[k] = everything
    if blocks:
        dom[0] = 1
    changed = True
    while changed:
        changed = False
        for k in order[1:]:
            meet = everything
            for q in preds[k]:
                meet &= dom[q]
            new = meet | (1 << k)
            if new != dom[k]:
                dom[k], changed = new, True
    return dom


def find_loops(instrs: list[Instr]) -> list[Loop]:
    """Every backward BRA whose target dominates it closes a loop [target, branch]; back-edges to
    one target merge.  A backward BRA whose target does not dominate it is no loop: ptxas places
    cold code (e.g. the retry of an mbarrier try_wait) after the function's body, and its branch
    back to where the fast path continues only looks like a back-edge by its offsets."""
    blocks = basic_blocks(instrs)
    block_of = {}
    for k, b in enumerate(blocks):
        block_of[b.end] = k
    start_of = {b.start: k for k, b in enumerate(blocks)}
    dom = dominators(instrs, blocks)
    by_head: dict[int, Loop] = {}
    for ins in instrs:
        target = branch_target(ins)
        if target is not None and target <= ins.offset:
            u, h = block_of.get(ins.offset), start_of.get(target)
            if u is not None and h is not None and dom[u] is not None and not dom[u] >> h & 1:
                continue  # reachable without passing the target first: not a back-edge
            loop = by_head.setdefault(target, Loop(target, ins.offset))
            loop.end = max(loop.end, ins.offset)
            loop.latches.append(ins.offset)
    loops = sorted(by_head.values(), key=lambda l: (l.start, -l.end))
    for loop in loops:
        body = [x for x in instrs if loop.start <= x.offset <= loop.end and counted(x)]
        loop.instructions = len(body)
        loop.tensor = sum(1 for x in body if classify(x.opcode) == "tensor")
    return loops


def loop_depth(loop: Loop, loops: list[Loop]) -> int:
    return sum(1 for o in loops if o is not loop and o.contains(loop.start, loop.end))


def innermost_loop(loops: list[Loop], start: int, end: int) -> Loop | None:
    holding = [l for l in loops if l.contains(start, end)]
    return min(holding, key=lambda l: l.span) if holding else None


def enclosing_loop(loops: list[Loop], inner: Loop) -> Loop | None:
    outer = [l for l in loops
             if l is not inner and l.contains(inner.start, inner.end) and l.span > inner.span]
    return min(outer, key=lambda l: l.span) if outer else None


def choose_hot_block(blocks: list[Block], loops: list[Loop]) -> tuple[Block, Loop] | None:
    """The block with the most tensor instructions inside a loop holding tensor instructions."""
    tensor_loops = [l for l in loops if l.tensor > 0]
    best, best_key = None, None
    for b in blocks:
        if b.tensor == 0:
            continue
        loop = innermost_loop(tensor_loops, b.start, b.end)
        if loop is None:
            continue
        key = (b.tensor, loop_depth(loop, loops), loop.tensor / max(loop.instructions, 1),
               -b.start)
        if best_key is None or key > best_key:
            best, best_key = (b, innermost_loop(loops, b.start, b.end)), key
    return best


GLOBAL_LOADS = {"LDG", "LD", "LDGSTS", "UTMALDG", "UBLKCP"}
ASYNC_GLOBAL_COPIES = {"LDGSTS", "UTMALDG", "UBLKCP"}


def iteration_paths(instrs: list[Instr], blocks: list[Block], loop: Loop,
                    hot: Block) -> dict[str, tuple[int, int]]:
    """(instructions, tensor) of paths header -> ... -> a back-edge of `loop` that pass the hot
    block, over forward edges inside the body only (inner loops count one trip):
      "min" / "max": the shortest / longest such path;
      "steady": the shortest one that also passes a block issuing a global load (LDG, LDGSTS,
                UTMALDG, ...): a prefetching pipeline loads in every iteration but the last;
                in a warp-specialised consumer loop (it waits on an mbarrier, SYNCS, and issues
                no copies: another warp's loop does) the shortest one that passes no MUFU, i.e.
                a main-loop iteration without the tile epilogue;
      "epilogue": the shortest one that passes a block with a MUFU (exp2 / log): a kernel whose
                tile epilogue sits in the same loop as its main loop (the tensor-core forward)
                runs it at the end of each tile; epilogue - steady is a lower bound on its cost.
    A key is missing when no such path exists (e.g. an indirect branch in the way)."""
    body = [b for b in blocks if loop.start <= b.start and b.end <= loop.end]
    if not body or body[0].start != loop.start:
        return {}
    pos = {b.start: k for k, b in enumerate(body)}
    h = pos.get(hot.start)
    loads = [any(instrs[i].base in GLOBAL_LOADS and counted(instrs[i])
                 for i in range(b.first, b.last + 1)) for b in body]
    mufu = [any(instrs[i].base == "MUFU" and counted(instrs[i])
                for i in range(b.first, b.last + 1)) for b in body]

    def successors(k: int) -> list[int]:
        last = instrs[body[k].last]
        out = []
        target = branch_target(last)
        if target is not None and target > last.offset and target in pos:
            out.append(pos[target])
        if falls_through(last) and k + 1 < len(body):
            out.append(k + 1)
        return out

    latches = [k for k, b in enumerate(body) if branch_target(instrs[b.last]) == loop.start
               and instrs[b.last].offset in loop.latches]
    if h is None or not latches:
        return {}

    def sweep(better) -> list[dict[tuple[bool, bool, bool], tuple[int, int]]]:
        # best[k][(passed hot, passed a load, passed a MUFU)] = best (instructions, tensor)
        # header..k inclusive
        best: list[dict] = [dict() for _ in body]
        best[0][(h == 0, loads[0], mufu[0])] = (body[0].instructions, body[0].tensor)
        for k in range(len(body)):
            for (ph, pl, pm), (n, t) in list(best[k].items()):
                for s in successors(k):
                    state = (ph or s == h, pl or loads[s], pm or mufu[s])
                    cand = (n + body[s].instructions, t + body[s].tensor)
                    if state not in best[s] or better(cand, best[s][state]):
                        best[s][state] = cand
        return best

    out = {}
    anyb = (False, True)
    in_body = [instrs[i] for b in body for i in range(b.first, b.last + 1) if counted(instrs[i])]
    consumer = (any(i.base == "SYNCS" for i in in_body)
                and not any(i.base in ASYNC_GLOBAL_COPIES for i in in_body))
    steady_states = ([(True, x, False) for x in anyb] if consumer
                     else [(True, True, y) for y in anyb])
    for key, better, states in (
            ("min", lambda a, b: a[0] < b[0], [(True, x, y) for x in anyb for y in anyb]),
            ("max", lambda a, b: a[0] > b[0], [(True, x, y) for x in anyb for y in anyb]),
            ("steady", lambda a, b: a[0] < b[0], steady_states),
            ("epilogue", lambda a, b: a[0] < b[0], [(True, x, True) for x in anyb])):
        best = sweep(better)
        found = [best[l][s] for l in latches for s in states if s in best[l]]
        if found:
            pick = found[0]
            for f in found[1:]:
                if better(f, pick):
                    pick = f
            out[key] = pick
    return out


# ---- occupancy ---------------------------------------------------------------------------------

# Per-SM limits of the reference part of each arch (CUDA programming guide, compute capabilities;
# cuda_occupancy.h for the granularities).
ARCH_LIMITS = {
    "sm_80": dict(part="A100", regs_per_sm=65536, sub_partitions=4, reg_unit=256,
                  max_regs_per_thread=255, regs_per_cta=65536, smem_per_sm=167936,
                  smem_per_cta=166912, reserved_smem_per_cta=1024, smem_unit=128,
                  threads_per_sm=2048, threads_per_cta=1024, ctas_per_sm=32),
    "sm_90": dict(part="H100/H200", regs_per_sm=65536, sub_partitions=4, reg_unit=256,
                  max_regs_per_thread=255, regs_per_cta=65536, smem_per_sm=233472,
                  smem_per_cta=232448, reserved_smem_per_cta=1024, smem_unit=128,
                  threads_per_sm=2048, threads_per_cta=1024, ctas_per_sm=32),
}
ARCH_LIMITS["sm_90a"] = ARCH_LIMITS["sm_90"]


def round_up(x: int, unit: int) -> int:
    return (x + unit - 1) // unit * unit


def ctas_per_sm(arch: str, registers: int, threads: int | None,
                smem_bytes: int | None) -> tuple[int | None, str | None]:
    """(max resident CTAs per SM, the limiting resources joined by '+'); smem_bytes = static +
    dynamic (the per-CTA system reserve is added here).  (None, None) when the launch is unknown."""
    lim = ARCH_LIMITS.get(arch)
    if lim is None or threads is None or smem_bytes is None or threads <= 0:
        return None, None
    warps = -(-threads // 32)
    smem = round_up(smem_bytes + lim["reserved_smem_per_cta"], lim["smem_unit"])
    reg_warp = round_up(registers * 32, lim["reg_unit"])
    if (threads > lim["threads_per_cta"] or registers > lim["max_regs_per_thread"]
            or smem > lim["smem_per_cta"]
            or reg_warp * round_up(warps, lim["sub_partitions"]) > lim["regs_per_cta"]):
        return 0, "launch limit"
    limits = {
        "threads": lim["threads_per_sm"] // (warps * 32),
        "ctas": lim["ctas_per_sm"],
        "smem": lim["smem_per_sm"] // smem,
    }
    if reg_warp > 0:
        per_partition = (lim["regs_per_sm"] // lim["sub_partitions"]) // reg_warp
        limits["registers"] = per_partition * lim["sub_partitions"] // warps
    best = min(limits.values())
    binding = [k for k in ("registers", "smem", "threads", "ctas") if limits.get(k) == best]
    return best, "+".join(binding)


# ---- names -------------------------------------------------------------------------------------


def demangle(names: list[str]) -> dict[str, str]:
    """Batch c++filt; names stay mangled when it is absent."""
    tool = shutil.which("c++filt")
    if not tool or not names:
        return {n: n for n in names}
    out = subprocess.run([tool], input="\n".join(names) + "\n", capture_output=True, text=True)
    lines = out.stdout.splitlines()
    if out.returncode != 0 or len(lines) != len(names):
        return {n: n for n in names}
    return dict(zip(names, lines))


def short_name(demangled: str) -> str:
    """'void ns::k<ns::T<ns::U> >(ns::P)' -> 'k<T<U>>': no return type, parameters, namespaces."""
    s = demangled.strip().replace("(anonymous namespace)::", "")
    if s.endswith(")"):
        depth = 0
        for i in range(len(s) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(s[i], 0)
            if depth == 0:
                s = s[:i]
                break
    depth, cut = 0, 0
    for i, ch in enumerate(s):  # the return type ends at the last top-level space
        depth += {"<": 1, ">": -1}.get(ch, 0)
        if ch == " " and depth == 0:
            cut = i + 1
    s = s[cut:]
    s = re.sub(r"\b[A-Za-z_]\w*::", "", s)
    while "> >" in s:
        s = s.replace("> >", ">>")
    return s


def name_key(name: str) -> str:
    return re.sub(r"\s+", "", short_name(name) if "(" in name or "::" in name else name)


# ---- one kernel --------------------------------------------------------------------------------


def hexo(offset: int) -> str:
    return f"0x{offset:04x}"


def share(tensor: int, total: int) -> float:
    return round(tensor / total, 4) if total else 0.0


def analyse_function(instrs: list[Instr]) -> dict:
    """Instruction mix, loops, the hot loop and its tile loop of one function's SASS."""
    classes = class_counts(instrs)
    blocks = basic_blocks(instrs)
    loops = find_loops(instrs)
    out = {"sass_instructions": sum(classes.values()), "classes": classes, "loops": len(loops),
           "hot_loop": None, "tensor_loops": [], "tile_loop": None}
    for l in loops:
        if l.tensor:
            out["tensor_loops"].append({"start": hexo(l.start), "end": hexo(l.end),
                                        "instructions": l.instructions, "tensor": l.tensor,
                                        "depth": loop_depth(l, loops)})
    chosen = choose_hot_block(blocks, loops)
    if chosen is None:
        return out
    hot_block, hot = chosen
    body = [x for x in instrs if hot.start <= x.offset <= hot.end]
    hot_classes = class_counts(body)
    hot_total = sum(hot_classes.values())
    entry = {"start": hexo(hot.start), "end": hexo(hot.end), "instructions": hot_total,
             "tensor": hot_classes["tensor"], "classes": hot_classes,
             "tensor_share": share(hot_classes["tensor"], hot_total),
             "depth": loop_depth(hot, loops),
             "calls": sum(1 for x in body if x.base == "CALL" and counted(x)),
             # warpgroup tensor instructions (HGMMA, IGMMA, ...: wgmma, Hopper's full rate)
             "gmma": sum(1 for x in body if "GMMA" in x.base and counted(x)),
             "hot_block": {"start": hexo(hot_block.start), "end": hexo(hot_block.end),
                           "instructions": hot_block.instructions, "tensor": hot_block.tensor},
             "path_min": None, "path_max": None, "path_steady": None, "path_epilogue": None}
    for key, (n, t) in iteration_paths(instrs, blocks, hot, hot_block).items():
        entry["path_" + key] = {"instructions": n, "tensor": t, "tensor_share": share(t, n)}
    out["hot_loop"] = entry
    tile = enclosing_loop(loops, hot)
    if tile is not None:
        inner = [l for l in loops if l is not tile and l.tensor > 0
                 and tile.contains(l.start, l.end) and l.span < tile.span]
        rest = [x for x in instrs if tile.start <= x.offset <= tile.end
                and not any(l.start <= x.offset <= l.end for l in inner)]
        rest_classes = class_counts(rest)
        out["tile_loop"] = {"start": hexo(tile.start), "end": hexo(tile.end),
                            "instructions": tile.instructions, "tensor": tile.tensor,
                            "inner_tensor_loops": len(inner),
                            "epilogue_instructions": sum(rest_classes.values()),
                            "epilogue_classes": rest_classes}
    return out


# ---- objects -----------------------------------------------------------------------------------


def object_name(path: str) -> str:
    name = os.path.basename(path)
    for suffix in (".o", ".obj", ".cubin", ".cu", ".fatbin"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return re.sub(r"(\.cu)?\.\d+\.sm_\w+$", "", name)  # x.cu.1.sm_90 (cuobjdump -xelf)


def split_static_smem(arch: str, shared: int) -> tuple[int, int]:
    """cuobjdump's SHARED -> (what the kernel declares, the system reserve counted in it).  sm_90
    cubins place the 1 KB per-CTA reserve (.nv.reservedSmem) in front of the kernel's shared
    window whenever the kernel uses shared memory; sm_80 cubins do not."""
    reserved = 1024 if arch.startswith("sm_9") and shared >= 1024 else 0
    return shared - reserved, reserved


CUBIN_ARCH = re.compile(r"\.(sm_\w+?)\.cubin$")


def cubins_of(path: str, cuobjdump: str, tmp: str) -> list[tuple[str, str | None]]:
    """[(cubin path, arch from its name or None)] of one input file."""
    if path.endswith(".cubin"):
        m = CUBIN_ARCH.search(path)
        return [(path, m.group(1) if m else None)]
    where = tempfile.mkdtemp(dir=tmp)
    result = subprocess.run([cuobjdump, "-xelf", "all", os.path.abspath(path)], cwd=where,
                            capture_output=True, text=True)
    if result.returncode != 0:
        message = (result.stderr + result.stdout).strip()
        if "does not contain device code" in message:
            print(f"sass_report: {path}: no device code, skipped", file=sys.stderr)
            return []
        raise RuntimeError(f"cuobjdump -xelf all {path} failed: {message}")
    out = []
    for name in sorted(os.listdir(where)):
        if name.endswith(".cubin"):
            m = CUBIN_ARCH.search(name)
            out.append((os.path.join(where, name), m.group(1) if m else None))
    return out


def expand_inputs(paths: list[str]) -> list[str]:
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(glob.glob(os.path.join(p, "*.o"))
                            + glob.glob(os.path.join(p, "*.cubin")))
        else:
            files.append(p)
    return files


def analyse_objects(paths: list[str], cuobjdump: str) -> tuple[list[dict], list[dict]]:
    """Every kernel of every cubin of the inputs; a kernel compiled into several objects (a helper
    template instantiated in each translation unit) is kept once per arch, with all its objects."""
    kernels: dict[tuple[str, str], dict] = {}
    binaries = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in expand_inputs(paths):
            obj = object_name(path)
            for cubin, arch in cubins_of(path, cuobjdump, tmp):
                sass_arch, functions = parse_sass(run_tool([cuobjdump, "-sass", cubin]))
                arch = arch or sass_arch or "unknown"
                binaries.append({"object": obj, "arch": arch, "cubin_bytes": os.path.getsize(cubin),
                                 "kernels": len(functions)})
                usage = parse_res_usage(run_tool([cuobjdump, "-res-usage", cubin]))
                for mangled, instrs in functions.items():
                    key = (mangled, arch)
                    if key in kernels:
                        kernels[key]["objects"].append(obj)
                        continue
                    res = usage.get(mangled, {})
                    static, reserved = split_static_smem(arch, res.get("SHARED", 0))
                    entry = {"mangled": mangled, "object": obj, "objects": [obj], "arch": arch,
                             "registers": res.get("REG", 0),
                             "spill_bytes": res.get("STACK", 0) + res.get("LOCAL", 0),
                             "stack_bytes": res.get("STACK", 0), "local_bytes": res.get("LOCAL", 0),
                             "static_smem_bytes": static,
                             "cubin_reserved_smem_bytes": reserved}
                    entry.update(analyse_function(instrs))
                    kernels[key] = entry
    names = demangle(sorted({k["mangled"] for k in kernels.values()}))
    for k in kernels.values():
        k["demangled"] = names[k["mangled"]]
        k["name"] = short_name(names[k["mangled"]])
    return list(kernels.values()), binaries


# ---- rows: kernels x launch configurations -----------------------------------------------------

ROW_KEYS = ["name", "mangled", "object", "config", "arch", "registers", "spill_bytes",
            "static_smem_bytes", "dynamic_smem_bytes", "smem_bytes", "threads", "ctas_per_sm",
            "occupancy_limiter", "d"]


def build_rows(kernels: list[dict], configs: list[dict]) -> tuple[list[dict], list[dict]]:
    """One row per kernel x matching launch configuration (or one with nulls); the configs that
    matched no kernel come back second."""
    by_key: dict[str, list[dict]] = {}
    for c in configs:
        by_key.setdefault(name_key(c.get("kernel", "")), []).append(c)
    used = set()
    rows = []
    for k in kernels:
        matches = by_key.get(name_key(k["name"]), [])
        used.update(id(c) for c in matches)
        for c in matches or [None]:
            row = {key: None for key in ROW_KEYS}
            row.update(k)
            row["config"] = c.get("config") if c else k["object"]
            if c:
                row["threads"] = c.get("threads")
                row["dynamic_smem_bytes"] = c.get("dynamic_smem_bytes")
                row["d"] = c.get("d")
                row["launch_config"] = c
            if row["dynamic_smem_bytes"] is not None:
                row["smem_bytes"] = row["static_smem_bytes"] + row["dynamic_smem_bytes"]
            row["ctas_per_sm"], row["occupancy_limiter"] = ctas_per_sm(
                row["arch"], row["registers"], row["threads"], row["smem_bytes"])
            rows.append(row)
    rows.sort(key=lambda r: (r["arch"], r["hot_loop"] is None, r["object"], r["name"],
                             r["d"] or 0, str(r["config"])))
    unmatched = [c for c in configs if id(c) not in used]
    return rows, unmatched


# ---- Markdown ----------------------------------------------------------------------------------


def cell(v) -> str:
    return "–" if v is None else str(v)


def kib(v) -> str:
    return "–" if v is None else f"{v / 1024:.1f}"


def path_cell(path: dict | None) -> str:
    return "–" if path is None else f"{path['instructions']} ({path['tensor_share']:.3f})"


def markdown(report: dict) -> str:
    rows = report["kernels"]
    if not rows:
        return "No kernels analysed (no objects, or no cuobjdump).\n"
    lines = ["### Kernels (static: cuobjdump -res-usage and -sass; hot-loop counts per warp)", "",
             "| kernel | config | arch | regs | spill | smem KiB | thr | CTA/SM | loop | iter | "
             "tensor | LDSM | LDS/STS | FP32 | int | share |",
             "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        h = r["hot_loop"]
        smem = kib(r["smem_bytes"]) if r["smem_bytes"] is not None else (
            kib(r["static_smem_bytes"]) + " st")
        if h:
            c = h["classes"]
            steady = h["path_steady"]["instructions"] if h["path_steady"] else "–"
            loop = [h["instructions"], steady, h["tensor"], c["ldsm"], f"{c['lds']}/{c['sts']}",
                    c["fp32"], c["integer"], f"{h['tensor_share']:.3f}"]
        else:
            loop = ["–"] * 8
        lines.append("| " + " | ".join(
            [f"`{r['name']}`", cell(r["config"]), r["arch"], cell(r["registers"]),
             cell(r["spill_bytes"]), smem, cell(r["threads"]), cell(r["ctas_per_sm"])]
            + [str(x) for x in loop]) + " |")
    lines += ["", "loop: instructions of the hot loop's static body, by class in the next columns; "
              "share = tensor / loop.  iter: the shortest iteration through the hot block that "
              "issues a global load.  smem: static + dynamic (st: static only, the launch "
              "unknown).",
              ""]
    detail = ["### Hot loops and tile loops (per warp; paths: instructions (tensor share))", "",
              "| kernel | arch | hot loop | hot block | path min | iter | path max | tile loop | "
              "epilogue | of it int / FP32 / MUFU / LDS+STS / branch |",
              "|---|---|---|---|--:|--:|--:|---|--:|---|"]
    seen = set()
    for r in rows:
        h = r["hot_loop"]
        if not h or (r["mangled"], r["arch"]) in seen:
            continue
        seen.add((r["mangled"], r["arch"]))
        t = r["tile_loop"]
        if t:
            e = t["epilogue_classes"]
            tile = f"{t['start']}–{t['end']} ({t['instructions']})"
            epi = str(t["epilogue_instructions"])
            mix = (f"{e['integer']} / {e['fp32']} / {e['mufu']} / {e['lds'] + e['sts']} / "
                   f"{e['branch']}")
        else:
            tile, epi, mix = "–", "–", "–"
        b = h["hot_block"]
        detail.append(
            f"| `{r['name']}` | {r['arch']} | {h['start']}–{h['end']} ({h['instructions']}) | "
            f"{b['start']}–{b['end']} ({b['tensor']} of {b['instructions']}) | "
            f"{path_cell(h['path_min'])} | {path_cell(h['path_steady'])} | "
            f"{path_cell(h['path_max'])} | {tile} | {epi} | {mix} |")
    return "\n".join(lines + detail) + "\n"


# ---- main --------------------------------------------------------------------------------------


def git_commit(where: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", where, "describe", "--always", "--dirty"],
                             capture_output=True, text=True)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except OSError:
        return None


def load_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def apply_model(report: dict) -> str | None:
    """bench/report/h200_model.py's apply(report) -> Markdown, when that module exists."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        import h200_model  # noqa: PLC0415
    except ImportError:
        return None
    fn = getattr(h200_model, "apply", None)
    return fn(report) if callable(fn) else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="*", help="object files (fatbins), cubins or directories")
    ap.add_argument("--launch-configs", help="JSON {launch_configs: [{kernel, config, threads, "
                    "dynamic_smem_bytes, d}]}")
    ap.add_argument("--emulated", help="JSON object merged into the report (emulated, launches)")
    ap.add_argument("--json", help="write the report here")
    ap.add_argument("--cuobjdump", help="cuobjdump to use (default: PATH, toolkit, wheels)")
    ap.add_argument("--check-tools", action="store_true",
                    help="print the cuobjdump found and exit 0, or exit 1 when there is none")
    args = ap.parse_args(argv)

    cuobjdump = args.cuobjdump or find_tool("cuobjdump")
    if args.check_tools:
        print(cuobjdump or "cuobjdump not found")
        return 0 if cuobjdump else 1
    kernels, binaries = [], []
    if args.inputs:
        if not cuobjdump:
            print("sass_report: cuobjdump not found (pip install nvidia-cuda-cuobjdump)",
                  file=sys.stderr)
            return 2
        kernels, binaries = analyse_objects(args.inputs, cuobjdump)
    configs = []
    if args.launch_configs:
        configs = load_json(args.launch_configs).get("launch_configs", [])
    rows, unmatched = build_rows(kernels, configs)
    for c in unmatched:
        print(f"sass_report: launch config for {c.get('kernel')!r} ({c.get('config')}) matches "
              "no kernel", file=sys.stderr)
    report = {"commit": git_commit(os.path.dirname(os.path.abspath(__file__))),
              "cuobjdump": cuobjdump,
              "occupancy_parts": {a: l["part"] for a, l in ARCH_LIMITS.items()},
              "kernels": rows, "binaries": binaries, "unmatched_launch_configs": unmatched}
    if args.emulated:
        for key, value in load_json(args.emulated).items():
            if key in report and key not in ("emulated", "launches"):
                print(f"sass_report: --emulated key {key!r} ignored (already in the report)",
                      file=sys.stderr)
                continue
            report[key] = value
    text = markdown(report)
    model = apply_model(report)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
    sys.stdout.write(text)
    if model:
        sys.stdout.write("\n" + model.rstrip("\n") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
