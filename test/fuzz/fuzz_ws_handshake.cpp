// Fuzz target: the WebSocket upgrade reader fed arbitrary bytes in an
// arbitrary chunking must judge the request as it does fed in one piece,
// never keep more than its bound, never claim more bytes than it was given,
// and answer a 101 only with the accept key of the request's own key.
//
// Input: byte 0 picks the bound and whether an origin list applies, bytes
// 1..2 seed the piece sizes, the rest is what the client sent.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "../../native/core/ws_crypto.h"
#include "../../native/core/ws_handshake.h"

namespace {

constexpr size_t kBounds[] = {4, 16, 64, 256, 1024, 4096};

struct Judgement {
  iocpnet::UpgradeOutcome outcome;
  size_t consumed = 0;
};

template <typename Pieces>
Judgement judge(const std::vector<uint8_t>& stream, size_t bound, const std::vector<std::string>& origins,
                Pieces&& pieces) {
  iocpnet::UpgradeReader reader(bound);
  Judgement j;
  size_t pos = 0;
  while (pos < stream.size()) {
    size_t n = pieces(stream.size() - pos);
    size_t consumed = 0;
    j.outcome = reader.feed(stream.data() + pos, n, origins, &consumed);
    if (consumed > n) std::abort();
    if (reader.bufferedBytes() > bound) std::abort();
    j.consumed += consumed;
    pos += n;
    if (j.outcome.kind != iocpnet::UpgradeOutcome::Kind::NeedMore) break;
    if (consumed != n) std::abort();  // still reading: every byte belongs to the request
  }
  return j;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  size_t bound = kBounds[(data[0] & 0x7F) % (sizeof kBounds / sizeof kBounds[0])];
  std::vector<std::string> origins;
  if (data[0] & 0x80) origins = {"http://a.example", "https://b.example:8443"};
  uint32_t seed = static_cast<uint32_t>(data[1] | (data[2] << 8)) | 1u;
  std::vector<uint8_t> stream(data + 3, data + size);

  Judgement whole = judge(stream, bound, origins, [](size_t remaining) { return remaining; });
  Judgement split = judge(stream, bound, origins, [&seed](size_t remaining) {
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    size_t n = (seed & 0x100) ? 1 + (seed >> 9) % 4 : 1 + (seed >> 9) % 512;
    return n < remaining ? n : remaining;
  });
  if (whole.outcome.kind != split.outcome.kind || whole.outcome.status != split.outcome.status) std::abort();
  if (whole.outcome.response != split.outcome.response) std::abort();
  if (whole.outcome.kind != iocpnet::UpgradeOutcome::Kind::NeedMore && whole.consumed != split.consumed) std::abort();
  if (whole.outcome.kind == iocpnet::UpgradeOutcome::Kind::Upgrade) {
    // The request as consumed judged on its own gives the same answer.
    std::string request(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(whole.consumed));
    iocpnet::UpgradeOutcome again = iocpnet::evaluateUpgradeRequest(request, origins);
    if (again.response != whole.outcome.response) std::abort();
    if (whole.outcome.response.find("HTTP/1.1 101 ") != 0) std::abort();
    if (request.size() > bound) std::abort();
  }
  return 0;
}
