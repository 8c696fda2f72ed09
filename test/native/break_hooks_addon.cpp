// memory_allocator_testing.node: the test suites' stand-in for foreign code that moves the
// program break (glibc's malloc, another allocator). It lives apart from memory_allocator.node so
// that nothing the package ships lets a user move the real break; it is built only by the test
// setup (test/native/test-hooks-setup.ts) with -DMA_TEST_HOOKS=ON, into build-test-hooks/.
//
// It shares no code or lock with the core, just as real foreign code does not. The tests call
// it on the main thread, between heap calls, and the brk source only moves the break on the
// main thread too, so the two never race.
#include <napi.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

namespace {

constexpr uintptr_t kPageSize = 4096;

bool OnMainThread() { return syscall(SYS_gettid) == getpid(); }

Napi::Value Throw(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

// moveBreak(delta): sbrk(delta); returns the old break.
Napi::Value MoveBreak(const Napi::CallbackInfo& info) {
  if (!OnMainThread()) return Throw(info.Env(), "ERR_BRK_MAIN_THREAD_ONLY", "moveBreak: only the main thread moves the break");
  if (!info[0].IsNumber()) return Throw(info.Env(), "ERR_INVALID_SIZE", "moveBreak expects a number of bytes");
  const int64_t delta = info[0].As<Napi::Number>().Int64Value();
  void* previous = sbrk(static_cast<intptr_t>(delta));
  if (previous == reinterpret_cast<void*>(-1)) {
    return Throw(info.Env(), "ERR_OUT_OF_MEMORY", "moveBreak(" + std::to_string(delta) + "): sbrk refused");
  }
  return Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(previous)));
}

Napi::Value CurrentBreak(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(sbrk(0))));
}

// blockBreak(true) maps a page right above the break so that it cannot grow; blockBreak(false)
// removes that page again.
uintptr_t blocker = 0;

Napi::Value BlockBreak(const Napi::CallbackInfo& info) {
  if (!info[0].ToBoolean().Value()) {
    if (blocker != 0) munmap(reinterpret_cast<void*>(blocker), kPageSize);
    blocker = 0;
    return info.Env().Undefined();
  }
  if (blocker != 0) return info.Env().Undefined();
  const uintptr_t page = (reinterpret_cast<uintptr_t>(sbrk(0)) + kPageSize - 1) & ~(kPageSize - 1);
  void* mapped = mmap(reinterpret_cast<void*>(page), kPageSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  // Someone else's mapping is there already (V8's code space, in some processes): the break is
  // blocked without us, and unblocking must leave that mapping alone.
  if (mapped == MAP_FAILED) {
    return errno == EEXIST ? info.Env().Undefined() : Throw(info.Env(), "ERR_UNSUPPORTED", "blockBreak: could not map a page above the break");
  }
  if (mapped != reinterpret_cast<void*>(page)) {  // kernels before 4.17 treat the flag as a hint
    munmap(mapped, kPageSize);
    return Throw(info.Env(), "ERR_UNSUPPORTED", "blockBreak: this kernel cannot map a page at a fixed address without replacing");
  }
  blocker = page;
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("moveBreak", Napi::Function::New(env, MoveBreak, "moveBreak"));
  exports.Set("currentBreak", Napi::Function::New(env, CurrentBreak, "currentBreak"));
  exports.Set("blockBreak", Napi::Function::New(env, BlockBreak, "blockBreak"));
  return exports;
}

}  // namespace

NODE_API_MODULE(memory_allocator_testing, Init)
