// A WebSocket client's side of the wire, for the core tests and the fuzz
// targets: masked client frames and the parse of the server's unmasked ones.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace wstest {

// A client frame: FIN flag, opcode, payload, masked with key (unless masked is false).
inline std::vector<uint8_t> clientFrame(uint8_t opcode, const std::vector<uint8_t>& payload, bool fin = true,
                                        bool masked = true, uint32_t key = 0x37fa213d, uint8_t rsv = 0) {
  std::vector<uint8_t> out;
  out.push_back(static_cast<uint8_t>((fin ? 0x80 : 0) | (rsv & 0x70) | opcode));
  uint8_t maskBit = masked ? 0x80 : 0;
  size_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<uint8_t>(maskBit | n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<uint8_t>(maskBit | 126));
    out.push_back(static_cast<uint8_t>(n >> 8));
    out.push_back(static_cast<uint8_t>(n));
  } else {
    out.push_back(static_cast<uint8_t>(maskBit | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<uint8_t>(static_cast<uint64_t>(n) >> (8 * i)));
  }
  uint8_t mask[4] = {static_cast<uint8_t>(key >> 24), static_cast<uint8_t>(key >> 16), static_cast<uint8_t>(key >> 8),
                     static_cast<uint8_t>(key)};
  if (masked) out.insert(out.end(), mask, mask + 4);
  for (size_t i = 0; i < n; ++i) out.push_back(masked ? static_cast<uint8_t>(payload[i] ^ mask[i & 3]) : payload[i]);
  return out;
}

// One server frame parsed from the front of buf: false if not whole yet or not a valid server frame.
struct ServerFrame {
  bool fin = false;
  uint8_t opcode = 0;
  std::vector<uint8_t> payload;
};
inline bool takeServerFrame(std::vector<uint8_t>& buf, ServerFrame& out, bool* malformed = nullptr) {
  if (malformed != nullptr) *malformed = false;
  if (buf.size() < 2) return false;
  size_t p = 2;
  uint64_t len = buf[1] & 0x7F;
  if ((buf[1] & 0x80) != 0 || (buf[0] & 0x70) != 0) {
    if (malformed != nullptr) *malformed = true;
    return false;
  }
  if (len == 126) {
    if (buf.size() < 4) return false;
    len = (static_cast<uint64_t>(buf[2]) << 8) | buf[3];
    p = 4;
  } else if (len == 127) {
    if (buf.size() < 10) return false;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | buf[2 + i];
    p = 10;
  }
  if (buf.size() - p < len) return false;
  out.fin = (buf[0] & 0x80) != 0;
  out.opcode = buf[0] & 0x0F;
  out.payload.assign(buf.begin() + static_cast<std::ptrdiff_t>(p), buf.begin() + static_cast<std::ptrdiff_t>(p + len));
  buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(p + len));
  return true;
}

inline std::string upgradeRequest(const std::string& extraHeaders = "",
                                  const std::string& key = "dGhlIHNhbXBsZSBub25jZQ==") {
  return "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: " +
         key + "\r\nSec-WebSocket-Version: 13\r\n" + extraHeaders + "\r\n";
}

}  // namespace wstest
