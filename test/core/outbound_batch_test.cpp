// validateOutboundBatch and forEachOutboundRecord: every record kind, every
// truncation of a valid batch, each malformed field, random corruption.
#include <memory>
#include <random>

#include "../../native/core/outbound_batch.h"
#include "harness.h"
#include "test_util.h"

using iocpnet::CloseReason;
using iocpnet::OutboundOp;
using iocpnet::OutboundRecord;
using iocpnet::validateOutboundBatch;

namespace {

struct Builder {
  std::vector<uint8_t> bytes;
  std::vector<size_t> boundaries{0};  // offsets where a record ends

  Builder& send(uint32_t id, uint16_t packetId, const std::vector<uint8_t>& body) {
    bytes.push_back(1);
    testutil::appendU32(bytes, id);
    testutil::appendPacket(bytes, packetId, body);
    boundaries.push_back(bytes.size());
    return *this;
  }
  Builder& broadcast(const std::vector<uint32_t>& ids, uint16_t packetId, const std::vector<uint8_t>& body) {
    bytes.push_back(2);
    testutil::appendU32(bytes, static_cast<uint32_t>(ids.size()));
    for (uint32_t id : ids) testutil::appendU32(bytes, id);
    testutil::appendPacket(bytes, packetId, body);
    boundaries.push_back(bytes.size());
    return *this;
  }
  Builder& close(uint32_t id, uint16_t code) {
    bytes.push_back(3);
    testutil::appendU32(bytes, id);
    testutil::appendU16(bytes, code);
    boundaries.push_back(bytes.size());
    return *this;
  }
  Builder& release(uint32_t id, CloseReason reason = CloseReason::Kicked) {
    bytes.push_back(5);
    testutil::appendU32(bytes, id);
    bytes.push_back(static_cast<uint8_t>(reason));
    boundaries.push_back(bytes.size());
    return *this;
  }
  Builder& destroy(uint32_t id) {
    bytes.push_back(4);
    testutil::appendU32(bytes, id);
    boundaries.push_back(bytes.size());
    return *this;
  }
};

std::string validate(const std::vector<uint8_t>& b) {
  // An exactly-sized heap copy, so a read past the end is caught by ASan.
  std::unique_ptr<uint8_t[]> copy(new uint8_t[b.size() + (b.empty() ? 1 : 0)]);
  if (!b.empty()) std::memcpy(copy.get(), b.data(), b.size());
  return validateOutboundBatch(copy.get(), b.size());
}

std::vector<uint8_t> reencode(const std::vector<uint8_t>& b) { return testutil::reencodeOutbound(b.data(), b.size()); }

Builder sample() {
  Builder b;
  b.send(0x11223344, 100, {1, 2, 3})
      .broadcast({5, 6, 7}, 216, std::vector<uint8_t>(40, 0x5a))
      .close(9, 5)
      .destroy(10)
      .send(11, 0xffff, {})
      .broadcast({12}, 101, {0})
      .release(13);
  return b;
}

}  // namespace

TEST(outbound_batch, parses_every_record_kind) {
  Builder b = sample();
  CHECK_EQ(validate(b.bytes), std::string());
  std::vector<OutboundRecord> records;
  iocpnet::forEachOutboundRecord(b.bytes.data(), b.bytes.size(),
                                 [&](const OutboundRecord& r) { records.push_back(r); });
  REQUIRE_EQ(records.size(), size_t{7});
  CHECK_EQ(records[0].op, OutboundOp::Send);
  CHECK_EQ(records[0].count, 1u);
  CHECK_EQ(records[0].id(0), 0x11223344u);
  CHECK_EQ(records[0].packetLength, 8);
  CHECK_EQ(iocpnet::readU16(records[0].packet + 2), 100);
  CHECK_EQ(records[1].op, OutboundOp::Broadcast);
  CHECK_EQ(records[1].count, 3u);
  CHECK_EQ(records[1].id(2), 7u);
  CHECK_EQ(records[1].packetLength, 45);
  CHECK_EQ(records[2].op, OutboundOp::Close);
  CHECK_EQ(records[2].id(0), 9u);
  CHECK_EQ(records[2].notifyCode, 5);
  CHECK_EQ(records[3].op, OutboundOp::Destroy);
  CHECK_EQ(records[3].id(0), 10u);
  CHECK_EQ(records[4].packetLength, 5);
  CHECK_EQ(records[5].id(0), 12u);
  CHECK_EQ(records[6].op, OutboundOp::Release);
  CHECK_EQ(records[6].id(0), 13u);
  CHECK_EQ(records[6].reason, static_cast<uint8_t>(CloseReason::Kicked));
  CHECK(reencode(b.bytes) == b.bytes);
}

