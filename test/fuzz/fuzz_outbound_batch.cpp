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
#include "../core/test_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exactly-sized copy: one byte past it is a heap overflow.
  std::unique_ptr<uint8_t[]> copy(new uint8_t[size + 1]);
  if (size > 0) std::memcpy(copy.get(), data, size);
  const uint8_t* batch = copy.get();
  std::string error = iocpnet::validateOutboundBatch(batch, size);
  if (!error.empty()) return 0;

  iocpnet::forEachOutboundRecord(batch, size, [&](const iocpnet::OutboundRecord& r) {
    bool carriesPacket = r.op == iocpnet::OutboundOp::Send || r.op == iocpnet::OutboundOp::Broadcast;
    if (carriesPacket && (r.count == 0 || r.packetLength < iocpnet::kHeaderSize || r.packet[4] != 0 ||
                          r.packet < batch || r.packet + r.packetLength > batch + size)) {
      std::abort();
    }
  });
  std::vector<uint8_t> out = testutil::reencodeOutbound(batch, size);
  if (out.size() != size || (size > 0 && std::memcmp(out.data(), batch, size) != 0)) std::abort();
  return 0;
}
