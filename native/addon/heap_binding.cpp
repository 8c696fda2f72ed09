// The functions of a native heap object. The raw fast path (alloc, free, realloc, sizeOf) uses
// the Node-API C calls directly: at ~20 ns per crossing, a CallbackInfo wrapper would be a
// visible share of an allocation.
#include "heap_binding.h"

#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "arguments.h"
#include "heap_box.h"
#include "heap_options.h"
#include "js_errors.h"
#include "views.h"

namespace ma_addon {

namespace {

// Reads up to N arguments (their count into *argc, when asked) and the box; false after throwing
// ERR_HEAP_CLOSED.
template <size_t N>
bool Enter(napi_env env, napi_callback_info info, napi_value (&args)[N], HeapBox** box, size_t* argc = nullptr) {
  size_t count = N;
  void* data;
  napi_get_cb_info(env, info, &count, args, nullptr, &data);
  if (argc != nullptr) *argc = count;
  *box = static_cast<HeapBox*>(data);
  if ((*box)->closed) {
    ThrowAllocatorError(env, "ERR_HEAP_CLOSED", "the heap is closed");
    return false;
  }
  return true;
}

napi_value Number(napi_env env, double value) {
  napi_value result;
  napi_create_double(env, value, &result);
  return result;
}

std::string PointerProblem(ma::Status status, uintptr_t address) {
  return status == ma::Status::kDoubleFree
             ? "the chunk at " + HexAddress(address) + " was already freed"
             : HexAddress(address) + " is not the start of a live chunk of this heap";
}

std::string SizeProblem(ma::Status status, uint64_t size, const ma::Heap& heap) {
  if (status == ma::Status::kOutOfMemory) {
    const uint64_t cap = heap.options().max_heap_bytes;
    return "cannot allocate " + std::to_string(size) + " bytes" +
           (cap != 0 ? " within maxHeapBytes " + std::to_string(cap) : ": the memory source refused to grow");
  }
  return "cannot allocate " + std::to_string(size) + " bytes";
}

// Reads a live chunk's address and its usable size; false after throwing.
bool ReadLiveChunk(napi_env env, HeapBox* box, napi_value arg, uintptr_t* address, uint64_t* usable) {
  if (!ReadAddress(env, arg, address)) return false;
  const ma::Status status = box->heap->UsableSize(*address, usable);
  if (status == ma::Status::kOk) return true;
  ThrowStatus(env, status, PointerProblem(status, *address));
  return false;
}

napi_value Alloc(napi_env env, napi_callback_info info) {
  napi_value args[3];
  HeapBox* box;
  size_t argc;
  if (!Enter(env, info, args, &box, &argc)) return nullptr;
  // Arguments not passed are not read: each read is a Node-API call on the hottest path.
  uint64_t size, align = 0;
  if (!ReadSize(env, args[0], &size) || (argc >= 2 && !ReadAlign(env, args[1], &align))) return nullptr;
  // alloc(size, align, zero): a reused chunk holds its last owner's bytes unless zeroed.
  bool zero = false;
  if (argc >= 3) napi_get_value_bool(env, args[2], &zero);
  uintptr_t address;
  const ma::Status status = zero ? box->heap->AllocZeroed(size, align, &address) : box->heap->Alloc(size, align, &address);
  if (status != ma::Status::kOk) {
    ThrowStatus(env, status, SizeProblem(status, size, *box->heap));
    return nullptr;
  }
  return Number(env, static_cast<double>(address));
}

napi_value Free(napi_env env, napi_callback_info info) {
  napi_value args[1];
  HeapBox* box;
  if (!Enter(env, info, args, &box)) return nullptr;
  uintptr_t address;
  if (!ReadAddress(env, args[0], &address)) return nullptr;
  uint64_t usable;
  // A chunk whose views escaped revocation is quarantined instead of freed.
  if (HasEscapedViews(box, address) && box->heap->UsableSize(address, &usable) == ma::Status::kOk) {
    Quarantine(box, address);
    return nullptr;
  }
  const ma::Status status = box->heap->Free(address);
  if (status != ma::Status::kOk) ThrowStatus(env, status, PointerProblem(status, address));
  DetachReleasedWindows(env, box);  // a free may trim the top
  return nullptr;
}

// freeViewed(address, buffer, token): frees a chunk that has a revocable view, detaching the
// view first, in one crossing.
napi_value FreeViewed(napi_env env, napi_callback_info info) {
  napi_value args[3];
  HeapBox* box;
  uintptr_t address;
  uint64_t usable;
  if (!Enter(env, info, args, &box) || !ReadLiveChunk(env, box, args[0], &address, &usable)) return nullptr;
  if (RevokeView(env, box, address, args[1], args[2])) {
    Quarantine(box, address);
    return nullptr;
  }
  box->heap->Free(address);
  DetachReleasedWindows(env, box);
  return nullptr;
}

// revokeView(address, buffer, token): before reset and close, and when the JS side drops a view.
napi_value RevokeViewOf(napi_env env, napi_callback_info info) {
  napi_value args[3];
  HeapBox* box;
  uintptr_t address;
  if (!Enter(env, info, args, &box) || !ReadAddress(env, args[0], &address)) return nullptr;
  RevokeView(env, box, address, args[1], args[2]);
  return nullptr;
}

// noteEscaped(token): the JS side found a view detached that the addon did not detach.
napi_value NoteEscapedView(napi_env env, napi_callback_info info) {
  napi_value args[1];
  HeapBox* box;
  if (!Enter(env, info, args, &box)) return nullptr;
  NoteEscaped(box, args[0], env);
  return nullptr;
}

// realloc(address, size, buffer?, token?): the buffer and token of the chunk's revocable view,
// if it has one.
napi_value Realloc(napi_env env, napi_callback_info info) {
  napi_value args[4];
  HeapBox* box;
  size_t argc;
  if (!Enter(env, info, args, &box, &argc)) return nullptr;
  uintptr_t address;
  uint64_t size, usable;
  if (!ReadLiveChunk(env, box, args[0], &address, &usable) || !ReadSize(env, args[1], &size)) return nullptr;
  // Views are revoked only once the realloc has succeeded: a failed realloc leaves the chunk, and
  // every view of it, as they were. An escaped view still reaches the old chunk, so then the core
  // moves the chunk and quarantines the old one.
  const bool has_view = argc >= 4;
  const bool escaped = (has_view && ViewEscaped(env, box, address, args[2], args[3])) || HasEscapedViews(box, address);
  uintptr_t moved_to;
  const ma::Status status = escaped ? box->heap->MoveAndQuarantine(address, size, &moved_to)
                                    : box->heap->Realloc(address, size, &moved_to);
  if (status != ma::Status::kOk) {
    ThrowStatus(env, status, SizeProblem(status, size, *box->heap));
    return nullptr;
  }
  if (has_view) RevokeView(env, box, address, args[2], args[3]);  // attached ones detach
  if (escaped) NoteQuarantined(box, address);
  DetachReleasedWindows(env, box);
  return Number(env, static_cast<double>(moved_to));
}

napi_value SizeOf(napi_env env, napi_callback_info info) {
  napi_value args[1];
  HeapBox* box;
  uintptr_t address;
  uint64_t usable;
  if (!Enter(env, info, args, &box) || !ReadLiveChunk(env, box, args[0], &address, &usable)) return nullptr;
  return Number(env, static_cast<double>(usable));
}

// view(address, size?): see MakeView; size defaults to the usable size.
napi_value View(napi_env env, napi_callback_info info) {
  napi_value args[2];
  HeapBox* box;
  size_t argc;
  uintptr_t address;
  uint64_t usable, size;
  if (!Enter(env, info, args, &box, &argc) || !ReadLiveChunk(env, box, args[0], &address, &usable)) return nullptr;
  if (argc < 2) {
    size = usable;
  } else if (!ReadSize(env, args[1], &size)) {
    return nullptr;
  } else if (size > usable) {
    ThrowAllocatorError(env, "ERR_INVALID_SIZE",
                        "a view of " + std::to_string(size) + " bytes does not fit the chunk at " + HexAddress(address) + " (" +
                            std::to_string(usable) + " usable bytes)");
    return nullptr;
  }
  return MakeView(env, box, address, size);
}

napi_value Reset(napi_env env, napi_callback_info info) {
  napi_value args[1];
  HeapBox* box;
  if (!Enter(env, info, args, &box)) return nullptr;
  // The JS side has revoked every revocable view it holds (revokeView) before calling this.
  QuarantineEscapedChunks(box);
  DetachReleasedWindows(env, box, true);
  box->heap->Reset();
  return nullptr;
}

napi_value Trim(napi_env env, napi_callback_info info) {
  napi_value args[1];
  HeapBox* box;
  if (!Enter(env, info, args, &box)) return nullptr;
  const uint64_t released = box->heap->Trim();
  DetachReleasedWindows(env, box);
  return Number(env, static_cast<double>(released));
}

napi_value Stats(napi_env env, napi_callback_info info) {
  napi_value args[1];
  HeapBox* box;
  if (!Enter(env, info, args, &box)) return nullptr;
  const ma::HeapStats s = box->heap->Stats();
  Napi::Object out = Napi::Object::New(env);
  auto set = [&](const char* name, uint64_t value) { out.Set(name, Napi::Number::New(env, static_cast<double>(value))); };
  set("heapStart", s.heap_start);
  set("heapEnd", s.heap_end);
  set("heapBytes", s.heap_bytes);
  set("peakHeapBytes", s.peak_heap_bytes);
  set("liveBytes", s.live_bytes);
  set("liveChunks", s.live_chunks);
  set("peakLiveBytes", s.peak_live_bytes);
  set("freeBytes", s.free_bytes);
  set("freeChunks", s.free_chunks);
  set("largestFreeChunk", s.largest_free_chunk);
  set("topBytes", s.top_bytes);
  set("metadataBytes", s.metadata_bytes);
  set("peakMetadataBytes", s.peak_metadata_bytes);
  set("allocs", s.allocs);
  set("frees", s.frees);
  set("reallocs", s.reallocs);
  set("brkCalls", s.brk_calls);
  set("bytesReleased", s.bytes_released);
  set("deferredChunks", s.deferred_chunks);
  set("segments", s.segments);
  set("searchSteps", s.search_steps);
  set("quarantinedChunks", box->quarantined_chunks);
  return out;
}

napi_value Chunks(napi_env env, napi_callback_info info) {
  napi_value args[1];
  HeapBox* box;
  if (!Enter(env, info, args, &box)) return nullptr;
  std::vector<ma::ChunkInfo> chunks;
  box->heap->Chunks(&chunks);
  Napi::Array out = Napi::Array::New(env, chunks.size());
  const Napi::String live = Napi::String::New(env, "live"), free = Napi::String::New(env, "free");
  for (uint32_t i = 0; i < chunks.size(); ++i) {
    Napi::Object chunk = Napi::Object::New(env);
    chunk.Set("address", Napi::Number::New(env, static_cast<double>(chunks[i].address)));
    chunk.Set("size", Napi::Number::New(env, static_cast<double>(chunks[i].size)));
    chunk.Set("state", chunks[i].live ? live : free);
    if (chunks[i].quarantined) chunk.Set("quarantined", true);
    if (chunks[i].deferred) chunk.Set("deferred", true);
    out.Set(i, chunk);
  }
  return out;
}

napi_value Check(napi_env env, napi_callback_info info) {
  napi_value args[1];
  HeapBox* box;
  if (!Enter(env, info, args, &box)) return nullptr;
  std::string problem;
  if (!box->heap->Check(&problem)) ThrowAllocatorError(env, "ERR_HEAP_CORRUPT", "heap check failed: " + problem);
  return nullptr;
}

void CloseBox(napi_env env, HeapBox* box) {
  if (box->closed) return;
  QuarantineEscapedChunks(box);
  DetachReleasedWindows(env, box, true);
  box->closed = true;
  // Keep only what escaped views still reach; while a view the JS side never revoked is still
  // attached (its heap was collected without close), keep everything until it is finalized.
  if (box->quarantined_chunks != 0 && box->attached_views == 0) box->heap->Reset();
  box->DestroyHeapIfDone();
}

napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  void* data;
  napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data);
  CloseBox(env, static_cast<HeapBox*>(data));  // closing twice is harmless, as with `using`
  return nullptr;
}

