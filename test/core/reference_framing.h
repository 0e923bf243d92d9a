// A deliberately simple framing parser over a whole stream held in memory,
// used as the oracle for PacketAssembler (unit tests and fuzzing): whatever
// chunking the assembler sees, it must report the same packets and the same
// error as this parser run on the concatenated bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "../../native/core/packet_assembler.h"

namespace reference {

struct Packet {
  uint16_t id = 0;
  uint8_t type = 0;
  std::vector<uint8_t> body;
  bool operator==(const Packet& o) const { return id == o.id && type == o.type && body == o.body; }
};

struct Result {
  std::vector<Packet> packets;
  iocpnet::FrameError error = iocpnet::FrameError::None;
  // Bytes after the last whole packet, when no error stopped the parse.
  size_t leftover = 0;
};

// Parses stream; accept(id) false makes that packet the Rejected one.
template <typename Accept>
Result parse(const std::vector<uint8_t>& stream, size_t maxPacketSize, Accept&& accept) {
  Result r;
  size_t pos = 0;
  while (stream.size() - pos >= iocpnet::kHeaderSize) {
    size_t length = stream[pos] | (static_cast<size_t>(stream[pos + 1]) << 8);
    if (length < iocpnet::kHeaderSize || length > maxPacketSize) {
      r.error = iocpnet::FrameError::BadLength;
      return r;
    }
    if (stream[pos + 4] != 0) {
      r.error = iocpnet::FrameError::BadType;
      return r;
    }
    if (stream.size() - pos < length) break;
    Packet p;
    p.id = static_cast<uint16_t>(stream[pos + 2] | (stream[pos + 3] << 8));
    p.type = stream[pos + 4];
    p.body.assign(stream.begin() + static_cast<std::ptrdiff_t>(pos + iocpnet::kHeaderSize),
                  stream.begin() + static_cast<std::ptrdiff_t>(pos + length));
    if (!accept(p.id)) {
      r.error = iocpnet::FrameError::Rejected;
      return r;
    }
    r.packets.push_back(std::move(p));
    pos += length;
  }
  r.leftover = stream.size() - pos;
  return r;
}

// Feeds stream to a fresh assembler in pieces whose sizes come from
// nextPiece(remaining) (each at least 1), copying every piece into its own
// buffer so that a read past a piece is caught by the sanitizers.
template <typename NextPiece, typename Accept>
Result assemble(const std::vector<uint8_t>& stream, size_t maxPacketSize, NextPiece&& nextPiece, Accept&& accept) {
  Result r;
  iocpnet::PacketAssembler assembler(maxPacketSize);
  size_t pos = 0;
  while (pos < stream.size()) {
    size_t n = nextPiece(stream.size() - pos);
    if (n == 0) n = 1;
    if (n > stream.size() - pos) n = stream.size() - pos;
    std::unique_ptr<uint8_t[]> piece(new uint8_t[n]);
    std::memcpy(piece.get(), stream.data() + pos, n);
    pos += n;
    r.error = assembler.feed(piece.get(), n, [&](const iocpnet::PacketView& v) {
      Packet p;
      p.id = v.id;
      p.type = v.type;
      p.body.assign(v.body, v.body + v.bodyLength);
      if (!accept(p.id)) return false;
      r.packets.push_back(std::move(p));
      return true;
    });
    if (r.error != iocpnet::FrameError::None) return r;
  }
  r.leftover = assembler.partialBytes();
  return r;
}

}  // namespace reference
