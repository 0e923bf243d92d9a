// Stats counters: zero at start, exact under concurrent increments; an IO
// thread's ThreadStats exact for its one writer while another thread reads.
#include <thread>

#include "../../native/core/stats.h"
#include "harness.h"

using iocpnet::Stats;
using iocpnet::ThreadStats;
using iocpnet::ThreadStatsField;

TEST(stats, start_at_zero_and_add) {
  Stats s;
  CHECK_EQ(s.accepted.load(), uint64_t{0});
  CHECK_EQ(s.readPauses.load(), uint64_t{0});
  for (const auto& c : s.closes) CHECK_EQ(c.load(), uint64_t{0});
  Stats::add(s.staleRefused, 1000);
  Stats::add(s.staleRefused);
  Stats::add(s.closes[static_cast<size_t>(iocpnet::CloseReason::Kicked)]);
  CHECK_EQ(s.staleRefused.load(), uint64_t{1001});
  CHECK_EQ(s.closes[static_cast<size_t>(iocpnet::CloseReason::Kicked)].load(), uint64_t{1});
  CHECK_EQ(s.closes[static_cast<size_t>(iocpnet::CloseReason::Closed)].load(), uint64_t{0});
}

TEST(stats, concurrent_adds_are_exact) {
  Stats s;
  constexpr int kPerThread = 100000;
  auto work = [&] {
    for (int i = 0; i < kPerThread; ++i) {
      Stats::add(s.pings);
      Stats::add(s.staleRefused, 3);
    }
  };
  std::thread a(work);
  std::thread b(work);
  // A reader meanwhile sees monotonic values.
  uint64_t last = 0;
  bool monotonic = true;
  for (int i = 0; i < 10000; ++i) {
    uint64_t v = s.pings.load(std::memory_order_relaxed);
    if (v < last) monotonic = false;
    last = v;
  }
  a.join();
  b.join();
  CHECK(monotonic);
  CHECK_EQ(s.pings.load(), uint64_t{2 * kPerThread});
  CHECK_EQ(s.staleRefused.load(), uint64_t{6 * kPerThread});
}

TEST(stats, thread_stats_one_writer_and_a_reader) {
  ThreadStats t;
  for (size_t f = 0; f < iocpnet::kThreadStatsFieldCount; ++f)
    CHECK_EQ(t.get(static_cast<ThreadStatsField>(f)), uint64_t{0});
  CHECK_EQ(alignof(ThreadStats) % 64, size_t{0});
  constexpr int kAdds = 200000;
  std::thread writer([&] {
    for (int i = 0; i < kAdds; ++i) {
      t.add(ThreadStatsField::PacketsIn);
      t.add(ThreadStatsField::SendQueueBytes, 10);
      t.sub(ThreadStatsField::SendQueueBytes, 10);
      t.add(ThreadStatsField::BytesIn, 7);
    }
  });
  uint64_t last = 0;
  bool monotonic = true;
  bool gaugeBounded = true;
  for (int i = 0; i < 20000; ++i) {
    uint64_t v = t.get(ThreadStatsField::PacketsIn);
    if (v < last) monotonic = false;
    last = v;
    // The gauge is 0 or 10 at any moment, never a wrapped-around value.
    uint64_t q = t.get(ThreadStatsField::SendQueueBytes);
    if (q != 0 && q != 10) gaugeBounded = false;
  }
  writer.join();
  CHECK(monotonic);
  CHECK(gaugeBounded);
  CHECK_EQ(t.get(ThreadStatsField::PacketsIn), uint64_t{kAdds});
  CHECK_EQ(t.get(ThreadStatsField::BytesIn), uint64_t{7} * kAdds);
  CHECK_EQ(t.get(ThreadStatsField::SendQueueBytes), uint64_t{0});
}
