// Reading numbers from JS the way the contract wants them checked: a size or an address must be
// a finite, non-negative integer no larger than Number.MAX_SAFE_INTEGER; each failure throws the
// AllocatorError that names the argument and the value.
#pragma once

#include <node_api.h>

#include <cstdint>

namespace ma_addon {

// false after throwing ERR_INVALID_SIZE.
bool ReadSize(napi_env env, napi_value value, uint64_t* out);
// false after throwing ERR_INVALID_ALIGNMENT. undefined or 0 means "the heap's alignment" (0).
bool ReadAlign(napi_env env, napi_value value, uint64_t* out);
// false after throwing ERR_INVALID_POINTER.
bool ReadAddress(napi_env env, napi_value value, uintptr_t* out);

}  // namespace ma_addon
