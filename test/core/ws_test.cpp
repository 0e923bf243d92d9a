// SHA-1, base64, the upgrade handshake and the frame parser (native/core/ws_*).
#include <string>
#include <vector>

#include "../../native/core/ws_crypto.h"
#include "../../native/core/ws_frame.h"
#include "../../native/core/ws_handshake.h"
#include "harness.h"
#include "ws_codec.h"

using namespace iocpnet;

namespace {

std::string hex(const Sha1Digest& d) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (uint8_t b : d) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::vector<uint8_t> bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// Records what the frame parser delivers.
struct Recorder {
  std::vector<uint8_t> binary;
  std::vector<std::vector<uint8_t>> pings;
  int closes = 0;
  bool closeHasCode = false;
  uint16_t closeCode = 0;
  size_t refuseAfter = SIZE_MAX;  // onBinary refuses once this many bytes arrived
  bool onBinary(const uint8_t* p, size_t n) {
    binary.insert(binary.end(), p, p + n);
    return binary.size() < refuseAfter;
  }
  void onPing(const uint8_t* p, size_t n) { pings.emplace_back(p, p + n); }
  void onClose(bool hasCode, uint16_t code) {
    ++closes;
    closeHasCode = hasCode;
    closeCode = code;
  }
};

// Feeds stream in pieces of at most step bytes; returns the first result other than Ok (or Ok).
WsFeed feedInSteps(WsFrameParser& parser, const std::vector<uint8_t>& stream, size_t step, Recorder& rec,
                   size_t scratchSize = 64) {
  std::vector<uint8_t> scratch(scratchSize);
  for (size_t pos = 0; pos < stream.size(); pos += step) {
    size_t n = std::min(step, stream.size() - pos);
    WsFeed f = parser.feed(stream.data() + pos, n, scratch.data(), scratch.size(), rec);
    if (f != WsFeed::Ok) return f;
  }
  return WsFeed::Ok;
}

std::vector<std::string> none;

}  // namespace

