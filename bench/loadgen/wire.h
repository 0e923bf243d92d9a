#pragma once

#include <cstddef>
#include <cstdint>

// The wire format of PROTOCOL.md: a 5-byte header (u16 length including the
// header, u16 packet id, u8 type), little-endian, packed chat structs.
namespace loadgen {

constexpr size_t kHeaderSize = 5;

namespace packet {
constexpr uint16_t kPing = 1;
constexpr uint16_t kPong = 2;
constexpr uint16_t kDisconnectNotify = 3;
// The echo server returns any application packet unchanged; this id is ours.
constexpr uint16_t kEcho = 100;
constexpr uint16_t kLoginRequest = 201;
constexpr uint16_t kLoginResponse = 202;
constexpr uint16_t kRoomEnterRequest = 206;
constexpr uint16_t kRoomEnterResponse = 207;
constexpr uint16_t kRoomLeaveRequest = 209;
constexpr uint16_t kRoomLeaveResponse = 210;
constexpr uint16_t kRoomChatRequest = 214;
constexpr uint16_t kRoomChatResponse = 215;
constexpr uint16_t kRoomChatNotify = 216;
}  // namespace packet

constexpr size_t kUserIdSize = 21;
constexpr size_t kUserPwSize = 21;
constexpr size_t kChatMessageSize = 257;
// Disconnect reasons are 1..6 on the wire; 0 and anything above count as unknown.
constexpr size_t kDisconnectReasonSlots = 8;

inline uint16_t readU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline int16_t readI16(const uint8_t* p) { return static_cast<int16_t>(readU16(p)); }

inline void writeU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

inline void writeI32(uint8_t* p, int32_t value) {
  const uint32_t v = static_cast<uint32_t>(value);
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}

// Response bodies start with the result code; a body too short to hold it
// reads as -1 so that it counts as a failure rather than as success.
inline int resultOf(const uint8_t* body, size_t length) { return length >= 2 ? readI16(body) : -1; }

}  // namespace loadgen
