// The memory-counter model of cuda_emu_counters.h.
#include "cuda_emu_counters.h"

#include <algorithm>

namespace cuda_emu::detail {

void shared_request(const LaneAccess* lanes, std::size_t count, std::uint64_t* wavefronts,
                    std::uint64_t* ideal) {
  std::uint32_t width = 0;
  for (std::size_t i = 0; i < count; ++i)
    width = std::max(width, lanes[i].bytes);
  const unsigned per_phase = width <= 4 ? 32u : (width <= 8 ? 16u : 8u);
  for (unsigned phase = 0; phase < 32 / per_phase; ++phase) {
    // The distinct words of this phase (at most 8 lanes x 4 words or 32 x 2 or 32 x 1).
    std::uintptr_t words[64];
    std::size_t nw = 0;
    for (std::size_t i = 0; i < count; ++i) {
      if (lanes[i].lane / per_phase != phase || lanes[i].bytes == 0)
        continue;
      const std::uintptr_t first = lanes[i].addr / 4;
      const std::uintptr_t last = (lanes[i].addr + lanes[i].bytes - 1) / 4;
      for (std::uintptr_t w = first; w <= last && nw < 64; ++w)
        words[nw++] = w;
    }
    if (nw == 0)
      continue;
    std::sort(words, words + nw);
    nw = static_cast<std::size_t>(std::unique(words, words + nw) - words);
    unsigned per_bank[32] = {};
    unsigned most = 0;
    for (std::size_t i = 0; i < nw; ++i)
      most = std::max(most, ++per_bank[words[i] % 32]);
    *wavefronts += most;
    *ideal += 1;
  }
}

std::uint64_t global_sectors(const LaneAccess* lanes, std::size_t count) {
  std::vector<std::uintptr_t> sectors;
  sectors.reserve(count * 2);
  for (std::size_t i = 0; i < count; ++i) {
    if (lanes[i].bytes == 0)
      continue;
    for (std::uintptr_t s = lanes[i].addr / 32; s <= (lanes[i].addr + lanes[i].bytes - 1) / 32; ++s)
      sectors.push_back(s);
  }
  std::sort(sectors.begin(), sectors.end());
  return static_cast<std::uint64_t>(std::unique(sectors.begin(), sectors.end()) - sectors.begin());
}

namespace {

bool regular(std::uint32_t bytes) {
  return bytes == 1 || bytes == 2 || bytes == 4 || bytes == 8 || bytes == 16;
}

// One request (entries of one site, one round, one space, one direction) into the counters.
void count_request(const std::vector<LaneAccess>& req, Space space, bool store, bool async,
                   LaunchCounters& c, SiteCounts* site) {
  if (req.empty())
    return;
  if (site != nullptr) {
    site->requests += 1;
    site->shared = space == Space::shared;
    site->store = store;
  }
  if (async && space == Space::shared) { // every cp.async writes shared memory
    c.cp_async_requests += 1;
    for (const LaneAccess& a : req)
      c.cp_async_bytes += a.bytes;
  }
  if (space == Space::shared) {
    std::uint64_t wf = 0, ideal = 0;
    shared_request(req.data(), req.size(), &wf, &ideal);
    if (site != nullptr) {
      site->wavefronts += wf;
      site->ideal += ideal;
    }
    (store ? c.smem_store_requests : c.smem_load_requests) += 1;
    (store ? c.smem_store_wavefronts : c.smem_load_wavefronts) += wf;
    (store ? c.smem_store_ideal : c.smem_load_ideal) += ideal;
  } else {
    std::uint64_t bytes = 0;
    for (const LaneAccess& a : req)
      bytes += a.bytes;
    const std::uint64_t sectors = global_sectors(req.data(), req.size());
    if (site != nullptr)
      site->sectors += sectors;
    (store ? c.gmem_store_requests : c.gmem_load_requests) += 1;
    (store ? c.gmem_store_sectors : c.gmem_load_sectors) += sectors;
    (store ? c.gmem_store_bytes : c.gmem_load_bytes) += bytes;
  }
}

// Entries of one round of one site (any spaces / directions / sizes) into requests.
void count_round(const Access* begin, const Access* end, LaunchCounters& c, SiteTable* sites) {
  for (int sp = 0; sp < 2; ++sp)
    for (int st = 0; st < 2; ++st) {
      const Space space = sp == 0 ? Space::shared : Space::global;
      std::vector<LaneAccess> req;
      std::uint32_t pieces = 0; // irregular sizes: 4-byte pieces, one request per piece index
      bool async = false;
      for (const Access* a = begin; a != end; ++a) {
        if (a->space != space || a->store != (st == 1))
          continue;
        async = async || a->async;
        if (regular(a->bytes))
          req.push_back(LaneAccess{a->lane, a->addr, a->bytes});
        else
          pieces = std::max(pieces, (a->bytes + 3) / 4);
      }
      // (cp.async's shared side is recorded at site + 1: one table entry per side)
      SiteCounts* site =
          sites != nullptr && (!req.empty() || pieces > 0) ? &(*sites)[begin->site] : nullptr;
      count_request(req, space, st == 1, async, c, site);
      for (std::uint32_t p = 0; p < pieces; ++p) {
        req.clear();
        for (const Access* a = begin; a != end; ++a)
          if (a->space == space && a->store == (st == 1) && !regular(a->bytes) && 4 * p < a->bytes)
            req.push_back(LaneAccess{a->lane, a->addr + 4 * p, std::min(4u, a->bytes - 4 * p)});
        count_request(req, space, st == 1, async, c, site);
      }
    }
}

} // namespace

void count_warp_accesses(std::vector<Access>& log, LaunchCounters& c, SiteTable* sites) {
  if (log.empty())
    return;
  // Group by site keeping each lane's program order, then number each lane's executions of the
  // site: the k-th of every lane form round k.
  std::stable_sort(log.begin(), log.end(),
                   [](const Access& x, const Access& y) { return x.site < y.site; });
  struct Ranked {
    std::uint32_t round;
    std::uint32_t index;
  };
  std::vector<Ranked> rank;
  std::vector<Access> round_sorted;
  for (std::size_t b = 0; b < log.size();) {
    std::size_t e = b;
    while (e < log.size() && log[e].site == log[b].site)
      ++e;
    std::uint32_t seen[32] = {};
    rank.clear();
    for (std::size_t i = b; i < e; ++i)
      rank.push_back(Ranked{seen[log[i].lane % 32]++, static_cast<std::uint32_t>(i)});
    std::stable_sort(rank.begin(), rank.end(),
                     [](const Ranked& x, const Ranked& y) { return x.round < y.round; });
    round_sorted.clear();
    for (const Ranked& r : rank)
      round_sorted.push_back(log[r.index]);
    for (std::size_t rb = 0; rb < rank.size();) {
      std::size_t re = rb;
      while (re < rank.size() && rank[re].round == rank[rb].round)
        ++re;
      count_round(round_sorted.data() + rb, round_sorted.data() + re, c, sites);
      rb = re;
    }
    b = e;
  }
  log.clear();
}

void add_counters(LaunchCounters& a, const LaunchCounters& b) {
  a.blocks += b.blocks;
  a.threads += b.threads;
  a.barriers += b.barriers;
  a.warp_collectives += b.warp_collectives;
  a.mma_instructions += b.mma_instructions;
  a.tensor_macs += b.tensor_macs;
  a.wgmma_instructions += b.wgmma_instructions;
  a.smem_load_requests += b.smem_load_requests;
  a.smem_load_wavefronts += b.smem_load_wavefronts;
  a.smem_load_ideal += b.smem_load_ideal;
  a.smem_store_requests += b.smem_store_requests;
  a.smem_store_wavefronts += b.smem_store_wavefronts;
  a.smem_store_ideal += b.smem_store_ideal;
  a.ldmatrix_requests += b.ldmatrix_requests;
  a.ldmatrix_wavefronts += b.ldmatrix_wavefronts;
  a.ldmatrix_ideal += b.ldmatrix_ideal;
  a.gmem_load_requests += b.gmem_load_requests;
  a.gmem_load_sectors += b.gmem_load_sectors;
  a.gmem_load_bytes += b.gmem_load_bytes;
  a.gmem_store_requests += b.gmem_store_requests;
  a.gmem_store_sectors += b.gmem_store_sectors;
  a.gmem_store_bytes += b.gmem_store_bytes;
  a.cp_async_requests += b.cp_async_requests;
  a.cp_async_bytes += b.cp_async_bytes;
  a.tma_requests += b.tma_requests;
  a.tma_bytes += b.tma_bytes;
  a.tma_first_map_bytes += b.tma_first_map_bytes;
  a.accesses_instrumented = a.accesses_instrumented || b.accesses_instrumented;
}

} // namespace cuda_emu::detail
