// Byte helpers shared by the core tests.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

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

}  // namespace testutil
