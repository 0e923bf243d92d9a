// PacketAssembler against the reference parser: every split point, byte by
// byte, random chunkings, and each framing error at every position.
#include <algorithm>
#include <random>

#include "harness.h"
#include "reference_framing.h"
#include "test_util.h"

using iocpnet::FrameError;
using iocpnet::PacketAssembler;
using iocpnet::PacketView;

namespace {

bool acceptAll(uint16_t) { return true; }

// Out of line: with a piece size GCC 12 can see to be 1, its -Warray-bounds
// loses track of pos <= len inside feed() and warns about reads that cannot
// happen.
[[gnu::noinline]] size_t oneByte(size_t) { return 1; }

void expectSame(const reference::Result& want, const reference::Result& got) {
  CHECK_EQ(got.error, want.error);
  CHECK_EQ(got.packets.size(), want.packets.size());
  CHECK(got.packets == want.packets);
  if (want.error == FrameError::None) CHECK_EQ(got.leftover, want.leftover);
}

// Checks the assembler against want with stream fed in two pieces, cut at
// every point.
void expectSameAtEveryCut(const reference::Result& want, const std::vector<uint8_t>& stream, size_t maxPacket) {
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    bool first = true;
    auto pieces = [&](size_t) {
      size_t n = first ? cut : stream.size();
      first = false;
      return n;
    };
    expectSame(want, reference::assemble(stream, maxPacket, pieces, acceptAll));
  }
}

// A stream of count packets with random ids and bodies, sizes biased towards
// the edges (empty body, one byte, the maximum).
std::vector<uint8_t> randomStream(std::mt19937& rng, int count, size_t maxPacketSize) {
  std::vector<uint8_t> out;
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < count; ++i) {
    size_t maxBody = maxPacketSize - iocpnet::kHeaderSize;
    size_t body;
    switch (rng() % 4) {
      case 0:
        body = 0;
        break;
      case 1:
        body = std::min<size_t>(maxBody, 1 + rng() % 4);
        break;
      case 2:
        body = maxBody;
        break;
      default:
        body = rng() % (maxBody + 1);
        break;
    }
    std::vector<uint8_t> bytes(body);
    for (auto& b : bytes) b = static_cast<uint8_t>(byte(rng));
    testutil::appendPacket(out, static_cast<uint16_t>(rng()), bytes);
  }
  return out;
}

}  // namespace

TEST(packet_assembler, whole_packets_in_one_read) {
  std::vector<uint8_t> stream;
  testutil::appendPacket(stream, 100, {});
  testutil::appendPacket(stream, 101, {1, 2, 3});
  testutil::appendPacket(stream, 0xffff, std::vector<uint8_t>(300, 7));
  PacketAssembler a(8192);
  std::vector<reference::Packet> got;
  FrameError e = a.feed(stream.data(), stream.size(), [&](const PacketView& v) {
    got.push_back(reference::Packet{v.id, v.type, std::vector<uint8_t>(v.body, v.body + v.bodyLength)});
    return true;
  });
  CHECK_EQ(e, FrameError::None);
  REQUIRE_EQ(got.size(), size_t{3});
  CHECK_EQ(got[0].id, 100);
  CHECK(got[0].body.empty());
  CHECK_EQ(got[1].id, 101);
  CHECK(got[1].body == std::vector<uint8_t>({1, 2, 3}));
  CHECK_EQ(got[2].id, 0xffff);
  CHECK_EQ(got[2].body.size(), size_t{300});
  CHECK_EQ(a.partialBytes(), size_t{0});
}

TEST(packet_assembler, split_stream_at_every_point) {
  std::mt19937 rng(12345);
  for (size_t maxPacket : {size_t{5}, size_t{6}, size_t{40}, size_t{300}}) {
    std::vector<uint8_t> stream = randomStream(rng, 12, maxPacket);
    reference::Result want = reference::parse(stream, maxPacket, acceptAll);
    REQUIRE_EQ(want.error, FrameError::None);
    REQUIRE_EQ(want.packets.size(), size_t{12});
    // Two pieces, at every split point.
    expectSameAtEveryCut(want, stream, maxPacket);
    // Three pieces, at every pair of split points of a shorter stream.
    std::vector<uint8_t> shortStream(
        stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(stream.size(), 120)));
    reference::Result shortWant = reference::parse(shortStream, maxPacket, acceptAll);
    for (size_t a = 1; a < shortStream.size(); ++a) {
      for (size_t b = a + 1; b < shortStream.size(); ++b) {
        int call = 0;
        auto pieces = [&](size_t) {
          size_t n = call == 0 ? a : call == 1 ? b - a : shortStream.size();
          ++call;
          return n;
        };
        expectSame(shortWant, reference::assemble(shortStream, maxPacket, pieces, acceptAll));
      }
    }
    // Byte by byte.
    expectSame(want, reference::assemble(stream, maxPacket, oneByte, acceptAll));
  }
}

TEST(packet_assembler, random_chunkings_of_random_streams) {
  std::mt19937 rng(777);
  for (int round = 0; round < 300; ++round) {
    size_t maxPacket = 5 + rng() % 600;
    std::vector<uint8_t> stream = randomStream(rng, 1 + static_cast<int>(rng() % 30), maxPacket);
    // A cut-off tail: the leftover must be kept, not delivered.
    if (rng() % 2) stream.resize(stream.size() - rng() % std::min<size_t>(stream.size(), 9));
    reference::Result want = reference::parse(stream, maxPacket, acceptAll);
    size_t maxPiece = 1 + rng() % 64;
    auto pieces = [&](size_t) { return 1 + rng() % maxPiece; };
    expectSame(want, reference::assemble(stream, maxPacket, pieces, acceptAll));
  }
}

