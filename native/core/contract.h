// Generated from lib/contract.ts by `npm run codegen`: edit that file, not this one.
// test/contract.test.ts fails when the two differ.
#pragma once

#include <cstddef>
#include <cstdint>

namespace iocpnet {

// Framing (u16 length with the header, u16 id, u8 type).
constexpr size_t kHeaderSize = 5;
constexpr size_t kMaxWirePacket = 65535;
constexpr size_t kMaxBodySize = 65530;
constexpr size_t kMaxPingBody = 64;
// Ids below this are handled by the engine and never reach JS.
constexpr uint16_t kFirstAppPacketId = 100;

// System packet ids.
constexpr uint16_t kPingId = 1;
constexpr uint16_t kPongId = 2;
constexpr uint16_t kDisconnectNotifyId = 3;

// DISCONNECT_NOTIFY reason codes on the wire; None means no notify is sent.
enum class NotifyCode : uint16_t {
  None = 0,
  ServerShutdown = 1,
  ProtocolError = 2,
  IdleTimeout = 3,
  ServerFull = 4,
  Kicked = 5,
  SlowConsumer = 6,
};

// Why a connection ended: the u8 of a Disconnect record and the index into the closes counters.
enum class CloseReason : uint8_t {
  Closed = 0,
  Reset = 1,
  ProtocolError = 2,
  IdleTimeout = 3,
  SlowConsumer = 4,
  ServerFull = 5,
  Shutdown = 6,
  Kicked = 7,
  UpgradeRefused = 8,
  UpgradeTimeout = 9,
};
constexpr size_t kCloseReasonCount = 10;

// Inbound record kinds (IO threads to JS).
enum class InboundKind : uint8_t {
  Connect = 1,
  Packet = 2,
  Disconnect = 3,
};

// Outbound record kinds (JS to IO threads).
enum class OutboundOp : uint8_t {
  Send = 1,
  Broadcast = 2,
  Close = 3,
  Destroy = 4,
  Release = 5,
};

// Record sizes in bytes (lib/contract.ts BatchLayout gives the fields).
constexpr size_t kRecordHead = 5;
constexpr size_t kConnectFields = 4;
constexpr size_t kPacketFields = 4;
constexpr size_t kDisconnectFields = 2;
constexpr size_t kOpHead = 5;
constexpr size_t kCloseFields = 2;
constexpr size_t kReleaseFields = 1;

// The engine's integer options: the range every caller is held to, and the default.
struct IntegerOption {
  const char* name;
  uint32_t min;
  uint32_t max;
  uint32_t defaultValue;
};
constexpr IntegerOption kIoThreadsOption{"ioThreads", 1u, 64u, 1u};
constexpr IntegerOption kMaxConnectionsOption{"maxConnections", 1u, 1000000u, 1024u};
constexpr IntegerOption kMaxPacketSizeOption{"maxPacketSize", 5u, 65535u, 8192u};
constexpr IntegerOption kIdleTimeoutMsOption{"idleTimeoutMs", 0u, 2147483647u, 60000u};
constexpr IntegerOption kMaxSendQueueBytesOption{"maxSendQueueBytes", 1024u, 2147483647u, 1048576u};
constexpr IntegerOption kSendQueueHighWaterBytesOption{"sendQueueHighWaterBytes", 1u, 2147483647u, 262144u};
constexpr IntegerOption kSendQueueLowWaterBytesOption{"sendQueueLowWaterBytes", 0u, 2147483647u, 65536u};
constexpr IntegerOption kMaxPendingBytesOption{"maxPendingBytes", 65536u, 2147483647u, 67108864u};
constexpr IntegerOption kCloseTimeoutMsOption{"closeTimeoutMs", 0u, 600000u, 5000u};
constexpr IntegerOption kMaxUpgradeRequestBytesOption{"maxUpgradeRequestBytes", 256u, 65536u, 4096u};
constexpr IntegerOption kUpgradeTimeoutMsOption{"upgradeTimeoutMs", 1u, 600000u, 5000u};
constexpr IntegerOption kTransportDetectMsOption{"transportDetectMs", 1u, 60000u, 250u};

// The engine's on/off options and their defaults.
struct BooleanOption {
  const char* name;
  bool defaultValue;
};
constexpr BooleanOption kReusePortOption{"reusePort", false};
constexpr BooleanOption kWebSocketOption{"webSocket", true};

// Transports of one port: the u8 of a Connect record.
enum class Transport : uint8_t {
  Tcp = 0,
  Websocket = 1,
};

// WebSocket: the bounds of webSocketOrigins, the close codes the engine sends.
constexpr size_t kMaxWebSocketOrigins = 64;
constexpr size_t kMaxWebSocketOriginLength = 256;
enum class WsCloseCode : uint16_t {
  Normal = 1000,
  GoingAway = 1001,
  ProtocolError = 1002,
  UnsupportedData = 1003,
  PolicyViolation = 1008,
  MessageTooBig = 1009,
};

// The stats array the binding hands to JS: these counters, then the closes by reason, then one
// block of ThreadStatsField per IO thread.
enum class StatsField : size_t {
  Connections = 0,
  Accepted = 1,
  PacketsIn = 2,
  PacketsOut = 3,
  BytesIn = 4,
  BytesOut = 5,
  Pings = 6,
  IgnoredSystemPackets = 7,
  StaleRefused = 8,
  ReadPauses = 9,
  ReadPausesSendQueue = 10,
  DescriptorRefused = 11,
  PendingBytes = 12,
  SendQueueBytes = 13,
};
constexpr size_t kStatsFieldCount = 14;
constexpr size_t kStatsLength = kStatsFieldCount + kCloseReasonCount;
enum class ThreadStatsField : size_t {
  Connections = 0,
  PacketsIn = 1,
  PacketsOut = 2,
  BytesIn = 3,
  BytesOut = 4,
  SendQueueBytes = 5,
};
constexpr size_t kThreadStatsFieldCount = 6;

}  // namespace iocpnet
