// Engine counters. Incremented by IO threads and read by the JS thread with
// relaxed atomics: each counter is exact, a snapshot is not a transaction.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "protocol.h"

namespace iocpnet {

struct Stats {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> packetsIn{0};
  std::atomic<uint64_t> packetsOut{0};
  std::atomic<uint64_t> bytesIn{0};
  std::atomic<uint64_t> bytesOut{0};
  std::atomic<uint64_t> pings{0};
  std::atomic<uint64_t> ignoredSystemPackets{0};
  std::atomic<uint64_t> staleRefused{0};
  // Times a connection stopped reading because too many bytes waited for JS.
  std::atomic<uint64_t> readPauses{0};
  // Times a connection stopped reading because its own queue passed the high-water mark.
  std::atomic<uint64_t> readPausesSendQueue{0};
  // Connections refused at accept because the process had no descriptor left.
  std::atomic<uint64_t> descriptorRefused{0};
  std::array<std::atomic<uint64_t>, kCloseReasonCount> closes{};

  static void add(std::atomic<uint64_t>& counter, uint64_t n = 1) noexcept {
    counter.fetch_add(n, std::memory_order_relaxed);
  }
};

}  // namespace iocpnet
