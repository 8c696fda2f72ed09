// Where the heap's own bookkeeping lives: growable arrays of plain values outside the heap.
//
// Two rules shape this file. Large arrays are mapped with mmap and grown with mremap, never taken
// from the process's malloc: glibc grows its main arena by moving the program break, and a brk
// heap whose metadata moved the break would keep splitting itself into segments. And growth can
// fail: Grow() reports it instead of aborting, so that the heap call that needed the room fails
// with kOutOfMemory and leaves the heap as it was (the core is built without exceptions).
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

namespace ma {

// Below this many bytes an array lives on malloc, where it costs no page of its own.
constexpr size_t kMetadataMmapThreshold = size_t{64} << 10;

template <typename T>
class MetadataArray {
  static_assert(std::is_trivially_copyable<T>::value, "metadata is plain values");

 public:
  MetadataArray() = default;
  ~MetadataArray() { Release(data_, capacity_); }
  MetadataArray(const MetadataArray&) = delete;
  MetadataArray& operator=(const MetadataArray&) = delete;

  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  uint64_t bytes() const { return capacity_ * sizeof(T); }

  // Room for at least `count` elements; false (nothing changed) when the system has none.
  bool Reserve(size_t count) {
    if (count <= capacity_) return true;
    size_t grown = capacity_ < 16 ? 16 : capacity_ + capacity_ / 2;
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
  void PushBack(const T& value) { data_[size_++] = value; }
  void PopBack() { --size_; }
  T& back() { return data_[size_ - 1]; }
  const T& back() const { return data_[size_ - 1]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  void Clear() { size_ = 0; }
  void Fill(const T& value) {
    for (size_t i = 0; i < size_; ++i) data_[i] = value;
  }

 private:
  static bool Mapped(size_t capacity) { return capacity * sizeof(T) >= kMetadataMmapThreshold; }

  static void Release(T* data, size_t capacity) {
    if (data == nullptr) return;
    if (Mapped(capacity)) munmap(data, capacity * sizeof(T));
    else std::free(data);
  }

  bool Reallocate(size_t capacity) {
    const size_t bytes = capacity * sizeof(T);
    T* moved;
    if (Mapped(capacity) && data_ != nullptr && Mapped(capacity_)) {
      // mremap moves pages, not bytes: growing a large table costs no copy.
      void* remapped = mremap(data_, capacity_ * sizeof(T), bytes, MREMAP_MAYMOVE);
      if (remapped == MAP_FAILED) return false;
      moved = static_cast<T*>(remapped);
    } else {
      void* memory;
      if (Mapped(capacity)) {
        memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) return false;
      } else {
        memory = std::malloc(bytes);
        if (memory == nullptr) return false;
      }
      moved = static_cast<T*>(memory);
      if (size_ != 0) std::memcpy(moved, data_, size_ * sizeof(T));
      Release(data_, capacity_);
    }
    data_ = moved;
    capacity_ = capacity;
    return true;
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace ma
