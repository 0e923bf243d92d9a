// ChunkRef reference counting (one broadcast buffer shared by every
// receiver) and SendQueue's write-in-flight bookkeeping.
#include <thread>

#include "../../native/core/chunk.h"
#include "../../native/core/send_queue.h"
#include "harness.h"

using iocpnet::ChunkRef;
using iocpnet::SendQueue;
using iocpnet::Slice;

namespace {

Slice sliceOf(const ChunkRef& chunk, uint32_t offset, uint32_t length) { return Slice{chunk, offset, length}; }

struct Written {
  std::vector<std::vector<uint8_t>> pieces;
  void operator()(const uint8_t* data, size_t len) { pieces.emplace_back(data, data + len); }
};

}  // namespace

TEST(chunk, allocate_copies_and_counts) {
  const uint8_t bytes[] = {1, 2, 3, 4, 5};
  ChunkRef a = ChunkRef::allocate(sizeof bytes, bytes);
  REQUIRE(static_cast<bool>(a));
  CHECK_EQ(a.size(), sizeof bytes);
  CHECK(std::memcmp(a.data(), bytes, sizeof bytes) == 0);
  CHECK_EQ(a.useCount(), 1);
  {
    ChunkRef b = a;
    CHECK_EQ(a.useCount(), 2);
    CHECK(b.data() == a.data());
    ChunkRef c = std::move(b);
    CHECK_EQ(a.useCount(), 2);
    CHECK(!b);
    CHECK_EQ(b.size(), size_t{0});
    CHECK(b.data() == nullptr);
    ChunkRef d;
    d = c;
    CHECK_EQ(a.useCount(), 3);
    d = d;  // self-assignment keeps the count
    CHECK_EQ(a.useCount(), 3);
  }
  CHECK_EQ(a.useCount(), 1);
  a.reset();
  CHECK(!a);
  CHECK_EQ(a.useCount(), 0);
  a.reset();  // twice is harmless
  ChunkRef empty = ChunkRef::allocate(0);
  CHECK_EQ(empty.size(), size_t{0});
  CHECK(static_cast<bool>(empty));
}

TEST(chunk, shared_references_counted_at_once) {
  ChunkRef a = ChunkRef::allocate(4);
  a.addShared(3);
  CHECK_EQ(a.useCount(), 4);
  {
    std::vector<ChunkRef> receivers;
    for (int i = 0; i < 3; ++i) receivers.push_back(ChunkRef::adoptShared(a));
    CHECK_EQ(a.useCount(), 4);  // adopting takes a counted reference, it adds none
    CHECK(receivers[2].data() == a.data());
  }
  CHECK_EQ(a.useCount(), 1);
  ChunkRef none;
  none.addShared(2);  // an empty reference has nothing to count
  CHECK(!ChunkRef::adoptShared(none));
}

TEST(chunk, released_from_many_threads) {
  // Receivers on different IO threads drop their references concurrently;
  // the last one frees the buffer exactly once (the sanitizers check that).
  for (int round = 0; round < 50; ++round) {
    ChunkRef shared = ChunkRef::allocate(64);
    std::memset(shared.data(), round, 64);
    std::vector<std::vector<ChunkRef>> perThread(2);
    for (int i = 0; i < 200; ++i) perThread[static_cast<size_t>(i % 2)].push_back(shared);
    CHECK_EQ(shared.useCount(), 201);
    shared.reset();
    std::vector<std::thread> threads;
    for (auto& refs : perThread) {
      threads.emplace_back([&refs, round] {
        for (ChunkRef& r : refs) {
          if (r.data()[63] != static_cast<uint8_t>(round)) std::abort();
          r.reset();
        }
      });
    }
    for (auto& t : threads) t.join();
  }
}

TEST(send_queue, push_take_complete_in_order) {
  SendQueue q;
  CHECK(q.empty());
  ChunkRef c = ChunkRef::allocate(10);
  for (uint8_t i = 0; i < 10; ++i) c.data()[i] = i;
  q.push(sliceOf(c, 0, 3));
  q.push(sliceOf(c, 3, 3));
  q.push(sliceOf(c, 6, 4));
  CHECK(!q.empty());
  CHECK_EQ(q.queuedBytes(), size_t{10});
  CHECK_EQ(q.pendingCount(), size_t{3});
  CHECK_EQ(c.useCount(), 4);

  Written w;
  CHECK_EQ(q.takeForWrite(2, w), size_t{2});
  REQUIRE_EQ(w.pieces.size(), size_t{2});
  CHECK(w.pieces[0] == std::vector<uint8_t>({0, 1, 2}));
  CHECK(w.pieces[1] == std::vector<uint8_t>({3, 4, 5}));
  CHECK_EQ(q.inFlightCount(), size_t{2});
  CHECK_EQ(q.inFlightBytes(), size_t{6});
  CHECK_EQ(q.pendingCount(), size_t{1});
  // One write in flight: nothing more is handed out until it completes...
  // unless the engine asks, in which case only the pending slice comes.
  q.push(sliceOf(c, 0, 1));
  CHECK_EQ(q.queuedBytes(), size_t{11});
  CHECK_EQ(q.pendingCount(), size_t{2});

  q.completeWrite();
  CHECK_EQ(q.inFlightCount(), size_t{0});
  CHECK_EQ(q.queuedBytes(), size_t{5});
  CHECK_EQ(c.useCount(), 3);  // the two written slices let go of the chunk

  Written w2;
  CHECK_EQ(q.takeForWrite(100, w2), size_t{2});
  REQUIRE_EQ(w2.pieces.size(), size_t{2});
  CHECK(w2.pieces[0] == std::vector<uint8_t>({6, 7, 8, 9}));
  CHECK(w2.pieces[1] == std::vector<uint8_t>({0}));
  CHECK_EQ(q.takeForWrite(100, w2), size_t{0});  // nothing pending
  q.completeWrite();
  CHECK(q.empty());
  CHECK_EQ(q.queuedBytes(), size_t{0});
  CHECK_EQ(c.useCount(), 1);
}

