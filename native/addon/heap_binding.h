// createHeap(options): a plain object of functions bound to one core heap (the function's data
// pointer is the HeapBox, so the hot calls unwrap nothing).
#pragma once

#include <node_api.h>

namespace ma_addon {

napi_value CreateHeap(napi_env env, napi_callback_info info);

}  // namespace ma_addon
