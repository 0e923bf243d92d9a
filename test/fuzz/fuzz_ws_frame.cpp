// Fuzz target: the WebSocket frame parser fed arbitrary client bytes in an
// arbitrary chunking, with scratch buffers of varying size, must deliver the
// same binary stream, PINGs and CLOSE, and end the same way, as fed in one
// piece; it never delivers more payload than it was given, nor a control
// payload over 125 bytes.
//
// Input: byte 0 picks the message bound, bytes 1..2 seed the piece sizes,
// the rest is the client's stream.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "../../native/core/ws_frame.h"

namespace {

constexpr uint64_t kBounds[] = {0, 1, 5, 125, 126, 8192, 65535, 1u << 20};

struct Recorder {
  std::vector<uint8_t> binary;
  std::vector<std::vector<uint8_t>> pings;
  int closes = 0;
  bool hasCode = false;
  uint16_t code = 0;
  bool onBinary(const uint8_t* p, size_t n) {
    binary.insert(binary.end(), p, p + n);
    return true;
  }
  void onPing(const uint8_t* p, size_t n) {
    if (n > iocpnet::ws::kMaxControlPayload) std::abort();
    pings.emplace_back(p, p + n);
  }
  void onClose(bool c, uint16_t v) {
    ++closes;
    hasCode = c;
    code = v;
    if (c && !iocpnet::validPeerCloseCode(v)) std::abort();
  }
};

template <typename Pieces>
iocpnet::WsFeed run(const std::vector<uint8_t>& stream, uint64_t bound, size_t scratchSize, Recorder& rec,
                    Pieces&& pieces) {
  iocpnet::WsFrameParser parser(bound);
  std::vector<uint8_t> scratch(scratchSize);
  size_t pos = 0;
  iocpnet::WsFeed last = iocpnet::WsFeed::Ok;
  while (pos < stream.size()) {
    size_t n = pieces(stream.size() - pos);
    last = parser.feed(stream.data() + pos, n, scratch.data(), scratch.size(), rec);
    pos += n;
    if (last != iocpnet::WsFeed::Ok) break;
  }
  return last;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  uint64_t bound = kBounds[data[0] % (sizeof kBounds / sizeof kBounds[0])];
  uint32_t seed = static_cast<uint32_t>(data[1] | (data[2] << 8)) | 1u;
  std::vector<uint8_t> stream(data + 3, data + size);

  Recorder whole;
  iocpnet::WsFeed a = run(stream, bound, 65536, whole, [](size_t remaining) { return remaining; });
  Recorder split;
  size_t scratchSize = 1 + (seed >> 3) % 97;
  iocpnet::WsFeed b = run(stream, bound, scratchSize, split, [&seed](size_t remaining) {
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    size_t n = (seed & 0x100) ? 1 + (seed >> 9) % 4 : 1 + (seed >> 9) % 300;
    return n < remaining ? n : remaining;
  });
  if (a != b) std::abort();
  if (whole.binary != split.binary || whole.pings != split.pings) std::abort();
  if (whole.closes != split.closes || whole.hasCode != split.hasCode || whole.code != split.code) std::abort();
  if (whole.closes > 1) std::abort();
  if (whole.binary.size() > stream.size()) std::abort();
  return 0;
}
