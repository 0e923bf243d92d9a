// Byte helpers shared by the core tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../../native/core/outbound_batch.h"
#include "../../native/core/protocol.h"

namespace testutil {

inline void appendU16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v));
  out.push_back(static_cast<uint8_t>(v >> 8));
}

inline void appendU32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// Appends one wire packet (5-byte header, type 0).
inline void appendPacket(std::vector<uint8_t>& out, uint16_t id, const std::vector<uint8_t>& body) {
  appendU16(out, static_cast<uint16_t>(iocpnet::kHeaderSize + body.size()));
  appendU16(out, id);
  out.push_back(0);
  out.insert(out.end(), body.begin(), body.end());
}

inline std::vector<uint8_t> packet(uint16_t id, const std::vector<uint8_t>& body) {
  std::vector<uint8_t> out;
  appendPacket(out, id, body);
  return out;
}

// One inbound record (native/core/event_batch.h), as the JS side reads it.
struct InboundRecord {
  iocpnet::InboundKind kind = iocpnet::InboundKind::Connect;
  uint32_t id = 0;
  uint16_t portOrPacketId = 0;  // Connect: remote port; Packet: packet id
  std::string payload;          // Connect: address; Packet: body
  uint8_t reason = 0;           // Disconnect: CloseReason
  uint8_t transport = 0;        // Connect: Transport
  bool awaitsRelease = false;   // Disconnect: the engine waits for a Release
};

// Decodes an inbound batch; false if it is malformed.
inline bool decodeInbound(const std::vector<uint8_t>& b, std::vector<InboundRecord>& out) {
  size_t pos = 0;
  while (pos < b.size()) {
    if (b.size() - pos < 5) return false;
    InboundRecord r;
    r.kind = static_cast<iocpnet::InboundKind>(b[pos]);
    r.id = iocpnet::readU32(&b[pos + 1]);
    pos += 5;
    size_t n = 0;
    switch (r.kind) {
      case iocpnet::InboundKind::Connect:
        if (b.size() - pos < iocpnet::kConnectFields) return false;
        r.portOrPacketId = iocpnet::readU16(&b[pos]);
        r.transport = b[pos + 2];
        if (r.transport > 1) return false;
        n = b[pos + 3];
        pos += iocpnet::kConnectFields;
        break;
      case iocpnet::InboundKind::Packet:
        if (b.size() - pos < 4) return false;
        r.portOrPacketId = iocpnet::readU16(&b[pos]);
        n = iocpnet::readU16(&b[pos + 2]);
        pos += 4;
        break;
      case iocpnet::InboundKind::Disconnect:
        if (b.size() - pos < iocpnet::kDisconnectFields) return false;
        r.reason = b[pos];
        if (b[pos + 1] > 1) return false;
        r.awaitsRelease = b[pos + 1] == 1;
        pos += iocpnet::kDisconnectFields;
        break;
      default:
        return false;
    }
    if (b.size() - pos < n) return false;
    r.payload.assign(reinterpret_cast<const char*>(b.data() + pos), n);
    pos += n;
    out.push_back(std::move(r));
  }
  return true;
}

// Re-encodes the records of an outbound batch that validateOutboundBatch
// accepted; a valid batch must give back its own bytes.
inline std::vector<uint8_t> reencodeOutbound(const uint8_t* data, size_t len) {
  std::vector<uint8_t> out;
  iocpnet::forEachOutboundRecord(data, len, [&](const iocpnet::OutboundRecord& r) {
    out.push_back(static_cast<uint8_t>(r.op));
    switch (r.op) {
      case iocpnet::OutboundOp::Send:
      case iocpnet::OutboundOp::Broadcast:
        if (r.op == iocpnet::OutboundOp::Broadcast) appendU32(out, r.count);
        for (uint32_t i = 0; i < r.count; ++i) appendU32(out, r.id(i));
        out.insert(out.end(), r.packet, r.packet + r.packetLength);
        break;
      case iocpnet::OutboundOp::Close:
        appendU32(out, r.id(0));
        appendU16(out, r.notifyCode);
        break;
      case iocpnet::OutboundOp::Release:
        appendU32(out, r.id(0));
        out.push_back(r.reason);
        break;
      default:
        // Destroy: an id alone. A kind the parser reads differently from the
        // validator fails the round trip.
        appendU32(out, r.id(0));
        break;
    }
  });
  return out;
}

}  // namespace testutil
