// The libuv engine over real sockets on 127.0.0.1, without Node: a small
// stand-in for the JS thread drains event batches and submits outbound
// batches, as binding/native_server.cpp does. Blocking client sockets on the
// test thread play the game clients. This is also the test that
// ThreadSanitizer runs.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "../../native/core/engine_core.h"
#include "harness.h"
#include "test_util.h"
#include "ws_codec.h"

using namespace iocpnet;
using Clock = std::chrono::steady_clock;

namespace {

// Application packet ids the stand-in JS understands.
constexpr uint16_t kEcho = 100;       // echoed to the sender
constexpr uint16_t kBroadcast = 101;  // body broadcast as kBroadcastOut to every connection
constexpr uint16_t kBroadcastOut = 102;
constexpr uint16_t kKick = 103;  // kKickNotice "bye", then close with KICKED
constexpr uint16_t kKickNotice = 104;
constexpr uint16_t kDestroy = 105;  // destroyed at once
constexpr uint16_t kFlood = 106;    // kFloodOut x 64 of 8000 bytes
constexpr uint16_t kFloodOut = 107;
constexpr uint16_t kIgnored = 108;  // no reply

struct Packet {
  uint16_t id = 0;
  std::vector<uint8_t> body;
};

std::vector<uint8_t> bytesOf(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

size_t threadCount() {
  size_t n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// A blocking game client. Every wait is bounded.
class Client {
 public:
  explicit Client(uint16_t port) : Client() { connect(port); }
  // A socket not connected yet: its descriptor is taken now, connect() takes none.
  Client() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {}
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connect(uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    int one = 1;
    if (connected_) ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return connected_;
  }

  bool connected() const { return connected_; }
  // Half-close: FIN, reading goes on.
  void shutdownSend() { ::shutdown(fd_, SHUT_WR); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send(const std::vector<uint8_t>& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  bool sendPacket(uint16_t id, const std::vector<uint8_t>& body) { return send(testutil::packet(id, body)); }

  // The next packet, or false on EOF, error or timeout.
  bool read(Packet& out, int timeoutMs = 5000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
    for (;;) {
      if (buffer_.size() >= 5) {
        size_t length = readU16(buffer_.data());
        if (length >= 5 && buffer_.size() >= length) {
          out.id = readU16(buffer_.data() + 2);
          out.body.assign(buffer_.begin() + 5, buffer_.begin() + static_cast<std::ptrdiff_t>(length));
          buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(length));
          return true;
        }
      }
      if (!fill(deadline)) return false;
    }
  }
  // Reads (and keeps) until the server closes; true if it did in time.
  bool waitEof(int timeoutMs = 5000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
    while (fill(deadline)) {
    }
    return eof_;
  }
  bool eof() const { return eof_; }
  // Reads until done(buffer) holds; done consumes what it takes from the buffer.
  bool readUntil(const std::function<bool(std::vector<uint8_t>&)>& done, int timeoutMs = 5000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
    for (;;) {
      if (done(buffer_)) return true;
      if (!fill(deadline)) return done(buffer_);
    }
  }

 private:
  bool fill(Clock::time_point deadline) {
    if (eof_ || fd_ < 0) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    uint8_t tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) {
      eof_ = true;  // FIN or reset: the server is gone either way
      return false;
    }
    buffer_.insert(buffer_.end(), tmp, tmp + n);
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::vector<uint8_t> buffer_;
};

struct Event {
  InboundKind kind = InboundKind::Connect;
  uint32_t id = 0;
  uint16_t packetId = 0;
  std::vector<uint8_t> body;
  CloseReason reason = CloseReason::Closed;
  Transport transport = Transport::Tcp;
};

// The stand-in for the JS thread: the only thread that calls drain, submit
// and shutdown once it runs.
class FakeJs {
 public:
  explicit FakeJs(EngineOptions options) : engine_(createEngine(options)) {
    // Node ignores SIGPIPE at start-up and the engine relies on it: a write
    // to a peer that reset fails with EPIPE instead of killing the process.
    ::signal(SIGPIPE, SIG_IGN);
    engine_->setWake([this] {
      std::lock_guard<std::mutex> lock(mutex_);
      ++wakes_;
      cv_.notify_all();
    });
  }
  ~FakeJs() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    // Whatever is still open is torn down as at process exit.
    engine_.reset();
  }

  uint16_t start() {
    uint16_t port = 0;
    EngineError error = engine_->listen("127.0.0.1", 0, &port);
    if (error) std::fprintf(stderr, "listen: %s %s\n", error.code.c_str(), error.message.c_str());
    thread_ = std::thread([this] { loop(); });
    return port;
  }

  // Runs fn on the JS thread and waits for it.
  void call(std::function<void(EngineCore&)> fn) {
    bool done = false;
    std::unique_lock<std::mutex> lock(mutex_);
    tasks_.push_back([&, fn] {
      fn(*engine_);
      std::lock_guard<std::mutex> l(mutex_);
      done = true;
      cv_.notify_all();
    });
    cv_.notify_all();
    if (!cv_.wait_for(lock, std::chrono::seconds(10), [&] { return done; })) {
      // The task still refers to this frame: there is no safe way on.
      std::fprintf(stderr, "the JS stand-in did not run a task within 10 s\n");
      std::abort();
    }
  }
  Stats& stats() { return engine_->stats(); }  // relaxed atomics: any thread
  uint64_t total(ThreadStatsField field) { return engine_->total(field); }
  const EngineCore& engine() const { return *engine_; }

  // Waits until pred(events) holds; bounded.
  bool waitFor(const std::function<bool()>& pred, int timeoutMs = 5000) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeoutMs), pred);
  }
  // The caller holds no lock: these take it.
  std::vector<Event> events() {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }
  std::vector<uint32_t> connectedIds() {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::vector<uint32_t>(open_.begin(), open_.end());
  }
  // Off: the stand-in never releases a connection whose close the engine began.
  void setReleasing(bool on) {
    std::lock_guard<std::mutex> lock(mutex_);
    releases_ = on;
  }
  void setDraining(bool on) {
    std::lock_guard<std::mutex> lock(mutex_);
    draining_ = on;
    cv_.notify_all();
  }
  // For waitFor predicates, which run with the lock held.
  size_t connectsLocked() const { return connects_; }
  size_t openLocked() const { return open_.size(); }
  bool finishedLocked() const { return finished_; }
  size_t countLocked(InboundKind kind) const {
    size_t n = 0;
    for (const Event& e : events_) n += e.kind == kind;
    return n;
  }
  size_t largestBatchLocked() const { return largestBatch_; }
  int submitErrorsLocked() const { return submitErrors_; }