napi_value IsClosed(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  void* data;
  napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data);
  napi_value result;
  napi_get_boolean(env, static_cast<HeapBox*>(data)->closed, &result);
  return result;
}

// The object and each of its functions can outlive one another (`const { alloc } = heap`), so
// the heap closes itself only when the last of them is collected.
void FinalizeJsHolder(napi_env env, void* data, void* /*hint*/) {
  HeapBox* box = static_cast<HeapBox*>(data);
  if (--box->js_holders != 0) return;
  CloseBox(env, box);
  box->Release(env);
}

bool ReadOption(const Napi::Object& options, const char* name, double* out) {
  const Napi::Value value = options.Get(name);
  if (!value.IsNumber()) return false;
  *out = value.As<Napi::Number>().DoubleValue();
  return true;
}

}  // namespace

napi_value CreateHeap(napi_env env, napi_callback_info info) {
  Napi::CallbackInfo args(env, info);
  ma::HeapOptions options;
  if (!args[0].IsObject() || !ToCoreOptions(args[0].As<Napi::Object>(), args[0].As<Napi::Object>().Get("strategy").ToString().Utf8Value(), &options)) {
    ThrowAllocatorError(env, "ERR_INVALID_OPTION", "createHeap: options were not normalized by the facade");
    return nullptr;
  }
  ma::Heap* heap = nullptr;
  const ma::Status status = ma::Heap::Create(options, &heap);
  if (status != ma::Status::kOk) {
    ThrowStatus(env, status,
                status == ma::Status::kBrkMainThreadOnly
                    ? "the brk source moves the real program break and is only available on the main thread; use source 'mmap'"
                    : "could not create the heap");
    return nullptr;
  }
  HeapBox* box = new HeapBox();
  box->heap = heap;
  const Napi::Object js_options = args[0].As<Napi::Object>();
  box->view_mode = js_options.Get("views").ToString().Utf8Value() == "shared" ? ViewMode::kShared : ViewMode::kRevocable;
  double max_view_bytes = 0;
  ReadOption(js_options, "maxViewBytes", &max_view_bytes);
  box->max_view_bytes = static_cast<uint64_t>(max_view_bytes);

  struct Method {
    const char* name;
    napi_callback callback;
  };
  static const Method kMethods[] = {
      {"alloc", Alloc},           {"free", Free},
      {"realloc", Realloc},       {"sizeOf", SizeOf},
      {"view", View},             {"freeViewed", FreeViewed},
      {"revokeView", RevokeViewOf}, {"noteEscaped", NoteEscapedView},
      {"reset", Reset},           {"trim", Trim},
      {"stats", Stats},           {"chunks", Chunks},
      {"check", Check},           {"close", Close},
      {"isClosed", IsClosed},
  };
  napi_value object;
  napi_create_object(env, &object);
  for (const Method& method : kMethods) {
    napi_value function;
    napi_create_function(env, method.name, NAPI_AUTO_LENGTH, method.callback, box, &function);
    napi_set_named_property(env, object, method.name, function);
    napi_add_finalizer(env, function, box, FinalizeJsHolder, nullptr, nullptr);
    ++box->js_holders;
  }
  napi_add_finalizer(env, object, box, FinalizeJsHolder, nullptr, nullptr);
  ++box->js_holders;
  // view_info: where view() leaves the token or window base, so that it returns one value.
  napi_value info_buffer, info_array;
  void* info_data;
  napi_create_arraybuffer(env, 2 * sizeof(double), &info_data, &info_buffer);
  box->view_info = static_cast<double*>(info_data);
  napi_create_reference(env, info_buffer, 1, &box->view_info_buffer);
  napi_create_typedarray(env, napi_float64_array, 2, info_buffer, 0, &info_array);
  napi_set_named_property(env, object, "viewInfo", info_array);
  return object;
}

}  // namespace ma_addon
