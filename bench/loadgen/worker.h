#pragma once

#include <netinet/in.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "histogram.h"
#include "options.h"
#include "wire.h"

namespace loadgen {

int64_t nowNs();

// The timeline every thread follows; written by the main thread, read by the
// workers. Times are CLOCK_MONOTONIC nanoseconds, 0 until set.
struct Shared {
  std::atomic<int64_t> warmupStart{0};
  std::atomic<int64_t> measureStart{0};
  std::atomic<int64_t> measureEnd{0};
  std::atomic<bool> stop{false};
  // Connections that finished their setup (connect, and login and enter
  // where the scenario needs them), and those that gave up.
  std::atomic<int> ready{0};
  std::atomic<int> failed{0};
};

// Per-thread counters, summed after the run. "Window" counts only events
// inside [measureStart, measureEnd).
struct Counters {
  uint64_t windowCompleted = 0;  // echo replies, chat notifies, connect cycles
  uint64_t windowRequests = 0;   // echo packets, chats sent
  uint64_t windowPacketsIn = 0;
  uint64_t windowBytesIn = 0;
  uint64_t windowBytesOut = 0;
  uint64_t connectErrors = 0;  // connect() failed or was refused
  uint64_t setupRetries = 0;
  uint64_t closedByServer = 0;  // EOF or reset while the scenario did not expect it
  uint64_t protocolErrors = 0;  // a bad header from the server
  uint64_t requestErrors = 0;   // a response with a non-zero result
  uint64_t timeouts = 0;
  uint64_t pingsSent = 0;
  uint64_t pongs = 0;
  std::array<uint64_t, kDisconnectReasonSlots> disconnectNotify{};
  int lastErrno = 0;
  int lastResult = 0;

  void merge(const Counters& o);
};

// One client socket. Conns live in their Worker's vector for the whole run
// (a scenario may reuse one for a new socket), so pointers stay valid.
struct Conn {
  int fd = -1;
  uint32_t index = 0;  // global: names the user, picks the room and source address
  uint8_t state = 0;   // the scenario's state machine
  bool connecting = false;
  bool dirty = false;         // queued in the worker's flush list
  bool writeBlocked = false;  // the kernel buffer was full; wait for EPOLLOUT
  uint32_t cycle = 0;
  int retries = 0;
  int64_t stamp = 0;  // scenario: start of the current request or cycle
  int64_t nextPingAt = 0;
  std::vector<uint8_t> pending;  // a packet (or a frame, or the HTTP response) split across reads
  // WebSocket (Options::webSocket): Handshake until the 101 is read.
  enum class Ws : uint8_t { Off, Handshake, Open };
  Ws ws = Ws::Off;
  size_t wsFramed = 0;            // bytes of out already framed (the rest is packets queued since)
  uint32_t maskSeed = 0;          // the next masking key comes from here
  std::vector<uint8_t> wsStream;  // binary payload of a packet split across frames
  std::vector<uint8_t> out;       // packets queued since the last flush
  size_t outOffset = 0;
  char userId[kUserIdSize] = {};
  uint8_t userIdLength = 0;
};

class Worker;

// What a scenario does on its worker's thread. One instance per worker,
// so it needs no locks.
class Scenario {
 public:
  virtual ~Scenario() = default;
  virtual void begin(Worker& w, int64_t now) = 0;
  virtual void onConnected(Worker& w, Conn& c, int64_t now) = 0;
  virtual void onPacket(Worker& w, Conn& c, uint16_t id, const uint8_t* body, size_t length, int64_t now) = 0;
  // The socket ended (eof: the peer closed; otherwise an error); c.fd is -1 now.
  virtual void onClosed(Worker& w, Conn& c, bool eof, int64_t now) = 0;
  // Runs after every batch of socket events, outside any socket callback,
  // so it may start new sockets.
  virtual void onTick(Worker& w, int64_t now) = 0;
  // How long epoll may sleep when nothing happens.
  virtual int idleWaitMs() const { return 20; }
};

// One epoll loop on its own thread, owning its connections.
class Worker {
 public:
  Worker(int id, const Options& options, Shared& shared, std::unique_ptr<Scenario> scenario);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void run();

  // For scenarios.
  Conn& addConn(uint32_t index);
  std::vector<std::unique_ptr<Conn>>& conns() { return conns_; }
  // Starts a non-blocking connect; false (counted) if it failed at once.
  bool connect(Conn& c);
  // Queues one packet and returns where its body goes; sent at the end of the batch.
  uint8_t* append(Conn& c, uint16_t packetId, size_t bodyLength);
  void send(Conn& c, uint16_t packetId, const void* body, size_t bodyLength);
  void shutdownWrite(Conn& c);
  // Closes the socket without calling onClosed.
  void close(Conn& c);
  bool inWindow(int64_t t) const { return t >= windowStart_ && t < windowEnd_; }
  bool warmupStarted() const { return warmupStart_ != 0; }
  int64_t warmupStart() const { return warmupStart_; }

  const int id;
  const Options& options;
  Shared& shared;
  Counters counters;
  LatencyHistogram latency;
  // chat: from a chat's send to each of its notifies at every member (the sender's own included).
  LatencyHistogram delivery;

 private:
  void handleEvent(Conn& c, uint32_t events, int64_t now);
  void finishConnect(Conn& c, int64_t now);
  void readAll(Conn& c, int64_t now);
  // Returns the bytes consumed; stops early if the connection was closed.
  size_t parse(Conn& c, const uint8_t* data, size_t size, int64_t now);
  // WebSocket: the 101, then server frames; their payload goes through parse.
  size_t parseWebSocket(Conn& c, const uint8_t* data, size_t size, int64_t now);
  size_t parseFrames(Conn& c, const uint8_t* data, size_t size, int64_t now);
  void parsePayload(Conn& c, const uint8_t* data, size_t size, int64_t now);
  // Wraps the packets queued since the last flush in one masked binary frame.
  void frameQueued(Conn& c);
  void dispatch(Conn& c, uint16_t id, const uint8_t* body, size_t length, int64_t now);
  void flush(Conn& c, int64_t now);
  void fail(Conn& c, bool eof, int err, int64_t now);
  void refreshTimeline();

  std::unique_ptr<Scenario> scenario_;
  int epoll_ = -1;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<Conn*> dirty_;
  std::vector<uint8_t> readBuffer_;
  // One address per port of options.ports; connection i goes to servers_[i % size].
  std::vector<sockaddr_in> servers_;
  int64_t warmupStart_ = 0;
  int64_t windowStart_ = INT64_MAX;
  int64_t windowEnd_ = INT64_MAX;
  bool loopback_ = false;
};

}  // namespace loadgen
