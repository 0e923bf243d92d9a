// ConnectionTable: preallocated slots, generation-tagged ids, stale ids
// refused after reuse, generation wrap-around, concurrent use.
#include <atomic>
#include <set>
#include <stdexcept>
#include <thread>

#include "../../native/core/connection_table.h"
#include "harness.h"

using iocpnet::ConnectionTable;

TEST(connection_table, capacity_bounds) {
  bool threw = false;
  try {
    ConnectionTable t(0);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw);
  threw = false;
  try {
    ConnectionTable t((1u << 24) + 1);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw);
  ConnectionTable one(1);
  CHECK_EQ(one.capacity(), 1u);
}

TEST(connection_table, acquire_until_full_then_refuse) {
  ConnectionTable t(8);
  std::set<uint32_t> ids;
  std::set<uint32_t> slots;
  for (int i = 0; i < 8; ++i) {
    uint32_t id = t.acquire(static_cast<uint16_t>(i % 3));
    REQUIRE(id != 0);
    ids.insert(id);
    slots.insert(t.slotOf(id));
    CHECK_EQ(t.ownerOf(id), i % 3);
    CHECK(t.isOpen(id));
  }
  CHECK_EQ(ids.size(), size_t{8});
  CHECK_EQ(slots.size(), size_t{8});
  CHECK_EQ(t.inUse(), 8u);
  CHECK_EQ(t.acquire(0), 0u);
  CHECK_EQ(t.inUse(), 8u);
}

TEST(connection_table, retire_then_release_then_reuse_with_a_new_id) {
  ConnectionTable t(2);
  uint32_t a = t.acquire(1);
  uint32_t b = t.acquire(0);
  REQUIRE(a != 0 && b != 0);
  t.retire(a);
  // Retired: no longer addressable, but the slot stays taken.
  CHECK_EQ(t.ownerOf(a), -1);
  CHECK(t.isOpen(b));
  CHECK_EQ(t.inUse(), 2u);
  CHECK_EQ(t.acquire(0), 0u);
  t.release(a);
  CHECK_EQ(t.inUse(), 1u);
  uint32_t c = t.acquire(1);
  REQUIRE(c != 0);
  CHECK_EQ(t.slotOf(c), t.slotOf(a));
  CHECK(c != a);
  // The stale id never names the reused slot.
  CHECK_EQ(t.ownerOf(a), -1);
  CHECK_EQ(t.ownerOf(c), 1);
  // Retiring a stale id leaves the slot's new owner alone.
  t.retire(a);
  CHECK_EQ(t.ownerOf(c), 1);
}

TEST(connection_table, garbage_ids_are_not_open) {
  ConnectionTable t(3);
  uint32_t a = t.acquire(0);
  CHECK_EQ(t.ownerOf(0), -1);
  CHECK_EQ(t.ownerOf(0xffffffffu), -1);
  CHECK_EQ(t.ownerOf(t.slotOf(a)), -1);  // generation 0 is never handed out
  CHECK_EQ(t.ownerOf(a + 3), -1);        // same slot, next generation
  CHECK_EQ(t.ownerOf(a), 0);
}

TEST(connection_table, generation_wraps_without_zero_or_overflow) {
  // With capacity 2^20 there are 4095 generations; cycling one slot past
  // that must wrap to generation 1, never produce id 0, and never repeat the
  // id just released.
  constexpr uint32_t kCapacity = 1u << 20;
  ConnectionTable t(kCapacity);
  uint32_t previous = 0;
  uint32_t slot = 0;
  bool wrapped = false;
  for (int i = 0; i < 5000; ++i) {
    uint32_t id = t.acquire(0);
    REQUIRE(id != 0);
    if (i == 0) slot = t.slotOf(id);
    CHECK_EQ(t.slotOf(id), slot);
    CHECK(id != previous);
    uint64_t generation = id / kCapacity;
    CHECK(generation >= 1);
    if (i > 0 && generation == 1) wrapped = true;
    CHECK(t.isOpen(id));
    if (previous != 0) CHECK(!t.isOpen(previous));
    t.release(id);
    previous = id;
  }
  CHECK(wrapped);
}

TEST(connection_table, concurrent_acquire_release_and_lookup) {
  // Two "IO threads" open and close connections while a "JS thread" looks
  // ids up; every id handed out is unique among the open ones.
  ConnectionTable t(64);
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::atomic<uint32_t>> published(64);
  auto worker = [&](uint16_t thread) {
    std::vector<uint32_t> mine;
    for (int i = 0; i < 20000; ++i) {
      if (mine.size() < 20 && (i % 3) != 2) {
        uint32_t id = t.acquire(thread);
        if (id == 0) continue;
        if (t.ownerOf(id) != thread) errors.fetch_add(1);
        published[t.slotOf(id)].store(id, std::memory_order_relaxed);
        mine.push_back(id);
      } else if (!mine.empty()) {
        uint32_t id = mine.back();
        mine.pop_back();
        t.retire(id);
        t.release(id);
      }
    }
    for (uint32_t id : mine) t.release(id);
  };
  std::thread lookup([&] {
    uint64_t seen = 0;
    while (!stop.load()) {
      for (auto& p : published) {
        int owner = t.ownerOf(p.load(std::memory_order_relaxed));
        if (owner > 1) errors.fetch_add(1);
        seen += owner >= 0;
      }
    }
    (void)seen;
  });
  std::thread a(worker, uint16_t{0});
  std::thread b(worker, uint16_t{1});
  a.join();
  b.join();
  stop.store(true);
  lookup.join();
  CHECK_EQ(errors.load(), 0);
  CHECK_EQ(t.inUse(), 0u);
}
