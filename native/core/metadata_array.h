// Where the heap's own bookkeeping lives: growable arrays of plain values outside the heap.
//
// Two rules shape this file. Every array is mapped with mmap and grown with mremap, never taken
// from the process's malloc: glibc grows its main arena by moving the program break, so a brk
// heap whose bookkeeping came from malloc would find glibc's memory on top of the segment it just
// grew, and could neither grow it again nor give it back. And growth can fail: Reserve() reports
// it instead of aborting, so that the heap call that needed the room fails with kOutOfMemory and
// leaves the heap as it was (the core is built without exceptions).
//
// Arrays grow by an eighth, not by half: mremap moves page-table entries, not bytes, so a finer
// step costs a few more system calls and no copying, and the slack it leaves is an eighth at
// most instead of a third (python3-json's free table: 46,147 records in room for 64,512 at 1.5x).
// They shrink too (ShrinkTo), so that a heap past its peak gives the pages back. Every array of a
// heap reports its mapped bytes to the heap's MetadataGauge, which keeps the total and its peak.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "debug.h"

namespace ma {

constexpr size_t kMetadataPage = 4096;
// Growth adds capacity / kMetadataGrowthDivisor (at least a page).
constexpr size_t kMetadataGrowthDivisor = 8;

// The mapped bytes of a heap's tables now and at their peak (HeapStats::peak_metadata_bytes). The
// arrays report every mapping change; the total only changes when one of them grows or shrinks.
struct MetadataGauge {
  uint64_t bytes = 0;
  uint64_t peak = 0;
  void Change(uint64_t from, uint64_t to) {
    bytes = bytes - from + to;
    if (bytes > peak) peak = bytes;
  }
};

template <typename T>
class MetadataArray {
  static_assert(std::is_trivially_copyable<T>::value, "metadata is plain values");

 public:
  MetadataArray() = default;
  ~MetadataArray() { Release(); }
  MetadataArray(const MetadataArray&) = delete;
  MetadataArray& operator=(const MetadataArray&) = delete;

  T& operator[](size_t i) {
    MA_ASSERT(i < size_);
    return data_[i];
  }
  const T& operator[](size_t i) const {
    MA_ASSERT(i < size_);
    return data_[i];
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  uint64_t bytes() const { return MappedBytes(capacity_); }

  // From now on, every change of the mapping is reported to `gauge` (which counts the bytes
  // mapped already at once).
  void Attach(MetadataGauge* gauge) {
    gauge_ = gauge;
    if (gauge_ != nullptr) gauge_->Change(0, bytes());
  }

  // Room for at least `count` elements; false (nothing changed) when the system has none.
  bool Reserve(size_t count) { return count <= capacity_ || Grow(count); }
  // Gives back the pages beyond room for max(`count`, size()) elements (none at all when both are
  // 0). Shrinking a mapping in place cannot fail for want of memory; if the system refuses anyway,
  // the array keeps its room.
  void ShrinkTo(size_t count) {
    if (count < size_) count = size_;
    if (count == 0) return Release();
    const size_t bytes = MappedBytes(count);
    if (bytes >= MappedBytes(capacity_)) return;
    void* memory = mremap(data_, MappedBytes(capacity_), bytes, 0);
    if (memory == MAP_FAILED) return;
    if (gauge_ != nullptr) gauge_->Change(MappedBytes(capacity_), bytes);
    capacity_ = bytes / sizeof(T);
  }
  // Unmaps everything (the array is empty and without room afterwards).
  void Release() {
    if (data_ == nullptr) return;
    munmap(data_, MappedBytes(capacity_));
    if (gauge_ != nullptr) gauge_->Change(MappedBytes(capacity_), 0);
    data_ = nullptr;
    size_ = capacity_ = 0;
  }
  // Grows or shrinks to `count`, new elements set to `fill`; false (nothing changed) on failure.
  bool Resize(size_t count, const T& fill) {
    if (!Reserve(count)) return false;
    for (size_t i = size_; i < count; ++i) data_[i] = fill;
    size_ = count;
    return true;
  }
  // Only within the reserved capacity: callers reserve first, then commit.
  void PushBack(const T& value) {
    MA_ASSERT(size_ < capacity_);
    data_[size_++] = value;
  }
  void PopBack() {
    MA_ASSERT(size_ > 0);
    --size_;
  }
  T& back() {
    MA_ASSERT(size_ > 0);
    return data_[size_ - 1];
  }
  const T& back() const {
    MA_ASSERT(size_ > 0);
    return data_[size_ - 1];
  }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  void Clear() { size_ = 0; }
  // Drops the last elements down to `count` (their room stays).
  void Truncate(size_t count) {
    MA_ASSERT(count <= size_);
    size_ = count;
  }
  void Fill(const T& value) {
    for (size_t i = 0; i < size_; ++i) data_[i] = value;
  }

 private:
  // Whole pages: the mapping has them anyway.
  static size_t MappedBytes(size_t count) { return (count * sizeof(T) + kMetadataPage - 1) / kMetadataPage * kMetadataPage; }

  // Out of line and cold: inlined into the free path (through its reserve checks), the system
  // calls made Heap::Free save six registers on every call (bash-arrays: 180 -> 177 instructions
  // per request once out of line, callgrind).
  __attribute__((noinline, cold)) bool Grow(size_t count) {
    size_t grown = capacity_ + capacity_ / kMetadataGrowthDivisor;
    if (grown < count) grown = count;
    return Reallocate(grown);
  }

  bool Reallocate(size_t capacity) {
    const size_t bytes = MappedBytes(capacity);
    void* memory = data_ == nullptr
                       ? mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                       : mremap(data_, MappedBytes(capacity_), bytes, MREMAP_MAYMOVE);  // moves pages, not bytes
    if (memory == MAP_FAILED) return false;
    if (gauge_ != nullptr) gauge_->Change(MappedBytes(capacity_), bytes);
    data_ = static_cast<T*>(memory);
    capacity_ = bytes / sizeof(T);
    return true;
  }

  MetadataGauge* gauge_ = nullptr;
  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;  // whole pages' worth
};

}  // namespace ma
