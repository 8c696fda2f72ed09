// Turning core statuses and bad arguments into the facade's AllocatorError. The facade hands the
// addon a factory once (setErrorFactory); every throw goes through it so that JS sees one class.
#pragma once

#include <napi.h>

#include <string>

#include "status.h"

namespace ma_addon {

void SetErrorFactory(napi_env env, napi_value factory);

// Throws AllocatorError(code, message) as a pending exception; the caller returns at once.
void ThrowAllocatorError(napi_env env, const char* code, const std::string& message);
void ThrowStatus(napi_env env, ma::Status status, const std::string& message);

// How a JS value reads in a message: 12, -1.5, NaN, "x", undefined, an object.
std::string DescribeValue(napi_env env, napi_value value);
std::string HexAddress(uintptr_t address);

}  // namespace ma_addon
