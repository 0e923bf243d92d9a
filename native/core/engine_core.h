// The platform-neutral half of an engine: connection life cycle, framing,
// PING/PONG, limits, send queues, the inbound queue to JS and the commands
// from JS. A platform engine (native/uv, native/iocp) derives from EngineCore
// through EngineBase (engine_base.h), owns the sockets, loops and threads, and
// implements the hooks below.
//
// Threads: methods marked "JS thread" are called by the binding on the JS
// main thread; "IO thread" methods run on the IO thread that owns the
// connection (or, for per-thread methods, that thread). The core never calls
// into Node.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "chunk.h"
#include "connection_table.h"
#include "event_batch.h"
#include "outbound_batch.h"
#include "packet_assembler.h"
#include "protocol.h"
#include "send_queue.h"
#include "stats.h"
#include "ws_frame.h"
#include "ws_handshake.h"

namespace iocpnet {

// Defaults and ranges come from the contract (contract.h); the server passes
// its own ioThreads (cores - 1).
struct EngineOptions {
  uint32_t ioThreads = kIoThreadsOption.defaultValue;
  uint32_t maxConnections = kMaxConnectionsOption.defaultValue;
  uint32_t maxPacketSize = kMaxPacketSizeOption.defaultValue;
  uint32_t idleTimeoutMs = kIdleTimeoutMsOption.defaultValue;
  uint32_t maxSendQueueBytes = kMaxSendQueueBytesOption.defaultValue;
  // Flow control; the core holds high below maxSendQueueBytes and low below high.
  uint32_t sendQueueHighWaterBytes = kSendQueueHighWaterBytesOption.defaultValue;
  uint32_t sendQueueLowWaterBytes = kSendQueueLowWaterBytesOption.defaultValue;
  uint32_t maxPendingBytes = kMaxPendingBytesOption.defaultValue;
  uint32_t closeTimeoutMs = kCloseTimeoutMsOption.defaultValue;
  // SO_REUSEPORT on the listening socket; an engine without it fails the listen with ENOTSUP.
  bool reusePort = kReusePortOption.defaultValue;
  // WebSocket on the same port (lib/contract.ts TRANSPORTS, ENGINE_FLAGS and WEB_SOCKET).
  bool webSocket = kWebSocketOption.defaultValue;
  uint32_t maxUpgradeRequestBytes = kMaxUpgradeRequestBytesOption.defaultValue;
  uint32_t upgradeTimeoutMs = kUpgradeTimeoutMsOption.defaultValue;
  uint32_t transportDetectMs = kTransportDetectMsOption.defaultValue;
  std::vector<std::string> webSocketOrigins;  // empty: any Origin
};

// A WebSocket connection's state, made when its first bytes are `GET `.
struct WebSocketState {
  WebSocketState(size_t maxRequest, uint64_t maxMessage) : upgrade(maxRequest), frames(maxMessage) {}
  UpgradeReader upgrade;
  WsFrameParser frames;
  // The code of the CLOSE frame the close sends: 0 until a cause picks one
  // (else it follows from the notify); kNoCloseCode sends a CLOSE without code.
  static constexpr uint16_t kNoCloseCode = 1005;
  uint16_t closeCode = 0;
  bool closeSent = false;
};

// Why an engine call failed, with a stable code such as EADDRINUSE.
struct EngineError {
  std::string code;
  std::string message;
  explicit operator bool() const noexcept { return !code.empty(); }
};

// The core's state of one connection; a platform connection type derives from it.
struct ConnectionCore {
  enum class Phase : uint8_t {
    Free,     // no socket
    Pending,  // webSocket on: not open for JS until its transport is known (first bytes, or the upgrade)
    Open,     // reading and writing
    Closing,  // flushing, then FIN, then waiting for the peer's FIN or the deadline
    Dropping  // the socket is being closed; waiting for the platform to confirm
  };
  // Atomic because a slot's object moves between IO threads: the next socket
  // in the slot may be adopted by another thread while the previous owner
  // still checks a command for the old id against it.
  std::atomic<uint32_t> id{0};
  uint16_t thread = 0;
  Phase phase = Phase::Free;
  bool writeInFlight = false;
  bool shutdownRequested = false;
  bool shutdownDone = false;
  bool peerEnded = false;
  // Reading stopped because too many bytes wait for JS (maxPendingBytes).
  bool readPaused = false;
  // Reading stopped by flow control: queued() passed the high-water mark.
  // Either flag keeps the socket from being read.
  bool flowPaused = false;
  bool writeScheduled = false;
  // The engine began a graceful close and reported it; until JS releases the
  // connection, the replies its handlers queue before that are still taken.
  bool awaitingRelease = false;
  // JS destroyed the connection before it released it: the release drops it.
  bool dropOnRelease = false;
  NotifyCode pendingNotify = NotifyCode::None;
  // The reason counted for the close; a Release may name another one (the
  // application closed it before it saw the engine's own close).
  CloseReason closeReason = CloseReason::Closed;
  uint64_t lastActivityMs = 0;
  uint64_t closeDeadlineMs = 0;
  size_t listIndex = 0;  // position in its IO thread's list
  size_t flowIndex = 0;  // position in its IO thread's flowPaused list, while flowPaused
  // Bytes of application packets read from this connection whose batch JS
  // has not handled yet: their replies are still to come. They are the
  // packets of hand-over number unhandledSeq and earlier (IoThreadCore).
  uint32_t unhandledBytes = 0;
  uint64_t unhandledSeq = 0;
  PacketAssembler assembler;
  SendQueue sendq;
  // Transport detection (Phase::Pending): the first bytes while they may
  // still be `GET `, then the upgrade request. The peer's address waits here
  // for the Connect record.
  enum class Detect : uint8_t { Sniffing, Handshake };
  Detect detect = Detect::Sniffing;
  uint8_t sniffLength = 0;
  uint8_t sniff[4] = {};
  uint64_t pendingDeadlineMs = 0;
  Transport transport = Transport::Tcp;
  uint16_t remotePort = 0;
  std::string remoteAddress;
  std::unique_ptr<WebSocketState> ws;  // WebSocket connections only
};

// A command for one IO thread.
struct IoCommand {
  enum class Kind : uint8_t {
    Adopt,
    Send,
    Close,
    Destroy,
    Release,
    Resume,
    Handled,
    StopAccepting,
    Shutdown,
    CloseAll
  };
  Kind kind;
  uint32_t id = 0;
  uint16_t notifyCode = 0;
  CloseReason reason = CloseReason::Closed;  // Release: the reason JS reported
  bool force = false;
  Slice slice;
  // Send of a broadcast: its receivers on this thread, in place of id. One
  // command per IO thread and broadcast, not one per receiver, so that what
  // waits in an inbox costs 4 bytes a receiver.
  std::vector<uint32_t> ids;
  intptr_t socket = -1;  // Adopt: the accepted socket
  uint16_t remotePort = 0;
  std::string remoteAddress;
};

// Commands waiting for one IO thread. Any thread posts; the IO thread takes.
class Inbox {
 public:
  // Appends and wakes the thread; returns false (dropping the commands) once
  // the thread has stopped taking commands.
  bool post(std::vector<IoCommand>& commands, const std::function<void()>& wake);
  bool post(IoCommand command, const std::function<void()>& wake);
  void take(std::vector<IoCommand>& out);
  // The IO thread stops taking commands (before it closes its wake handle).
  void close();

