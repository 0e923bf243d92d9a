// Parses the outbound batch the JS thread hands over in one call per flush.
// Records, little-endian (BatchLayout in lib/contract.ts):
//   u8 Send=1,      u32 id, packet (u16 length incl. header, u16 id, u8 type, body)
//   u8 Broadcast=2, u32 count, count x u32 id, packet
//   u8 Close=3,     u32 id, u16 DISCONNECT_NOTIFY code (0: none)
//   u8 Destroy=4,   u32 id
//   u8 Release=5,   u32 id, u8 CloseReason reported to JS
// Every length is checked against the buffer; a malformed batch is refused
// whole before any of it is acted on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol.h"

namespace iocpnet {

// After the op byte: a u32 id, or a broadcast's u32 count.
constexpr size_t kOpWord = kOpHead - 1;

struct OutboundRecord {
  OutboundOp op;
  const uint8_t* ids;  // count little-endian u32 ids (unaligned)
  uint32_t count;
  const uint8_t* packet;  // whole wire packet, header included (Send, Broadcast)
  uint16_t packetLength;
  uint16_t notifyCode;  // Close
  uint8_t reason;       // Release: a CloseReason
  uint32_t id(uint32_t i) const noexcept { return readU32(ids + 4 * i); }
};

// Checks the whole batch; returns an empty string when valid, else what is wrong.
std::string validateOutboundBatch(const uint8_t* data, size_t len);

// Calls onRecord(const OutboundRecord&) for each record of a batch that
// validateOutboundBatch accepted.
template <typename OnRecord>
void forEachOutboundRecord(const uint8_t* data, size_t len, OnRecord&& onRecord) {
  size_t pos = 0;
  while (pos < len) {
    OutboundRecord r{};
    r.op = static_cast<OutboundOp>(data[pos]);
    const uint8_t* p = data + pos + 1;
    switch (r.op) {
      case OutboundOp::Send:
      case OutboundOp::Broadcast: {
        if (r.op == OutboundOp::Send) {
          r.count = 1;
          r.ids = p;
          p += kOpWord;
        } else {
          r.count = readU32(p);
          r.ids = p + kOpWord;
          p += kOpWord + 4 * static_cast<size_t>(r.count);
        }
        r.packet = p;
        r.packetLength = readU16(p);
        p += r.packetLength;
        break;
      }
      case OutboundOp::Close:
        r.count = 1;
        r.ids = p;
        r.notifyCode = readU16(p + kOpWord);
        p += kOpWord + kCloseFields;
        break;
      case OutboundOp::Destroy:
        r.count = 1;
        r.ids = p;
        p += kOpWord;
        break;
      case OutboundOp::Release:
        r.count = 1;
        r.ids = p;
        r.reason = p[kOpWord];
        p += kOpWord + kReleaseFields;
        break;
    }
    pos = static_cast<size_t>(p - data);
    onRecord(r);
  }
}

}  // namespace iocpnet
