#pragma once

#include <memory>

#include "worker.h"

namespace loadgen {

// One scenario instance for one worker thread.
std::unique_ptr<Scenario> makeEchoScenario();
std::unique_ptr<Scenario> makeChatScenario();
std::unique_ptr<Scenario> makeIdleScenario();
std::unique_ptr<Scenario> makeConnectScenario();

}  // namespace loadgen
