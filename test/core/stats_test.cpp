// Stats counters: zero at start, exact under concurrent increments.
#include <thread>

#include "../../native/core/stats.h"
#include "harness.h"

using iocpnet::Stats;

TEST(stats, start_at_zero_and_add) {
  Stats s;
  CHECK_EQ(s.accepted.load(), uint64_t{0});
  CHECK_EQ(s.readPauses.load(), uint64_t{0});
  for (const auto& c : s.closes) CHECK_EQ(c.load(), uint64_t{0});
  Stats::add(s.bytesIn, 1000);
  Stats::add(s.bytesIn);
  Stats::add(s.closes[static_cast<size_t>(iocpnet::CloseReason::Kicked)]);
  CHECK_EQ(s.bytesIn.load(), uint64_t{1001});
  CHECK_EQ(s.closes[static_cast<size_t>(iocpnet::CloseReason::Kicked)].load(), uint64_t{1});
  CHECK_EQ(s.closes[static_cast<size_t>(iocpnet::CloseReason::Closed)].load(), uint64_t{0});
}

TEST(stats, concurrent_adds_are_exact) {
  Stats s;
  constexpr int kPerThread = 100000;
  auto work = [&] {
    for (int i = 0; i < kPerThread; ++i) {
      Stats::add(s.packetsIn);
      Stats::add(s.bytesIn, 3);
    }
  };
  std::thread a(work);
  std::thread b(work);
  // A reader meanwhile sees monotonic values.
  uint64_t last = 0;
  bool monotonic = true;
  for (int i = 0; i < 10000; ++i) {
    uint64_t v = s.packetsIn.load(std::memory_order_relaxed);
    if (v < last) monotonic = false;
    last = v;
  }
  a.join();
  b.join();
  CHECK(monotonic);
  CHECK_EQ(s.packetsIn.load(), uint64_t{2 * kPerThread});
  CHECK_EQ(s.bytesIn.load(), uint64_t{6 * kPerThread});
}
