// Reading a malloc-lab trace file (uncompressed .rep) into the columns ma::TraceView points at,
// for the standalone benchmark drivers in this folder (they run without Node, under valgrind).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

struct TraceFile {
  std::vector<uint8_t> kinds;  // 0 alloc, 1 free, 2 realloc
  std::vector<int32_t> ids;
  std::vector<double> sizes;
  uint32_t num_ids = 0;
};

// False when the file cannot be opened or its four header numbers cannot be read.
inline bool ReadTraceFile(const char* path, TraceFile* trace) {
  std::ifstream file(path);
  long header[4];
  for (long& value : header) {
    if (!(file >> value)) return false;
  }
  std::string op;
  while (file >> op) {
    int32_t id;
    double size = 0;
    file >> id;
    if (op == "a" || op == "r") file >> size;
    trace->kinds.push_back(op == "a" ? 0 : op == "f" ? 1 : 2);
    trace->ids.push_back(id);
    trace->sizes.push_back(size);
  }
  trace->num_ids = static_cast<uint32_t>(header[1]);
  return true;
}
