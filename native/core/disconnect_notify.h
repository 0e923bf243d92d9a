// DISCONNECT_NOTIFY, the last packet the engine sends to a client it closes.
// Built here only: for the send queue of a connection the core closes, and by
// the platform engines for a socket turned away at accept (rejectSocket).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "protocol.h"

namespace iocpnet {

// Header and a u16 reason code.
constexpr size_t kDisconnectNotifySize = kHeaderSize + 2;

using DisconnectNotifyPacket = std::array<uint8_t, kDisconnectNotifySize>;

// The bytes of DISCONNECT_NOTIFY(code).
inline DisconnectNotifyPacket disconnectNotifyPacket(NotifyCode code) {
  DisconnectNotifyPacket packet{};
  writeHeader(packet.data(), kDisconnectNotifyId, kDisconnectNotifySize - kHeaderSize);
  writeU16(packet.data() + kHeaderSize, static_cast<uint16_t>(code));
  return packet;
}

}  // namespace iocpnet
