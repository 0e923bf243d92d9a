// Fuzz target: PacketAssembler fed an arbitrary chunking of arbitrary bytes
// must report the same packets and the same error as the reference parser
// run on the whole stream.
//
// Input: byte 0 picks maxPacketSize, byte 1 the packet id (low byte) that
// the callback refuses (0: none), bytes 2..3 seed the piece sizes, the rest
// is the TCP stream.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "../core/reference_framing.h"

namespace {

constexpr size_t kMaxPacketSizes[] = {5, 6, 7, 8, 16, 64, 255, 300, 1024, 8192, 0xffff};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  size_t maxPacket = kMaxPacketSizes[data[0] % (sizeof kMaxPacketSizes / sizeof kMaxPacketSizes[0])];
  uint8_t refuseLow = data[1];
  uint32_t seed = static_cast<uint32_t>(data[2] | (data[3] << 8)) | 1u;
  std::vector<uint8_t> stream(data + 4, data + size);

  auto accept = [refuseLow](uint16_t id) { return refuseLow == 0 || (id & 0xff) != refuseLow; };
  // Piece sizes from a small xorshift, mixing tiny pieces (split headers)
  // with large ones (many packets per read).
  auto pieces = [&seed](size_t remaining) {
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    size_t n = (seed & 0x100) ? 1 + (seed >> 9) % 8 : 1 + (seed >> 9) % 2048;
    return n < remaining ? n : remaining;
  };

  reference::Result want = reference::parse(stream, maxPacket, accept);
  reference::Result got = reference::assemble(stream, maxPacket, pieces, accept);
  if (got.error != want.error || !(got.packets == want.packets)) std::abort();
  if (want.error == iocpnet::FrameError::None && got.leftover != want.leftover) std::abort();
  return 0;
}
