// Turns a TCP byte stream into whole packets (PROTOCOL.md section 1). Reads
// are parsed in place from the caller's buffer (one shared read buffer per IO
// thread); only the bytes of a packet split across reads are kept, so an
// idle connection holds no buffer at all. IO thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "protocol.h"

namespace iocpnet {

struct PacketView {
  uint16_t id;
  uint8_t type;
  const uint8_t* body;
  uint16_t bodyLength;
};

// Rejected: the onPacket callback refused a packet (for example a PING body
// longer than the protocol allows).
enum class FrameError : uint8_t { None = 0, BadLength, BadType, Rejected };

class PacketAssembler {
 public:
  explicit PacketAssembler(size_t maxPacketSize = 8192) : maxPacketSize_(maxPacketSize) {}
  void setMaxPacketSize(size_t max) { maxPacketSize_ = max; }

  // Feeds bytes; calls bool onPacket(const PacketView&) for each whole packet
  // in order, and stops at the first framing error or the first packet
  // onPacket refuses, which it returns (the packets before it were delivered). After an error the assembler must be
  // reset before it is fed again.
  template <typename OnPacket>
  FrameError feed(const uint8_t* data, size_t len, OnPacket&& onPacket);

  // Bytes held of a packet not yet complete.
  size_t partialBytes() const noexcept { return partial_.size(); }
  void reset();

 private:
  FrameError check(const uint8_t* header) const noexcept {
    uint16_t length = readU16(header);
    if (length < kHeaderSize || length > maxPacketSize_) return FrameError::BadLength;
    if (header[4] != 0) return FrameError::BadType;
    return FrameError::None;
  }
  static PacketView view(const uint8_t* p) {
    return PacketView{readU16(p + 2), p[4], p + kHeaderSize, static_cast<uint16_t>(readU16(p) - kHeaderSize)};
  }

  size_t maxPacketSize_;
  std::vector<uint8_t> partial_;
};

template <typename OnPacket>
FrameError PacketAssembler::feed(const uint8_t* data, size_t len, OnPacket&& onPacket) {
  size_t pos = 0;
  // First complete the packet left over from earlier reads.
  if (!partial_.empty()) {
    if (partial_.size() < kHeaderSize) {
      size_t take = kHeaderSize - partial_.size();
      if (take > len) take = len;
      partial_.insert(partial_.end(), data, data + take);
      pos += take;
      if (partial_.size() < kHeaderSize) return FrameError::None;
      FrameError e = check(partial_.data());
      if (e != FrameError::None) return e;
    }
    size_t need = readU16(partial_.data()) - partial_.size();
    size_t take = need < len - pos ? need : len - pos;
    partial_.insert(partial_.end(), data + pos, data + pos + take);
    pos += take;
    if (take < need) return FrameError::None;
    bool accepted = onPacket(view(partial_.data()));
    partial_.clear();
    // Keep a small buffer for the next split packet; give a large one back.
    if (partial_.capacity() > 1024) std::vector<uint8_t>().swap(partial_);
    if (!accepted) return FrameError::Rejected;
  }
  // Whole packets straight from the read buffer.
  while (len - pos >= kHeaderSize) {
    const uint8_t* p = data + pos;
    FrameError e = check(p);
    if (e != FrameError::None) return e;
    size_t length = readU16(p);
    if (len - pos < length) break;
    if (!onPacket(view(p))) return FrameError::Rejected;
    pos += length;
  }
  // The loop validated the header of a packet that is cut short, if whole.
  if (pos < len) partial_.assign(data + pos, data + len);
  return FrameError::None;
}

}  // namespace iocpnet
