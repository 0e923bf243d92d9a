// The server half of the WebSocket opening handshake (RFC 6455 section 4.2):
// reads an HTTP/1.1 upgrade request within a byte bound and answers it with
// 101 Switching Protocols, or with a short HTTP error. Every length and
// character of the request is checked here; nothing is allocated past the
// bound. IO thread only (one reader per connection in the handshake).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace iocpnet {

// How the engine recognises a WebSocket client: its first bytes.
constexpr std::string_view kUpgradePrefix = "GET ";

struct UpgradeOutcome {
  enum class Kind : uint8_t {
    NeedMore,  // the request has not ended yet
    Upgrade,   // response is the 101; the connection speaks WebSocket after it
    Refuse     // response is an HTTP error; the connection closes after it
  };
  Kind kind = Kind::NeedMore;
  uint16_t status = 0;   // 101, or the HTTP error status
  std::string response;  // the bytes to send (Upgrade and Refuse)
};

// Judges one whole request (request line, headers and the empty line that
// ends them, CRLF throughout). origins: empty allows any Origin; otherwise an
// Origin header must equal one of them.
UpgradeOutcome evaluateUpgradeRequest(std::string_view request, const std::vector<std::string>& origins);

// The response for a refusal with this status (400, 403, 408, 426, 431, 503).
std::string httpErrorResponse(uint16_t status);

// Collects a request across reads, up to maxBytes.
class UpgradeReader {
 public:
  explicit UpgradeReader(size_t maxBytes) : maxBytes_(maxBytes) {}
  // Feeds bytes; *consumed says how many belong to the request (the rest,
  // after a 101, are WebSocket frames). NeedMore until the request ends;
  // a request longer than maxBytes is refused with 431.
  UpgradeOutcome feed(const uint8_t* data, size_t len, const std::vector<std::string>& origins, size_t* consumed);
  size_t bufferedBytes() const noexcept { return buffer_.size(); }
  // Gives the buffer back once the handshake is over.
  void release() { std::string().swap(buffer_); }

 private:
  size_t maxBytes_;
  std::string buffer_;
};

}  // namespace iocpnet
