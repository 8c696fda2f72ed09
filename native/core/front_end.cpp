// The front end's rare operations: taking one particular chunk off its stack, emptying, checking.
#include "front_end.h"

namespace ma {

void FrontEnd::Clear() {
  // The entries keep their memory, as the free table's records do.
  entries_.Clear();
  first_vacant_ = kNone;
  for (uint32_t& head : heads_) head = kNone;
  for (uint32_t& count : counts_) count = 0;
  occupied_ = 0;
  count_ = 0;
}

bool FrontEnd::Remove(Granules pos, Granules size, uint32_t most) {
  if (size >= kSizes) return false;
  uint32_t* link = &heads_[size];
  for (uint32_t hops = 0; *link != kNone && hops < most; ++hops) {
    const uint32_t entry = *link;
    if (entries_[entry].pos == pos) {
      *link = entries_[entry].next;
      if (heads_[size] == kNone) occupied_ &= ~(uint64_t{1} << size);
      entries_[entry].next = first_vacant_;
      first_vacant_ = entry;
      --counts_[size];
      --count_;
      return true;
    }
    link = &entries_[entry].next;
  }
  return false;
}

const char* FrontEnd::CheckStacks() const {
  uint64_t held = 0;
  for (Granules size = 0; size < kSizes; ++size) {
    uint32_t in_stack = 0;
    for (uint32_t entry = heads_[size]; entry != kNone; entry = entries_[entry].next) {
      if (entry >= entries_.size()) return "a front-end stack links to no entry";
      if (++in_stack > entries_.size()) return "a front-end stack loops";
    }
    if (in_stack != counts_[size]) return "a front-end stack's count disagrees with its entries";
    if (((occupied_ >> size) & 1) != (in_stack != 0 ? 1u : 0u)) return "the front end's size bitmap is stale";
    held += in_stack;
  }
  if (held != count_) return "the front end's total disagrees with its stacks";
  uint32_t vacant = 0;
  for (uint32_t entry = first_vacant_; entry != kNone; entry = entries_[entry].next) {
    if (entry >= entries_.size() || ++vacant > entries_.size()) return "the front end's vacant chain is broken";
  }
  if (held + vacant != entries_.size()) return "a front-end entry is in no stack and not vacant";
  return nullptr;
}

}  // namespace ma
