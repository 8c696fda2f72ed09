// Per-environment state of the addon (the main thread and each worker have their own).
#pragma once

#include <node_api.h>

namespace ma_addon {

struct AddonState {
  napi_ref error_factory = nullptr;

  static AddonState* Of(napi_env env) {
    void* data = nullptr;
    napi_get_instance_data(env, &data);
    return static_cast<AddonState*>(data);
  }
};

}  // namespace ma_addon
