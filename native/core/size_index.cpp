// The 64-ary bitmap trie of size_index.h. A key's digits, most significant first, select one
// child per level; the root level uses only the top two bits of the 32-bit key.
#include "size_index.h"


namespace ma {

// The root is made by the first Reserve, so that an index nobody uses costs nothing.
SizeIndex::SizeIndex() = default;

void SizeIndex::Clear() {
  first_spare_ = kNone;
  spare_count_ = 0;
  if (nodes_.empty()) return;
  nodes_.Clear();
  nodes_.PushBack(Node{});
}

bool SizeIndex::Reserve(uint32_t inserts) {
  const size_t needed = static_cast<size_t>(inserts) * kNewNodesPerInsert + (nodes_.empty() ? 1 : 0);
  if (spare_count_ >= needed) return true;
  if (!nodes_.Reserve(nodes_.size() + needed - spare_count_)) return false;
  if (nodes_.empty()) nodes_.PushBack(Node{});
  return true;
}

uint32_t SizeIndex::NewNode() {
  if (first_spare_ != kNone) {
    const uint32_t node = first_spare_;
    first_spare_ = nodes_[node].child[0];
    --spare_count_;
    nodes_[node].occupied = 0;
    return node;
  }
  nodes_.PushBack(Node{});
  return static_cast<uint32_t>(nodes_.size() - 1);
}

uint32_t SizeIndex::Leaf(uint32_t size) const {
  uint32_t node = kRoot;
  for (int level = 0; level < kLevels - 1; ++level) node = nodes_[node].child[Digit(size, level)];
  return node;
}

void SizeIndex::Update(uint32_t size, uint32_t value) { nodes_[Leaf(size)].child[Digit(size, kLevels - 1)] = value; }

uint32_t SizeIndex::Find(uint32_t size) const {
  if (nodes_.empty()) return kNone;
  uint32_t node = kRoot;
  for (int level = 0;; ++level) {
    const uint32_t digit = Digit(size, level);
    if (!(nodes_[node].occupied >> digit & 1)) return kNone;
    if (level == kLevels - 1) return nodes_[node].child[digit];
    node = nodes_[node].child[digit];
  }
}

void SizeIndex::Insert(uint32_t size, uint32_t value) {
  uint32_t node = kRoot;
  for (int level = 0; level < kLevels - 1; ++level) {
    const uint32_t digit = Digit(size, level);
    if (!(nodes_[node].occupied >> digit & 1)) {
      const uint32_t child = NewNode();  // may reallocate nodes_: index again below
      nodes_[node].child[digit] = child;
      nodes_[node].occupied |= uint64_t{1} << digit;
    }
    node = nodes_[node].child[digit];
  }
  const uint32_t digit = Digit(size, kLevels - 1);
  nodes_[node].child[digit] = value;
  nodes_[node].occupied |= uint64_t{1} << digit;
}

void SizeIndex::Remove(uint32_t size) {
  uint32_t path[kLevels];
  uint32_t node = kRoot;
  for (int level = 0; level < kLevels; ++level) {
    path[level] = node;
    if (level < kLevels - 1) node = nodes_[node].child[Digit(size, level)];
  }
  // Clear the leaf bit, then release every node that became empty, bottom up.
  for (int level = kLevels - 1; level >= 0; --level) {
    Node& current = nodes_[path[level]];
    current.occupied &= ~(uint64_t{1} << Digit(size, level));
    if (current.occupied != 0 || level == 0) break;
    nodes_[path[level]].child[0] = first_spare_;
    first_spare_ = path[level];
    ++spare_count_;
  }
}

void SizeIndex::Rekey(uint32_t from, uint32_t to, uint32_t value) {
  if ((from >> 6) != (to >> 6)) {
    Remove(from);
    Insert(to, value);
    return;
  }
  Node& leaf = nodes_[Leaf(from)];
  leaf.occupied = (leaf.occupied & ~(uint64_t{1} << (from & 63))) | (uint64_t{1} << (to & 63));
  leaf.child[to & 63] = value;
}

uint32_t SizeIndex::Descend(uint32_t node, int level, uint32_t prefix, bool lowest, uint32_t* found_size,
                            uint64_t* steps) const {
  for (;; ++level) {
    const uint64_t occupied = nodes_[node].occupied;
    ++*steps;
    const uint32_t digit = lowest ? static_cast<uint32_t>(__builtin_ctzll(occupied))
                                  : 63u - static_cast<uint32_t>(__builtin_clzll(occupied));
    prefix |= digit << Shift(level);
    if (level == kLevels - 1) {
      *found_size = prefix;
      return nodes_[node].child[digit];
    }
    node = nodes_[node].child[digit];
  }
}

uint32_t SizeIndex::Successor(uint32_t size, uint32_t* found_size, uint64_t* steps) const {
  if (nodes_.empty()) return kNone;
  uint32_t path[kLevels];
  uint32_t node = kRoot;
  int level = 0;
  // Follow `size` down as far as it exists.
  for (;; ++level) {
    path[level] = node;
    ++*steps;
    const uint32_t digit = Digit(size, level);
    const uint64_t occupied = nodes_[node].occupied;
    if (level == kLevels - 1) {
      const uint64_t at_least = occupied & (~uint64_t{0} << digit);
      if (at_least != 0) {
        const uint32_t leaf_digit = static_cast<uint32_t>(__builtin_ctzll(at_least));
        *found_size = (size & ~63u) | leaf_digit;
        return nodes_[node].child[leaf_digit];
      }
      break;
    }
    if (!(occupied >> digit & 1)) {
      // No key shares this prefix: the answer is the lowest key under a larger digit here.
      const uint64_t larger = occupied & (~uint64_t{0} << digit);
      if (larger != 0) {
        const uint32_t next = static_cast<uint32_t>(__builtin_ctzll(larger));
        const uint32_t prefix = (level == 0 ? 0 : size & ~((1u << (Shift(level) + 6)) - 1)) | next << Shift(level);
        return Descend(nodes_[node].child[next], level + 1, prefix, true, found_size, steps);
      }
      break;
    }
    node = nodes_[node].child[digit];
  }
  // Every key under the path is smaller: climb to the nearest level with a larger sibling.
  for (--level; level >= 0; --level) {
    const uint32_t digit = Digit(size, level);
    const uint64_t larger = digit == 63 ? 0 : nodes_[path[level]].occupied & (~uint64_t{0} << (digit + 1));
    ++*steps;
    if (larger != 0) {
      const uint32_t next = static_cast<uint32_t>(__builtin_ctzll(larger));
      const uint32_t prefix = (level == 0 ? 0 : size & ~((1u << (Shift(level) + 6)) - 1)) | next << Shift(level);
      return Descend(nodes_[path[level]].child[next], level + 1, prefix, true, found_size, steps);
    }
  }
  return kNone;
}

uint32_t SizeIndex::Largest(uint32_t* found_size, uint64_t* steps) const {
  if (empty()) return kNone;
  return Descend(kRoot, 0, 0, false, found_size, steps);
}

}  // namespace ma
