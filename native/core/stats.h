// Engine counters, read by the JS thread with relaxed atomics: each counter
// is exact, a snapshot is not a transaction.
//
// Stats holds the engine-wide counters, incremented by any thread with a
// relaxed fetch_add. The per-packet and per-byte figures live in each IO
// thread's ThreadStats instead: written by that thread alone (a relaxed load
// and store, no read-modify-write, on a cache line of its own) and summed by
// the JS thread when it reads them.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "protocol.h"

namespace iocpnet {

struct Stats {
  std::atomic<uint64_t> accepted{0};
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

// One IO thread's figures, indexed by ThreadStatsField (contract.h). Only
// the owning IO thread writes them; any thread may read them.
struct alignas(64) ThreadStats {
  std::array<std::atomic<uint64_t>, kThreadStatsFieldCount> values{};

  // Single writer: a plain load and store, which costs no more than a
  // non-atomic increment. Gauges go down by adding the two's complement.
  void add(ThreadStatsField field, uint64_t n = 1) noexcept {
    std::atomic<uint64_t>& v = values[static_cast<size_t>(field)];
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(ThreadStatsField field, uint64_t n = 1) noexcept { add(field, uint64_t{0} - n); }
  uint64_t get(ThreadStatsField field) const noexcept {
    return values[static_cast<size_t>(field)].load(std::memory_order_relaxed);
  }
};

}  // namespace iocpnet
