// replay(kinds, ids, sizes, numIds, allocator, options): runs a trace `repeat` times inside the
// core and reports the median time per op, so that no JS runs per operation.
#include "replay_binding.h"

#include <napi.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "heap_options.h"
#include "js_errors.h"
#include "replay.h"

namespace ma_addon {
namespace {

template <typename T>
bool TypedArrayData(const Napi::Value& value, napi_typedarray_type type, const T** data, size_t* length) {
  if (!value.IsTypedArray()) return false;
  Napi::TypedArray array = value.As<Napi::TypedArray>();
  if (array.TypedArrayType() != type) return false;
  *length = array.ElementLength();
  *data = reinterpret_cast<const T*>(static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset());
  return true;
}

}  // namespace

napi_value Replay(napi_env env, napi_callback_info info) {
  Napi::CallbackInfo args(env, info);
  ma::TraceView trace{};
  size_t kinds_length = 0, ids_length = 0, sizes_length = 0;
  if (!TypedArrayData(args[0], napi_uint8_array, &trace.kinds, &kinds_length) ||
      !TypedArrayData(args[1], napi_int32_array, &trace.ids, &ids_length) ||
      !TypedArrayData(args[2], napi_float64_array, &trace.sizes, &sizes_length) || !args[3].IsNumber() ||
      kinds_length != ids_length || kinds_length != sizes_length) {
    ThrowAllocatorError(env, "ERR_TRACE_FORMAT", "replay: the trace's kinds, ids and sizes arrays do not match");
    return nullptr;
  }
  trace.ops = kinds_length;
  // Ids are int32, so more than 2**31 of them cannot be named; anything else is a broken header.
  const double num_ids = args[3].As<Napi::Number>().DoubleValue();
  if (!(num_ids >= 0 && num_ids <= 2147483648.0 && std::floor(num_ids) == num_ids)) {
    ThrowAllocatorError(env, "ERR_TRACE_FORMAT", "replay: the trace's id count must be a whole number from 0 to 2**31, got " +
                                                     DescribeValue(env, args[3]));
    return nullptr;
  }
  trace.num_ids = static_cast<uint32_t>(num_ids);
  const std::string allocator = args[4].ToString().Utf8Value();
  const Napi::Object options = args[5].As<Napi::Object>();

  ma::HeapOptions heap_options;
  const bool use_libc = allocator == "libc";
  if (!use_libc && !ParseStrategy(allocator, &heap_options.strategy)) {
    ThrowAllocatorError(env, "ERR_INVALID_OPTION", "replay: unknown allocator \"" + allocator + "\"");
    return nullptr;
  }
  // Our heap is made from the same options, by the same mapping, as createHeap's.
  if (!use_libc && !ToCoreOptions(options, allocator, &heap_options)) {
    ThrowAllocatorError(env, "ERR_INVALID_OPTION", "replay: options were not normalized by the facade");
    return nullptr;
  }
  const bool touch = options.Get("touch").ToBoolean().Value();
  const uint32_t repeat = std::max(1u, options.Get("repeat").ToNumber().Uint32Value());

  size_t bad_op = 0;
  uint64_t peak_live = 0;
  const ma::Status valid = ma::ValidateTrace(trace, &bad_op, &peak_live);
  if (valid == ma::Status::kOutOfMemory) {
    ThrowStatus(env, valid, "replay: no memory for the trace's per-id tables");
    return nullptr;
  }
  if (valid != ma::Status::kOk) {
    ThrowAllocatorError(env, "ERR_TRACE_FORMAT", "replay: op " + std::to_string(bad_op + 1) +
                                                     " is inconsistent (bad kind, id out of range, free of a dead id, "
                                                     "alloc of a live id, or a size that is not a whole number)");
    return nullptr;
  }

  std::vector<double> times;
  ma::ReplayResult result{};
  size_t failed_op = 0;
  const ma::Status status = ma::Replay(trace, use_libc, heap_options, touch, repeat, &times, &result, &failed_op);
  if (status != ma::Status::kOk) {
    ThrowStatus(env, status,
                status != ma::Status::kOutOfMemory ? "replay: could not create a heap for " + allocator
                : failed_op == trace.ops           ? std::string("replay: no memory for the trace's per-id tables")
                                                   : "replay: " + allocator + " could not satisfy op " + std::to_string(failed_op + 1));
    return nullptr;
  }
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const size_t middle = sorted.size() / 2;
  const double median = sorted.size() % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;

  Napi::Object out = Napi::Object::New(env);
  out.Set("nsPerOp", median);
  Napi::Array runs = Napi::Array::New(env, times.size());
  for (uint32_t i = 0; i < times.size(); ++i) runs.Set(i, times[i]);
  out.Set("runsNsPerOp", runs);
  out.Set("peakLiveBytes", static_cast<double>(peak_live));
  auto heap_figure = [&](uint64_t value) {
    return result.has_heap_stats ? Napi::Value(Napi::Number::New(env, static_cast<double>(value))) : args.Env().Null();
  };
  out.Set("peakHeapBytes", heap_figure(result.peak_heap_bytes));
  out.Set("metadataBytes", heap_figure(result.metadata_bytes));
  out.Set("brkCalls", heap_figure(result.brk_calls));
  out.Set("searchSteps", heap_figure(result.search_steps));
  return out;
}

}  // namespace ma_addon
