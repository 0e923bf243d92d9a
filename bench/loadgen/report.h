#pragma once

#include <cstdio>

#include "histogram.h"
#include "options.h"
#include "worker.h"

namespace loadgen {

// What one run produced, merged over the worker threads.
struct RunResult {
  int ready = 0;
  int failed = 0;
  double setupSeconds = 0;
  double windowSeconds = 0;
  double loadgenCpuPercent = 0;  // 100 = one core busy
  const char* error = nullptr;
  Counters counters;
  LatencyHistogram latency;
  LatencyHistogram delivery;
};

// Prints the run as one JSON object and a newline.
void writeReport(std::FILE* out, const Options& o, const RunResult& r);

}  // namespace loadgen
