// The limits every part of the heap agrees on.
#pragma once

#include <cstdint>

namespace ma {

// Chunk sizes stay below 2^31 granules and positions below 2^32 - 16, so that a position plus a
// size plus an alignment pad never overflows 32 bits.
constexpr uint64_t kMaxChunkGranules = 0x7FFFFFFFu;
constexpr uint64_t kMaxPosition = 0xFFFFFFF0u;
constexpr uint64_t kDefaultMmapReserve = uint64_t{64} << 30;
constexpr uint64_t kMaxGrowth = uint64_t{1} << 40;
// A small request with segregation grows the heap by at least this much (see TakeFromTop).
constexpr uint64_t kSegregationRoom = 4096;
// Automatic trims adapt the threshold upward, at most this far (an explicit Trim() takes all).
constexpr uint64_t kMaxAdaptiveTrimThreshold = uint64_t{32} << 20;

}  // namespace ma
