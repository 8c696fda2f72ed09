// View bookkeeping for both modes (views.h). Costs were measured with perf on the hot path
// "alloc, first bytes(), one write, free": almost all of a revocable view is Node's external
// buffer creation (napi_create_external_arraybuffer makes a node::Buffer) and its detach; this
// file adds one record from a free list and no map, reference or vector per view.
#include "views.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "js_errors.h"

namespace ma_addon {

namespace {

// Tokens name a record slot and its generation, so a token kept past its record's reuse fails.
constexpr double kGenerationFactor = 4294967296.0;  // 2^32
constexpr uint32_t kGenerationMask = (1u << 20) - 1;  // token < 2^52: exact as a double

double TokenOf(const ViewRecord& record) { return record.generation * kGenerationFactor + record.index; }

ViewRecord* RecordOf(HeapBox* box, napi_env env, napi_value token) {
  double value;
  if (napi_get_value_double(env, token, &value) != napi_ok || !(value >= 0) || value >= 4503599627370496.0) return nullptr;
  const double generation = std::floor(value / kGenerationFactor);
  const double index = value - generation * kGenerationFactor;
  if (index >= static_cast<double>(box->records.size())) return nullptr;
  ViewRecord& record = box->records[static_cast<size_t>(index)];
  if (record.state == ViewRecord::kVacant || record.generation != static_cast<uint32_t>(generation)) return nullptr;
  return &record;
}

ViewRecord* NewRecord(HeapBox* box, uintptr_t address) {
  ViewRecord* record;
  if (!box->vacant_records.empty()) {
    record = &box->records[box->vacant_records.back()];
    box->vacant_records.pop_back();
    record->generation = (record->generation + 1) & kGenerationMask;
  } else {
    box->records.push_back(ViewRecord{box, 0, static_cast<uint32_t>(box->records.size())});
    record = &box->records.back();
  }
  record->address = address;
  record->state = ViewRecord::kAttached;
  return record;
}

void MarkEscaped(HeapBox* box, ViewRecord* record) {
  if (record->state != ViewRecord::kAttached) return;
  record->state = ViewRecord::kEscaped;
  --box->attached_views;
  ++box->escaped[record->address].pending;
}

// Runs on the JS thread once the buffer's memory is no longer referenced by anything.
void FinalizeView(napi_env env, void* /*data*/, void* hint) {
  ViewRecord* record = static_cast<ViewRecord*>(hint);
  HeapBox* box = record->box;
  if (record->state == ViewRecord::kAttached) {
    --box->attached_views;  // collected while its chunk lived on (a dropped handle)
  } else if (record->state == ViewRecord::kEscaped) {
    const auto found = box->escaped.find(record->address);
    if (found != box->escaped.end() && --found->second.pending == 0) {
      if (found->second.quarantined) {
        // The last reference to the quarantined memory is gone: the chunk may now be reused.
        if (box->heap != nullptr) box->heap->ReleaseQuarantined(record->address);
        --box->quarantined_chunks;
      }
      box->escaped.erase(found);
    }
  }
  record->state = ViewRecord::kVacant;
  box->vacant_records.push_back(record->index);
  box->DestroyHeapIfDone();
  box->Release(env);
}

bool IsAttached(napi_env env, napi_value buffer) {
  bool is_buffer = false, detached = true;
  if (napi_is_arraybuffer(env, buffer, &is_buffer) != napi_ok || !is_buffer) return false;
  if (napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok) return false;
  return !detached;
}

napi_value ThrowTooLarge(napi_env env, HeapBox* box, uint64_t size) {
  ThrowAllocatorError(env, "ERR_UNSUPPORTED",
                      "a view of " + std::to_string(size) + " bytes exceeds this runtime's largest ArrayBuffer, " +
                          std::to_string(box->max_view_bytes) + " bytes (buffer.constants.MAX_LENGTH)");
  return nullptr;
}

napi_value CreateExternal(napi_env env, uintptr_t low, uint64_t bytes, napi_finalize finalize, void* hint) {
  napi_value buffer;
  const napi_status status =
      napi_create_external_arraybuffer(env, reinterpret_cast<void*>(low), static_cast<size_t>(bytes), finalize, hint, &buffer);
  if (status == napi_ok) return buffer;
  ThrowAllocatorError(env, "ERR_UNSUPPORTED",
                      status == napi_no_external_buffers_allowed
                          ? "this runtime forbids external ArrayBuffers (V8 memory cage): use backend 'js'"
                          : "could not create a view of the chunk at " + HexAddress(low));
  return nullptr;
}

napi_value RevocableView(napi_env env, HeapBox* box, uintptr_t address, uint64_t size) {
  ViewRecord* record = NewRecord(box, address);
  napi_value buffer = CreateExternal(env, address, size, FinalizeView, record);
  if (buffer == nullptr) {
    record->state = ViewRecord::kVacant;
    box->vacant_records.push_back(record->index);
    return nullptr;
  }
  ++box->attached_views;
  ++box->refs;
  box->view_info[0] = TokenOf(*record);
  return buffer;
}

napi_value SharedView(napi_env env, HeapBox* box, uintptr_t address, uint64_t size) {
  for (auto window = box->windows.rbegin(); window != box->windows.rend(); ++window) {
    if (address < window->low || address + size > window->high) continue;
    napi_value buffer = nullptr;
    napi_get_reference_value(env, window->buffer, &buffer);
    if (buffer == nullptr) continue;  // collected; pruned below when a window is made
    box->view_info[0] = static_cast<double>(window->low);
    return buffer;
  }
  uintptr_t low = 0, high = 0;
  if (!box->heap->SegmentBounds(address, &low, &high)) {
    ThrowAllocatorError(env, "ERR_INVALID_POINTER", "no segment of this heap holds the chunk to view");
    return nullptr;
  }
  if (high - low > box->max_view_bytes) {
    // The segment is larger than one ArrayBuffer may be: a window of the largest size around it.
    low = std::max<uintptr_t>(low, std::min<uintptr_t>(address, high - box->max_view_bytes));
    high = low + box->max_view_bytes;
  }
  napi_value buffer = CreateExternal(env, low, high - low, nullptr, nullptr);
  if (buffer == nullptr) return nullptr;
  // Forget collected windows, then remember this one.
  box->windows.erase(std::remove_if(box->windows.begin(), box->windows.end(),
                                    [&](const Window& window) {
                                      napi_value value = nullptr;
                                      napi_get_reference_value(env, window.buffer, &value);
                                      if (value != nullptr) return false;
                                      napi_delete_reference(env, window.buffer);
                                      return true;
                                    }),
                     box->windows.end());
  Window window{low, high, nullptr};
  napi_create_reference(env, buffer, 0, &window.buffer);
  box->windows.push_back(window);
  box->released_seen = box->heap->bytes_released();
  box->view_info[0] = static_cast<double>(low);
  return buffer;
}

}  // namespace

void HeapBox::Release(napi_env env) {
  if (--refs != 0) return;
  // Only reached after close: the JS object's finalizer closes first.
  DestroyHeapIfDone();
  for (const Window& window : windows) napi_delete_reference(env, window.buffer);
  if (view_info_buffer != nullptr) napi_delete_reference(env, view_info_buffer);
  delete this;
}

void HeapBox::DestroyHeapIfDone() {
  if (closed && quarantined_chunks == 0 && attached_views == 0 && heap != nullptr) {
    delete heap;
    heap = nullptr;
  }
}

napi_value MakeView(napi_env env, HeapBox* box, uintptr_t address, uint64_t size) {
  if (size > box->max_view_bytes) return ThrowTooLarge(env, box, size);
  return box->view_mode == ViewMode::kShared ? SharedView(env, box, address, size) : RevocableView(env, box, address, size);
}

bool RevokeView(napi_env env, HeapBox* box, uintptr_t address, napi_value buffer, napi_value token) {
  ViewRecord* record = RecordOf(box, env, token);
  if (record != nullptr && record->address == address && record->state == ViewRecord::kAttached) {
    if (IsAttached(env, buffer) && napi_detach_arraybuffer(env, buffer) == napi_ok) {
      record->state = ViewRecord::kDetached;
      --box->attached_views;
    } else {
      MarkEscaped(box, record);
    }
  }
  return HasEscapedViews(box, address);
}

bool ViewEscaped(napi_env env, HeapBox* box, uintptr_t address, napi_value buffer, napi_value token) {
  if (IsAttached(env, buffer)) return false;
  ViewRecord* record = RecordOf(box, env, token);
  if (record != nullptr && record->address == address) MarkEscaped(box, record);
  return true;
}

void NoteEscaped(HeapBox* box, napi_value token, napi_env env) {
  ViewRecord* record = RecordOf(box, env, token);
  if (record != nullptr) MarkEscaped(box, record);
}

bool HasEscapedViews(const HeapBox* box, uintptr_t address) {
  return !box->escaped.empty() && box->escaped.count(address) != 0;
}

void Quarantine(HeapBox* box, uintptr_t address) {
  if (box->escaped[address].quarantined) return;
  box->heap->Quarantine(address);
  NoteQuarantined(box, address);
}

void NoteQuarantined(HeapBox* box, uintptr_t address) {
  EscapedChunk& chunk = box->escaped[address];
  chunk.quarantined = true;
  ++box->quarantined_chunks;
}

void QuarantineEscapedChunks(HeapBox* box) {
  for (auto& [address, chunk] : box->escaped) {
    if (chunk.quarantined) continue;
    box->heap->Quarantine(address);
    chunk.quarantined = true;
    ++box->quarantined_chunks;
  }
}

void DetachReleasedWindows(napi_env env, HeapBox* box, bool all) {
  if (box->windows.empty()) return;
  // Checked after every free: only a change in bytes released is worth the full Stats().
  if (!all && box->heap->bytes_released() == box->released_seen) return;
  const ma::HeapStats stats = box->heap->Stats();
  box->released_seen = stats.bytes_released;
  // With one segment a window must lie within it; with several, any release detaches them all.
  auto still_mapped = [&](const Window& window) {
    return !all && stats.segments == 1 && window.low >= stats.heap_start && window.high <= stats.heap_end;
  };
  box->windows.erase(std::remove_if(box->windows.begin(), box->windows.end(),
                                    [&](const Window& window) {
                                      if (still_mapped(window)) return false;
                                      napi_value buffer = nullptr;
                                      napi_get_reference_value(env, window.buffer, &buffer);
                                      if (buffer != nullptr && IsAttached(env, buffer)) napi_detach_arraybuffer(env, buffer);
                                      napi_delete_reference(env, window.buffer);
                                      return true;
                                    }),
                     box->windows.end());
}

}  // namespace ma_addon
