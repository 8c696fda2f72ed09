// Error codes of the core. The core never throws: every fallible call returns a Status, and a
// call that returns anything but kOk has left the heap exactly as it was.
#pragma once

#include <cstdint>

namespace ma {

enum class Status : uint8_t {
  kOk = 0,
  kInvalidOption,       // a HeapOptions field out of range
  kInvalidAlignment,    // not a power of two, or above kMaxAlign
  kInvalidPointer,      // not the start of a chunk of this heap
  kDoubleFree,          // the start of a chunk that is already free
  kOutOfMemory,         // maxHeapBytes reached, or the memory source refused to grow
  kUnsupported,         // valid, but not with this heap's options
  kBrkMainThreadOnly,   // the brk source asked for off the process's main thread
  kHeapCorrupt,         // check() found a broken invariant, or foreign code lowered our break
  kTraceFormat,         // replay was handed an inconsistent trace
};

// The DESIGN.md name of a status ("ERR_OUT_OF_MEMORY"), for the addon's JS errors.
const char* StatusCode(Status status);

}  // namespace ma
