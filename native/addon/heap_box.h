// What one JS heap object owns: the core heap, the native side of the views handed out on its
// chunks, and the chunks quarantined because a view escaped revocation. The box outlives the JS
// object while any view's finalizer is still to run, since finalizers find their way back through
// it; the core heap lives on while any view could still reach its memory.
#pragma once

#include <node_api.h>

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "heap.h"

namespace ma_addon {

// How views of chunks are made: HeapOptions.views (README, "Views and their revocation").
enum class ViewMode : uint8_t {
  kRevocable,  // one external buffer per chunk view, detached when the chunk is freed
  kShared,     // views on one buffer per segment ("window"), detached when memory is released
};

struct HeapBox;

// The native side of one revocable view: the finalizer hint of its buffer. The JS side holds the
// buffer itself (strongly, with its chunk) and names the record by its token.
struct ViewRecord {
  enum State : uint8_t { kVacant, kAttached, kDetached, kEscaped };
  HeapBox* box;
  uintptr_t address = 0;
  uint32_t index;           // its slot in HeapBox::records
  uint32_t generation = 0;  // bumped on each reuse of the slot, so stale tokens do not match
  State state = kVacant;
};

// A chunk with views detached by someone else (a transfer) whose memory may still be referenced.
struct EscapedChunk {
  uint32_t pending = 0;      // escaped views not yet finalized
  bool quarantined = false;  // freed by the user, quarantined in the core until `pending` is 0
};

// Shared mode: one buffer over [low, high), memory of one segment that is mapped and ours.
struct Window {
  uintptr_t low, high;
  napi_ref buffer;  // weak: a window nobody views can be collected
};

struct HeapBox {
  ma::Heap* heap = nullptr;  // null once closed and nothing can reach its memory any more
  bool closed = false;
  ViewMode view_mode = ViewMode::kRevocable;
  uint64_t max_view_bytes = 0;  // the runtime's largest ArrayBuffer (buffer.constants.MAX_LENGTH)

  std::deque<ViewRecord> records;  // a deque: finalizer hints point into it
  std::vector<uint32_t> vacant_records;
  uint64_t attached_views = 0;     // revocable buffers neither detached nor finalized
  std::unordered_map<uintptr_t, EscapedChunk> escaped;  // empty unless a view was transferred
  uint64_t quarantined_chunks = 0;

  std::vector<Window> windows;
  uint64_t released_seen = 0;  // the core's bytes_released when the windows were last checked

  // Two doubles the JS side reads after view(): the revocable view's token, or the window's base.
  double* view_info = nullptr;
  napi_ref view_info_buffer = nullptr;

  uint32_t refs = 1;        // all JS holders together, plus one per view record not yet finalized
  uint32_t js_holders = 0;  // the heap object and its functions not yet collected

  // Drops one reference; deletes the box (and a closed heap) with the last one.
  void Release(napi_env env);
  // Deletes the core heap once it is closed and no view or quarantined chunk can reach it.
  void DestroyHeapIfDone();
};

}  // namespace ma_addon
