// Fuzz target: validateOutboundBatch on arbitrary bytes. Whatever it
// accepts, forEachOutboundRecord must walk inside the buffer to exactly its
// end, every packet must be well-formed, and re-encoding the records must
// give back the same bytes.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../../native/core/outbound_batch.h"

namespace {

void appendU32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exactly-sized copy: one byte past it is a heap overflow.
  std::unique_ptr<uint8_t[]> copy(new uint8_t[size + 1]);
  if (size > 0) std::memcpy(copy.get(), data, size);
  const uint8_t* batch = copy.get();
  std::string error = iocpnet::validateOutboundBatch(batch, size);
  if (!error.empty()) return 0;

  std::vector<uint8_t> out;
  iocpnet::forEachOutboundRecord(batch, size, [&](const iocpnet::OutboundRecord& r) {
    out.push_back(static_cast<uint8_t>(r.op));
    switch (r.op) {
      case iocpnet::OutboundOp::Send:
      case iocpnet::OutboundOp::Broadcast:
        if (r.count == 0 || r.packetLength < iocpnet::kHeaderSize || r.packet[4] != 0) std::abort();
        if (r.packet < batch || r.packet + r.packetLength > batch + size) std::abort();
        if (r.op == iocpnet::OutboundOp::Broadcast) appendU32(out, r.count);
        for (uint32_t i = 0; i < r.count; ++i) appendU32(out, r.id(i));
        out.insert(out.end(), r.packet, r.packet + r.packetLength);
        break;
      case iocpnet::OutboundOp::Close:
        appendU32(out, r.id(0));
        out.push_back(static_cast<uint8_t>(r.notifyCode));
        out.push_back(static_cast<uint8_t>(r.notifyCode >> 8));
        break;
      default:
        // Destroy and any other record that carries only an id; a kind the
        // parser reads differently from the validator fails the round trip.
        appendU32(out, r.id(0));
        break;
    }
  });
  if (out.size() != size || (size > 0 && std::memcmp(out.data(), batch, size) != 0)) std::abort();
  return 0;
}
