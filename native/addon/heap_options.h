// The one mapping from the options the facade hands the addon (createHeap's and replay's, already
// validated and completed by lib/heap/options.ts and lib/replay/replay-options.ts) to the core's
// ma::HeapOptions, and the one table of strategy names.
#pragma once

#include <napi.h>

#include <string>

#include "fit.h"
#include "heap.h"

namespace ma_addon {

// The core strategy a public name ("best-fit", ...) stands for; false for any other name.
bool ParseStrategy(const std::string& name, ma::Strategy* out);

// Fills *out from `options` (source, alignment, growth, split, coalesce, trimThreshold,
// maxHeapBytes, and segregateSmall when present) and the strategy named `strategy`. false when a
// field is missing or not what the facade sends: the caller throws ERR_INVALID_OPTION.
bool ToCoreOptions(const Napi::Object& options, const std::string& strategy, ma::HeapOptions* out);

}  // namespace ma_addon
