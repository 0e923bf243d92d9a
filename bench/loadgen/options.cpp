#include "options.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "wire.h"

namespace loadgen {

namespace {

const char* const kUsage =
    "usage: iocpnet-loadgen --scenario echo|chat|connect|idle --port P [options]\n"
    "\n"
    "Drives an iocpnet server over TCP with epoll and prints one JSON object\n"
    "on stdout. Progress lines on stderr start with '@'.\n"
    "\n"
    "  --host ADDR             server IPv4 address (127.0.0.1)\n"
    "  --port P                server port (--port or --ports is required)\n"
    "  --ports P1,P2,...       several servers on the host: connection i goes to port i mod count\n"
    "  --threads N             epoll threads (1)\n"
    "  --connections N         connections held (echo, chat, idle) or parallel cycles (connect), < 10^6 (100)\n"
    "  --warmup S              seconds before measuring (2)\n"
    "  --duration S            seconds measured (5)\n"
    "  --setup-timeout S       give up connecting after this long (60)\n"
    "  --setup-concurrency N   connections being set up at once per thread (256)\n"
    "  --source-addresses N    bind to 127.0.0.1..N for loopback targets, 0 = no bind (4)\n"
    "  --inflight K            echo: packets in flight per connection (1)\n"
    "  --body-size B           echo: body bytes, 8..8000 (32; 8..64 with --ping 1)\n"
    "  --ping 0|1              echo: send PING and time the engine's PONG instead of an application packet (0)\n"
    "  --room-users R          chat, idle: users per room (10)\n"
    "  --start-room N          first room number (0)\n"
    "  --rooms N               connect: rooms the cycles use (10)\n"
    "  --rate X                chat: chats/s per user, 0 = closed loop (0)\n"
    "  --message-size B        chat: message bytes, 16..256 (32)\n"
    "  --id-prefix S           start of every user id, 1..4 characters [0-9A-Za-z_] (u)\n"
    "  --ping-ms MS            keep-alive PING period, 0 = none (0)\n"
    "  --cycle-timeout-ms MS   connect: abandon a cycle after this long (10000)\n"
    "  --transport T           tcp (raw framing) or websocket (upgrade, then masked binary frames) (tcp)\n";

[[noreturn]] void fail(const char* format, const char* a, const char* b = "") {
  std::fprintf(stderr, "iocpnet-loadgen: ");
  std::fprintf(stderr, format, a, b);
  std::fprintf(stderr, "\n\n%s", kUsage);
  std::exit(2);
}

double number(const char* name, const char* text, double min, double max) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !std::isfinite(v)) fail("%s needs a number, got '%s'", name, text);
  if (v < min || v > max) fail("%s is out of range: %s", name, text);
  return v;
}

int integer(const char* name, const char* text, int min, int max) {
  const double v = number(name, text, min, max);
  if (v != std::floor(v)) fail("%s needs an integer, got '%s'", name, text);
  return static_cast<int>(v);
}

}  // namespace

const char* scenarioName(ScenarioKind kind) {
  switch (kind) {
    case ScenarioKind::Echo:
      return "echo";
    case ScenarioKind::Chat:
      return "chat";
    case ScenarioKind::Connect:
      return "connect";
    case ScenarioKind::Idle:
      return "idle";
  }
  return "?";
}

