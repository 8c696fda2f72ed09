// The size index of the freed-chunk table: an ordered set of large chunk sizes (in granules),
// each mapped to the first record of the list of free chunks of exactly that size.
//
// Why a 64-ary bitmap trie: best fit asks for the smallest size >= n. Exact-size bins answer an
// exact hit in O(1), but the next larger size must be found without walking the bins, and the
// free sizes of a real heap span from one granule to gigabytes. A 64-ary trie over the 32-bit
// size (levels of 2+6+6+6+6+6 bits) keeps one occupancy word per node, so a successor query is
// at most one descent, one climb and one descent of six levels each, whatever the number of
// chunks: `searchSteps` stays flat from a thousand free chunks to millions. A balanced tree would
// cost log2(n) dependent loads instead (17 at 100k sizes), and segregated power-of-two lists give
// up exact best fit. Nodes are 264 bytes, shared by every size with the same prefix.
#pragma once

#include <cstdint>

#include "metadata_array.h"

namespace ma {

class SizeIndex {
 public:
  static constexpr uint32_t kNone = 0xFFFFFFFFu;

  SizeIndex();

  // Room for `inserts` more sizes, so that they cannot fail; false (nothing changed) otherwise.
  bool Reserve(uint32_t inserts);
  bool HasRoom(uint32_t inserts) const {
    return !nodes_.empty() && size_t{spare_count_} + (nodes_.capacity() - nodes_.size()) >= size_t{inserts} * kNewNodesPerInsert;
  }

  // The value stored for exactly `size`, or kNone.
  uint32_t Find(uint32_t size) const;
  // Replaces the value of a present `size`.
  void Update(uint32_t size, uint32_t value);
  // `size` must not be present, and room for it reserved.
  void Insert(uint32_t size, uint32_t value);
  // `size` must be present.
  void Remove(uint32_t size);
  // Remove(from) + Insert(to, value), `to` absent; room reserved. A chunk carved a little at a
  // time changes its key within one leaf node nearly always, and that costs one descent.
  void Rekey(uint32_t from, uint32_t to, uint32_t value);
  // The smallest size >= `size` and its value; kNone when there is none. Adds the nodes it reads
  // to *steps.
  uint32_t Successor(uint32_t size, uint32_t* found_size, uint64_t* steps) const;
  // The largest size present and its value, or kNone.
  uint32_t Largest(uint32_t* found_size, uint64_t* steps) const;

  void Clear();
  // Gives every node back (the index must be empty); the next Reserve makes the root again.
  void Release() {
    MA_ASSERT(empty());
    nodes_.Release();
    first_spare_ = kNone;
    spare_count_ = 0;
  }
  bool empty() const { return nodes_.empty() || nodes_[kRoot].occupied == 0; }
  uint64_t metadata_bytes() const { return nodes_.bytes(); }
  void Attach(MetadataGauge* gauge) {
    nodes_.Attach(gauge);
  }

 private:
  static constexpr int kLevels = 6;
  static constexpr uint32_t kNewNodesPerInsert = kLevels - 1;  // every level but the root's
  static constexpr uint32_t kRoot = 0;

  struct Node {
    uint64_t occupied;      // bit d set <=> child[d] is in use
    uint32_t child[64];     // a node index above the last level, the stored value at the last level
  };

  static uint32_t Digit(uint32_t key, int level) { return (key >> Shift(level)) & 63u; }
  static int Shift(int level) { return 6 * (kLevels - 1 - level); }
  uint32_t NewNode();
  // Follows the lowest (or highest) occupied child from `node` at `level` down to a leaf.
  uint32_t Descend(uint32_t node, int level, uint32_t prefix, bool lowest, uint32_t* found_size, uint64_t* steps) const;

  // Follows `size` to the node of the last level; it must be present.
  uint32_t Leaf(uint32_t size) const;

  MetadataArray<Node> nodes_;       // nodes_[kRoot] exists once anything was reserved
  // Released nodes, reused first: a chain through their child[0] (an array of their indexes cost
  // a page of its own on every heap).
  uint32_t first_spare_ = kNone;
  uint32_t spare_count_ = 0;
};

}  // namespace ma
