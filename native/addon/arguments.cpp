// Argument checks shared by the heap's functions.
#include "arguments.h"

#include <cmath>
#include <string>

#include "heap.h"
#include "js_errors.h"

namespace ma_addon {
namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;

// Empty when `value` is a usable non-negative integer, else what is wrong with it.
const char* WhatIsWrong(napi_env env, napi_value value, double* number) {
  if (napi_get_value_double(env, value, number) != napi_ok) return "must be a number";
  if (std::isnan(*number)) return "must not be NaN";
  if (std::isinf(*number)) return "must be finite";
  if (*number < 0) return "must not be negative";
  if (std::floor(*number) != *number) return "must be an integer";
  if (*number > kMaxSafeInteger) return "must not exceed Number.MAX_SAFE_INTEGER";
  return nullptr;
}

}  // namespace

bool ReadSize(napi_env env, napi_value value, uint64_t* out) {
  double number;
  if (const char* problem = WhatIsWrong(env, value, &number)) {
    ThrowAllocatorError(env, "ERR_INVALID_SIZE", std::string("size ") + problem + ", got " + DescribeValue(env, value));
    return false;
  }
  *out = static_cast<uint64_t>(number);
  return true;
}

bool ReadAlign(napi_env env, napi_value value, uint64_t* out) {
  napi_valuetype type;
  napi_typeof(env, value, &type);
  if (type == napi_undefined) {
    *out = 0;
    return true;
  }
  double number;
  const char* problem = WhatIsWrong(env, value, &number);
  if (problem == nullptr) {
    const uint64_t align = static_cast<uint64_t>(number);
    if (align != 0 && (align & (align - 1)) != 0) problem = "must be a power of two";
    else if (align > ma::kMaxAlign) problem = "must be at most 1 MiB (1048576)";
    else *out = align;
  }
  if (problem != nullptr) {
    ThrowAllocatorError(env, "ERR_INVALID_ALIGNMENT", std::string("align ") + problem + ", got " + DescribeValue(env, value));
    return false;
  }
  return true;
}

bool ReadAddress(napi_env env, napi_value value, uintptr_t* out) {
  double number;
  if (const char* problem = WhatIsWrong(env, value, &number)) {
    ThrowAllocatorError(env, "ERR_INVALID_POINTER", std::string("address ") + problem + ", got " + DescribeValue(env, value));
    return false;
  }
  *out = static_cast<uintptr_t>(number);
  return true;
}

}  // namespace ma_addon
