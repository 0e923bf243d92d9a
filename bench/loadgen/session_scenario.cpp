#include "session_scenario.h"

#include <cstdio>
#include <cstring>

namespace loadgen {

namespace {
constexpr int kMaxSetupRetries = 3;
constexpr int64_t kRetryDelayNs = 200'000'000;
constexpr int64_t kPingScanNs = 10'000'000;
}  // namespace

void setUserId(Conn& c, const char* prefix, uint32_t index, uint32_t suffix, bool withSuffix) {
  int n = withSuffix ? std::snprintf(c.userId, sizeof c.userId, "%s%ux%x", prefix, index, suffix)
                     : std::snprintf(c.userId, sizeof c.userId, "%s%u", prefix, index);
  if (n < 0) n = 0;
  if (n > static_cast<int>(kUserIdSize) - 1) n = static_cast<int>(kUserIdSize) - 1;
  c.userIdLength = static_cast<uint8_t>(n);
}

int32_t SessionScenario::roomOf(const Worker& w, const Conn& c) const {
  return w.options.startRoom + static_cast<int32_t>(c.index / static_cast<uint32_t>(w.options.roomUsers));
}

void SessionScenario::begin(Worker& w, int64_t now) {
  const uint32_t total = static_cast<uint32_t>(w.options.connections);
  const uint32_t step = static_cast<uint32_t>(w.options.threads);
  for (uint32_t i = static_cast<uint32_t>(w.id); i < total; i += step) {
    Conn& c = w.addConn(i);
    setUserId(c, w.options.idPrefix.c_str(), i, 0, false);
    queue_.push_back(&c);
  }
  ready_.reserve(queue_.size());
  onTick(w, now);
}

int SessionScenario::idleWaitMs() const {
  return (queueHead_ < queue_.size() || !retries_.empty() || inSetup_ > 0) ? 2 : 20;
}

void SessionScenario::start(Worker& w, Conn& c, int64_t now) {
  c.state = kConnecting;
  ++inSetup_;
  if (!w.connect(c)) setupFailed(w, c, true, now);
}

void SessionScenario::setupFailed(Worker& w, Conn& c, bool retry, int64_t now) {
  --inSetup_;
  w.close(c);
  if (retry && c.retries < kMaxSetupRetries) {
    ++c.retries;
    ++w.counters.setupRetries;
    c.state = kWaiting;
    retries_.push_back({&c, now + kRetryDelayNs});
    return;
  }
  c.state = kDead;
  w.shared.failed.fetch_add(1, std::memory_order_relaxed);
}

void SessionScenario::becomeReady(Worker& w, Conn& c, int64_t now) {
  --inSetup_;
  c.state = kReady;
  if (w.options.pingMs > 0) {
    // Spread the keep-alives over the period instead of sending them in one burst.
    const int64_t period = int64_t{w.options.pingMs} * 1'000'000;
    c.nextPingAt = now + period / 2 + static_cast<int64_t>((c.index * 2654435761u) % 1000u) * period / 2000;
  }
  ready_.push_back(&c);
  w.shared.ready.fetch_add(1, std::memory_order_relaxed);
  onReady(w, c, now);
}

void SessionScenario::onConnected(Worker& w, Conn& c, int64_t now) {
  if (!loginAndEnter_) {
    becomeReady(w, c, now);
    return;
  }
  uint8_t* body = w.append(c, packet::kLoginRequest, kUserIdSize + kUserPwSize);
  std::memcpy(body, c.userId, c.userIdLength);
  std::memcpy(body + kUserIdSize, "pw", 2);
  c.state = kLoggingIn;
}

void SessionScenario::onPacket(Worker& w, Conn& c, uint16_t id, const uint8_t* body, size_t length, int64_t now) {
  switch (c.state) {
    case kReady:
      onSteadyPacket(w, c, id, body, length, now);
      return;
    case kLoggingIn:
      if (id != packet::kLoginResponse) return;
      if (const int result = resultOf(body, length); result != 0) {
        ++w.counters.requestErrors;
        w.counters.lastResult = result;
        setupFailed(w, c, false, now);
        return;
      }
      writeI32(w.append(c, packet::kRoomEnterRequest, 4), roomOf(w, c));
      c.state = kEntering;
      return;
    case kEntering:
      if (id != packet::kRoomEnterResponse) return;
      if (const int result = resultOf(body, length); result != 0) {
        ++w.counters.requestErrors;
        w.counters.lastResult = result;
        setupFailed(w, c, false, now);
        return;
      }
      becomeReady(w, c, now);
      return;
    default:
      return;
  }
}

void SessionScenario::onClosed(Worker& w, Conn& c, bool, int64_t now) {
  if (c.state == kReady) {
    ++w.counters.closedByServer;
    c.state = kDead;
    return;
  }
  if (c.state == kConnecting || c.state == kLoggingIn || c.state == kEntering) setupFailed(w, c, true, now);
}

void SessionScenario::onTick(Worker& w, int64_t now) {
  while (!retries_.empty() && retries_.front().at <= now && inSetup_ < w.options.setupConcurrency) {
    Conn* c = retries_.front().conn;
    retries_.pop_front();
    start(w, *c, now);
  }
  while (queueHead_ < queue_.size() && inSetup_ < w.options.setupConcurrency) start(w, *queue_[queueHead_++], now);
  if (w.options.pingMs > 0 && now >= nextPingScan_) {
    nextPingScan_ = now + kPingScanNs;
    sendPings(w, now);
  }
  onSteadyTick(w, now);
}

void SessionScenario::sendPings(Worker& w, int64_t now) {
  const int64_t period = int64_t{w.options.pingMs} * 1'000'000;
  for (Conn* c : ready_) {
    if (!isReady(*c) || c->nextPingAt > now) continue;
    c->nextPingAt = now + period;
    uint8_t* body = w.append(*c, packet::kPing, 8);
    std::memcpy(body, &now, 8);
    ++w.counters.pingsSent;
  }
}

}  // namespace loadgen
