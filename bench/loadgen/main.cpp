// iocpnet-loadgen: drives an iocpnet server with many connections from a few
// epoll threads and reports throughput and latency as one JSON object.
//
// Timeline: set up every connection (and log it in), print "@ready", warm
// up, print "@measure-start", measure, print "@measure-end", stop. The
// benchmark runner samples the server's CPU and memory at those lines.

#include <arpa/inet.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "options.h"
#include "report.h"
#include "scenarios.h"
#include "worker.h"

using namespace loadgen;

namespace {

void raiseFileLimit(int wanted) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < static_cast<rlim_t>(wanted)) {
    std::fprintf(stderr, "iocpnet-loadgen: the open-file limit %llu is below the %d sockets asked for\n",
                 static_cast<unsigned long long>(rl.rlim_cur), wanted);
  }
}

double cpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void sleepUntil(int64_t t) {
  for (;;) {
    const int64_t left = t - nowNs();
    if (left <= 0) return;
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<int64_t>(left, 5'000'000)));
  }
}

std::unique_ptr<Scenario> makeScenario(ScenarioKind kind) {
  switch (kind) {
    case ScenarioKind::Echo:
      return makeEchoScenario();
    case ScenarioKind::Chat:
      return makeChatScenario();
    case ScenarioKind::Connect:
      return makeConnectScenario();
    case ScenarioKind::Idle:
      return makeIdleScenario();
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  const Options options = parseOptions(argc, argv);
  in_addr probe{};
  if (inet_pton(AF_INET, options.host.c_str(), &probe) != 1) {
    std::fprintf(stderr, "iocpnet-loadgen: --host must be an IPv4 address, got '%s'\n", options.host.c_str());
    return 2;
  }
  raiseFileLimit(options.connections + 64);

  Shared shared;
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < options.threads; ++t) {
    workers.push_back(std::make_unique<Worker>(t, options, shared, makeScenario(options.scenario)));
  }
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });

  RunResult result;
  // The connect scenario has nothing to set up: its cycles are the load.
  const int target = options.scenario == ScenarioKind::Connect ? 0 : options.connections;
  const int64_t setupStart = nowNs();
  const int64_t setupDeadline = setupStart + static_cast<int64_t>(options.setupTimeoutSeconds * 1e9);
  while (shared.ready.load() + shared.failed.load() < target && nowNs() < setupDeadline)
    sleepUntil(nowNs() + 2'000'000);
  result.setupSeconds = static_cast<double>(nowNs() - setupStart) / 1e9;
  result.ready = shared.ready.load();
  result.failed = shared.failed.load();
  std::fprintf(stderr, "@ready %d %d %.3f\n", result.ready, result.failed, result.setupSeconds);

  if (target > 0 && result.ready == 0) {
    result.error = "no connection could be set up";
    shared.stop = true;
  } else {
    const int64_t t0 = nowNs();
    const int64_t measureStart = t0 + static_cast<int64_t>(options.warmupSeconds * 1e9);
    const int64_t measureEnd = measureStart + static_cast<int64_t>(options.durationSeconds * 1e9);
    shared.measureStart.store(measureStart, std::memory_order_relaxed);
    shared.measureEnd.store(measureEnd, std::memory_order_relaxed);
    shared.warmupStart.store(t0, std::memory_order_release);
    result.windowSeconds = static_cast<double>(measureEnd - measureStart) / 1e9;

    sleepUntil(measureStart);
    const double cpu0 = cpuSeconds();
    std::fprintf(stderr, "@measure-start\n");
    sleepUntil(measureEnd);
    const double cpu1 = cpuSeconds();
    std::fprintf(stderr, "@measure-end\n");
    result.loadgenCpuPercent = 100.0 * (cpu1 - cpu0) / result.windowSeconds;
    shared.stop = true;
  }
  for (auto& t : threads) t.join();
  for (auto& w : workers) {
    result.counters.merge(w->counters);
    result.latency.merge(w->latency);
    result.delivery.merge(w->delivery);
  }
  if (result.failed > 0 && result.error == nullptr) result.error = "some connections could not be set up";
  writeReport(stdout, options, result);
  return result.error != nullptr && result.ready == 0 && target > 0 ? 1 : 0;
}