TEST(packet_assembler, bad_length_at_every_split_delivers_the_packets_before_it) {
  for (uint16_t badLength : {uint16_t{0}, uint16_t{1}, uint16_t{4}, uint16_t{101}, uint16_t{0xffff}}) {
    std::vector<uint8_t> stream;
    testutil::appendPacket(stream, 100, {1, 2});
    testutil::appendPacket(stream, 101, {});
    size_t at = stream.size();
    testutil::appendPacket(stream, 102, {9, 9, 9});
    stream[at] = static_cast<uint8_t>(badLength);
    stream[at + 1] = static_cast<uint8_t>(badLength >> 8);
    testutil::appendPacket(stream, 103, {});
    reference::Result want = reference::parse(stream, 100, acceptAll);
    CHECK_EQ(want.error, FrameError::BadLength);
    CHECK_EQ(want.packets.size(), size_t{2});
    expectSameAtEveryCut(want, stream, 100);
    expectSame(want, reference::assemble(stream, 100, oneByte, acceptAll));
  }
}

TEST(packet_assembler, length_bounds_are_inclusive) {
  for (size_t maxPacket : {size_t{5}, size_t{64}, size_t{0xffff}}) {
    std::vector<uint8_t> ok;
    testutil::appendPacket(ok, 100, std::vector<uint8_t>(maxPacket - 5, 1));
    CHECK_EQ(reference::assemble(
                 ok, maxPacket, [](size_t n) { return n; }, acceptAll)
                 .packets.size(),
             size_t{1});
    if (maxPacket < 0xffff) {
      std::vector<uint8_t> tooLong;
      testutil::appendPacket(tooLong, 100, std::vector<uint8_t>(maxPacket - 4, 1));
      CHECK_EQ(reference::assemble(
                   tooLong, maxPacket, [](size_t n) { return n; }, acceptAll)
                   .error,
               FrameError::BadLength);
      // Refused from the header alone: the body never needs to arrive.
      std::vector<uint8_t> header(tooLong.begin(), tooLong.begin() + 5);
      CHECK_EQ(reference::assemble(header, maxPacket, oneByte, acceptAll).error, FrameError::BadLength);
    }
  }
}

TEST(packet_assembler, nonzero_type_is_refused) {
  for (uint8_t type : {uint8_t{1}, uint8_t{2}, uint8_t{0x80}, uint8_t{0xff}}) {
    std::vector<uint8_t> stream;
    testutil::appendPacket(stream, 100, {5});
    size_t at = stream.size();
    testutil::appendPacket(stream, 100, {6});
    stream[at + 4] = type;
    reference::Result want = reference::parse(stream, 8192, acceptAll);
    CHECK_EQ(want.error, FrameError::BadType);
    for (size_t piece = 1; piece <= stream.size(); ++piece) {
      expectSame(want, reference::assemble(
                           stream, 8192, [&](size_t) { return piece; }, acceptAll));
    }
  }
}

TEST(packet_assembler, refused_packet_stops_the_feed) {
  std::vector<uint8_t> stream;
  for (uint16_t id = 100; id < 110; ++id) testutil::appendPacket(stream, id, {static_cast<uint8_t>(id)});
  auto refuse105 = [](uint16_t id) { return id != 105; };
  reference::Result want = reference::parse(stream, 8192, refuse105);
  CHECK_EQ(want.error, FrameError::Rejected);
  CHECK_EQ(want.packets.size(), size_t{5});
  for (size_t piece = 1; piece <= stream.size(); ++piece) {
    expectSame(want, reference::assemble(
                         stream, 8192, [&](size_t) { return piece; }, refuse105));
  }
}

TEST(packet_assembler, partial_bytes_and_reset) {
  std::vector<uint8_t> stream;
  testutil::appendPacket(stream, 100, std::vector<uint8_t>(20, 3));
  PacketAssembler a(8192);
  int packets = 0;
  auto count = [&](const PacketView&) {
    ++packets;
    return true;
  };
  // An idle connection holds nothing.
  CHECK_EQ(a.partialBytes(), size_t{0});
  CHECK_EQ(a.feed(stream.data(), 3, count), FrameError::None);
  CHECK_EQ(a.partialBytes(), size_t{3});
  CHECK_EQ(a.feed(stream.data() + 3, 10, count), FrameError::None);
  CHECK_EQ(a.partialBytes(), size_t{13});
  CHECK_EQ(packets, 0);
  a.reset();
  CHECK_EQ(a.partialBytes(), size_t{0});
  // After a reset the stream starts over at a packet boundary.
  CHECK_EQ(a.feed(stream.data(), stream.size(), count), FrameError::None);
  CHECK_EQ(packets, 1);
  CHECK_EQ(a.partialBytes(), size_t{0});
  // Empty reads change nothing.
  CHECK_EQ(a.feed(stream.data(), 0, count), FrameError::None);
  CHECK_EQ(a.partialBytes(), size_t{0});
}

TEST(packet_assembler, large_split_packet_then_small_ones) {
  // A maximum-size packet split across reads leaves the assembler ready for
  // small packets again, with nothing kept.
  std::vector<uint8_t> stream;
  testutil::appendPacket(stream, 100, std::vector<uint8_t>(0xffff - 5, 0xab));
  testutil::appendPacket(stream, 101, {1});
  testutil::appendPacket(stream, 102, {2});
  reference::Result want = reference::parse(stream, 0xffff, acceptAll);
  REQUIRE_EQ(want.packets.size(), size_t{3});
  for (size_t piece : {size_t{1000}, size_t{4096}, size_t{65536}, size_t{65530}}) {
    reference::Result got = reference::assemble(
        stream, 0xffff, [&](size_t) { return piece; }, acceptAll);
    expectSame(want, got);
    CHECK_EQ(got.leftover, size_t{0});
  }
}
