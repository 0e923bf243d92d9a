// EventBatch record encoding and InboundQueue hand-over: one wake-up per
// batch, the pending-bytes bound, paused readers, appends from many threads.
#include <atomic>
#include <string>
#include <thread>

#include "../../native/core/event_batch.h"
#include "harness.h"
#include "test_util.h"

using iocpnet::CloseReason;
using iocpnet::EventBatch;
using iocpnet::InboundKind;
using iocpnet::InboundQueue;

using Record = testutil::InboundRecord;

TEST(event_batch, records_are_encoded_exactly) {
  EventBatch batch;
  CHECK(batch.empty());
  batch.connect(0x01020304, "127.0.0.1", 54321, iocpnet::Transport::Websocket);
  const uint8_t body[] = {'h', 'i', 0, 0xff};
  batch.packet(7, 300, body, sizeof body);
  batch.packet(7, 301, nullptr, 0);
  batch.disconnect(7, CloseReason::ProtocolError, true);
  batch.disconnect(8, CloseReason::Reset, false);
  const std::vector<uint8_t>& b = batch.bytes();
  CHECK_EQ(b.size(), size_t{(9 + 9) + (9 + 4) + 9 + 7 + 7});
  // Connect: kind, id, port, transport, address length, address.
  CHECK_EQ(b[0], 1);
  CHECK_EQ(iocpnet::readU32(&b[1]), 0x01020304u);
  CHECK_EQ(iocpnet::readU16(&b[5]), 54321);
  CHECK_EQ(b[7], 1);
  CHECK_EQ(b[8], 9);
  CHECK(std::string(b.begin() + 9, b.begin() + 18) == "127.0.0.1");
  std::vector<Record> records;
  REQUIRE(testutil::decodeInbound(b, records));
  REQUIRE_EQ(records.size(), size_t{5});
  CHECK_EQ(records[1].kind, InboundKind::Packet);
  CHECK_EQ(records[1].id, 7u);
  CHECK_EQ(records[1].portOrPacketId, 300);
  CHECK(records[1].payload == std::string("hi\0\xff", 4));
  CHECK_EQ(records[2].portOrPacketId, 301);
  CHECK(records[2].payload.empty());
  CHECK_EQ(records[3].kind, InboundKind::Disconnect);
  CHECK_EQ(records[3].reason, static_cast<uint8_t>(CloseReason::ProtocolError));
  CHECK(records[3].awaitsRelease);
  CHECK_EQ(records[4].reason, static_cast<uint8_t>(CloseReason::Reset));
  CHECK(!records[4].awaitsRelease);
  batch.clear();
  CHECK(batch.empty());
}

TEST(event_batch, long_address_is_cut_to_255_bytes) {
  EventBatch batch;
  batch.connect(1, std::string(400, 'x'), 1);
  std::vector<Record> records;
  REQUIRE(testutil::decodeInbound(batch.bytes(), records));
  REQUIRE_EQ(records.size(), size_t{1});
  CHECK_EQ(records[0].payload.size(), size_t{255});
}

TEST(event_batch, maximum_body_round_trips) {
  EventBatch batch;
  std::vector<uint8_t> body(0xffff - 5);
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<uint8_t>(i * 31);
  batch.packet(9, 1000, body.data(), static_cast<uint16_t>(body.size()));
  std::vector<Record> records;
  REQUIRE(testutil::decodeInbound(batch.bytes(), records));
  REQUIRE_EQ(records.size(), size_t{1});
  CHECK(records[0].payload == std::string(body.begin(), body.end()));
}

