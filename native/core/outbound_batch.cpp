#include "outbound_batch.h"

namespace iocpnet {

std::string validateOutboundBatch(const uint8_t* data, size_t len) {
  size_t pos = 0;
  while (pos < len) {
    size_t left = len - pos - 1;
    const uint8_t* p = data + pos + 1;
    size_t used = 0;
    switch (static_cast<OutboundOp>(data[pos])) {
      case OutboundOp::Send:
      case OutboundOp::Broadcast: {
        size_t idsBytes = kOpWord;
        if (static_cast<OutboundOp>(data[pos]) == OutboundOp::Broadcast) {
          if (left < kOpWord) return "truncated broadcast count";
          uint32_t count = readU32(p);
          if (count == 0) return "broadcast to no connection";
          if (count > (left - kOpWord) / 4) return "broadcast count exceeds the batch";
          idsBytes = kOpWord + 4 * static_cast<size_t>(count);
        }
        if (left < idsBytes + kHeaderSize) return "truncated send record";
        const uint8_t* packet = p + idsBytes;
        uint16_t packetLength = readU16(packet);
        if (packetLength < kHeaderSize) return "packet length below the header size";
        if (packet[4] != 0) return "packet type must be 0";
        if (left - idsBytes < packetLength) return "packet exceeds the batch";
        used = idsBytes + packetLength;
        break;
      }
      case OutboundOp::Close:
        if (left < kOpWord + kCloseFields) return "truncated close record";
        used = kOpWord + kCloseFields;
        break;
      case OutboundOp::Destroy:
        if (left < kOpWord) return "truncated destroy record";
        used = kOpWord;
        break;
      case OutboundOp::Release:
        if (left < kOpWord + kReleaseFields) return "truncated release record";
        if (p[kOpWord] >= kCloseReasonCount) return "release with unknown close reason " + std::to_string(p[kOpWord]);
        used = kOpWord + kReleaseFields;
        break;
      default:
        return "unknown record kind " + std::to_string(data[pos]);
    }
    pos += 1 + used;
  }
  return std::string();
}

}  // namespace iocpnet
