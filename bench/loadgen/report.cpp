#include "report.h"

namespace loadgen {

namespace {

struct Names {
  const char* throughput;
  const char* latency;
};

Names namesOf(ScenarioKind kind) {
  switch (kind) {
    case ScenarioKind::Echo:
      return {"packets_per_s", "round_trip"};
    case ScenarioKind::Chat:
      return {"notifies_per_s", "chat_to_own_notify"};
    case ScenarioKind::Connect:
      return {"cycles_per_s", "cycle"};
    case ScenarioKind::Idle:
      return {"connections_ready", "none"};
  }
  return {"?", "?"};
}

double perSecond(uint64_t n, double seconds) { return seconds > 0 ? static_cast<double>(n) / seconds : 0; }
double micros(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

void writeLatency(std::FILE* out, const char* key, const char* name, const LatencyHistogram& h) {
  std::fprintf(out,
               "\"%s\":{\"name\":\"%s\",\"count\":%llu,\"min\":%.1f,\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,"
               "\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},",
               key, name, static_cast<unsigned long long>(h.count()), micros(h.min()), h.mean() / 1000.0,
               micros(h.percentile(0.5)), micros(h.percentile(0.9)), micros(h.percentile(0.99)),
               micros(h.percentile(0.999)), micros(h.max()));
}

}  // namespace

void writeReport(std::FILE* out, const Options& o, const RunResult& r) {
  const Names names = namesOf(o.scenario);
  const Counters& c = r.counters;
  const double throughput = o.scenario == ScenarioKind::Idle ? r.ready : perSecond(c.windowCompleted, r.windowSeconds);

  std::fprintf(out, "{\"scenario\":\"%s\",\"transport\":\"%s\",\"host\":\"%s\",\"port\":%u,\"threads\":%d,",
               scenarioName(o.scenario), o.webSocket ? "websocket" : "tcp", o.host.c_str(),
               static_cast<unsigned>(o.port), o.threads);
  std::fprintf(out, "\"ports\":[");
  for (size_t i = 0; i < o.ports.size(); ++i)
    std::fprintf(out, "%s%u", i == 0 ? "" : ",", static_cast<unsigned>(o.ports[i]));
  std::fprintf(out, "],");
  std::fprintf(out, "\"connections\":%d,\"ready\":%d,\"failed\":%d,\"setup_s\":%.3f,", o.connections, r.ready, r.failed,
               r.setupSeconds);
  std::fprintf(out, "\"warmup_s\":%.3f,\"duration_s\":%.3f,", o.warmupSeconds, r.windowSeconds);
  std::fprintf(out,
               "\"params\":{\"inflight\":%d,\"body_size\":%d,\"room_users\":%d,\"start_room\":%d,\"rooms\":%d,"
               "\"rate_per_user\":%g,\"message_size\":%d,\"ping_ms\":%d,\"source_addresses\":%d},",
               o.inflight, o.bodySize, o.roomUsers, o.startRoom, o.rooms, o.ratePerUser, o.messageSize, o.pingMs,
               o.sourceAddresses);
  std::fprintf(out, "\"throughput\":{\"name\":\"%s\",\"value\":%.1f},", names.throughput, throughput);
  std::fprintf(out,
               "\"requests_per_s\":%.1f,\"packets_in_per_s\":%.1f,\"bytes_in_per_s\":%.0f,\"bytes_out_per_s\":%.0f,",
               perSecond(c.windowRequests, r.windowSeconds), perSecond(c.windowPacketsIn, r.windowSeconds),
               perSecond(c.windowBytesIn, r.windowSeconds), perSecond(c.windowBytesOut, r.windowSeconds));
  writeLatency(out, "latency_us", names.latency, r.latency);
  if (o.scenario == ScenarioKind::Chat) writeLatency(out, "delivery_us", "chat_to_every_notify", r.delivery);
  std::fprintf(out,
               "\"errors\":{\"connect\":%llu,\"setup_retries\":%llu,\"closed_by_server\":%llu,\"protocol\":%llu,"
               "\"request\":%llu,\"timeouts\":%llu,\"last_errno\":%d,\"last_result\":%d},",
               static_cast<unsigned long long>(c.connectErrors), static_cast<unsigned long long>(c.setupRetries),
               static_cast<unsigned long long>(c.closedByServer), static_cast<unsigned long long>(c.protocolErrors),
               static_cast<unsigned long long>(c.requestErrors), static_cast<unsigned long long>(c.timeouts),
               c.lastErrno, c.lastResult);
  std::fprintf(out, "\"disconnect_notify\":{");
  bool first = true;
  for (size_t i = 0; i < c.disconnectNotify.size(); ++i) {
    if (c.disconnectNotify[i] == 0) continue;
    std::fprintf(out, "%s\"%zu\":%llu", first ? "" : ",", i, static_cast<unsigned long long>(c.disconnectNotify[i]));
    first = false;
  }
  std::fprintf(out, "},\"pings_sent\":%llu,\"pongs\":%llu,\"loadgen_cpu_pct\":%.1f",
               static_cast<unsigned long long>(c.pingsSent), static_cast<unsigned long long>(c.pongs),
               r.loadgenCpuPercent);
  if (r.error != nullptr) std::fprintf(out, ",\"error\":\"%s\"", r.error);
  std::fprintf(out, "}\n");
  std::fflush(out);
}

}  // namespace loadgen
