#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "worker.h"

namespace loadgen {

// The common start of the echo, chat and idle scenarios: this worker's
// share of the connections is opened, at most setupConcurrency at a time,
// each is optionally logged in and sent to its room, and then it is ready.
// Setup failures are retried a few times; what is then still failing is
// reported, never hidden. Worker thread only.
class SessionScenario : public Scenario {
 public:
  explicit SessionScenario(bool loginAndEnter) : loginAndEnter_(loginAndEnter) {}

  void begin(Worker& w, int64_t now) override;
  void onConnected(Worker& w, Conn& c, int64_t now) override;
  void onPacket(Worker& w, Conn& c, uint16_t id, const uint8_t* body, size_t length, int64_t now) override;
  void onClosed(Worker& w, Conn& c, bool eof, int64_t now) override;
  void onTick(Worker& w, int64_t now) override;
  int idleWaitMs() const override;

 protected:
  enum State : uint8_t { kWaiting, kConnecting, kLoggingIn, kEntering, kReady, kDead };

  virtual void onReady(Worker& w, Conn& c, int64_t now) = 0;
  virtual void onSteadyPacket(Worker& w, Conn& c, uint16_t id, const uint8_t* body, size_t length, int64_t now) = 0;
  virtual void onSteadyTick(Worker& w, int64_t now) = 0;

  static bool isReady(const Conn& c) { return c.fd >= 0 && c.state == kReady; }
  int32_t roomOf(const Worker& w, const Conn& c) const;

  std::vector<Conn*> ready_;

 private:
  struct Retry {
    Conn* conn;
    int64_t at;
  };
  void start(Worker& w, Conn& c, int64_t now);
  void setupFailed(Worker& w, Conn& c, bool retry, int64_t now);
  void becomeReady(Worker& w, Conn& c, int64_t now);
  void sendPings(Worker& w, int64_t now);

  const bool loginAndEnter_;
  std::vector<Conn*> queue_;
  size_t queueHead_ = 0;
  std::deque<Retry> retries_;
  int inSetup_ = 0;
  int64_t nextPingScan_ = 0;
};

// Writes "<prefix><index>" or "<prefix><index>x<suffix in hex>" NUL-terminated
// into c.userId. With a prefix of at most 4 characters and fewer than 10^6
// connections the longest id is 4 + 6 + 1 + 8 = 19 characters, within the
// 20 a user id may have.
void setUserId(Conn& c, const char* prefix, uint32_t index, uint32_t suffix, bool withSuffix);

}  // namespace loadgen
