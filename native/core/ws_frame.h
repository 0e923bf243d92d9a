// WebSocket frames (RFC 6455 section 5) for a server: the parser of client
// frames, which must be masked, and the header of the server's own frames,
// which are not. Binary message payloads come out unmasked, in order, as one
// byte stream (the packet stream of a raw connection); control frames are
// handled whole. Nothing a client sends is buffered beyond a frame header and
// one control payload (125 bytes). IO thread only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "contract.h"

namespace iocpnet {

namespace ws {
constexpr uint8_t kContinuation = 0x0;
constexpr uint8_t kText = 0x1;
constexpr uint8_t kBinary = 0x2;
constexpr uint8_t kClose = 0x8;
constexpr uint8_t kPing = 0x9;
constexpr uint8_t kPong = 0xA;
constexpr size_t kMaxControlPayload = 125;
// The longest header the server writes (64-bit length, no mask).
constexpr size_t kMaxServerHeader = 10;
}  // namespace ws

// Writes a FIN frame header of opcode for a payload of len bytes; returns its size.
inline size_t writeWsHeader(uint8_t* out, uint8_t opcode, uint64_t len) {
  out[0] = static_cast<uint8_t>(0x80 | opcode);
  if (len < 126) {
    out[1] = static_cast<uint8_t>(len);
    return 2;
  }
  if (len <= 0xFFFF) {
    out[1] = 126;
    out[2] = static_cast<uint8_t>(len >> 8);
    out[3] = static_cast<uint8_t>(len);
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(len >> (56 - 8 * i));
  return 10;
}
inline size_t wsHeaderSize(uint64_t len) { return len < 126 ? 2 : len <= 0xFFFF ? 4 : 10; }

// What a feed ended with. Every value but Ok and Stopped ends the parser;
// the close code to send follows from it (wsCloseCodeFor).
enum class WsFeed : uint8_t {
  Ok,             // all bytes taken
  Stopped,        // the sink refused payload (its own error); the parser must not be fed again
  Closed,         // a CLOSE frame arrived: the rest of the bytes are ignored
  ProtocolError,  // unmasked frame, RSV bits, bad opcode, bad control frame, continuation misuse, bad close payload
  TextFrame,      // a text frame: this server speaks binary only
  TooBig          // a message longer than the bound
};

inline WsCloseCode wsCloseCodeFor(WsFeed f) {
  switch (f) {
    case WsFeed::TextFrame:
      return WsCloseCode::UnsupportedData;
    case WsFeed::TooBig:
      return WsCloseCode::MessageTooBig;
    default:
      return WsCloseCode::ProtocolError;
  }
}

// A close code a peer may send (section 7.4): 1000-1003, 1007-1014, 3000-4999.
inline bool validPeerCloseCode(uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

class WsFrameParser {
 public:
  explicit WsFrameParser(uint64_t maxMessage = 8192) : maxMessage_(maxMessage) {}
  void setMaxMessage(uint64_t max) { maxMessage_ = max; }

  // Feeds bytes. The sink has
  //   bool onBinary(const uint8_t* data, size_t len)  a piece of a binary message, unmasked
  //   void onPing(const uint8_t* data, size_t len)     a whole PING payload
  //   void onClose(bool hasCode, uint16_t code)        a CLOSE frame (its code already checked)
  // scratch (scratchSize >= 64 bytes) receives unmasked payload, in pieces.
  template <typename Sink>
  WsFeed feed(const uint8_t* data, size_t len, uint8_t* scratch, size_t scratchSize, Sink& sink);

  bool inMessage() const noexcept { return inMessage_; }
  // Bytes of a frame started but not complete (header, control payload, or data payload left).
  bool midFrame() const noexcept { return headerLen_ > 0 || remaining_ > 0 || state_ == State::Control; }

 private:
  enum class State : uint8_t { Header, Data, Control, Done };
  // Judges the first two header bytes; false (and *error) when the frame is bad.
  bool checkStart(WsFeed* error) const;
  // Parses the header once it is whole; returns false and sets *error when it is bad.
  bool parseHeader(WsFeed* error);
  size_t headerNeeded() const noexcept;

  uint64_t maxMessage_;
  State state_ = State::Header;
  std::array<uint8_t, 14> header_{};
  uint8_t headerLen_ = 0;
  uint8_t opcode_ = 0;
  std::array<uint8_t, 4> mask_{};
  uint64_t remaining_ = 0;  // payload bytes of the current frame still to come
  uint64_t offset_ = 0;     // payload bytes of the current frame already taken (mask phase)
  uint64_t messageBytes_ = 0;
  bool inMessage_ = false;
  bool fin_ = false;
  std::array<uint8_t, ws::kMaxControlPayload> control_{};
  uint8_t controlLen_ = 0;
};

inline size_t WsFrameParser::headerNeeded() const noexcept {
  if (headerLen_ < 2) return 2;
  uint8_t len7 = header_[1] & 0x7F;
  size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  return 2 + ext + 4;  // a client frame always carries the mask key
}

inline bool WsFrameParser::checkStart(WsFeed* error) const {
  uint8_t b0 = header_[0];
  uint8_t b1 = header_[1];
  bool fin = (b0 & 0x80) != 0;
  uint8_t opcode = b0 & 0x0F;
  *error = WsFeed::ProtocolError;
  if ((b0 & 0x70) != 0) return false;  // no extension was negotiated
  if ((b1 & 0x80) == 0) return false;  // client frames must be masked
  switch (opcode) {
    case ws::kClose:
    case ws::kPing:
    case ws::kPong:
      return fin && (b1 & 0x7F) <= ws::kMaxControlPayload;
    case ws::kText:
      *error = WsFeed::TextFrame;
      return false;
    case ws::kBinary:
      return !inMessage_;  // not a new message inside a fragmented one
    case ws::kContinuation:
      return inMessage_;
    default:
      return false;  // reserved opcodes
  }
}

inline bool WsFrameParser::parseHeader(WsFeed* error) {
  fin_ = (header_[0] & 0x80) != 0;
  opcode_ = header_[0] & 0x0F;
  *error = WsFeed::ProtocolError;
  uint8_t len7 = header_[1] & 0x7F;
  uint64_t len = len7;
  size_t p = 2;
  if (len7 == 126) {
    len = (static_cast<uint64_t>(header_[2]) << 8) | header_[3];
    p = 4;
  } else if (len7 == 127) {
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | header_[2 + i];
    if (len >> 63) return false;  // the most significant bit must be 0
    p = 10;
  }
  for (size_t i = 0; i < 4; ++i) mask_[i] = header_[p + i];
  if (opcode_ >= ws::kClose) {
    state_ = State::Control;
    controlLen_ = 0;
  } else {
    if (opcode_ == ws::kBinary) messageBytes_ = 0;
    if (len > maxMessage_ - messageBytes_) {
      *error = WsFeed::TooBig;
      return false;
    }
    messageBytes_ += len;
    inMessage_ = !fin_;
    state_ = State::Data;
  }
  remaining_ = len;
  offset_ = 0;
  headerLen_ = 0;
  *error = WsFeed::Ok;
  return true;
}

template <typename Sink>
WsFeed WsFrameParser::feed(const uint8_t* data, size_t len, uint8_t* scratch, size_t scratchSize, Sink& sink) {
  size_t pos = 0;
  while (state_ != State::Done) {
    if (state_ == State::Header) {
      // Byte by byte until the header is whole: at most 14 bytes. The first
      // two are judged at once, so that a bad frame is refused before its
      // mask key and length arrive.
      WsFeed error;
      while (headerLen_ < headerNeeded()) {
        if (pos == len) return WsFeed::Ok;
        header_[headerLen_++] = data[pos++];
        if (headerLen_ == 2 && !checkStart(&error)) {
          state_ = State::Done;
          return error;
        }
      }
      if (!parseHeader(&error)) {
        state_ = State::Done;
        return error;
      }
    }
    if (state_ == State::Data) {
      while (remaining_ > 0) {
        if (pos == len) return WsFeed::Ok;
        size_t n = len - pos;
        if (n > remaining_) n = static_cast<size_t>(remaining_);
        if (n > scratchSize) n = scratchSize;
        for (size_t i = 0; i < n; ++i) scratch[i] = data[pos + i] ^ mask_[(offset_ + i) & 3];
        pos += n;
        offset_ += n;
        remaining_ -= n;
        if (!sink.onBinary(scratch, n)) {
          state_ = State::Done;
          return WsFeed::Stopped;
        }
      }
      state_ = State::Header;
      continue;
    }
    if (state_ == State::Control) {
      while (remaining_ > 0) {
        if (pos == len) return WsFeed::Ok;
        control_[controlLen_] = data[pos++] ^ mask_[controlLen_ & 3];
        ++controlLen_;
        --remaining_;
      }
      state_ = State::Header;
      if (opcode_ == ws::kPing) {
        sink.onPing(control_.data(), controlLen_);
      } else if (opcode_ == ws::kClose) {
        state_ = State::Done;
        if (controlLen_ == 1) return WsFeed::ProtocolError;
        if (controlLen_ == 0) {
          sink.onClose(false, 0);
          return WsFeed::Closed;
        }
        uint16_t code = static_cast<uint16_t>((control_[0] << 8) | control_[1]);
        if (!validPeerCloseCode(code)) return WsFeed::ProtocolError;
        sink.onClose(true, code);
        return WsFeed::Closed;
      }
      // PONG: nothing to do (the engine's keep-alive is its PING packet).
    }
  }
  return WsFeed::Closed;
}

}  // namespace iocpnet
