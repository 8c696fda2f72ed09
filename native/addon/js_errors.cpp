// The error factory is stored per environment (instance data), so worker threads each have
// their own.
#include "js_errors.h"

#include <cmath>
#include <cstdio>

#include "addon_state.h"

namespace ma_addon {

void SetErrorFactory(napi_env env, napi_value factory) {
  AddonState* state = AddonState::Of(env);
  if (state->error_factory != nullptr) napi_delete_reference(env, state->error_factory);
  napi_create_reference(env, factory, 1, &state->error_factory);
}

void ThrowAllocatorError(napi_env env, const char* code, const std::string& message) {
  AddonState* state = AddonState::Of(env);
  napi_value factory = nullptr;
  if (state->error_factory != nullptr) napi_get_reference_value(env, state->error_factory, &factory);
  napi_value args[2];
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &args[0]);
  napi_create_string_utf8(env, message.c_str(), message.size(), &args[1]);
  napi_value error = nullptr;
  if (factory == nullptr || napi_call_function(env, factory, factory, 2, args, &error) != napi_ok) {
    // No factory yet (the binding used on its own): a plain Error with a code property.
    napi_create_error(env, args[0], args[1], &error);
  }
  napi_throw(env, error);
}

void ThrowStatus(napi_env env, ma::Status status, const std::string& message) {
  ThrowAllocatorError(env, ma::StatusCode(status), message);
}

std::string DescribeValue(napi_env env, napi_value value) {
  napi_valuetype type;
  napi_typeof(env, value, &type);
  switch (type) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: {
      bool flag;
      napi_get_value_bool(env, value, &flag);
      return flag ? "true" : "false";
    }
    case napi_number: {
      double number;
      napi_get_value_double(env, value, &number);
      if (std::isnan(number)) return "NaN";
      if (std::isinf(number)) return number > 0 ? "Infinity" : "-Infinity";
      char buffer[64];
      std::snprintf(buffer, sizeof buffer, "%.17g", number);
      return buffer;
    }
    case napi_string: {
      char buffer[48];
      size_t length;
      napi_get_value_string_utf8(env, value, buffer, sizeof buffer, &length);
      return "\"" + std::string(buffer, length) + (length + 1 >= sizeof buffer ? "...\"" : "\"");
    }
    case napi_bigint: return "a bigint";
    case napi_symbol: return "a symbol";
    case napi_function: return "a function";
    default: return "an object";
  }
}

std::string HexAddress(uintptr_t address) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "0x%lx", static_cast<unsigned long>(address));
  return buffer;
}

}  // namespace ma_addon
