// Where the heap's own bookkeeping lives: growable arrays of plain values outside the heap.
//
// Two rules shape this file. Every array is mapped with mmap and grown with mremap, never taken
// from the process's malloc: glibc grows its main arena by moving the program break, so a brk
// heap whose bookkeeping came from malloc would find glibc's memory on top of the segment it just
// grew, and could neither grow it again nor give it back. And growth can fail: Reserve() reports
// it instead of aborting, so that the heap call that needed the room fails with kOutOfMemory and
// leaves the heap as it was (the core is built without exceptions).
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "debug.h"

namespace ma {

constexpr size_t kMetadataPage = 4096;

template <typename T>
class MetadataArray {
  static_assert(std::is_trivially_copyable<T>::value, "metadata is plain values");

 public:
  MetadataArray() = default;
  ~MetadataArray() {
    if (data_ != nullptr) munmap(data_, capacity_ * sizeof(T));
  }
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
  uint64_t bytes() const { return capacity_ * sizeof(T); }

  // Room for at least `count` elements; false (nothing changed) when the system has none.
  bool Reserve(size_t count) {
    if (count <= capacity_) return true;
    size_t grown = capacity_ + capacity_ / 2;
    if (grown < count) grown = count;
    return Reallocate(grown);
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
  void Fill(const T& value) {
    for (size_t i = 0; i < size_; ++i) data_[i] = value;
  }

 private:
  bool Reallocate(size_t capacity) {
    // Whole pages: the mapping has them anyway.
    const size_t bytes = (capacity * sizeof(T) + kMetadataPage - 1) / kMetadataPage * kMetadataPage;
    void* memory = data_ == nullptr
                       ? mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                       : mremap(data_, capacity_ * sizeof(T), bytes, MREMAP_MAYMOVE);  // moves pages, not bytes
    if (memory == MAP_FAILED) return false;
    data_ = static_cast<T*>(memory);
    capacity_ = bytes / sizeof(T);
    return true;
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;  // whole pages' worth
};

}  // namespace ma