TEST(inbound_queue, one_wake_per_batch_and_take_everything) {
  InboundQueue q(1 << 20);
  int wakes = 0;
  q.setWake([&] { ++wakes; });
  EventBatch a;
  EventBatch b;
  a.disconnect(1, CloseReason::Closed, true);
  b.disconnect(2, CloseReason::Reset, false);
  q.append(a);
  CHECK(a.empty());
  q.append(b);
  CHECK_EQ(wakes, 1);  // the second append finds a wake-up pending
  EventBatch empty;
  q.append(empty);
  CHECK_EQ(wakes, 1);
  CHECK_EQ(q.pendingBytes(), size_t{2 * (iocpnet::kRecordHead + iocpnet::kDisconnectFields)});
  std::vector<uint8_t> out = {9, 9, 9};  // stale content is discarded
  CHECK(!q.take(out));
  std::vector<Record> records;
  REQUIRE(testutil::decodeInbound(out, records));
  REQUIRE_EQ(records.size(), size_t{2});
  CHECK_EQ(records[0].id, 1u);
  CHECK_EQ(records[1].id, 2u);
  CHECK_EQ(q.pendingBytes(), size_t{0});
  a.disconnect(3, CloseReason::Closed, true);
  q.append(a);
  CHECK_EQ(wakes, 2);  // after a take, the next append wakes again
  q.take(out);
  q.take(out);
  CHECK(out.empty());
}

TEST(inbound_queue, full_pause_and_resume) {
  InboundQueue q(20);
  int wakes = 0;
  q.setWake([&] { ++wakes; });
  EventBatch batch;
  const uint8_t body[8] = {};
  batch.packet(1, 100, body, sizeof body);  // 17 bytes
  q.append(batch);
  CHECK(!q.full());
  batch.disconnect(1, CloseReason::Closed, true);
  q.append(batch);
  CHECK(q.full());
  // A reader pauses after the records were already taken: a wake-up still
  // comes so that the JS thread drains and the reader is resumed.
  std::vector<uint8_t> out;
  CHECK(!q.take(out));
  int before = wakes;
  q.notePaused();
  CHECK_EQ(wakes, before + 1);
  q.notePaused();
  CHECK_EQ(wakes, before + 1);
  CHECK(q.take(out));
  CHECK(out.empty());
  CHECK(!q.take(out));
  q.wakeAlways();
  q.wakeAlways();
  CHECK_EQ(wakes, before + 3);
}

TEST(inbound_queue, appends_from_two_threads_keep_batches_whole) {
  InboundQueue q(1u << 30);
  std::atomic<int> wakes{0};
  q.setWake([&] { wakes.fetch_add(1); });
  constexpr int kBatches = 2000;
  auto producer = [&](uint32_t thread) {
    EventBatch batch;
    for (int i = 0; i < kBatches; ++i) {
      // Each batch: a packet carrying its sequence number, then a disconnect.
      uint8_t body[4];
      iocpnet::writeU32(body, static_cast<uint32_t>(i));
      batch.packet(thread, 100, body, 4);
      batch.disconnect(thread, CloseReason::Closed, true);
      q.append(batch);
    }
  };
  std::thread a(producer, 1u);
  std::thread b(producer, 2u);
  std::vector<uint32_t> next(3, 0);
  int records = 0;
  bool ok = true;
  std::vector<uint8_t> out;
  for (int spins = 0; records < 4 * kBatches && spins < 10000000; ++spins) {
    q.take(out);
    std::vector<Record> rs;
    if (!testutil::decodeInbound(out, rs)) ok = false;
    for (size_t i = 0; i < rs.size(); ++i) {
      const Record& r = rs[i];
      if (r.kind == InboundKind::Packet) {
        // The disconnect of the same batch follows at once.
        if (i + 1 >= rs.size() || rs[i + 1].kind != InboundKind::Disconnect || rs[i + 1].id != r.id) ok = false;
        if (iocpnet::readU32(reinterpret_cast<const uint8_t*>(r.payload.data())) != next[r.id]) ok = false;
        ++next[r.id];
      }
    }
    records += static_cast<int>(rs.size());
    if (rs.empty()) std::this_thread::yield();
  }
  a.join();
  b.join();
  CHECK(ok);
  CHECK_EQ(records, 4 * kBatches);
  CHECK_EQ(next[1], static_cast<uint32_t>(kBatches));
  CHECK_EQ(next[2], static_cast<uint32_t>(kBatches));
  CHECK(wakes.load() >= 1);
  CHECK(wakes.load() <= 2 * kBatches);
}