TEST(send_queue, broadcast_chunk_shared_by_every_receiver) {
  constexpr int kReceivers = 100;
  std::vector<SendQueue> queues(kReceivers);
  ChunkRef broadcast = ChunkRef::allocate(32);
  const uint8_t* bytes = broadcast.data();
  for (SendQueue& q : queues) q.push(sliceOf(broadcast, 0, 32));
  CHECK_EQ(broadcast.useCount(), kReceivers + 1);
  for (int i = 0; i < kReceivers; ++i) {
    Written w;
    CHECK_EQ(queues[static_cast<size_t>(i)].takeForWrite(8,
                                                         [&](const uint8_t* data, size_t len) {
                                                           // Every receiver writes from the one buffer: no copy per
                                                           // receiver.
                                                           CHECK(data == bytes);
                                                           w(data, len);
                                                         }),
             size_t{1});
    queues[static_cast<size_t>(i)].completeWrite();
    CHECK_EQ(broadcast.useCount(), kReceivers - i);
  }
}

TEST(send_queue, clear_drops_everything_including_in_flight) {
  SendQueue q;
  ChunkRef c = ChunkRef::allocate(8);
  for (int i = 0; i < 5; ++i) q.push(sliceOf(c, 0, 8));
  q.takeForWrite(2, [](const uint8_t*, size_t) {});
  q.clear();
  CHECK(q.empty());
  CHECK_EQ(q.queuedBytes(), size_t{0});
  CHECK_EQ(q.inFlightCount(), size_t{0});
  CHECK_EQ(q.pendingCount(), size_t{0});
  CHECK_EQ(c.useCount(), 1);
}

TEST(send_queue, keeps_its_array_between_writes_until_trimmed_while_empty) {
  // A busy connection reuses the array a burst grew; trim() (the IO
  // thread's timer) lets go of it once the queue is empty, and not before.
  SendQueue q;
  ChunkRef c = ChunkRef::allocate(8);
  auto burst = [&] {
    for (size_t i = 0; i < 4 * SendQueue::kIdleSlices; ++i) q.push(sliceOf(c, 0, 8));
  };
  burst();
  const size_t grown = q.capacity();
  CHECK(grown > SendQueue::kIdleSlices);
  q.takeForWrite(1000, [](const uint8_t*, size_t) {});
  q.completeWrite();
  CHECK(q.empty());
  CHECK_EQ(q.capacity(), grown);
  burst();
  CHECK_EQ(q.capacity(), grown);  // the same array, not a new one
  q.trim();
  CHECK_EQ(q.capacity(), grown);  // not empty: kept
  q.takeForWrite(1000, [](const uint8_t*, size_t) {});
  q.completeWrite();
  q.trim();
  CHECK_EQ(q.capacity(), size_t{0});
  CHECK_EQ(c.useCount(), 1);
}

TEST(send_queue, long_queue_compacts_and_keeps_order) {
  // Thousands of small slices written a few at a time: the queue compacts
  // its consumed front and must still hand out the rest in order.
  SendQueue q;
  constexpr uint32_t kSlices = 5000;
  ChunkRef c = ChunkRef::allocate(kSlices * 2);
  for (uint32_t i = 0; i < kSlices; ++i) {
    c.data()[2 * i] = static_cast<uint8_t>(i);
    c.data()[2 * i + 1] = static_cast<uint8_t>(i >> 8);
    q.push(sliceOf(c, 2 * i, 2));
  }
  std::vector<uint32_t> expected;
  for (uint32_t i = 0; i < kSlices; ++i) expected.push_back(i);
  size_t next = 0;
  size_t expectedBytes = kSlices * 2;
  for (int step = 0; !q.empty() && step < 10000; ++step) {
    size_t n = q.takeForWrite(1 + static_cast<size_t>(step % 300), [&](const uint8_t* data, size_t len) {
      CHECK_EQ(len, size_t{2});
      if (CHECK(next < expected.size())) CHECK_EQ(static_cast<uint32_t>(data[0] | (data[1] << 8)), expected[next]);
      ++next;
    });
    expectedBytes -= 2 * n;
    // Pushing while a write is in flight, as sends arriving mid-write do.
    if (step == 5) {
      for (uint32_t i = 0; i < 10; ++i) {
        q.push(sliceOf(c, 2 * (kSlices - 10 + i), 2));
        expected.push_back(kSlices - 10 + i);
        expectedBytes += 2;
      }
    }
    q.completeWrite();
    CHECK_EQ(q.queuedBytes(), expectedBytes);
  }
  CHECK(q.empty());
  CHECK_EQ(next, expected.size());
  CHECK_EQ(c.useCount(), 1);
}