 private:
  std::mutex mutex_;
  std::vector<IoCommand> commands_;
  bool closed_ = false;
};

// Per-IO-thread state kept by the core.
struct IoThreadCore {
  uint16_t index = 0;
  // This thread's figures; written here only, read by the JS thread.
  ThreadStats stats;
  Inbox inbox;
  EventBatch events;  // records of this loop iteration, appended to the queue at its end
  std::vector<ConnectionCore*> connections;
  std::vector<ConnectionCore*> dirty;       // connections with sends to start at the end of a step
  std::vector<ConnectionCore*> flowPaused;  // connections whose reads flow control stopped
  // Hand-overs of this thread's events to the inbound queue, numbered in it.
  uint64_t appendCount = 0;
  // The hand-overs whose records JS has handled: stored by the JS thread
  // after the replies to them were submitted; handled is this thread's copy,
  // taken before the commands that carry those replies.
  std::atomic<uint64_t> handledSeq{0};
  uint64_t handled = 0;
  // A flow-paused connection waits for handledSeq: the JS thread then posts Handled.
  std::atomic<bool> awaitsHandled{false};
  std::vector<IoCommand> commandScratch;
  std::vector<uint8_t> wsScratch;  // unmasked WebSocket payload, piece by piece
  bool shuttingDown = false;
  // Graceful shutdown, first phase: packets read from now on are discarded,
  // so that no packet reaches JS after any thread's shutdown disconnects.
  bool draining = false;
  bool finished = false;
};

class EngineCore {
 public:
  explicit EngineCore(const EngineOptions& options);
  virtual ~EngineCore();
  EngineCore(const EngineCore&) = delete;
  EngineCore& operator=(const EngineCore&) = delete;