 private:
  void loop() {
    std::vector<uint8_t> batch;
    bool finishedSeen = false;
    for (;;) {
      std::vector<std::function<void()>> tasks;
      bool draining;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait_for(lock, std::chrono::milliseconds(20),
                     [&] { return stop_ || wakes_ != seenWakes_ || !tasks_.empty(); });
        if (stop_) return;
        seenWakes_ = wakes_;
        tasks.swap(tasks_);
        draining = draining_;
      }
      for (auto& task : tasks) task();
      if (!draining) continue;
      engine_->drain(batch);
      handle(batch);
      engine_->batchHandled();
      if (!finishedSeen && engine_->finished()) {
        finishedSeen = true;
        engine_->join();
        engine_->drain(batch);
        handle(batch);
        std::lock_guard<std::mutex> lock(mutex_);
        finished_ = true;
        cv_.notify_all();
      }
    }
  }

  void handle(const std::vector<uint8_t>& b) {
    if (b.empty()) return;
    std::vector<uint8_t> out;
    std::lock_guard<std::mutex> lock(mutex_);
    largestBatch_ = std::max(largestBatch_, b.size());
    std::vector<testutil::InboundRecord> records;
    if (!testutil::decodeInbound(b, records)) {
      std::fprintf(stderr, "the engine wrote a malformed event batch\n");
      std::abort();
    }
    for (testutil::InboundRecord& r : records) {
      Event e;
      e.kind = r.kind;
      e.id = r.id;
      switch (r.kind) {
        case InboundKind::Connect:
          ++connects_;
          e.transport = static_cast<Transport>(r.transport);
          open_.insert(e.id);
          break;
        case InboundKind::Packet:
          e.packetId = r.portOrPacketId;
          e.body.assign(r.payload.begin(), r.payload.end());
          respond(e, out);
          break;
        case InboundKind::Disconnect:
          e.reason = static_cast<CloseReason>(r.reason);
          open_.erase(e.id);
          // As lib/backends/native/native-backend.ts: after the replies
          // queued so far, the engine may go on with a close it began.
          if (releases_ && r.awaitsRelease) {
            out.push_back(static_cast<uint8_t>(OutboundOp::Release));
            testutil::appendU32(out, e.id);
            out.push_back(r.reason);
          }
          break;
      }
      events_.push_back(std::move(e));
    }
    if (!out.empty() && !engine_->submit(out.data(), out.size()).empty()) ++submitErrors_;
    cv_.notify_all();
  }

  void respond(const Event& e, std::vector<uint8_t>& out) {
    auto send = [&](uint32_t id, uint16_t packetId, const std::vector<uint8_t>& body) {
      out.push_back(static_cast<uint8_t>(OutboundOp::Send));
      testutil::appendU32(out, id);
      testutil::appendPacket(out, packetId, body);
    };
    switch (e.packetId) {
      case kEcho:
        send(e.id, kEcho, e.body);
        break;
      case kBroadcast:
        out.push_back(static_cast<uint8_t>(OutboundOp::Broadcast));
        testutil::appendU32(out, static_cast<uint32_t>(open_.size()));
        for (uint32_t id : open_) testutil::appendU32(out, id);
        testutil::appendPacket(out, kBroadcastOut, e.body);
        break;
      case kKick:
        send(e.id, kKickNotice, bytesOf("bye"));
        out.push_back(static_cast<uint8_t>(OutboundOp::Close));
        testutil::appendU32(out, e.id);
        testutil::appendU16(out, static_cast<uint16_t>(NotifyCode::Kicked));
        break;
      case kDestroy:
        out.push_back(static_cast<uint8_t>(OutboundOp::Destroy));
        testutil::appendU32(out, e.id);
        break;
      case kFlood:
        for (int i = 0; i < 64; ++i) send(e.id, kFloodOut, std::vector<uint8_t>(8000, static_cast<uint8_t>(i)));
        break;
      default:
        break;
    }
  }

  std::unique_ptr<EngineCore> engine_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  uint64_t wakes_ = 0;
  uint64_t seenWakes_ = 0;
  bool stop_ = false;
  bool draining_ = true;
  bool releases_ = true;
  bool finished_ = false;
  std::vector<std::function<void()>> tasks_;
  std::vector<Event> events_;
  std::set<uint32_t> open_;
  size_t connects_ = 0;
  size_t largestBatch_ = 0;
  int submitErrors_ = 0;
};

EngineOptions smallOptions() {
  EngineOptions o;
  o.ioThreads = 2;
  o.maxConnections = 64;
  o.maxPacketSize = 8192;
  o.idleTimeoutMs = 0;
  o.closeTimeoutMs = 2000;
  return o;
}

bool isNotify(const Packet& p, NotifyCode code) {
  return p.id == kDisconnectNotifyId && p.body.size() == 2 && readU16(p.body.data()) == static_cast<uint16_t>(code);
}

}  // namespace

TEST(engine, echo_in_order_on_two_io_threads) {
  FakeJs js(smallOptions());
  uint16_t port = js.start();
  REQUIRE(port != 0);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<Client>(port));
    REQUIRE(clients.back()->connected());
  }
  CHECK(js.waitFor([&] { return js.connectsLocked() == 4; }));
  // Each client sends 50 packets in one write; sizes cover empty to large.
  for (size_t c = 0; c < clients.size(); ++c) {
    std::vector<uint8_t> stream;
    for (int i = 0; i < 50; ++i) {
      std::vector<uint8_t> body(static_cast<size_t>((i * 97) % 3000), static_cast<uint8_t>(c));
      if (!body.empty()) body[0] = static_cast<uint8_t>(i);
      testutil::appendPacket(stream, kEcho, body);
    }
    CHECK(clients[c]->send(stream));
  }
  for (size_t c = 0; c < clients.size(); ++c) {
    for (int i = 0; i < 50; ++i) {
      Packet p;
      if (!CHECK(clients[c]->read(p))) break;
      CHECK_EQ(p.id, kEcho);
      CHECK_EQ(p.body.size(), static_cast<size_t>((i * 97) % 3000));
      if (!p.body.empty()) CHECK_EQ(p.body[0], static_cast<uint8_t>(i));
    }
  }
  CHECK_EQ(js.total(ThreadStatsField::PacketsIn), uint64_t{200});
  CHECK_EQ(js.stats().accepted.load(), uint64_t{4});
  // Round robin: each IO thread has two of the connections and read their 100 packets.
  const EngineCore& engine = js.engine();
  REQUIRE(engine.ioThreadCount() == 2);
  uint64_t bytesIn = 0;
  for (size_t t = 0; t < 2; ++t) {
    CHECK_EQ(engine.threadStats(t).get(ThreadStatsField::Connections), uint64_t{2});
    CHECK_EQ(engine.threadStats(t).get(ThreadStatsField::PacketsIn), uint64_t{100});
    CHECK_EQ(engine.threadStats(t).get(ThreadStatsField::PacketsOut), uint64_t{100});
    bytesIn += engine.threadStats(t).get(ThreadStatsField::BytesIn);
  }
  CHECK_EQ(bytesIn, js.total(ThreadStatsField::BytesIn));
  CHECK(bytesIn > 200 * 4);
  // Every reply was read, so the writes are done and nothing stays queued.
  CHECK(js.waitFor([&] { return js.total(ThreadStatsField::SendQueueBytes) == 0; }, 5000));
  CHECK_EQ(js.total(ThreadStatsField::BytesOut), js.total(ThreadStatsField::BytesIn));
  clients.clear();
  CHECK(js.waitFor([&] { return js.total(ThreadStatsField::Connections) == 0; }, 5000));
  CHECK_EQ(js.engine().openConnections(), 0u);
}

