// What one JS heap object owns: the core heap, the views handed out on its chunks, and the
// chunks quarantined because a view escaped revocation. The box outlives the JS object while any
// view's finalizer is still to run, since finalizers find their way back through it.
#pragma once

#include <node_api.h>

#include <cstdint>
#include <unordered_map>

#include "heap.h"

namespace ma_addon {

struct ChunkViews;

struct HeapBox {
  ma::Heap* heap = nullptr;   // null once closed and every quarantined chunk is back
  bool closed = false;
  // Chunks (by address) on which views were made and that are still live.
  std::unordered_map<uintptr_t, ChunkViews*> views;
  uint64_t quarantined_chunks = 0;  // quarantined in the core until their escaped views finalize
  uint32_t refs = 1;                // all JS holders together, plus one per view not yet finalized
  uint32_t js_holders = 0;          // the heap object and its functions not yet collected

  // Drops one reference; deletes the box (and a closed heap) with the last one.
  void Release();
  // Deletes the core heap once it is closed and holds no quarantined chunk.
  void DestroyHeapIfDone();
};

}  // namespace ma_addon
