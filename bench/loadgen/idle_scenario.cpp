#include "scenarios.h"
#include "session_scenario.h"

namespace loadgen {

namespace {

// Logged-in users sitting in their rooms, sending nothing but the optional
// keep-alive PING: what the server costs at rest per connection.
class IdleScenario final : public SessionScenario {
 public:
  IdleScenario() : SessionScenario(true) {}

 protected:
  void onReady(Worker&, Conn&, int64_t) override {}
  void onSteadyPacket(Worker&, Conn&, uint16_t, const uint8_t*, size_t, int64_t) override {}
  void onSteadyTick(Worker&, int64_t) override {}
};

}  // namespace

std::unique_ptr<Scenario> makeIdleScenario() { return std::make_unique<IdleScenario>(); }

}  // namespace loadgen
