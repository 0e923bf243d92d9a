#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace loadgen {

enum class ScenarioKind { Echo, Chat, Connect, Idle };

// Command-line settings; filled once by parseOptions on the main thread and
// read-only afterwards, so every worker thread may read it without locks.
struct Options {
  ScenarioKind scenario = ScenarioKind::Echo;
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  // Connection i goes to ports[i % ports.size()]: one port (--port), or several (--ports) for the nodes of a
  // cluster on one host, so that a room's members are spread over every node.
  std::vector<uint16_t> ports;
  int threads = 1;
  // echo, chat, idle: connections held for the run; connect: parallel cycles.
  int connections = 100;
  double warmupSeconds = 2;
  double durationSeconds = 5;
  double setupTimeoutSeconds = 60;
  // Connections in the middle of connect/login/enter at once, per thread.
  int setupConcurrency = 256;
  // Source addresses 127.0.0.1..N for loopback targets; 0 binds none.
  int sourceAddresses = 4;

  // echo
  int inflight = 1;
  int bodySize = 32;
  // Sends PING (answered by the engine with PONG) instead of an application packet.
  bool ping = false;

  // chat, idle, connect
  int roomUsers = 10;
  int startRoom = 0;
  // connect: rooms the parallel cycles spread over.
  int rooms = 10;
  // chat: chats a second per user; 0 is closed loop (one chat outstanding per user).
  double ratePerUser = 0;
  int messageSize = 32;

  // Starts every user id, so that runs against one long-lived server never
  // collide with the users of a previous run that the server is still logging out.
  std::string idPrefix = "u";

  // Keep-alive PING period for held connections; 0 sends none.
  int pingMs = 0;
  // connect: a cycle that takes longer than this is abandoned and counted.
  int cycleTimeoutMs = 10000;

  // Every connection as a WebSocket client (RFC 6455): the HTTP upgrade
  // first, then the packets in masked binary frames, one frame per flush.
  bool webSocket = false;
};

// Parses argv; on error or --help prints to stderr and exits.
Options parseOptions(int argc, char** argv);

const char* scenarioName(ScenarioKind kind);

}  // namespace loadgen
