// Views of chunks, in the two modes of HeapOptions.views (README, "Views and their revocation").
//
// Revocable: each view is an external ArrayBuffer over one chunk, detached (every typed array on
// it then reads length 0) before the chunk can be handed out again. The JS side keeps the buffer
// with its chunk and passes it back when the chunk is freed, so the addon needs no registry and
// no reference per view: a record (the finalizer's hint) is all. A buffer detached by someone
// else first (a transfer) may have moved its memory into a buffer we cannot reach: its chunk is
// then quarantined (quarantined in the core, out of use) until that memory's finalizer runs.
//
// Shared: views are windows on one external ArrayBuffer per segment. A freed chunk's old views
// are not emptied; a window is detached before any memory under it is given back (trim, reset,
// close, a release after free), so no view ever reaches unmapped memory.
#pragma once

#include <node_api.h>

#include <cstdint>

#include "heap_box.h"

namespace ma_addon {

// A buffer for a view of `size` bytes of the live chunk at `address`. Revocable: a new buffer
// of exactly `size` bytes; its token goes to view_info[0]. Shared: a window containing the
// chunk; its base address goes to view_info[0]. Returns nullptr after throwing.
napi_value MakeView(napi_env env, HeapBox* box, uintptr_t address, uint64_t size);

// Revocable. Detaches `buffer` (a view of the chunk at `address` with `token`) if it is still
// attached; otherwise records that it escaped. Returns true when the chunk has escaped views, so
// that freeing it must quarantine it instead (FreeViewed calls Quarantine then).
bool RevokeView(napi_env env, HeapBox* box, uintptr_t address, napi_value buffer, napi_value token);

// Whether `buffer` (the view of the chunk at `address` with `token`) was detached by someone
// else; records the escape when it was.
bool ViewEscaped(napi_env env, HeapBox* box, uintptr_t address, napi_value buffer, napi_value token);

// Records that the view with `token` was detached by someone else (the JS side noticed).
void NoteEscaped(HeapBox* box, napi_value token, napi_env env);

// Whether the chunk at `address` has escaped views that are not finalized yet.
bool HasEscapedViews(const HeapBox* box, uintptr_t address);

// Quarantines the live chunk at `address` in the core; the last escaped view's finalizer frees it.
void Quarantine(HeapBox* box, uintptr_t address);
// The same bookkeeping for a chunk the core quarantined itself (Heap::MoveAndQuarantine).
void NoteQuarantined(HeapBox* box, uintptr_t address);

// Before reset and close: quarantines every live chunk with escaped views (the core keeps quarantined chunks).
void QuarantineEscapedChunks(HeapBox* box);

// Shared. Detaches every window over memory the heap no longer holds; call after anything that
// may give memory back (free, realloc, trim). All windows when `all`.
void DetachReleasedWindows(napi_env env, HeapBox* box, bool all = false);

}  // namespace ma_addon
