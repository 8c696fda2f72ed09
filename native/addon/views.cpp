// View bookkeeping. Every ViewRecord holds a weak reference to its buffer: weak, so that a view
// nobody uses can be collected, and checked at revocation time to tell "still ours, detach it"
// from "gone or detached elsewhere, wait for the finalizer".
#include "views.h"

#include <algorithm>
#include <string>

#include "js_errors.h"

namespace ma_addon {

struct ViewRecord {
  ChunkViews* chunk;
  napi_ref buffer;
  bool escaped = false;
};

namespace {

void DeleteChunkViewsIfDone(ChunkViews* chunk) {
  if (chunk->revoked && chunk->records.empty()) delete chunk;
}

// Runs on the JS thread once the buffer's memory is no longer referenced by anything.
void FinalizeView(napi_env env, void* /*data*/, void* hint) {
  ViewRecord* record = static_cast<ViewRecord*>(hint);
  ChunkViews* chunk = record->chunk;
  HeapBox* box = chunk->box;
  napi_delete_reference(env, record->buffer);
  chunk->records.erase(std::find(chunk->records.begin(), chunk->records.end(), record));
  if (record->escaped && --chunk->escaped == 0) {
    // The last reference to the quarantined memory is gone: the chunk may now be reused.
    if (box->heap != nullptr) box->heap->ReleaseQuarantined(chunk->address);
    --box->quarantined_chunks;
    box->DestroyHeapIfDone();
  }
  delete record;
  DeleteChunkViewsIfDone(chunk);
  box->Release();
}

bool IsAttached(napi_env env, napi_value buffer) {
  bool detached = true;
  if (napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok) return false;
  return !detached;
}

// Detaches every buffer we still can; returns how many escaped.
uint32_t Revoke(napi_env env, ChunkViews* chunk) {
  uint32_t escaped = 0;
  for (ViewRecord* record : chunk->records) {
    napi_value buffer = nullptr;
    napi_get_reference_value(env, record->buffer, &buffer);
    if (buffer != nullptr && IsAttached(env, buffer) && napi_detach_arraybuffer(env, buffer) == napi_ok) continue;
    record->escaped = true;
    ++escaped;
  }
  chunk->escaped = escaped;
  chunk->revoked = true;
  return escaped;
}

}  // namespace

void HeapBox::Release() {
  if (--refs != 0) return;
  // Only reached after close: the JS object's finalizer closes first.
  DestroyHeapIfDone();
  delete this;
}

void HeapBox::DestroyHeapIfDone() {
  if (closed && quarantined_chunks == 0 && heap != nullptr) {
    delete heap;
    heap = nullptr;
  }
}

napi_value ViewOf(napi_env env, HeapBox* box, uintptr_t address, uint64_t usable_size) {
  ChunkViews*& chunk = box->views[address];
  if (chunk == nullptr) chunk = new ChunkViews{box, address, {}};
  if (!chunk->records.empty()) {
    napi_value existing = nullptr;
    napi_get_reference_value(env, chunk->records.back()->buffer, &existing);
    if (existing != nullptr && IsAttached(env, existing)) return existing;
  }
  ViewRecord* record = new ViewRecord{chunk, nullptr};
  napi_value buffer;
  const napi_status status = napi_create_external_arraybuffer(env, reinterpret_cast<void*>(address),
                                                              static_cast<size_t>(usable_size), FinalizeView, record, &buffer);
  if (status != napi_ok) {
    delete record;
    if (chunk->records.empty()) {
      box->views.erase(address);
      delete chunk;
    }
    ThrowAllocatorError(env, "ERR_UNSUPPORTED",
                        status == napi_no_external_buffers_allowed
                            ? "this runtime forbids external ArrayBuffers (V8 memory cage): use backend 'js'"
                            : "could not create a view of the chunk at " + HexAddress(address));
    return nullptr;
  }
  napi_create_reference(env, buffer, 0, &record->buffer);
  chunk->records.push_back(record);
  ++box->refs;
  return buffer;
}

bool ViewsEscaped(napi_env env, HeapBox* box, uintptr_t address) {
  const auto found = box->views.find(address);
  if (found == box->views.end()) return false;
  for (ViewRecord* record : found->second->records) {
    napi_value buffer = nullptr;
    napi_get_reference_value(env, record->buffer, &buffer);
    if (buffer == nullptr || !IsAttached(env, buffer)) return true;
  }
  return false;
}

bool RevokeViews(napi_env env, HeapBox* box, uintptr_t address) {
  const auto found = box->views.find(address);
  if (found == box->views.end()) return false;
  ChunkViews* chunk = found->second;
  box->views.erase(found);
  const bool escaped = Revoke(env, chunk) > 0;
  DeleteChunkViewsIfDone(chunk);
  return escaped;
}

void Quarantine(HeapBox* box, uintptr_t address) {
  box->heap->Quarantine(address);
  ++box->quarantined_chunks;
}

void RevokeAllViews(napi_env env, HeapBox* box) {
  for (auto& [address, chunk] : box->views) {
    if (Revoke(env, chunk) > 0) Quarantine(box, address);
    DeleteChunkViewsIfDone(chunk);
  }
  box->views.clear();
}

}  // namespace ma_addon
