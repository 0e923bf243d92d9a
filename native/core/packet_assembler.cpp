#include "packet_assembler.h"

namespace iocpnet {

void PacketAssembler::reset() { std::vector<uint8_t>().swap(partial_); }

}  // namespace iocpnet
