#include <cstring>

#include "scenarios.h"
#include "session_scenario.h"

namespace loadgen {

namespace {

// Closed loop against an echo server: every connection keeps `inflight`
// packets outstanding and sends a new one for each reply. The body starts
// with the send time, so a reply carries its own round-trip start. With
// --ping 1 the packets are PINGs, which the engine answers itself.
class EchoScenario final : public SessionScenario {
 public:
  EchoScenario() : SessionScenario(false) {}

 protected:
  void onReady(Worker&, Conn& c, int64_t) override { toStart_.push_back(&c); }

  void onSteadyTick(Worker& w, int64_t now) override {
    if (!w.warmupStarted() || toStart_.empty()) return;
    for (Conn* c : toStart_) {
      if (!isReady(*c)) continue;
      for (int k = 0; k < w.options.inflight; ++k) sendEcho(w, *c, now);
    }
    toStart_.clear();
  }

  void onSteadyPacket(Worker& w, Conn& c, uint16_t id, const uint8_t* body, size_t length, int64_t now) override {
    if (id != (w.options.ping ? packet::kPong : packet::kEcho)) return;
    if (length != static_cast<size_t>(w.options.bodySize)) {
      // The echo server changed the body: count it, keep the loop going.
      ++w.counters.protocolErrors;
    } else if (w.inWindow(now)) {
      int64_t sent;
      std::memcpy(&sent, body, sizeof sent);
      ++w.counters.windowCompleted;
      w.latency.record(now - sent);
    }
    sendEcho(w, c, now);
  }

 private:
  void sendEcho(Worker& w, Conn& c, int64_t now) {
    uint8_t* body =
        w.append(c, w.options.ping ? packet::kPing : packet::kEcho, static_cast<size_t>(w.options.bodySize));
    std::memcpy(body, &now, sizeof now);
    if (w.inWindow(now)) ++w.counters.windowRequests;
  }

  std::vector<Conn*> toStart_;
};

}  // namespace

std::unique_ptr<Scenario> makeEchoScenario() { return std::make_unique<EchoScenario>(); }

}  // namespace loadgen
