// Debug assertions: MA_ASSERT(condition) checks an invariant a structure keeps, in the builds that
// test the core (MA_DEBUG, defined by CMake for MA_SANITIZE, MA_NATIVE_TESTS, MA_FUZZ, the test
// hooks build and -DMA_DEBUG=ON), and compiles to nothing in release builds. A failure writes one
// line with write(2) (never through malloc: under `run` the core is the process's malloc) and
// aborts.
#pragma once

#if defined(MA_DEBUG) && MA_DEBUG
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace ma {
[[noreturn]] inline void AssertFailed(const char* what, const char* file, int line) {
  char digits[12];
  int at = sizeof digits;
  digits[--at] = '\0';
  do {
    digits[--at] = static_cast<char>('0' + line % 10);
    line /= 10;
  } while (line != 0 && at > 0);
  const char* parts[] = {"memory-allocator: assertion failed: ", what, " (", file, ":", digits + at, ")\n"};
  for (const char* part : parts) {
    if (write(2, part, std::strlen(part)) < 0) break;
  }
  std::abort();
}
}  // namespace ma

#define MA_ASSERT(condition) ((condition) ? static_cast<void>(0) : ::ma::AssertFailed(#condition, __FILE__, __LINE__))
#else
#define MA_ASSERT(condition) static_cast<void>(0)
#endif
