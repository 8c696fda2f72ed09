// createHeap's and replay's options mapped to the core's by one function, so that a replay runs
// the heap createHeap would make with the same options.
#include "heap_options.h"

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace ma_addon {
namespace {

bool ReadNumber(const Napi::Object& options, const char* name, double* out) {
  const Napi::Value value = options.Get(name);
  if (!value.IsNumber()) return false;
  *out = value.As<Napi::Number>().DoubleValue();
  return true;
}

bool ReadBoolean(const Napi::Object& options, const char* name, bool* out) {
  const Napi::Value value = options.Get(name);
  if (!value.IsBoolean()) return false;
  *out = value.As<Napi::Boolean>().Value();
  return true;
}

}  // namespace

bool ParseStrategy(const std::string& name, ma::Strategy* out) { return ma::StrategyFromName(name.c_str(), out); }

bool ToCoreOptions(const Napi::Object& options, const std::string& strategy, ma::HeapOptions* out) {
  const std::string source = options.Get("source").ToString().Utf8Value();
  double alignment, growth, trim_threshold, max_heap_bytes, segregate_small = 0;
  bool split, coalesce;
  if (!ReadNumber(options, "alignment", &alignment) || !ReadNumber(options, "growth", &growth) ||
      !ReadNumber(options, "trimThreshold", &trim_threshold) || !ReadNumber(options, "maxHeapBytes", &max_heap_bytes) ||
      !ReadBoolean(options, "split", &split) || !ReadBoolean(options, "coalesce", &coalesce)) {
    return false;
  }
  ReadNumber(options, "segregateSmall", &segregate_small);  // optional: off when absent
  if (source != "brk" && source != "mmap") return false;
  out->source = source == "brk" ? ma::SourceKind::kBrk : ma::SourceKind::kMmap;
  out->alignment = static_cast<uint32_t>(alignment);
  out->growth = static_cast<uint64_t>(growth);
  out->split = split;
  out->coalesce = coalesce;
  out->trim_threshold = std::isinf(trim_threshold) ? ma::kNeverTrim : static_cast<uint64_t>(trim_threshold);
  out->max_heap_bytes = std::isinf(max_heap_bytes) ? 0 : static_cast<uint64_t>(max_heap_bytes);
  out->segregate_small = static_cast<uint64_t>(segregate_small);
  return ParseStrategy(strategy, &out->strategy);
}

}  // namespace ma_addon