  const EngineOptions& options() const noexcept { return options_; }
  Stats& stats() noexcept { return stats_; }
  uint32_t openConnections() const noexcept { return open_.load(std::memory_order_relaxed); }
  // Any thread: IO thread i's figures (i below ioThreadCount()), and their sum over the threads.
  size_t ioThreadCount() const noexcept { return threads_.size(); }
  const ThreadStats& threadStats(size_t i) const noexcept { return threads_[i]->stats; }
  uint64_t total(ThreadStatsField field) const noexcept;
  // Any thread: bytes of event records queued for the JS thread and not taken yet.
  size_t pendingBytes() const noexcept { return inbound_.pendingBytes(); }

  // JS thread: binds and starts the IO threads; returns the bound port.
  virtual EngineError listen(const std::string& ip, uint16_t port, uint16_t* boundPort) = 0;
  // JS thread: sets the wake-up called (from any thread) when events wait.
  void setWake(std::function<void()> wake) { inbound_.setWake(std::move(wake)); }
  // JS thread: acts on an outbound batch; returns an error message if it is malformed.
  std::string submit(const uint8_t* data, size_t len);
  // JS thread: takes every event record waiting. Resumes paused readers.
  void drain(std::vector<uint8_t>& out);
  // JS thread: the records of the last drain() are handled and the replies
  // to them submitted. Their bytes no longer count toward flow control.
  void batchHandled();
  // JS thread: stops accepting and closes every connection (gracefully unless
  // force). The wake-up fires when every IO thread has finished.
  void shutdown(bool force);
  // JS thread: true once every IO thread has finished; join() then returns at once.
  bool finished() const noexcept;
  // JS thread: waits for the IO threads to exit.
  virtual void join() = 0;
  bool running() const noexcept { return started_; }

