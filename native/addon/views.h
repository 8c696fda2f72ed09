// Views: external ArrayBuffers over a live chunk, revoked (detached, so every typed array on them
// reads length 0) before the chunk can be handed out again.
//
// A buffer that was detached by someone else first (ArrayBuffer.prototype.transfer, a transfer
// list) may have moved its memory into a buffer we cannot reach. Its chunk is then quarantined:
// quarantined in the core, out of use, until that memory's finalizer reports it unreferenced.
#pragma once

#include <node_api.h>

#include <cstdint>
#include <vector>

#include "heap_box.h"

namespace ma_addon {

struct ViewRecord;

struct ChunkViews {
  HeapBox* box;
  uintptr_t address;
  std::vector<ViewRecord*> records;  // buffers not yet finalized
  uint32_t escaped = 0;              // records that escaped revocation; the chunk waits for them
  bool revoked = false;              // the chunk was freed or reallocated away
};

// An ArrayBuffer over the whole usable size of the live chunk at `address` (the same buffer
// again while it is attached). Returns nullptr after throwing.
napi_value ViewOf(napi_env env, HeapBox* box, uintptr_t address, uint64_t usable_size);

// Whether a view of the chunk at `address` was detached by someone else, so that revoking its
// views would quarantine the chunk.
bool ViewsEscaped(napi_env env, HeapBox* box, uintptr_t address);

// Revokes every view of the chunk at `address`, if it has any. Returns true when a view escaped
// and the caller must quarantine the chunk (Quarantine) instead of freeing it.
bool RevokeViews(napi_env env, HeapBox* box, uintptr_t address);

// Quarantines the chunk in the core; the last escaped view's finalizer frees it.
void Quarantine(HeapBox* box, uintptr_t address);

// Revokes the views of every chunk (reset, close), quarantining where needed.
void RevokeAllViews(napi_env env, HeapBox* box);

}  // namespace ma_addon