TEST(engine, packets_split_byte_by_byte) {
  FakeJs js(smallOptions());
  uint16_t port = js.start();
  Client c(port);
  REQUIRE(c.connected());
  std::vector<uint8_t> stream;
  testutil::appendPacket(stream, kEcho, bytesOf("split"));
  testutil::appendPacket(stream, kEcho, {});
  testutil::appendPacket(stream, kPingId, bytesOf("p"));
  for (uint8_t byte : stream) {
    CHECK(c.send({byte}));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // The engine answers the PING itself, so the PONG may overtake the echoes
  // that go through JS; the echoes keep their order.
  std::vector<Packet> echoes;
  int pongs = 0;
  for (int i = 0; i < 3; ++i) {
    Packet p;
    if (!CHECK(c.read(p))) break;
    if (p.id == kPongId) {
      ++pongs;
      CHECK(p.body == bytesOf("p"));
    } else {
      echoes.push_back(p);
    }
  }
  CHECK_EQ(pongs, 1);
  REQUIRE_EQ(echoes.size(), size_t{2});
  CHECK_EQ(echoes[0].id, kEcho);
  CHECK(echoes[0].body == bytesOf("split"));
  CHECK_EQ(echoes[1].id, kEcho);
  CHECK(echoes[1].body.empty());
}

TEST(engine, ping_is_answered_by_the_engine) {
  FakeJs js(smallOptions());
  uint16_t port = js.start();
  Client c(port);
  REQUIRE(c.connected());
  std::vector<uint8_t> body64(64);
  for (size_t i = 0; i < body64.size(); ++i) body64[i] = static_cast<uint8_t>(i);
  CHECK(c.sendPacket(kPingId, bytesOf("abc")));
  CHECK(c.sendPacket(kPingId, {}));
  CHECK(c.sendPacket(kPingId, body64));
  CHECK(c.sendPacket(kPongId, bytesOf("ignored")));  // a system id the engine ignores
  CHECK(c.sendPacket(kEcho, bytesOf("after")));
  Packet p;
  REQUIRE(c.read(p));
  CHECK_EQ(p.id, kPongId);
  CHECK(p.body == bytesOf("abc"));
  REQUIRE(c.read(p));
  CHECK_EQ(p.id, kPongId);
  CHECK(p.body.empty());
  REQUIRE(c.read(p));
  CHECK_EQ(p.id, kPongId);
  CHECK(p.body == body64);
  REQUIRE(c.read(p));
  CHECK_EQ(p.id, kEcho);
  CHECK_EQ(js.stats().pings.load(), uint64_t{3});
  CHECK_EQ(js.stats().ignoredSystemPackets.load(), uint64_t{1});
  // JS never saw a system packet.
  for (const Event& e : js.events()) {
    if (e.kind == InboundKind::Packet) CHECK(e.packetId >= kFirstAppPacketId);
  }
  // A PING body past 64 bytes is a protocol error.
  CHECK(c.sendPacket(kPingId, std::vector<uint8_t>(65, 1)));
  REQUIRE(c.read(p));
  CHECK(isNotify(p, NotifyCode::ProtocolError));
  CHECK(c.waitEof());
}

TEST(engine, protocol_errors_close_only_that_connection) {
  struct Bad {
    const char* what;
    std::vector<uint8_t> bytes;
  };
  std::vector<uint8_t> tooLong = testutil::packet(kEcho, std::vector<uint8_t>(8192 - 4, 0));
  std::vector<uint8_t> typed = testutil::packet(kEcho, bytesOf("t"));
  typed[4] = 2;
  std::vector<Bad> cases = {
      {"length below the header", {3, 0, 100, 0, 0}},
      {"length zero", {0, 0, 0, 0, 0}},
      {"over maxPacketSize", std::vector<uint8_t>(tooLong.begin(), tooLong.begin() + 5)},
      {"non-zero type", typed},
  };
  FakeJs js(smallOptions());
  uint16_t port = js.start();
  Client bystander(port);
  REQUIRE(bystander.connected());
  for (const Bad& bad : cases) {
    Client c(port);
    REQUIRE(c.connected());
    // The packet before the bad one, in the same read, still reaches JS,
    // and its reply goes out ahead of the notify.
    std::vector<uint8_t> stream = testutil::packet(kEcho, bytesOf("before"));
    stream.insert(stream.end(), bad.bytes.begin(), bad.bytes.end());
    CHECK(c.send(stream));
    Packet p;
    bool gotEcho = c.read(p) && p.id == kEcho && p.body == bytesOf("before");
    bool gotNotify = c.read(p) && isNotify(p, NotifyCode::ProtocolError);
    if (!CHECK(gotEcho && gotNotify)) std::fprintf(stderr, "  case: %s\n", bad.what);
    CHECK(c.waitEof());
  }
  CHECK(js.waitFor([&] { return js.countLocked(InboundKind::Disconnect) == cases.size(); }));
  std::map<uint32_t, int> before;
  for (const Event& e : js.events()) {
    if (e.kind == InboundKind::Packet && e.body == bytesOf("before")) ++before[e.id];
    if (e.kind == InboundKind::Disconnect) {
      CHECK_EQ(e.reason, CloseReason::ProtocolError);
      CHECK_EQ(before[e.id], 1);  // delivered, and ahead of the disconnect
    }
  }
  CHECK_EQ(js.stats().closes[static_cast<size_t>(CloseReason::ProtocolError)].load(), uint64_t{cases.size()});
  // The other connection never noticed.
  CHECK(bystander.sendPacket(kEcho, bytesOf("still here")));
  Packet p;
  CHECK(bystander.read(p) && p.body == bytesOf("still here"));
}

TEST(engine, a_close_js_never_releases_ends_at_the_deadline) {
  EngineOptions o = smallOptions();
  o.closeTimeoutMs = 200;
  FakeJs js(o);
  js.setReleasing(false);
  uint16_t port = js.start();
  Client c(port);
  REQUIRE(js.waitFor([&] { return js.openLocked() == 1; }));
  CHECK(c.send({3, 0, 0, 0, 0}));
  // No release: no notify is queued, and the deadline drops the socket.
  CHECK(c.waitEof(5000));
  CHECK(js.waitFor([&] { return js.countLocked(InboundKind::Disconnect) == 1; }));
  // The slot comes back: a new client is served.
  js.setReleasing(true);
  Client d(port);
  Packet p;
  CHECK(d.sendPacket(kEcho, bytesOf("next")) && d.read(p) && p.body == bytesOf("next"));
}

TEST(engine, reply_to_a_request_before_the_peers_fin_goes_out) {
  FakeJs js(smallOptions());
  uint16_t port = js.start();
  Client c(port);
  REQUIRE(js.waitFor([&] { return js.openLocked() == 1; }));
  CHECK(c.sendPacket(kEcho, bytesOf("last words")));
  c.shutdownSend();
  Packet p;
  CHECK(c.read(p) && p.id == kEcho && p.body == bytesOf("last words"));
  CHECK(c.waitEof());
  CHECK(js.waitFor([&] { return js.countLocked(InboundKind::Disconnect) == 1; }));
  CHECK_EQ(js.events().back().reason, CloseReason::Closed);
}

TEST(engine, broadcast_reaches_every_connection) {
  FakeJs js(smallOptions());
  uint16_t port = js.start();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(std::make_unique<Client>(port));
  REQUIRE(js.waitFor([&] { return js.openLocked() == 5; }));
  CHECK(clients[2]->sendPacket(kBroadcast, bytesOf("to all")));
  for (auto& c : clients) {
    Packet p;
    CHECK(c->read(p) && p.id == kBroadcastOut && p.body == bytesOf("to all"));
  }
  CHECK_EQ(js.total(ThreadStatsField::PacketsOut), uint64_t{5});
}

TEST(engine, kick_flushes_then_notifies_and_destroy_drops) {
  FakeJs js(smallOptions());
  uint16_t port = js.start();
  Client kicked(port);
  Client destroyed(port);
  REQUIRE(js.waitFor([&] { return js.openLocked() == 2; }));
  CHECK(kicked.sendPacket(kKick, {}));
  Packet p;
  CHECK(kicked.read(p) && p.id == kKickNotice && p.body == bytesOf("bye"));
  CHECK(kicked.read(p) && isNotify(p, NotifyCode::Kicked));
  CHECK(kicked.waitEof());
  CHECK(destroyed.sendPacket(kDestroy, {}));
  CHECK(destroyed.waitEof());
  CHECK(js.waitFor([&] { return js.countLocked(InboundKind::Disconnect) == 2; }));
  for (const Event& e : js.events()) {
    if (e.kind == InboundKind::Disconnect) CHECK_EQ(e.reason, CloseReason::Kicked);
  }
}

TEST(engine, stale_and_malformed_submits_are_refused) {
  EngineOptions o = smallOptions();
  o.maxConnections = 1;
  // Its clients open at accept: the slot's reuse is the subject, not transport detection.
  o.webSocket = false;
  FakeJs js(o);
  uint16_t port = js.start();
  uint32_t oldId = 0;
  {
    Client a(port);
    REQUIRE(js.waitFor([&] { return js.openLocked() == 1; }));
    oldId = js.connectedIds()[0];
  }
  REQUIRE(js.waitFor([&] { return js.countLocked(InboundKind::Disconnect) == 1; }));
  // The one slot is reused once its socket is gone: retry briefly.
  std::unique_ptr<Client> b;
  for (int i = 0; i < 50 && js.connectedIds().empty(); ++i) {
    b = std::make_unique<Client>(port);
    js.waitFor([&] { return js.openLocked() == 1; }, 200);
  }
  std::vector<uint32_t> ids = js.connectedIds();
  REQUIRE_EQ(ids.size(), size_t{1});
  uint32_t newId = ids[0];
  CHECK(newId != oldId);
  uint64_t staleBefore = js.stats().staleRefused.load();
  std::string malformedError;
  std::string staleError;
  js.call([&](EngineCore& e) {
    std::vector<uint8_t> batch = {static_cast<uint8_t>(OutboundOp::Send)};
    testutil::appendU32(batch, oldId);
    testutil::appendPacket(batch, kEcho, bytesOf("stale"));
    staleError = e.submit(batch.data(), batch.size());
    std::vector<uint8_t> fresh = {static_cast<uint8_t>(OutboundOp::Send)};
    testutil::appendU32(fresh, newId);
    testutil::appendPacket(fresh, kEcho, bytesOf("fresh"));
    // A truncated batch is refused whole: the valid record before it is not sent.
    std::vector<uint8_t> malformed = fresh;
    malformed.push_back(static_cast<uint8_t>(OutboundOp::Destroy));
    malformed.push_back(1);
    malformedError = e.submit(malformed.data(), malformed.size());
    e.submit(fresh.data(), fresh.size());
  });
  CHECK(staleError.empty());
  CHECK(malformedError.rfind("truncated destroy", 0) == 0);
  Packet p;
  CHECK(b->read(p) && p.body == bytesOf("fresh"));
  CHECK_EQ(js.stats().staleRefused.load(), staleBefore + 1);
  // Nothing else arrives: the refused batch sent nothing.
  CHECK(!b->read(p, 100));
}

TEST(engine, server_full_is_notified_and_others_unaffected) {
  EngineOptions o = smallOptions();
  o.maxConnections = 2;
  FakeJs js(o);
  uint16_t port = js.start();
  Client a(port);
  Client b(port);
  REQUIRE(js.waitFor([&] { return js.openLocked() == 2; }));
  Client c(port);
  REQUIRE(c.connected());  // the kernel accepts; the engine refuses
  Packet p;
  CHECK(c.read(p) && isNotify(p, NotifyCode::ServerFull));
  CHECK(c.waitEof());
  CHECK_EQ(js.stats().closes[static_cast<size_t>(CloseReason::ServerFull)].load(), uint64_t{1});
  CHECK(a.sendPacket(kEcho, bytesOf("a")) && a.read(p) && p.body == bytesOf("a"));
  CHECK_EQ(js.connectedIds().size(), size_t{2});
}

TEST(engine, idle_connections_time_out_and_pings_keep_alive) {
  EngineOptions o = smallOptions();
  o.idleTimeoutMs = 300;
  FakeJs js(o);
  uint16_t port = js.start();
  Client idle(port);
  Client busy(port);
  REQUIRE(js.waitFor([&] { return js.openLocked() == 2; }));
  Packet p;
  bool idleNotified = false;
  for (int i = 0; i < 40 && !idleNotified; ++i) {
    CHECK(busy.sendPacket(kPingId, {}));
    CHECK(busy.read(p) && p.id == kPongId);
    idleNotified = idle.read(p, 50) && isNotify(p, NotifyCode::IdleTimeout);
  }
  CHECK(idleNotified);
  CHECK(idle.waitEof());
  // The one that kept pinging is still open.
  CHECK(busy.sendPacket(kEcho, bytesOf("alive")) && busy.read(p) && p.body == bytesOf("alive"));
  CHECK(js.waitFor([&] { return js.countLocked(InboundKind::Disconnect) == 1; }));
  CHECK_EQ(js.stats().closes[static_cast<size_t>(CloseReason::IdleTimeout)].load(), uint64_t{1});
}

TEST(engine, slow_consumer_is_closed_alone) {
  EngineOptions o = smallOptions();
  o.maxSendQueueBytes = 256 * 1024;
  FakeJs js(o);
  uint16_t port = js.start();
  Client slow(port);
  Client other(port);
  REQUIRE(js.waitFor([&] { return js.openLocked() == 2; }));
  // The slow client asks for floods and never reads; socket buffers fill,
  // then the send queue passes its bound.
  bool closed = false;
  for (int i = 0; i < 400 && !closed; ++i) {
    slow.sendPacket(kFlood, {});
    closed = js.waitFor([&] { return js.countLocked(InboundKind::Disconnect) == 1; }, 20);
  }
  REQUIRE(closed);
  CHECK_EQ(js.events().back().reason, CloseReason::SlowConsumer);
  CHECK_EQ(js.stats().closes[static_cast<size_t>(CloseReason::SlowConsumer)].load(), uint64_t{1});
  Packet p;
  CHECK(other.sendPacket(kEcho, bytesOf("fine")) && other.read(p) && p.body == bytesOf("fine"));
}

TEST(engine, a_pipelining_client_is_paused_not_closed_and_gets_every_reply) {
  // The client writes 5,000 echo requests of 1,000 bytes before it reads
  // anything: its own replies fill its queue, and the engine stops reading
  // from it instead of closing it as a slow consumer.
  EngineOptions o = smallOptions();
  o.maxSendQueueBytes = 1 << 20;
  o.sendQueueHighWaterBytes = 256 * 1024;
  o.sendQueueLowWaterBytes = 64 * 1024;
  FakeJs js(o);
  uint16_t port = js.start();
  Client c(port);
  REQUIRE(js.waitFor([&] { return js.openLocked() == 1; }));
  constexpr uint32_t kPackets = 5000;
  std::vector<uint8_t> stream;
  for (uint32_t i = 0; i < kPackets; ++i) {
    std::vector<uint8_t> body(995, static_cast<uint8_t>(i));
    writeU32(body.data(), i);
    testutil::appendPacket(stream, kEcho, body);
  }
  std::atomic<bool> sent{false};
  std::thread sender([&] { sent = c.send(stream); });
  bool paused = false;
  for (int i = 0; i < 500 && !paused; ++i) {
    paused = js.stats().readPausesSendQueue.load() > 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(paused);
  // Still not reading: the pause holds, and the queue stays within its bound.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_EQ(js.stats().closes[static_cast<size_t>(CloseReason::SlowConsumer)].load(), uint64_t{0});
  // The replies it does not read wait in its send queue, within the bound. (How many are there now and how many
  // in the kernel's socket buffers depends on their sizes, so no lower bound.)
  CHECK(js.total(ThreadStatsField::SendQueueBytes) <= o.maxSendQueueBytes);
  uint32_t next = 0;
  Packet p;
  while (next < kPackets && c.read(p, 10000)) {
    if (p.id != kEcho || p.body.size() != 995 || readU32(p.body.data()) != next) break;
    ++next;
  }
  sender.join();
  CHECK(sent.load());
  CHECK_EQ(next, kPackets);
  CHECK(js.waitFor([&] { return js.countLocked(InboundKind::Disconnect) == 0; }, 0));
  CHECK_EQ(js.stats().readPauses.load(), uint64_t{0});
  // Every reply written: the queued-bytes gauge is back at 0.
  CHECK(js.waitFor([&] { return js.total(ThreadStatsField::SendQueueBytes) == 0; }));
}

TEST(engine, requests_without_replies_never_leave_a_connection_paused) {
  // Only requests JS has not handled count: each handled batch frees them,
  // with no write to wake the IO thread.
  EngineOptions o = smallOptions();
  o.sendQueueHighWaterBytes = 8 * 1024;
  o.sendQueueLowWaterBytes = 1024;
  FakeJs js(o);
  uint16_t port = js.start();
  Client c(port);
  REQUIRE(js.waitFor([&] { return js.openLocked() == 1; }));
  constexpr uint32_t kPackets = 4000;
  std::vector<uint8_t> stream;
  for (uint32_t i = 0; i < kPackets; ++i) testutil::appendPacket(stream, kIgnored, std::vector<uint8_t>(995, 1));
  CHECK(c.send(stream));
  CHECK(js.waitFor([&] { return js.countLocked(InboundKind::Packet) == kPackets; }, 20000));
  // The first read alone passes the mark.
  CHECK(js.stats().readPausesSendQueue.load() > 0);
  Packet p;
  CHECK(c.sendPacket(kEcho, bytesOf("after")) && c.read(p) && p.body == bytesOf("after"));
}

TEST(engine, inbound_bytes_are_bounded_when_js_falls_behind) {
  EngineOptions o = smallOptions();
  o.maxPendingBytes = 64 * 1024;
  FakeJs js(o);
  uint16_t port = js.start();
  Client c(port);
  REQUIRE(js.waitFor([&] { return js.openLocked() == 1; }));
  js.setDraining(false);
  constexpr uint32_t kPackets = 4000;
  std::thread sender([&] {
    std::vector<uint8_t> stream;
    for (uint32_t i = 0; i < kPackets; ++i) {
      std::vector<uint8_t> body(500, 0);
      writeU32(body.data(), i);
      testutil::appendPacket(stream, 200, body);
    }
    c.send(stream);  // blocks while the engine does not read; ends once it does
  });
  bool paused = false;
  for (int i = 0; i < 500 && !paused; ++i) {
    paused = js.stats().readPauses.load() > 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(paused);
  // What waits for JS is the bound's worth, give or take a read.
  CHECK(js.waitFor([&] { return js.engine().pendingBytes() >= o.maxPendingBytes; }, 2000));
  size_t waiting = js.engine().pendingBytes();
  CHECK(waiting <= o.maxPendingBytes + 256 * 1024 + 65536 + 4096);
  js.setDraining(true);
  bool all = js.waitFor([&] { return js.countLocked(InboundKind::Packet) == kPackets; }, 20000);
  sender.join();
  CHECK(all);
  // Never far past the bound: one early hand-over and one read beyond it.
  CHECK(js.waitFor([&] { return js.largestBatchLocked() <= o.maxPendingBytes + 256 * 1024 + 65536 + 4096; }, 0));
  uint32_t next = 0;
  for (const Event& e : js.events()) {
    if (e.kind != InboundKind::Packet) continue;
    if (readU32(e.body.data()) != next) break;
    ++next;
  }
  CHECK_EQ(next, kPackets);
  CHECK(js.waitFor([&] { return js.engine().pendingBytes() == 0; }, 5000));
}

TEST(engine, graceful_shutdown_notifies_and_joins_every_thread) {
  size_t threadsBefore = threadCount();
  EngineOptions o = smallOptions();
  o.ioThreads = 3;
  {
    FakeJs js(o);
    uint16_t port = js.start();
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 6; ++i) clients.push_back(std::make_unique<Client>(port));
    REQUIRE(js.waitFor([&] { return js.openLocked() == 6; }));
    CHECK(threadCount() >= threadsBefore + 4);  // 3 IO threads and the JS stand-in
    js.call([](EngineCore& e) { e.shutdown(false); });
    for (auto& c : clients) {
      Packet p;
      CHECK(c->read(p) && isNotify(p, NotifyCode::ServerShutdown));
      CHECK(c->waitEof());
      c->close();  // the peer's FIN lets the engine finish without waiting for the deadline
    }
    CHECK(js.waitFor([&] { return js.finishedLocked(); }));
    CHECK(js.waitFor([&] { return js.countLocked(InboundKind::Disconnect) == 6; }, 0));
    for (const Event& e : js.events()) {
      if (e.kind == InboundKind::Disconnect) CHECK_EQ(e.reason, CloseReason::Shutdown);
    }
    // Nobody listens any more.
    Client late(port);
    CHECK(!late.connected());
    std::string error;
    js.call([&](EngineCore& e) {
      std::vector<uint8_t> batch = {static_cast<uint8_t>(OutboundOp::Destroy), 1, 0, 0, 0};
      error = e.submit(batch.data(), batch.size());
    });
    CHECK(error.empty());
  }
  // Only the IO threads and the JS stand-in were added, and they are gone.
  CHECK_EQ(threadCount(), threadsBefore);
}

TEST(engine, graceful_shutdown_hands_over_every_packet_before_any_shutdown_disconnect) {
  // Clients on both IO threads keep sending while the server shuts down. If
  // one thread reported its connections gone while the other still handed
  // packets over, JS would act on a packet (a room chat) after a receiver had
  // already left.
  EngineOptions o = smallOptions();
  // What waits for JS at the shutdown is drained before the notifies go out:
  // a sanitizer build needs more than the usual deadline for that.
  o.closeTimeoutMs = 30000;
  FakeJs js(o);
  uint16_t port = js.start();
  constexpr int kClients = 8;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(std::make_unique<Client>(port));
  REQUIRE(js.waitFor([&] { return js.openLocked() == kClients; }));
  std::atomic<bool> stop{false};
  std::vector<std::thread> senders;
  for (auto& c : clients) {
    senders.emplace_back([&stop, client = c.get()] {
      std::vector<uint8_t> burst;
      for (int i = 0; i < 32; ++i)
        testutil::appendPacket(burst, kIgnored, std::vector<uint8_t>(40, static_cast<uint8_t>(i)));
      // At most 20,000 packets a client: enough to be sending when the
      // shutdown comes, few enough for a slow build to drain.
      auto deadline = Clock::now() + std::chrono::seconds(10);
      for (int n = 0; n < 625 && !stop.load() && Clock::now() < deadline && client->send(burst); ++n) {
      }
    });
  }
  REQUIRE(js.waitFor([&] { return js.countLocked(InboundKind::Packet) >= 1000; }));
  js.call([](EngineCore& e) { e.shutdown(false); });
  for (auto& c : clients) {
    Packet p;
    CHECK(c->read(p, 30000) && isNotify(p, NotifyCode::ServerShutdown));
  }
  stop = true;
  for (std::thread& t : senders) t.join();
  for (auto& c : clients) c->close();
  CHECK(js.waitFor([&] { return js.finishedLocked(); }));
  size_t disconnects = 0;
  size_t packetsAfter = 0;
  for (const Event& e : js.events()) {
    if (e.kind == InboundKind::Disconnect) {
      CHECK_EQ(e.reason, CloseReason::Shutdown);
      ++disconnects;
    } else if (e.kind == InboundKind::Packet && disconnects > 0) {
      ++packetsAfter;
    }
  }
  CHECK_EQ(disconnects, size_t{kClients});
  CHECK_EQ(packetsAfter, size_t{0});
}

TEST(engine, forced_teardown_with_busy_clients) {
  size_t threadsBefore = threadCount();
  std::vector<std::unique_ptr<Client>> clients;
  {
    FakeJs js(smallOptions());
    uint16_t port = js.start();
    for (int i = 0; i < 8; ++i) clients.push_back(std::make_unique<Client>(port));
    REQUIRE(js.waitFor([&] { return js.openLocked() == 8; }));
    for (auto& c : clients) {
      std::vector<uint8_t> stream;
      for (int i = 0; i < 200; ++i) testutil::appendPacket(stream, kEcho, std::vector<uint8_t>(200, 1));
      c->send(stream);
    }
    // Destroyed while echoes are in flight: the destructor forces a shutdown.
  }
  for (auto& c : clients) CHECK(c->waitEof());
  CHECK_EQ(threadCount(), threadsBefore);
}

TEST(engine, connection_churn_with_sends_to_closing_ids) {
  // Clients come and go while the JS side broadcasts to everything it thinks
  // is open: many sends hit ids that are closing or gone.
  EngineOptions o = smallOptions();
  o.maxConnections = 16;
  FakeJs js(o);
  uint16_t port = js.start();
  Packet p;
  int answered = 0;
  for (int round = 0; round < 60; ++round) {
    std::vector<std::unique_ptr<Client>> batch;
    for (int i = 0; i < 4; ++i) batch.push_back(std::make_unique<Client>(port));
    for (auto& c : batch) c->sendPacket(kBroadcast, bytesOf("x"));
    if (batch[0]->read(p, 2000)) ++answered;
    if (round % 3 == 0) batch[1]->sendPacket(kDestroy, {});
    if (round % 5 == 0) batch[2]->send({0, 0, 0, 0, 0});  // protocol error
  }
  CHECK(answered > 0);
  CHECK(js.waitFor(
      [&] { return js.openLocked() == 0 && js.connectsLocked() == js.countLocked(InboundKind::Disconnect); }, 10000));
  CHECK(js.waitFor([&] { return js.submitErrorsLocked() == 0; }, 0));
  // The engine still works.
  Client last(port);
  CHECK(last.sendPacket(kEcho, bytesOf("ok")) && last.read(p) && p.body == bytesOf("ok"));
}

TEST(engine, pings_are_answered_and_paused_readers_kept_while_js_falls_behind) {
  // JS stops draining, as a handler that blocks the JS thread would. One
  // client floods until the bytes waiting for JS pass maxPendingBytes and its
  // reads pause; another only PINGs; a third sends nothing.
  EngineOptions o = smallOptions();
  o.maxPendingBytes = 64 * 1024;
  o.idleTimeoutMs = 300;
  FakeJs js(o);
  uint16_t port = js.start();
  Client talker(port);
  Client pinger(port);
  Client silent(port);
  REQUIRE(js.waitFor([&] { return js.openLocked() == 3; }));
  js.setDraining(false);
  constexpr uint32_t kPackets = 400;
  std::thread sender([&] {
    std::vector<uint8_t> stream;
    for (uint32_t i = 0; i < kPackets; ++i) {
      std::vector<uint8_t> body(500, 0);
      writeU32(body.data(), i);
      testutil::appendPacket(stream, kIgnored, body);
    }
    talker.send(stream);  // 200 KB: blocks once the engine stops reading it
  });
  // Five idle timeouts long: the PINGs are answered on time throughout.
  Packet p;
  int answered = 0;
  auto end = Clock::now() + std::chrono::milliseconds(5 * o.idleTimeoutMs);
  while (Clock::now() < end) {
    CHECK(pinger.sendPacket(kPingId, bytesOf("t")));
    if (pinger.read(p, 200) && p.id == kPongId) ++answered;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(answered >= 10);
  CHECK(js.stats().readPauses.load() > 0);
  // The paused talker is not idle, the pinger is not either; the silent one timed out.
  CHECK_EQ(js.stats().closes[static_cast<size_t>(CloseReason::IdleTimeout)].load(), uint64_t{1});
  js.setDraining(true);
  CHECK(silent.read(p) && isNotify(p, NotifyCode::IdleTimeout));
  bool all = js.waitFor([&] { return js.countLocked(InboundKind::Packet) == kPackets; }, 10000);
  sender.join();
  CHECK(all);
  uint32_t next = 0;
  for (const Event& e : js.events()) {
    if (e.kind != InboundKind::Packet) continue;
    if (readU32(e.body.data()) != next) break;
    ++next;
  }
  CHECK_EQ(next, kPackets);
  // Past the bound by at most one full read per IO thread and a short one per paused connection.
  CHECK(js.waitFor([&] { return js.largestBatchLocked() <= o.maxPendingBytes + 2 * 65536 + 1024; }, 0));
  CHECK(pinger.sendPacket(kEcho, bytesOf("after")) && pinger.read(p) && p.body == bytesOf("after"));
  CHECK_EQ(js.stats().closes[static_cast<size_t>(CloseReason::IdleTimeout)].load(), uint64_t{1});
}

namespace {

// The descriptor limit below which exactly `free` descriptor numbers are unused. A process gets the lowest free
// number, and the limit caps the number, not the count: descriptors inherited with high numbers (a CI harness's
// pipes) do not take room below it.
rlim_t limitLeavingFree(int free) {
  int fd = 0;
  for (int seen = 0; seen < free; ++fd) seen += ::fcntl(fd, F_GETFD) == -1 && errno == EBADF;
  return static_cast<rlim_t>(fd);
}

// Lowers this process's descriptor limit for its lifetime.
class DescriptorLimit {
 public:
  explicit DescriptorLimit(rlim_t soft) {
    ok_ = ::getrlimit(RLIMIT_NOFILE, &saved_) == 0;
    rlimit lowered = saved_;
    lowered.rlim_cur = soft;
    ok_ = ok_ && ::setrlimit(RLIMIT_NOFILE, &lowered) == 0;
  }
  ~DescriptorLimit() {
    if (ok_) ::setrlimit(RLIMIT_NOFILE, &saved_);
  }
  DescriptorLimit(const DescriptorLimit&) = delete;
  DescriptorLimit& operator=(const DescriptorLimit&) = delete;
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  bool ok_ = false;
};

}  // namespace

TEST(engine, out_of_descriptors_refuses_with_server_full_and_accepts_again) {
  FakeJs js(smallOptions());
  uint16_t port = js.start();
  Client first(port);
  REQUIRE(js.waitFor([&] { return js.openLocked() == 1; }));
  // The clients' sockets are made before the limit is lowered, so only the server's accepts run out.
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 12; ++i) clients.push_back(std::make_unique<Client>());
  std::vector<std::unique_ptr<Client>> served;
  int refused = 0;
  Packet p;
  {
    // Room for 3 accepted connections (fewer if the engine takes a descriptor of its own meanwhile).
    DescriptorLimit limit(limitLeavingFree(3));
    REQUIRE(limit.ok());
    for (auto& c : clients) {
      REQUIRE(c->connect(port));
      if (c->sendPacket(kEcho, bytesOf("in")) && c->read(p, 2000)) {
        if (p.id == kEcho) {
          served.push_back(std::move(c));
          continue;
        }
        CHECK(isNotify(p, NotifyCode::ServerFull));
        CHECK(c->waitEof());
        ++refused;
        continue;  // kept open: closing it would free a descriptor
      }
      CHECK(false);  // neither served nor refused in time
      break;
    }
    CHECK(refused > 0);
    CHECK_EQ(js.stats().descriptorRefused.load(), static_cast<uint64_t>(refused));
    // Those it has are still served.
    CHECK(first.sendPacket(kEcho, bytesOf("still")) && first.read(p) && p.body == bytesOf("still"));
    // Once descriptors are free, the next connection is served.
    served.clear();
    clients.clear();
    REQUIRE(js.waitFor([&] { return js.openLocked() == 1; }));
    Client again(port);
    CHECK(again.sendPacket(kEcho, bytesOf("again")) && again.read(p) && p.body == bytesOf("again"));
  }
  CHECK_EQ(js.stats().closes[static_cast<size_t>(CloseReason::ServerFull)].load(), uint64_t{0});
}

// ---- WebSocket on the same port ----

namespace {

std::vector<uint8_t> bytesOfString(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// Sends the request and reads the HTTP response head; returns its status (0: none in time).
int httpExchange(Client& c, const std::string& request, std::string* head = nullptr) {
  if (!c.send(bytesOfString(request))) return 0;
  std::string got;
  bool ok = c.readUntil([&](std::vector<uint8_t>& b) {
    std::string text(b.begin(), b.end());
    size_t end = text.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    got = text.substr(0, end + 4);
    b.erase(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(end + 4));
    return true;
  });
  if (!ok || got.compare(0, 9, "HTTP/1.1 ") != 0) return 0;
  if (head != nullptr) *head = got;
  return std::stoi(got.substr(9, 3));
}

bool readFrame(Client& c, wstest::ServerFrame& f, int timeoutMs = 5000) {
  return c.readUntil([&](std::vector<uint8_t>& b) { return wstest::takeServerFrame(b, f); }, timeoutMs);
}

// One packet from one binary frame (the engine sends each packet in its own frame).
bool readWsPacket(Client& c, Packet& p, int timeoutMs = 5000) {
  wstest::ServerFrame f;
  if (!readFrame(c, f, timeoutMs) || f.opcode != iocpnet::ws::kBinary || !f.fin || f.payload.size() < 5) return false;
  if (readU16(f.payload.data()) != f.payload.size()) return false;
  p.id = readU16(f.payload.data() + 2);
  p.body.assign(f.payload.begin() + 5, f.payload.end());
  return true;
}

bool sendWsPacket(Client& c, uint16_t id, const std::vector<uint8_t>& body) {
  return c.send(wstest::clientFrame(iocpnet::ws::kBinary, testutil::packet(id, body)));
}

// A CLOSE frame with code (0: expects one without a code), then the end of the stream.
bool readClose(Client& c, uint16_t code) {
  wstest::ServerFrame f;
  if (!readFrame(c, f) || f.opcode != iocpnet::ws::kClose) return false;
  if (code == 0) return f.payload.empty() && c.waitEof();
  return f.payload.size() == 2 && ((f.payload[0] << 8) | f.payload[1]) == code && c.waitEof();
}

bool upgrade(Client& c) {
  std::string head;
  return httpExchange(c, wstest::upgradeRequest(), &head) == 101 &&
         head.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != std::string::npos;
}

size_t closesOf(FakeJs& js, CloseReason r) { return js.stats().closes[static_cast<size_t>(r)].load(); }

}  // namespace

TEST(engine, websocket_and_raw_clients_share_the_port) {
  FakeJs js(smallOptions());
  uint16_t port = js.start();
  Client web(port);
  Client raw(port);
  REQUIRE(upgrade(web));
  CHECK(raw.sendPacket(kEcho, bytesOf("raw")));
  Packet p;
  CHECK(raw.read(p) && p.id == kEcho && p.body == bytesOf("raw"));
  REQUIRE(js.waitFor([&] { return js.openLocked() == 2; }));
  int webOpens = 0;
  for (const Event& e : js.events()) webOpens += e.kind == InboundKind::Connect && e.transport == Transport::Websocket;
  CHECK_EQ(webOpens, 1);
  // Packets in binary messages, answered in binary frames; the engine's PING too.
  CHECK(sendWsPacket(web, kEcho, bytesOf("web")));
  CHECK(readWsPacket(web, p) && p.id == kEcho && p.body == bytesOf("web"));
  CHECK(sendWsPacket(web, kPingId, bytesOf("t")));
  CHECK(readWsPacket(web, p) && p.id == kPongId && p.body == bytesOf("t"));
  // A WebSocket PING gets a PONG with its payload; a PONG is ignored.
  CHECK(web.send(wstest::clientFrame(iocpnet::ws::kPong, bytesOf("ignored"))));
  CHECK(web.send(wstest::clientFrame(iocpnet::ws::kPing, bytesOf("are you there"))));
  wstest::ServerFrame f;
  CHECK(readFrame(web, f) && f.opcode == iocpnet::ws::kPong && f.payload == bytesOf("are you there"));
  // A broadcast reaches both transports.
  CHECK(raw.sendPacket(kBroadcast, bytesOf("all")));
  CHECK(raw.read(p) && p.id == kBroadcastOut && p.body == bytesOf("all"));
  CHECK(readWsPacket(web, p) && p.id == kBroadcastOut && p.body == bytesOf("all"));
  // Several packets in one message, and one packet across messages and fragments.
  std::vector<uint8_t> two = testutil::packet(kEcho, bytesOf("one"));
  testutil::appendPacket(two, kEcho, bytesOf("two"));
  std::vector<uint8_t> split = testutil::packet(kEcho, bytesOf("split across frames"));
  std::vector<uint8_t> stream = wstest::clientFrame(iocpnet::ws::kBinary, two);
  auto append = [&](const std::vector<uint8_t>& frame) { stream.insert(stream.end(), frame.begin(), frame.end()); };
  append(wstest::clientFrame(iocpnet::ws::kBinary, {split.begin(), split.begin() + 3}));  // message 1: 3 bytes
  append(wstest::clientFrame(iocpnet::ws::kBinary, {split.begin() + 3, split.begin() + 9}, false));
  append(wstest::clientFrame(iocpnet::ws::kPing, {}));
  append(wstest::clientFrame(iocpnet::ws::kContinuation, {split.begin() + 9, split.end()}));
  CHECK(web.send(stream));
  // The PONG comes from the IO thread, the echoes from JS: the PONG's place among them is not fixed.
  std::vector<std::string> echoes;
  int pongs = 0;
  for (int i = 0; i < 4 && readFrame(web, f); ++i) {
    if (f.opcode == iocpnet::ws::kPong && f.payload.empty()) {
      ++pongs;
    } else if (f.opcode == iocpnet::ws::kBinary && f.payload.size() >= 5) {
      echoes.emplace_back(f.payload.begin() + 5, f.payload.end());
    }
  }
  CHECK_EQ(pongs, 1);
  CHECK(echoes == std::vector<std::string>({"one", "two", "split across frames"}));
  // The closing handshake: a request before the CLOSE is answered, then the echo, then FIN.
  std::vector<uint8_t> last = wstest::clientFrame(iocpnet::ws::kBinary, testutil::packet(kEcho, bytesOf("last")));
  std::vector<uint8_t> close = wstest::clientFrame(iocpnet::ws::kClose, {0x0F, 0xA0});  // 4000
  last.insert(last.end(), close.begin(), close.end());
  CHECK(web.send(last));
  CHECK(readWsPacket(web, p) && p.body == bytesOf("last"));
  CHECK(readClose(web, 4000));
  CHECK(js.waitFor([&] { return js.countLocked(InboundKind::Disconnect) == 1; }));
  CHECK_EQ(closesOf(js, CloseReason::Closed), size_t{1});
}

TEST(engine, websocket_close_without_code_is_echoed_without_one) {
  FakeJs js(smallOptions());
  uint16_t port = js.start();
  Client web(port);
  REQUIRE(upgrade(web));
  CHECK(web.send(wstest::clientFrame(iocpnet::ws::kClose, {})));
  CHECK(readClose(web, 0));
  CHECK(js.waitFor([&] { return js.countLocked(InboundKind::Disconnect) == 1; }));
  CHECK_EQ(closesOf(js, CloseReason::Closed), size_t{1});
}

TEST(engine, hostile_websocket_frames_close_with_the_rfc_codes) {
  EngineOptions o = smallOptions();
  o.maxPacketSize = 1024;
  FakeJs js(o);
  uint16_t port = js.start();
  struct Case {
    std::vector<uint8_t> bytes;
    uint16_t code;
  };
  // A message of 1025 bytes, one more than maxPacketSize, whose bytes begin a valid packet of 1020.
  std::vector<uint8_t> start = testutil::packet(kEcho, std::vector<uint8_t>(1015));
  start.resize(10);
  std::vector<uint8_t> oversized = wstest::clientFrame(iocpnet::ws::kBinary, start, false);
  std::vector<uint8_t> rest = wstest::clientFrame(iocpnet::ws::kContinuation, std::vector<uint8_t>(1015));
  oversized.insert(oversized.end(), rest.begin(), rest.end());
  std::vector<uint8_t> badPacket = {0xFF, 0xFF, 100, 0, 0};  // a length past maxPacketSize
  std::vector<Case> cases = {
      {wstest::clientFrame(iocpnet::ws::kText, bytesOf("hi")), 1003},
      {wstest::clientFrame(iocpnet::ws::kBinary, testutil::packet(kEcho, {}), true, false), 1002},  // unmasked
      {wstest::clientFrame(0x7, bytesOf("x")), 1002},                                               // bad opcode
      {wstest::clientFrame(iocpnet::ws::kBinary, bytesOf("x"), true, true, 5, 0x20), 1002},         // RSV2
      {wstest::clientFrame(iocpnet::ws::kPing, bytesOf("x"), false), 1002},  // fragmented control frame
      {wstest::clientFrame(iocpnet::ws::kClose, {0x03}), 1002},              // one-byte close payload
      {oversized, 1009},
      {wstest::clientFrame(iocpnet::ws::kBinary, badPacket), 1002},
  };
  for (const Case& c : cases) {
    Client web(port);
    REQUIRE(upgrade(web));
    CHECK(web.send(c.bytes));
    Packet p;
    CHECK(readWsPacket(web, p) && isNotify(p, NotifyCode::ProtocolError));
    CHECK(readClose(web, c.code));
  }
  CHECK(js.waitFor([&] { return js.countLocked(InboundKind::Disconnect) == cases.size(); }));
  CHECK_EQ(closesOf(js, CloseReason::ProtocolError), cases.size());
}

TEST(engine, http_requests_that_are_not_upgrades_are_refused_unseen_by_js) {
  EngineOptions o = smallOptions();
  o.maxUpgradeRequestBytes = 256;
  o.upgradeTimeoutMs = 300;
  o.webSocketOrigins = {"https://game.example.com"};
  FakeJs js(o);
  uint16_t port = js.start();
  auto refusal = [&](const std::string& request) {
    Client c(port);
    int status = httpExchange(c, request);
    return c.waitEof() ? status : -status;
  };
  CHECK_EQ(refusal("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 426);
  CHECK_EQ(refusal(wstest::upgradeRequest("", "c2hvcnQ=")), 400);
  CHECK_EQ(refusal(wstest::upgradeRequest("Origin: https://evil.example.com\r\n")), 403);
  CHECK_EQ(refusal(wstest::upgradeRequest("X-Filler: " + std::string(300, 'a') + "\r\n")), 431);
  // A handshake that never ends: 408 at upgradeTimeoutMs, though the client keeps sending.
  {
    Client slow(port);
    CHECK(slow.send(bytesOfString("GET / HTTP/1.1\r\n")));
    auto start = Clock::now();
    std::string head;
    int status = 0;
    for (int i = 0; i < 40 && status == 0; ++i) {
      slow.send(bytesOfString("X"));
      status = slow.readUntil(
                   [&](std::vector<uint8_t>& b) {
                     return std::string(b.begin(), b.end()).find("\r\n\r\n") != std::string::npos;
                   },
                   100)
                   ? 408
                   : 0;
    }
    CHECK_EQ(status, 408);
    CHECK(Clock::now() - start >= std::chrono::milliseconds(250));
    CHECK(slow.waitEof());
  }
  // An allowed origin is let in.
  Client ok(port);
  CHECK_EQ(httpExchange(ok, wstest::upgradeRequest("Origin: https://game.example.com\r\n")), 101);
  REQUIRE(js.waitFor([&] { return js.openLocked() == 1; }));
  CHECK_EQ(js.events().size(), size_t{1});  // the refused ones never opened
  CHECK_EQ(closesOf(js, CloseReason::UpgradeRefused), size_t{4});
  CHECK_EQ(closesOf(js, CloseReason::UpgradeTimeout), size_t{1});
  CHECK_EQ(js.stats().accepted.load(), uint64_t{1});
}

TEST(engine, websocket_clients_get_shutdown_and_idle_closes) {
  EngineOptions o = smallOptions();
  o.idleTimeoutMs = 400;
  FakeJs js(o);
  uint16_t port = js.start();
  Client idle(port);
  REQUIRE(upgrade(idle));
  Packet p;
  CHECK(readWsPacket(idle, p, 5000) && isNotify(p, NotifyCode::IdleTimeout));
  CHECK(readClose(idle, 1001));
  CHECK_EQ(closesOf(js, CloseReason::IdleTimeout), size_t{1});
  Client web(port);
  REQUIRE(upgrade(web));
  REQUIRE(js.waitFor([&] { return js.openLocked() == 1; }));
  js.call([](EngineCore& e) { e.shutdown(false); });
  CHECK(readWsPacket(web, p) && isNotify(p, NotifyCode::ServerShutdown));
  CHECK(readClose(web, 1001));
  web.close();
  CHECK(js.waitFor([&] { return js.finishedLocked(); }));
}

TEST(engine, a_silent_raw_client_opens_after_transport_detection) {
  EngineOptions o = smallOptions();
  o.transportDetectMs = 300;
  FakeJs js(o);
  uint16_t port = js.start();
  auto start = Clock::now();
  Client silent(port);
  REQUIRE(js.waitFor([&] { return js.openLocked() == 1; }));
  CHECK(Clock::now() - start >= std::chrono::milliseconds(250));
  // A client that begins like `GET` but is not: raw framing, with every byte it sent.
  Client almost(port);
  // A packet of 71 bytes: its length's low byte is 'G'.
  std::vector<uint8_t> packet = testutil::packet(kEcho, std::vector<uint8_t>(71 - 5, 'x'));
  CHECK_EQ(packet[0], uint8_t{'G'});
  CHECK(almost.send({packet.begin(), packet.begin() + 1}));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(almost.send({packet.begin() + 1, packet.end()}));
  Packet p;
  CHECK(almost.read(p) && p.id == kEcho && p.body.size() == 66);
  for (const Event& e : js.events()) {
    if (e.kind == InboundKind::Connect) CHECK_EQ(e.transport, Transport::Tcp);
  }
}

TEST(engine, websocket_off_reads_get_as_raw_framing) {
  EngineOptions o = smallOptions();
  o.webSocket = false;
  FakeJs js(o);
  uint16_t port = js.start();
  Client c(port);
  REQUIRE(js.waitFor([&] { return js.openLocked() == 1; }, 200));  // at accept
  CHECK(c.send(bytesOfString(wstest::upgradeRequest())));
  Packet p;
  // 0x4547 > maxPacketSize: a framing error.
  CHECK(c.read(p) && isNotify(p, NotifyCode::ProtocolError));
  CHECK(c.waitEof());
}
