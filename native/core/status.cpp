// Names of the core's status codes as the public contract spells them.
#include "status.h"

namespace ma {

const char* StatusCode(Status status) {
  switch (status) {
    case Status::kOk: return "OK";
    case Status::kInvalidOption: return "ERR_INVALID_OPTION";
    case Status::kInvalidAlignment: return "ERR_INVALID_ALIGNMENT";
    case Status::kInvalidPointer: return "ERR_INVALID_POINTER";
    case Status::kDoubleFree: return "ERR_DOUBLE_FREE";
    case Status::kOutOfMemory: return "ERR_OUT_OF_MEMORY";
    case Status::kUnsupported: return "ERR_UNSUPPORTED";
    case Status::kBrkMainThreadOnly: return "ERR_BRK_MAIN_THREAD_ONLY";
    case Status::kHeapCorrupt: return "ERR_HEAP_CORRUPT";
    case Status::kTraceFormat: return "ERR_TRACE_FORMAT";
  }
  return "ERR_HEAP_CORRUPT";
}

}  // namespace ma
