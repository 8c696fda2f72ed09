// Module entry: what `require('memory_allocator.node')` exports. binding.d.ts types exactly this.
#include <napi.h>

#include <utility>

#include "addon_state.h"
#include "heap_binding.h"
#include "js_errors.h"
#include "memory_source.h"
#include "replay_binding.h"

namespace ma_addon {
namespace {

Napi::Value SetErrorFactoryJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) {
    Napi::TypeError::New(info.Env(), "setErrorFactory expects a function").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  SetErrorFactory(info.Env(), info[0]);
  return info.Env().Undefined();
}

// Whether this runtime lets us put ArrayBuffers on memory we own (Electron's V8 memory cage
// does not); without them there are no views, and 'auto' must choose the js heap.
Napi::Value ExternalBuffersAllowed(const Napi::CallbackInfo& info) {
  static uint8_t probe_byte;
  napi_value buffer;
  const napi_status status = napi_create_external_arraybuffer(info.Env(), &probe_byte, 1, nullptr, nullptr, &buffer);
  if (status == napi_ok) napi_detach_arraybuffer(info.Env(), buffer);
  return Napi::Boolean::New(info.Env(), status == napi_ok);
}

Napi::Value OnMainThreadJs(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), ma::OnMainThread()); }

void DeleteState(napi_env env, void* data, void*) {
  AddonState* state = static_cast<AddonState*>(data);
  if (state->error_factory != nullptr) napi_delete_reference(env, state->error_factory);
  delete state;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  napi_set_instance_data(env, new AddonState(), DeleteState, nullptr);
  exports.Set("setErrorFactory", Napi::Function::New(env, SetErrorFactoryJs, "setErrorFactory"));
  exports.Set("externalBuffersAllowed", Napi::Function::New(env, ExternalBuffersAllowed, "externalBuffersAllowed"));
  exports.Set("onMainThread", Napi::Function::New(env, OnMainThreadJs, "onMainThread"));
  for (const auto& [name, callback] : {std::pair{"createHeap", &CreateHeap}, std::pair{"replay", &Replay}}) {
    napi_value function;
    napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, nullptr, &function);
    exports.Set(name, function);
  }
  // No test hooks here: the break hooks are a separate addon that only the test setup builds
  // (test/native/break_hooks_addon.cpp), so nothing the package ships moves the break for a user.
  return exports;
}

}  // namespace ma_addon

static Napi::Object InitMemoryAllocator(Napi::Env env, Napi::Object exports) { return ma_addon::Init(env, exports); }

NODE_API_MODULE(memory_allocator, InitMemoryAllocator)
