// Wire constants of PROTOCOL.md sections 1 and 2, and the record formats of
// the batches that cross between the IO threads and the JS thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace iocpnet {

constexpr size_t kHeaderSize = 5;
constexpr size_t kMaxWirePacket = 0xffff;
constexpr size_t kMaxPingBody = 64;

constexpr uint16_t kPingId = 1;
constexpr uint16_t kPongId = 2;
constexpr uint16_t kDisconnectNotifyId = 3;
// Ids below this are handled by the engine and never reach JS.
constexpr uint16_t kFirstAppPacketId = 100;

// DISCONNECT_NOTIFY reason codes on the wire.
enum class NotifyCode : uint16_t {
  None = 0,
  ServerShutdown = 1,
  ProtocolError = 2,
  IdleTimeout = 3,
  ServerFull = 4,
  Kicked = 5,
  SlowConsumer = 6,
};

// Why a connection ended; the order matches DISCONNECT_REASONS in lib/types.ts.
enum class CloseReason : uint8_t {
  Closed = 0,
  Reset = 1,
  ProtocolError = 2,
  IdleTimeout = 3,
  SlowConsumer = 4,
  ServerFull = 5,
  Shutdown = 6,
  Kicked = 7,
};
constexpr size_t kCloseReasonCount = 8;

// Inbound record kinds (IO threads to JS).
enum class InboundKind : uint8_t { Connect = 1, Packet = 2, Disconnect = 3 };

// Outbound record kinds (JS to IO threads).
// Release: JS has handled a Disconnect record of a close the engine began;
// what JS queued for that connection before it is sent, then the close goes on.
enum class OutboundOp : uint8_t { Send = 1, Broadcast = 2, Close = 3, Destroy = 4, Release = 5 };

inline uint16_t readU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t readU32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
inline void writeU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void writeU32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}

// Writes a 5-byte header for a packet of bodyLen bytes.
inline void writeHeader(uint8_t* p, uint16_t packetId, size_t bodyLen) {
  writeU16(p, static_cast<uint16_t>(kHeaderSize + bodyLen));
  writeU16(p + 2, packetId);
  p[4] = 0;
}

}  // namespace iocpnet