Options parseOptions(int argc, char** argv) {
  Options o;
  bool havePort = false;
  for (int i = 1; i < argc; ++i) {
    const char* key = argv[i];
    if (std::strcmp(key, "--help") == 0 || std::strcmp(key, "-h") == 0) {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) fail("%s needs a value%s", key);
    const char* value = argv[++i];
    if (std::strcmp(key, "--scenario") == 0) {
      if (std::strcmp(value, "echo") == 0) o.scenario = ScenarioKind::Echo;
      else if (std::strcmp(value, "chat") == 0) o.scenario = ScenarioKind::Chat;
      else if (std::strcmp(value, "connect") == 0) o.scenario = ScenarioKind::Connect;
      else if (std::strcmp(value, "idle") == 0) o.scenario = ScenarioKind::Idle;
      else fail("unknown scenario '%s'%s", value);
    } else if (std::strcmp(key, "--host") == 0) {
      o.host = value;
    } else if (std::strcmp(key, "--port") == 0) {
      o.port = static_cast<uint16_t>(integer(key, value, 1, 65535));
      o.ports.assign(1, o.port);
      havePort = true;
    } else if (std::strcmp(key, "--ports") == 0) {
      o.ports.clear();
      std::string list = value;
      size_t at = 0;
      while (at <= list.size()) {
        size_t comma = list.find(',', at);
        if (comma == std::string::npos) comma = list.size();
        const std::string one = list.substr(at, comma - at);
        if (o.ports.size() >= 64) fail("--ports takes at most 64 ports, got '%s'%s", value);
        o.ports.push_back(static_cast<uint16_t>(integer(key, one.c_str(), 1, 65535)));
        at = comma + 1;
      }
      o.port = o.ports.front();
      havePort = true;
    } else if (std::strcmp(key, "--threads") == 0) {
      o.threads = integer(key, value, 1, 64);
    } else if (std::strcmp(key, "--connections") == 0) {
      o.connections = integer(key, value, 1, 999999);
    } else if (std::strcmp(key, "--warmup") == 0) {
      o.warmupSeconds = number(key, value, 0, 3600);
    } else if (std::strcmp(key, "--duration") == 0) {
      o.durationSeconds = number(key, value, 0.1, 3600);
    } else if (std::strcmp(key, "--setup-timeout") == 0) {
      o.setupTimeoutSeconds = number(key, value, 0.1, 3600);
    } else if (std::strcmp(key, "--setup-concurrency") == 0) {
      o.setupConcurrency = integer(key, value, 1, 100000);
    } else if (std::strcmp(key, "--source-addresses") == 0) {
      o.sourceAddresses = integer(key, value, 0, 254);
    } else if (std::strcmp(key, "--inflight") == 0) {
      o.inflight = integer(key, value, 1, 10000);
    } else if (std::strcmp(key, "--body-size") == 0) {
      o.bodySize = integer(key, value, 8, 8000);
    } else if (std::strcmp(key, "--ping") == 0) {
      o.ping = integer(key, value, 0, 1) == 1;
    } else if (std::strcmp(key, "--room-users") == 0) {
      o.roomUsers = integer(key, value, 1, 100000);
    } else if (std::strcmp(key, "--start-room") == 0) {
      o.startRoom = integer(key, value, -1000000000, 1000000000);
    } else if (std::strcmp(key, "--rooms") == 0) {
      o.rooms = integer(key, value, 1, 1000000);
    } else if (std::strcmp(key, "--rate") == 0) {
      o.ratePerUser = number(key, value, 0, 1e6);
    } else if (std::strcmp(key, "--message-size") == 0) {
      o.messageSize = integer(key, value, 16, static_cast<int>(kChatMessageSize) - 1);
    } else if (std::strcmp(key, "--id-prefix") == 0) {
      const size_t n = std::strlen(value);
      if (n < 1 || n > 4) fail("--id-prefix must be 1..4 characters, got '%s'%s", value);
      for (size_t k = 0; k < n; ++k) {
        const char ch = value[k];
        const bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
        if (!ok) fail("--id-prefix may hold only 0-9, A-Z, a-z and _, got '%s'%s", value);
      }
      o.idPrefix = value;
    } else if (std::strcmp(key, "--ping-ms") == 0) {
      o.pingMs = integer(key, value, 0, 3600000);
    } else if (std::strcmp(key, "--cycle-timeout-ms") == 0) {
      o.cycleTimeoutMs = integer(key, value, 1, 3600000);
    } else if (std::strcmp(key, "--transport") == 0) {
      if (std::strcmp(value, "tcp") == 0) o.webSocket = false;
      else if (std::strcmp(value, "websocket") == 0) o.webSocket = true;
      else fail("--transport must be tcp or websocket, got '%s'%s", value);
    } else {
      fail("unknown option '%s'%s", key);
    }
  }
  if (!havePort) fail("--port or --ports is required%s%s", "");
  // A PING body is 0..64 bytes (PROTOCOL.md section 2).
  if (o.ping && o.bodySize > 64) fail("--body-size must be at most 64 with --ping 1%s%s", "");
  return o;
}

}  // namespace loadgen