TEST(outbound_batch, empty_batch_is_valid) {
  CHECK_EQ(validate({}), std::string());
  int records = 0;
  iocpnet::forEachOutboundRecord(nullptr, 0, [&](const OutboundRecord&) { ++records; });
  CHECK_EQ(records, 0);
}

TEST(outbound_batch, truncation_at_every_byte) {
  // Every prefix that ends inside a record is refused; every prefix that
  // ends on a record boundary is a valid, shorter batch.
  Builder b = sample();
  size_t boundary = 0;
  for (size_t len = 0; len <= b.bytes.size(); ++len) {
    std::vector<uint8_t> prefix(b.bytes.begin(), b.bytes.begin() + static_cast<std::ptrdiff_t>(len));
    bool atBoundary = boundary < b.boundaries.size() && b.boundaries[boundary] == len;
    if (atBoundary) ++boundary;
    std::string error = validate(prefix);
    if (atBoundary) {
      CHECK_EQ(error, std::string());
      CHECK(reencode(prefix) == prefix);
    } else if (!CHECK(!error.empty())) {
      std::fprintf(stderr, "  prefix of %zu bytes accepted\n", len);
    }
  }
  CHECK_EQ(boundary, b.boundaries.size());
}

TEST(outbound_batch, malformed_fields_are_named) {
  auto errorOf = [](std::vector<uint8_t> bytes) { return validate(bytes); };
  // Unknown kinds.
  for (uint8_t kind : {uint8_t{0}, uint8_t{0x7f}, uint8_t{0xff}}) {
    std::string e = errorOf({kind, 0, 0, 0, 0});
    CHECK(e.find("unknown record kind") != std::string::npos);
  }
  // Broadcast to nobody, and counts larger than the batch (including ones
  // whose byte size would overflow 32 bits).
  Builder zero;
  zero.broadcast({}, 100, {});
  CHECK_EQ(validate(zero.bytes), std::string("broadcast to no connection"));
  for (uint32_t count : {2u, 1000u, 0x40000000u, 0x40000001u, 0xffffffffu}) {
    Builder b;
    b.broadcast({1}, 100, {});
    iocpnet::writeU32(&b.bytes[1], count);
    CHECK(!validate(b.bytes).empty());
  }
  // Packet length below the header, and above what the batch holds.
  for (uint16_t length : {uint16_t{0}, uint16_t{4}}) {
    Builder b;
    b.send(1, 100, {});
    iocpnet::writeU16(&b.bytes[5], length);
    CHECK_EQ(validate(b.bytes), std::string("packet length below the header size"));
  }
  for (uint16_t length : {uint16_t{9}, uint16_t{0xffff}}) {
    Builder b;
    b.send(1, 100, {1, 2, 3});
    iocpnet::writeU16(&b.bytes[5], length);
    CHECK_EQ(validate(b.bytes), std::string("packet exceeds the batch"));
  }
  // A shorter packet length makes the rest of the body a record of its own,
  // which is then checked like any other.
  {
    Builder b;
    b.send(1, 100, {7, 7});
    iocpnet::writeU16(&b.bytes[5], 6);
    CHECK(validate(b.bytes).find("unknown record kind 7") != std::string::npos);
  }
  // Non-zero type.
  Builder typed;
  typed.send(1, 100, {});
  typed.bytes[9] = 1;
  CHECK_EQ(validate(typed.bytes), std::string("packet type must be 0"));
  // A malformed record after valid ones refuses the whole batch.
  Builder tail = sample();
  tail.bytes.push_back(3);
  CHECK_EQ(validate(tail.bytes), std::string("truncated close record"));
  // A release names a close reason the contract knows.
  Builder release;
  release.release(1);
  release.bytes.back() = static_cast<uint8_t>(iocpnet::kCloseReasonCount);
  CHECK_EQ(validate(release.bytes),
           std::string("release with unknown close reason ") + std::to_string(iocpnet::kCloseReasonCount));
  release.bytes.pop_back();
  CHECK_EQ(validate(release.bytes), std::string("truncated release record"));
}

TEST(outbound_batch, random_corruption_never_reads_out_of_bounds) {
  // Whatever the bytes, the validator answers, and whatever it accepts the
  // parser walks to exactly the end and re-encodes to the same bytes.
  std::mt19937 rng(4242);
  Builder base = sample();
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::vector<uint8_t> b = base.bytes;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) {
      size_t at = rng() % b.size();
      switch (rng() % 3) {
        case 0:
          b[at] = static_cast<uint8_t>(rng());
          break;
        case 1:
          b[at] = static_cast<uint8_t>(rng() % 6);
          break;
        default:
          b.resize(at);
          break;
      }
      if (b.empty()) break;
    }
    if (validate(b).empty()) {
      ++accepted;
      CHECK(reencode(b) == b);
    }
  }
  // Some corruptions stay valid (an id or body byte changed).
  CHECK(accepted > 0);
}
