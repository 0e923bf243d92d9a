/**
 * Renders native/core/contract.h from lib/contract.ts, so that the C++ core
 * reads the one definition of the contract. `npm run codegen` writes the
 * header; test/contract.test.ts fails when the checked-in header differs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  BatchLayout,
  DISCONNECT_REASONS,
  DisconnectCode,
  ENGINE_FLAGS,
  ENGINE_OPTIONS,
  FIRST_APP_PACKET_ID,
  HEADER_SIZE,
  InboundKind,
  MAX_BODY_SIZE,
  MAX_PING_BODY,
  MAX_WIRE_PACKET,
  OutboundOp,
  PacketId,
  STATS_FIELDS,
  type BooleanOptionSpec,
  THREAD_STATS_FIELDS,
  TRANSPORTS,
  WEB_SOCKET,
  WsCloseCode,
  type IntegerOptionSpec,
} from '../../lib/contract';

/** Where the header lives, from the repository root. */
export const CONTRACT_HEADER = 'native/core/contract.h';

/** 'PING', 'SERVER_SHUTDOWN', 'protocol_error', 'packetsIn' -> 'Ping', 'ServerShutdown', 'ProtocolError', 'PacketsIn'. */
function pascal(name: string): string {
  if (name.includes('_') || name === name.toUpperCase() || name === name.toLowerCase()) {
    return name
      .toLowerCase()
      .split('_')
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join('');
  }
  return name.charAt(0).toUpperCase() + name.slice(1);
}

/** One `Name = value,` line per entry of a table of numbers. */
function enumerators(table: Readonly<Record<string, number>>): string[] {
  return Object.entries(table).map(([name, value]) => `  ${pascal(name)} = ${value},`);
}

/** '1 << 20' and the like come out as plain decimal numbers; 'u' keeps large ones unsigned. */
function u32(value: number): string {
  return `${value}u`;
}

/** The full text of native/core/contract.h. */
export function renderContractHeader(): string {
  const lines: string[] = [
    '// Generated from lib/contract.ts by `npm run codegen`: edit that file, not this one.',
    '// test/contract.test.ts fails when the two differ.',
    '#pragma once',
    '',
    '#include <cstddef>',
    '#include <cstdint>',
    '',
    'namespace iocpnet {',
    '',
    '// Framing (u16 length with the header, u16 id, u8 type).',
    `constexpr size_t kHeaderSize = ${HEADER_SIZE};`,
    `constexpr size_t kMaxWirePacket = ${MAX_WIRE_PACKET};`,
    `constexpr size_t kMaxBodySize = ${MAX_BODY_SIZE};`,
    `constexpr size_t kMaxPingBody = ${MAX_PING_BODY};`,
    '// Ids below this are handled by the engine and never reach JS.',
    `constexpr uint16_t kFirstAppPacketId = ${FIRST_APP_PACKET_ID};`,
    '',
    '// System packet ids.',
    ...Object.entries(PacketId).map(([name, value]) => `constexpr uint16_t k${pascal(name)}Id = ${value};`),
    '',
    '// DISCONNECT_NOTIFY reason codes on the wire; None means no notify is sent.',
    'enum class NotifyCode : uint16_t {',
    '  None = 0,',
    ...enumerators(DisconnectCode),
    '};',
    '',
    '// Why a connection ended: the u8 of a Disconnect record and the index into the closes counters.',
    'enum class CloseReason : uint8_t {',
    ...DISCONNECT_REASONS.map((reason, i) => `  ${pascal(reason)} = ${i},`),
    '};',
    `constexpr size_t kCloseReasonCount = ${DISCONNECT_REASONS.length};`,
    '',
    '// Inbound record kinds (IO threads to JS).',
    'enum class InboundKind : uint8_t {',
    ...enumerators(InboundKind),
    '};',
    '',
    '// Outbound record kinds (JS to IO threads).',
    'enum class OutboundOp : uint8_t {',
    ...enumerators(OutboundOp),
    '};',
    '',
    '// Record sizes in bytes (lib/contract.ts BatchLayout gives the fields).',
    ...Object.entries(BatchLayout).map(([name, value]) => `constexpr size_t k${pascal(name)} = ${value};`),
    '',
    "// The engine's integer options: the range every caller is held to, and the default.",
    'struct IntegerOption {',
    '  const char* name;',
    '  uint32_t min;',
    '  uint32_t max;',
    '  uint32_t defaultValue;',
    '};',
    ...Object.entries(ENGINE_OPTIONS).map(([name, spec]: [string, IntegerOptionSpec]) => {
      // ioThreads has no fixed default (the server uses cores - 1); the engine's own is the minimum.
      const def = spec.default ?? spec.min;
      return `constexpr IntegerOption k${pascal(name)}Option{"${name}", ${u32(spec.min)}, ${u32(spec.max)}, ${u32(def)}};`;
    }),
    '',
    "// The engine's on/off options and their defaults.",
    'struct BooleanOption {',
    '  const char* name;',
    '  bool defaultValue;',
    '};',
    ...Object.entries(ENGINE_FLAGS).map(
      ([name, spec]: [string, BooleanOptionSpec]) => `constexpr BooleanOption k${pascal(name)}Option{"${name}", ${String(spec.default)}};`,
    ),
    '',
    '// Transports of one port: the u8 of a Connect record.',
    'enum class Transport : uint8_t {',
    ...TRANSPORTS.map((t, i) => `  ${pascal(t)} = ${i},`),
    '};',
    '',
    '// WebSocket: the bounds of webSocketOrigins, the close codes the engine sends.',
    `constexpr size_t kMaxWebSocketOrigins = ${WEB_SOCKET.maxOrigins};`,
    `constexpr size_t kMaxWebSocketOriginLength = ${WEB_SOCKET.maxOriginLength};`,
    'enum class WsCloseCode : uint16_t {',
    ...enumerators(WsCloseCode),
    '};',
    '',
    '// The stats array the binding hands to JS: these counters, then the closes by reason, then one',
    '// block of ThreadStatsField per IO thread.',
    'enum class StatsField : size_t {',
    ...STATS_FIELDS.map((field, i) => `  ${pascal(field)} = ${i},`),
    '};',
    `constexpr size_t kStatsFieldCount = ${STATS_FIELDS.length};`,
    'constexpr size_t kStatsLength = kStatsFieldCount + kCloseReasonCount;',
    'enum class ThreadStatsField : size_t {',
    ...THREAD_STATS_FIELDS.map((field, i) => `  ${pascal(field)} = ${i},`),
    '};',
    `constexpr size_t kThreadStatsFieldCount = ${THREAD_STATS_FIELDS.length};`,
    '',
    '}  // namespace iocpnet',
    '',
  ];
  return lines.join('\n');
}

if (require.main === module) {
  // Compiled to dist/scripts/codegen/: the repository root is three folders up.
  const target = path.resolve(__dirname, '..', '..', '..', CONTRACT_HEADER);
  fs.writeFileSync(target, renderContractHeader());
  console.log(`codegen: wrote ${path.relative(process.cwd(), target)}`);
}
