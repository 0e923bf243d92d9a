// Little-endian field access and the packet header, over the contract's
// values (contract.h, generated from lib/contract.ts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "contract.h"

namespace iocpnet {

inline uint16_t readU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t readU32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
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