TEST(ws_crypto, sha1_fips_vectors) {
  CHECK(hex(sha1("abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(hex(sha1("")) == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  CHECK(hex(sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  CHECK(hex(sha1(std::string(1000000, 'a'))) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  // Lengths around the block and padding edges (55, 56, 63, 64, 65 bytes), against known digests.
  CHECK(hex(sha1(std::string(55, 'a'))) == "c1c8bbdc22796e28c0e15163d20899b65621d65a");
  CHECK(hex(sha1(std::string(56, 'a'))) == "c2db330f6083854c99d4b5bfb6e8f29f201be699");
  CHECK(hex(sha1(std::string(64, 'a'))) == "0098ba824b5c16427bd7a1122a5a442a25ec644d");
}

TEST(ws_crypto, base64_round_trips_and_refuses_non_canonical_text) {
  const std::string samples[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const std::string encoded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (size_t i = 0; i < 7; ++i) {
    CHECK(base64Encode(reinterpret_cast<const uint8_t*>(samples[i].data()), samples[i].size()) == encoded[i]);
    uint8_t out[16];
    long n = base64Decode(encoded[i], out, sizeof out);
    REQUIRE_EQ(n, static_cast<long>(samples[i].size()));
    CHECK(std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n)) == samples[i]);
  }
  uint8_t out[16];
  CHECK_EQ(base64Decode("Zg=", out, sizeof out), -1L);       // not a multiple of 4
  CHECK_EQ(base64Decode("Zh==", out, sizeof out), -1L);      // padding hides set bits
  CHECK_EQ(base64Decode("Z===", out, sizeof out), -1L);      // too much padding
  CHECK_EQ(base64Decode("Zg==Zg==", out, sizeof out), -1L);  // data after padding
  CHECK_EQ(base64Decode("Zm9v!A==", out, sizeof out), -1L);  // not the alphabet
  CHECK_EQ(base64Decode("Zm9vYmFy", out, 5), -1L);           // does not fit
}

TEST(ws_crypto, accept_key_of_the_rfc_example) {
  CHECK(webSocketAccept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(ws_handshake, the_rfc_request_is_upgraded) {
  UpgradeOutcome o = evaluateUpgradeRequest(wstest::upgradeRequest("Origin: http://example.com\r\n"), none);
  REQUIRE(o.kind == UpgradeOutcome::Kind::Upgrade);
  CHECK_EQ(o.status, uint16_t{101});
  CHECK(o.response.find("HTTP/1.1 101 Switching Protocols\r\n") == 0);
  CHECK(o.response.find("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != std::string::npos);
  CHECK(o.response.size() >= 4 && o.response.substr(o.response.size() - 4) == "\r\n\r\n");
}

TEST(ws_handshake, header_names_and_tokens_are_case_insensitive) {
  std::string r =
      "GET / HTTP/1.1\r\nhOsT: x\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n"
      "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-VERSION:13\r\n\r\n";
  CHECK(evaluateUpgradeRequest(r, none).kind == UpgradeOutcome::Kind::Upgrade);
}

TEST(ws_handshake, refusals_carry_their_status) {
  auto status = [](const std::string& request, const std::vector<std::string>& origins = none) {
    UpgradeOutcome o = evaluateUpgradeRequest(request, origins);
    return o.kind == UpgradeOutcome::Kind::Refuse ? o.status : uint16_t{0};
  };
  // A plain HTTP GET: not an upgrade.
  CHECK_EQ(status("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), uint16_t{426});
  CHECK_EQ(status("GET / HTTP/1.0\r\nHost: x\r\n\r\n"), uint16_t{426});
  CHECK_EQ(status("GET / FTP/1.1\r\nHost: x\r\n\r\n"), uint16_t{400});
  CHECK_EQ(status("GET  HTTP/1.1\r\nHost: x\r\n\r\n"), uint16_t{400});
  // Missing pieces.
  std::string good = wstest::upgradeRequest();
  auto without = [&](const std::string& header) {
    std::string r = good;
    size_t at = r.find(header);
    size_t end = r.find("\r\n", at);
    return r.erase(at, end + 2 - at);
  };
  CHECK_EQ(status(without("Host:")), uint16_t{400});
  CHECK_EQ(status(without("Connection:")), uint16_t{400});
  CHECK_EQ(status(without("Upgrade:")), uint16_t{426});
  CHECK_EQ(status(without("Sec-WebSocket-Version:")), uint16_t{426});
  CHECK_EQ(status(without("Sec-WebSocket-Key:")), uint16_t{400});
  // Bad values.
  std::string v8 = good;
  v8.replace(v8.find("Version: 13"), 11, "Version: 8");
  UpgradeOutcome o = evaluateUpgradeRequest(v8, none);
  CHECK_EQ(o.status, uint16_t{426});
  CHECK(o.response.find("Sec-WebSocket-Version: 13\r\n") != std::string::npos);
  CHECK_EQ(status(wstest::upgradeRequest("", "dGhlIHNhbXBsZSBub25jZQ")), uint16_t{400});    // not 24 characters
  CHECK_EQ(status(wstest::upgradeRequest("", "dGhlIHNhbXBsZSBub25jZTE=")), uint16_t{400});  // 17 bytes
  CHECK_EQ(status(wstest::upgradeRequest("", "dGhlIHNhbXBsZSBub25j!Q==")), uint16_t{400});
  CHECK_EQ(status(wstest::upgradeRequest("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")), uint16_t{400});
  // Malformed lines.
  CHECK_EQ(status(wstest::upgradeRequest("Bad Header: x\r\n")), uint16_t{400});
  CHECK_EQ(status(wstest::upgradeRequest(" folded\r\n")), uint16_t{400});
  CHECK_EQ(status(wstest::upgradeRequest("X: a\rb\r\n")), uint16_t{400});
  CHECK_EQ(status(wstest::upgradeRequest("X: a\x01"
                                         "b\r\n")),
           uint16_t{400});
  CHECK_EQ(status(wstest::upgradeRequest("NoColon\r\n")), uint16_t{400});
}

TEST(ws_handshake, origins_are_matched_exactly_when_listed) {
  std::vector<std::string> allowed = {"https://game.example.com", "http://localhost:8080"};
  auto kind = [&](const std::string& extra) { return evaluateUpgradeRequest(wstest::upgradeRequest(extra), allowed); };
  CHECK(kind("Origin: https://game.example.com\r\n").kind == UpgradeOutcome::Kind::Upgrade);
  CHECK(kind("Origin: http://localhost:8080\r\n").kind == UpgradeOutcome::Kind::Upgrade);
  CHECK(kind("").kind == UpgradeOutcome::Kind::Upgrade);  // not a browser
  CHECK_EQ(kind("Origin: https://evil.example.com\r\n").status, uint16_t{403});
  CHECK_EQ(kind("Origin: https://GAME.example.com\r\n").status, uint16_t{403});
  CHECK_EQ(kind("Origin: https://game.example.com\r\nOrigin: https://game.example.com\r\n").status, uint16_t{400});
  // No list: any origin.
  CHECK(evaluateUpgradeRequest(wstest::upgradeRequest("Origin: https://evil.example.com\r\n"), none).kind ==
        UpgradeOutcome::Kind::Upgrade);
}

TEST(ws_handshake, reader_splits_and_bounds) {
  std::string request = wstest::upgradeRequest();
  std::string frames = "\x82\x80\x01\x02\x03\x04";
  std::string stream = request + frames;
  // At every split point the request ends in the same place.
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    UpgradeReader reader(4096);
    size_t consumed = 0;
    UpgradeOutcome a = reader.feed(reinterpret_cast<const uint8_t*>(stream.data()), cut, none, &consumed);
    size_t total = consumed;
    if (a.kind == UpgradeOutcome::Kind::NeedMore) {
      CHECK_EQ(consumed, cut);
      a = reader.feed(reinterpret_cast<const uint8_t*>(stream.data()) + cut, stream.size() - cut, none, &consumed);
      total += consumed;
    }
    CHECK(a.kind == UpgradeOutcome::Kind::Upgrade);
    CHECK_EQ(total, request.size());
  }
  // A request that never ends is refused at the bound, having kept no more than it.
  UpgradeReader reader(256);
  std::string endless = "GET / HTTP/1.1\r\n";
  size_t consumed = 0;
  UpgradeOutcome o = reader.feed(reinterpret_cast<const uint8_t*>(endless.data()), endless.size(), none, &consumed);
  std::string header = "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
  int rounds = 0;
  while (o.kind == UpgradeOutcome::Kind::NeedMore && rounds++ < 100) {
    o = reader.feed(reinterpret_cast<const uint8_t*>(header.data()), header.size(), none, &consumed);
  }
  CHECK_EQ(o.status, uint16_t{431});
  CHECK_EQ(reader.bufferedBytes(), size_t{256});
  CHECK(o.response.find("HTTP/1.1 431 ") == 0);
}

TEST(ws_frame, binary_frames_unmask_at_every_split) {
  std::vector<uint8_t> payload(300);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 7 + 3);
  std::vector<uint8_t> stream = wstest::clientFrame(ws::kBinary, {payload.begin(), payload.begin() + 10});
  // A fragmented message with a PING between its fragments, 16-bit and 7-bit lengths.
  std::vector<uint8_t> f1 = wstest::clientFrame(ws::kBinary, {payload.begin() + 10, payload.begin() + 200}, false);
  std::vector<uint8_t> ping = wstest::clientFrame(ws::kPing, bytes("hi"), true, true, 0x01020304);
  std::vector<uint8_t> f2 =
      wstest::clientFrame(ws::kContinuation, {payload.begin() + 200, payload.end()}, true, true, 9);
  stream.insert(stream.end(), f1.begin(), f1.end());
  stream.insert(stream.end(), ping.begin(), ping.end());
  stream.insert(stream.end(), f2.begin(), f2.end());
  std::vector<uint8_t> pong = wstest::clientFrame(ws::kPong, bytes("x"));
  stream.insert(stream.end(), pong.begin(), pong.end());
  for (size_t step = 1; step <= stream.size(); step += (step < 20 ? 1 : 37)) {
    WsFrameParser parser(8192);
    Recorder rec;
    CHECK(feedInSteps(parser, stream, step, rec) == WsFeed::Ok);
    CHECK(rec.binary == payload);
    REQUIRE_EQ(rec.pings.size(), size_t{1});
    CHECK(rec.pings[0] == bytes("hi"));
    CHECK(!parser.inMessage());
    CHECK(!parser.midFrame());
  }
}

TEST(ws_frame, sixty_four_bit_lengths_and_the_message_bound) {
  std::vector<uint8_t> payload(70000, 0xAB);
  std::vector<uint8_t> frame = wstest::clientFrame(ws::kBinary, payload);
  CHECK_EQ(frame[1] & 0x7F, 127);
  {
    WsFrameParser parser(70000);
    Recorder rec;
    CHECK(feedInSteps(parser, frame, 4096, rec, 1000) == WsFeed::Ok);
    CHECK(rec.binary == payload);
  }
  {
    WsFrameParser parser(69999);
    Recorder rec;
    CHECK(feedInSteps(parser, frame, frame.size(), rec) == WsFeed::TooBig);
    CHECK(rec.binary.empty());  // refused at the header, before any payload
  }
  // The bound holds for the sum of the fragments.
  std::vector<uint8_t> a = wstest::clientFrame(ws::kBinary, std::vector<uint8_t>(60), false);
  std::vector<uint8_t> b = wstest::clientFrame(ws::kContinuation, std::vector<uint8_t>(41), true);
  a.insert(a.end(), b.begin(), b.end());
  WsFrameParser parser(100);
  Recorder rec;
  CHECK(feedInSteps(parser, a, a.size(), rec) == WsFeed::TooBig);
  CHECK_EQ(rec.binary.size(), size_t{60});
  // A length with its top bit set is malformed, whatever the bound.
  std::vector<uint8_t> huge = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
  WsFrameParser p2(UINT64_MAX);
  Recorder r2;
  CHECK(feedInSteps(p2, huge, huge.size(), r2) == WsFeed::ProtocolError);
}

TEST(ws_frame, hostile_frames_are_refused) {
  auto result = [](const std::vector<uint8_t>& stream) {
    WsFrameParser parser(8192);
    Recorder rec;
    return feedInSteps(parser, stream, stream.size(), rec);
  };
  auto join = [](std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  CHECK(result(wstest::clientFrame(ws::kText, bytes("hello"))) == WsFeed::TextFrame);
  CHECK(result(wstest::clientFrame(ws::kBinary, bytes("x"), true, false)) == WsFeed::ProtocolError);  // unmasked
  CHECK(result(wstest::clientFrame(ws::kBinary, bytes("x"), true, true, 1, 0x40)) == WsFeed::ProtocolError);  // RSV1
  CHECK(result(wstest::clientFrame(0x3, bytes("x"))) == WsFeed::ProtocolError);               // reserved data opcode
  CHECK(result(wstest::clientFrame(0xB, bytes("x"))) == WsFeed::ProtocolError);               // reserved control opcode
  CHECK(result(wstest::clientFrame(ws::kPing, bytes("x"), false)) == WsFeed::ProtocolError);  // fragmented control
  CHECK(result(wstest::clientFrame(ws::kPing, std::vector<uint8_t>(126))) == WsFeed::ProtocolError);
  CHECK(result(wstest::clientFrame(ws::kContinuation, bytes("x"))) == WsFeed::ProtocolError);  // nothing to continue
  CHECK(
      result(join(wstest::clientFrame(ws::kBinary, bytes("x"), false), wstest::clientFrame(ws::kBinary, bytes("y")))) ==
      WsFeed::ProtocolError);                                                             // a new message inside one
  CHECK(result(wstest::clientFrame(ws::kClose, {0x03})) == WsFeed::ProtocolError);        // one-byte close payload
  CHECK(result(wstest::clientFrame(ws::kClose, {0x03, 0xED})) == WsFeed::ProtocolError);  // 1005 may not be sent
  CHECK(result(wstest::clientFrame(ws::kClose, {0x00, 0x10})) == WsFeed::ProtocolError);  // below 1000
}

TEST(ws_frame, close_frames_end_the_stream) {
  std::vector<uint8_t> stream = wstest::clientFrame(ws::kBinary, bytes("ab"));
  std::vector<uint8_t> close = wstest::clientFrame(ws::kClose, {0x03, 0xE8, 'b', 'y', 'e'});
  stream.insert(stream.end(), close.begin(), close.end());
  std::vector<uint8_t> after = wstest::clientFrame(ws::kBinary, bytes("ignored"));
  stream.insert(stream.end(), after.begin(), after.end());
  for (size_t step = 1; step <= stream.size(); ++step) {
    WsFrameParser parser(8192);
    Recorder rec;
    CHECK(feedInSteps(parser, stream, step, rec) == WsFeed::Closed);
    CHECK(rec.binary == bytes("ab"));
    CHECK_EQ(rec.closes, 1);
    CHECK(rec.closeHasCode);
    CHECK_EQ(rec.closeCode, uint16_t{1000});
  }
  WsFrameParser parser(8192);
  Recorder rec;
  std::vector<uint8_t> bare = wstest::clientFrame(ws::kClose, {});
  CHECK(feedInSteps(parser, bare, bare.size(), rec) == WsFeed::Closed);
  CHECK_EQ(rec.closes, 1);
  CHECK(!rec.closeHasCode);
}

TEST(ws_frame, a_refusing_sink_stops_the_parser) {
  std::vector<uint8_t> stream = wstest::clientFrame(ws::kBinary, std::vector<uint8_t>(100, 1));
  WsFrameParser parser(8192);
  Recorder rec;
  rec.refuseAfter = 10;
  CHECK(feedInSteps(parser, stream, stream.size(), rec, 10) == WsFeed::Stopped);
  CHECK_EQ(rec.binary.size(), size_t{10});
}

TEST(ws_frame, server_headers_use_the_shortest_length) {
  uint8_t h[ws::kMaxServerHeader];
  CHECK_EQ(writeWsHeader(h, ws::kBinary, 125), size_t{2});
  CHECK_EQ(h[0], 0x82);
  CHECK_EQ(h[1], 125);
  CHECK_EQ(writeWsHeader(h, ws::kBinary, 126), size_t{4});
  CHECK_EQ(h[1], 126);
  CHECK_EQ(h[2], 0);
  CHECK_EQ(h[3], 126);
  CHECK_EQ(writeWsHeader(h, ws::kClose, 65536), size_t{10});
  CHECK_EQ(h[0], 0x88);
  CHECK_EQ(h[1], 127);
  CHECK_EQ(h[7], 1);
  CHECK_EQ(wsHeaderSize(65535), size_t{4});
}