 protected:
  // Platform hooks, called on the connection's IO thread.
  virtual ConnectionCore* connectionAt(uint32_t slot) = 0;
  // Adopts an accepted socket into the connection object of slot and starts
  // reading. Sets *ok to false if the socket could not be set up; the core
  // then closes it through closeSocket without reporting it to JS.
  virtual ConnectionCore* adoptSocket(IoThreadCore& thread, uint32_t slot, intptr_t socket, bool* ok) = 0;
  // Starts one write of what sendq has pending; onWriteDone follows.
  virtual void startWrite(ConnectionCore& c) = 0;
  // Sends FIN once the write in flight is done; onShutdownDone follows.
  virtual void shutdownSend(ConnectionCore& c) = 0;
  // Closes the socket, cancelling what is pending; onSocketClosed follows.
  virtual void closeSocket(ConnectionCore& c) = 0;
  virtual void pauseReading(ConnectionCore& c) = 0;
  virtual void resumeReading(ConnectionCore& c) = 0;
  // Wakes IO thread i to take its inbox.
  virtual void wakeThread(uint16_t i) = 0;
  // IO thread 0: stop the acceptor.
  virtual void stopAccepting(IoThreadCore& thread) = 0;
  // The IO thread has no connection left after shutdown: release its handles.
  virtual void finishThread(IoThreadCore& thread) = 0;
  virtual uint64_t nowMs(IoThreadCore& thread) = 0;
  // Work waits for endStep: the loop must not block before it runs.
  virtual void stepPending(IoThreadCore& thread) = 0;

  // Events for the platform engine, on IO threads.
  void onAccepted(intptr_t socket, const std::string& address, uint16_t port, IoThreadCore& acceptor);
  void onData(ConnectionCore& c, const uint8_t* data, size_t len);
  void onPeerEnded(ConnectionCore& c);
  void onReadError(ConnectionCore& c);
  void onWriteDone(ConnectionCore& c, bool ok);
  void onShutdownDone(ConnectionCore& c);
  void onSocketClosed(ConnectionCore& c);
  void onTimer(IoThreadCore& thread);
  // Runs the thread's commands; returns after acting on all of them.
  void runCommands(IoThreadCore& thread);
  // End of a loop iteration: starts the writes the step queued and hands
  // the step's events to JS.
  void endStep(IoThreadCore& thread);
  // Timer period: fine enough for idleTimeoutMs and closeTimeoutMs.
  uint64_t tickMs() const noexcept;
  // How many bytes of bufferSize the next read of c may take. While the bytes
  // waiting for JS are at maxPendingBytes, only a few: enough for the PINGs
  // the connection sends meanwhile, which are still answered; onData pauses
  // the connection once such a read carries more than PINGs.
  size_t readLimit(const ConnectionCore& c, size_t bufferSize);
  // A reader paused for space; it is resumed after the next drain.
  void notePaused(ConnectionCore& c);
  // Sends DISCONNECT_NOTIFY(code) on a socket that never became a
  // connection (server full, or shutting down) and closes it.
  virtual void rejectSocket(intptr_t socket, NotifyCode code) = 0;

  IoThreadCore& threadCore(uint16_t i) { return *threads_[i]; }
  size_t threadCount() const noexcept { return threads_.size(); }
  std::function<void()> wakerFor(uint16_t i) {
    return [this, i] { wakeThread(i); };
  }
  void markStarted() noexcept { started_ = true; }
  // The platform calls this from the IO thread after its loop ended.
  void threadExited(IoThreadCore& thread);

