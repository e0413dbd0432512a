// The emulator's memory-counter model (internal; README "Counters"): how one warp's loads and
// stores become requests, shared-memory wavefronts and global-memory sectors.  Pure functions of
// the recorded accesses, so that they are tested on hand-computed cases (counters_test.cpp).
//
// Model:
//   - A request is one warp-level memory instruction: the accesses of one instruction site made by
//     the lanes in the same issue round (lane L's k-th execution of the site since the warp's last
//     flush pairs with every other lane's k-th).  The runtime flushes a warp at each of its
//     barriers and warp collectives, so rounds stay aligned unless lanes run a site a different
//     number of times between two of them (divergent loops: then rounds mix).
//   - Shared memory: 32 banks of 4 bytes.  A request of <= 4 bytes per lane is served in one phase
//     of 32 lanes, of 8 bytes in two phases (half-warps), of 16 bytes in four (quarter-warps), as
//     on Volta..Hopper.  A phase takes as many wavefronts as the largest number of distinct 4-byte
//     words that it touches in one bank (lanes reading or writing the same word share it: the
//     broadcast rule, applied to stores too since one write wins).  ideal = the non-empty phases.
//   - Other access sizes (struct copies: the host compiler's loadN/storeN) are split into 4-byte
//     pieces, piece p of every lane forming its own request.
//   - Global memory: a request touches the distinct 32-byte sectors of all its lanes' bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "cuda_emu.h"

namespace cuda_emu::detail {

enum class Space : std::uint8_t { shared, global };

struct Access {
  std::uintptr_t site; // the instruction (a return address; cp.async's shared side is site + 1)
  std::uintptr_t addr;
  std::uint32_t bytes;
  std::uint8_t lane;
  bool store;
  Space space;
  bool async; // a cp.async's global read or shared write
};

// One lane's part of a request.
struct LaneAccess {
  unsigned lane;
  std::uintptr_t addr;
  std::uint32_t bytes; // 1, 2, 4, 8 or 16
};

// Wavefronts and conflict-free wavefronts of one shared-memory request.
void shared_request(const LaneAccess* lanes, std::size_t count, std::uint64_t* wavefronts,
                    std::uint64_t* ideal);
// Distinct 32-byte sectors of one global-memory request.
std::uint64_t global_sectors(const LaneAccess* lanes, std::size_t count);

// Per instruction site (CUDA_EMU_STATS_SITES): what its requests cost.
struct SiteCounts {
  std::uint64_t requests = 0, wavefronts = 0, ideal = 0, sectors = 0;
  bool shared = false, store = false;
};
using SiteTable = std::unordered_map<std::uintptr_t, SiteCounts>;

// Groups one warp's recorded accesses (each lane's in program order) into requests, adds them to
// `c` (and per site to `sites` when not null), and empties `log` (its capacity is kept).
void count_warp_accesses(std::vector<Access>& log, LaunchCounters& c, SiteTable* sites = nullptr);

// a += b for every counter (names and shapes are not touched).
void add_counters(LaunchCounters& a, const LaunchCounters& b);

} // namespace cuda_emu::detail
