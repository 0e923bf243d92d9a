#include <cstring>
#include <deque>

#include "scenarios.h"
#include "session_scenario.h"

namespace loadgen {

namespace {

constexpr int64_t kTimeoutScanNs = 50'000'000;
constexpr int64_t kRestartAfterErrorNs = 10'000'000;

// Parallel session cycles: connect, LOGIN_REQUEST, ROOM_ENTER_REQUEST,
// ROOM_LEAVE_REQUEST, then a graceful close. The client sends FIN and the
// cycle ends when the server's FIN comes back, so the server's disconnect
// handling is inside the cycle. Every cycle logs in under a fresh user id,
// because the server may still be handling the previous cycle's disconnect.
class ConnectScenario final : public Scenario {
 public:
  void begin(Worker& w, int64_t now) override {
    const uint32_t total = static_cast<uint32_t>(w.options.connections);
    const uint32_t step = static_cast<uint32_t>(w.options.threads);
    for (uint32_t i = static_cast<uint32_t>(w.id); i < total; i += step) {
      Conn& c = w.addConn(i);
      restartNow_.push_back(&c);
    }
    onTick(w, now);
  }

  void onConnected(Worker& w, Conn& c, int64_t) override {
    uint8_t* body = w.append(c, packet::kLoginRequest, kUserIdSize + kUserPwSize);
    std::memcpy(body, c.userId, c.userIdLength);
    std::memcpy(body + kUserIdSize, "pw", 2);
    c.state = kLoggingIn;
  }

  void onPacket(Worker& w, Conn& c, uint16_t id, const uint8_t* body, size_t length, int64_t now) override {
    uint16_t expected = 0;
    switch (c.state) {
      case kLoggingIn:
        expected = packet::kLoginResponse;
        break;
      case kEntering:
        expected = packet::kRoomEnterResponse;
        break;
      case kLeaving:
        expected = packet::kRoomLeaveResponse;
        break;
      default:
        return;
    }
    // Notifies about other users in the room are part of the load, not of the cycle.
    if (id != expected) return;
    if (const int result = resultOf(body, length); result != 0) {
      ++w.counters.requestErrors;
      w.counters.lastResult = result;
      abandon(w, c, now);
      return;
    }
    switch (c.state) {
      case kLoggingIn: {
        const int32_t room =
            w.options.startRoom + static_cast<int32_t>(c.index % static_cast<uint32_t>(w.options.rooms));
        writeI32(w.append(c, packet::kRoomEnterRequest, 4), room);
        c.state = kEntering;
        break;
      }
      case kEntering:
        w.append(c, packet::kRoomLeaveRequest, 0);
        c.state = kLeaving;
        break;
      default:
        c.state = kClosing;
        w.shutdownWrite(c);
        break;
    }
  }

  void onClosed(Worker& w, Conn& c, bool eof, int64_t now) override {
    if (c.state == kClosing && eof) {
      if (w.inWindow(now)) {
        ++w.counters.windowCompleted;
        w.latency.record(now - c.stamp);
      }
      c.state = kIdle;
      restartNow_.push_back(&c);
      return;
    }
    // A refused connect was counted by the worker already.
    if (c.state != kIdle && c.state != kConnecting) ++w.counters.closedByServer;
    c.state = kIdle;
    restartLater_.push_back({&c, now + kRestartAfterErrorNs});
  }

  void onTick(Worker& w, int64_t now) override {
    // Swapped out first, since starting a cycle may queue restarts.
    starting_.swap(restartNow_);
    for (Conn* c : starting_) startCycle(w, *c, now);
    starting_.clear();
    while (!restartLater_.empty() && restartLater_.front().at <= now) {
      Conn* c = restartLater_.front().conn;
      restartLater_.pop_front();
      startCycle(w, *c, now);
    }
    if (now >= nextTimeoutScan_) {
      nextTimeoutScan_ = now + kTimeoutScanNs;
      const int64_t limit = int64_t{w.options.cycleTimeoutMs} * 1'000'000;
      for (auto& c : w.conns()) {
        if (c->state != kIdle && now - c->stamp > limit) {
          ++w.counters.timeouts;
          abandon(w, *c, now);
        }
      }
    }
  }

  int idleWaitMs() const override { return restartNow_.empty() && restartLater_.empty() ? 5 : 1; }

 private:
  enum State : uint8_t { kIdle, kConnecting, kLoggingIn, kEntering, kLeaving, kClosing };
  struct Restart {
    Conn* conn;
    int64_t at;
  };

  void startCycle(Worker& w, Conn& c, int64_t now) {
    ++c.cycle;
    setUserId(c, w.options.idPrefix.c_str(), c.index, c.cycle, true);
    c.stamp = now;
    c.state = kConnecting;
    if (w.connect(c)) return;
    c.state = kIdle;
    restartLater_.push_back({&c, now + kRestartAfterErrorNs});
  }

  void abandon(Worker& w, Conn& c, int64_t now) {
    w.close(c);
    c.state = kIdle;
    restartLater_.push_back({&c, now + kRestartAfterErrorNs});
  }

  // Delays are all equal, so restartLater_ stays sorted by time.
  std::vector<Conn*> restartNow_;
  std::vector<Conn*> starting_;
  std::deque<Restart> restartLater_;
  int64_t nextTimeoutScan_ = 0;
};

}  // namespace

std::unique_ptr<Scenario> makeConnectScenario() { return std::make_unique<ConnectScenario>(); }

}  // namespace loadgen