 private:
  // Drop: close now, dropping what is queued. Graceful: send what is queued,
  // then the notify, then FIN. AfterRelease: as Graceful, once JS has handled
  // the Disconnect record (closes the engine begins while JS may still reply).
  enum class CloseMode : uint8_t { Drop, Graceful, AfterRelease };
  void beginClose(ConnectionCore& c, CloseReason reason, NotifyCode notify, CloseMode mode);
  void release(ConnectionCore& c);
  // JS closed a connection whose engine-begun close it had not seen yet: the
  // close counts under JS's reason, as JS reports it.
  void recount(ConnectionCore& c, CloseReason reason);
  void queueNotify(ConnectionCore& c, NotifyCode notify);
  void continueClose(ConnectionCore& c);
  void drop(ConnectionCore& c);
  void enqueue(ConnectionCore& c, Slice slice, bool countPacket = true);
  // Flow control: what counts as c's queue, and the pause and resume at the marks.
  size_t queued(const ConnectionCore& c) const;
  void checkHighWater(ConnectionCore& c);
  void checkLowWater(ConnectionCore& c);
  void endFlowPause(ConnectionCore& c);
  void awaitHandled(ConnectionCore& c);
  // Hands the thread's events of this step to JS.
  void handOver(IoThreadCore& thread);
  void enqueueSystemPacket(ConnectionCore& c, uint16_t packetId, const uint8_t* body, size_t bodyLength);
  // Reads: what one read delivered to JS, for the pause and flow-control checks after it.
  struct ReadState {
    bool full = false;
    bool forJs = false;
    uint32_t delivered = 0;
  };
  // Feeds packet-stream bytes; false once the connection is no longer open.
  bool feedPackets(ConnectionCore& c, IoThreadCore& t, const uint8_t* data, size_t len, ReadState& rs);
  void finishRead(ConnectionCore& c, IoThreadCore& t, const ReadState& rs);
  void readWebSocket(ConnectionCore& c, IoThreadCore& t, const uint8_t* data, size_t len, ReadState& rs);
  // Transport detection and the upgrade (Phase::Pending).
  void readPending(ConnectionCore& c, IoThreadCore& t, const uint8_t* data, size_t len, ReadState& rs);
  void readHandshake(ConnectionCore& c, IoThreadCore& t, const uint8_t* data, size_t len, ReadState& rs);
  // Reports c to JS as open over transport.
  void open(ConnectionCore& c, IoThreadCore& t, Transport transport);
  // A connection still sniffing opens as raw TCP, with the bytes it held.
  void openAsTcp(ConnectionCore& c, IoThreadCore& t, ReadState& rs);
  // Answers an upgrade request with an HTTP error and closes; never reported to JS.
  void refuseUpgrade(ConnectionCore& c, CloseReason reason, std::string response);
  // Queues bytes as they are (HTTP responses), outside the packet counts.
  void enqueueBytes(ConnectionCore& c, const uint8_t* data, size_t len);
  // Every push onto a send queue goes through here, so the thread's SendQueueBytes gauge counts it.
  void pushSend(ConnectionCore& c, Slice slice);
  // A frame of opcode for a WebSocket connection, payload a then b.
  static Slice wsFrame(uint8_t opcode, const uint8_t* a, size_t aLength, const uint8_t* b = nullptr,
                       size_t bLength = 0);
  // Begins the close of a WebSocket connection whose frames were bad.
  void failWebSocket(ConnectionCore& c, WsFeed why);
  void markDirty(ConnectionCore& c);
  // The connection named by id if commands may still reach it.
  ConnectionCore* lookup(uint32_t id);
  void checkThreadDone(IoThreadCore& thread);
  // Closes every open connection of the thread: with a notify after JS releases it, or at once (force).
  void closeAll(IoThreadCore& thread, bool force);
  IoThreadCore& threadOf(ConnectionCore& c) { return *threads_[c.thread]; }

  EngineOptions options_;
  Stats stats_;
  InboundQueue inbound_;
  std::vector<std::unique_ptr<IoThreadCore>> threads_;
  std::atomic<uint32_t> open_{0};
  std::atomic<uint32_t> exited_{0};
  std::atomic<uint32_t> drained_{0};  // IO threads past the first phase of a graceful shutdown
  std::atomic<uint32_t> nextThread_{0};
  // JS thread only: each IO thread's last hand-over in what drain() took.
  std::vector<uint64_t> drainedSeq_;
  bool started_ = false;
  bool shuttingDown_ = false;  // JS thread only

 protected:
  ConnectionTable table_;
  // JS thread only: per-thread commands of one submit.
  std::vector<std::vector<IoCommand>> routing_;
};

// Each engine folder under native/ defines these two; the build compiles the
// one folder it selects for the platform (CMakeLists.txt).
// Creates the engine.
std::unique_ptr<EngineCore> createEngine(const EngineOptions& options);
// The engine's name as JS sees it (the addon's `engine` export).
const char* engineName() noexcept;

}  // namespace iocpnet
