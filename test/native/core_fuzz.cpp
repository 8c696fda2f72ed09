// libFuzzer target for ma::Heap on the mmap source (clang, -fsanitize=fuzzer,address,undefined):
//
//   cmake -S . -B build-sanitize -DCMAKE_CXX_COMPILER=clang++ -DMA_FUZZ=ON && cmake --build build-sanitize --target core_fuzz
//   ./build-sanitize/core_fuzz -max_total_time=60 -max_len=1024 -len_control=0 <scratch corpus dir> test/native/corpus
//   ./build-sanitize/core_fuzz crash-<sha1>          # replays one input, printing what failed
//
// The input's first three bytes choose the heap's options; every following operation is an
// opcode byte and its arguments, run on a HeapHarness (heap_harness.h: the model, fill patterns,
// alignment, overlap, UsableSize and Stats checks) with a Checkpoint(), Heap::Check() included,
// after each (every live chunk's bytes re-read every 16 operations and at the end). A disagreement prints the problem and the options, then aborts, which
// libFuzzer reports and saves as a crash-* file.
//
// Layout:
//   byte 0  strategy (% 6, in ma::Strategy order)
//   byte 1  bit 0 split off, 1 coalesce off, 2 growth 0, 3 segregate small (64 << bits 4-5),
//           6 never trim, 7 trim threshold 0
//   byte 2  alignment 8 << (low nibble % 10); high nibble 12..15: maxHeapBytes 64 KiB, 256 KiB, 1 MiB, 4 MiB
//   then, per operation, opcode o and arguments:
//     o % 8 in 0..2  alloc (2: zeroed): 2 size bytes v, scaled by (o >> 3) % 4: v % 1024, v, v << 4, or huge;
//                    alignment by o >> 5: 0..4 none, 5: 8 << (v % 6), 6: 512 << (v >> 8) % 8, 7: 1 MiB
//     3, 4           free: 1 pick byte
//     5              realloc: 1 pick byte, 2 size bytes (scaled as alloc)
//     6              an invalid call: kind o >> 3, 1 pick byte
//     7              (o >> 3) % 6: trim, reset, free all, quarantine (1 pick byte),
//                    move and quarantine (1 pick byte, 2 size bytes scaled by o >> 6),
//                    release a quarantined chunk (1 pick byte)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "heap_harness.h"

namespace {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return at_ >= size_; }
  uint8_t Byte() { return at_ < size_ ? data_[at_++] : 0; }
  uint16_t Word() { return static_cast<uint16_t>(Byte() | (Byte() << 8)); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

ma::HeapOptions DecodeOptions(Input& in) {
  ma::HeapOptions options;
  options.source = ma::SourceKind::kMmap;
  options.strategy = static_cast<ma::Strategy>(in.Byte() % 6);
  const uint8_t flags = in.Byte();
  options.split = (flags & 1) == 0;
  options.coalesce = (flags & 2) == 0;
  if (flags & 4) options.growth = 0;
  if (flags & 8) options.segregate_small = uint64_t{64} << ((flags >> 4) & 3);
  if (flags & 64) options.trim_threshold = ma::kNeverTrim;
  if (flags & 128) options.trim_threshold = 0;
  const uint8_t layout = in.Byte();
  options.alignment = 8u << ((layout & 15) % 10);
  const uint64_t caps[] = {64 << 10, 256 << 10, 1 << 20, 4 << 20};
  if ((layout >> 4) >= 12) options.max_heap_bytes = caps[(layout >> 4) - 12];
  return options;
}

uint64_t DecodeSize(uint8_t scale, uint16_t v) {
  switch (scale % 4) {
    case 0: return v % 1024;
    case 1: return v;
    case 2: return uint64_t{v} << 4;
    default: return ma_test::kHugeRequest << (v % 20);
  }
}

uint64_t DecodeAlign(uint8_t code, uint16_t v) {
  switch (code) {
    case 5: return uint64_t{8} << (v % 6);
    case 6: return uint64_t{512} << ((v >> 8) % 8);
    case 7: return ma::kMaxAlign;
    default: return 0;
  }
}

[[noreturn]] void Report(const ma_test::HeapHarness& harness) {
  std::fprintf(stderr, "core_fuzz: %s\n  heap: %s\n", harness.problem().c_str(), ma_test::DescribeOptions(harness.options()).c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return -1;  // not even options: not worth keeping in the corpus
  Input in(data, size);
  ma_test::HeapHarness harness(DecodeOptions(in));
  if (!harness.Create()) Report(harness);
  uint64_t pattern = size, ops = 0;
  while (!in.empty()) {
    const uint8_t op = in.Byte();
    switch (op % 8) {
      case 0:
      case 1:
      case 2: {
        const uint16_t v = in.Word();
        // Opcode 2 allocates zeroed.
        harness.Alloc(DecodeSize(op >> 3, v), DecodeAlign(op >> 5, v), ++pattern, op % 8 == 2);
        break;
      }
      case 3:
      case 4: harness.Free(in.Byte()); break;
      case 5: {
        const uint8_t pick = in.Byte();
        harness.Realloc(pick, DecodeSize(op >> 3, in.Word()));
        break;
      }
      case 6: harness.BadCall(op >> 3, in.Byte()); break;
      default:
        switch ((op >> 3) % 6) {
          case 0: harness.Trim(); break;
          case 1: harness.Reset(); break;
          case 2: harness.FreeAll(); break;
          case 3: harness.Quarantine(in.Byte()); break;
          case 4: {
            const uint8_t pick = in.Byte();
            harness.MoveAndQuarantine(pick, DecodeSize(op >> 6, in.Word()));
            break;
          }
          default: harness.ReleaseQuarantined(in.Byte());
        }
    }
    // Check() and the model comparison after every operation; the bytes of every live chunk
    // every 16 (re-reading them all each time made inputs of big chunks quadratic).
    harness.Checkpoint(++ops % 16 == 0 || in.empty());
    if (!harness.ok()) Report(harness);
  }
  return 0;
}
