// The replay entry point of the binding.
#pragma once

#include <node_api.h>

namespace ma_addon {

napi_value Replay(napi_env env, napi_callback_info info);

}  // namespace ma_addon
