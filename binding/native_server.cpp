#include "native_server.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace iocpnet {

namespace {

// Batches taken in one wake-up at most, so that timers and I/O of the JS
// thread's own loop still get their turn under a flood.
constexpr int kBatchesPerWake = 4;
// The first size of the reused inbound ArrayBuffer; it doubles as batches need.
constexpr size_t kInboundInitialBytes = 64 * 1024;

// The JS layer validated every option against the same contract; this check
// only keeps a bad value from reaching the engine.
uint32_t optionU32(Napi::Object options, const IntegerOption& spec, bool optional = false) {
  Napi::Env env = options.Env();
  Napi::Value v = options.Get(spec.name);
  if (optional && v.IsUndefined()) return spec.defaultValue;
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(spec.name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= spec.min && d <= spec.max) || d != static_cast<double>(static_cast<uint32_t>(d))) {
    throw Napi::RangeError::New(env, std::string(spec.name) + " must be an integer between " +
                                         std::to_string(spec.min) + " and " + std::to_string(spec.max));
  }
  return static_cast<uint32_t>(d);
}

// optional: the option may be left out (undefined), and the contract's default then applies.
bool optionBool(Napi::Object options, const BooleanOption& spec, bool optional = false) {
  Napi::Value v = options.Get(spec.name);
  if (optional && v.IsUndefined()) return spec.defaultValue;
  if (!v.IsBoolean()) throw Napi::TypeError::New(options.Env(), std::string(spec.name) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

// webSocketOrigins: an array of non-empty printable-ASCII strings (WEB_SOCKET in lib/contract.ts).
std::vector<std::string> optionOrigins(Napi::Object options, const char* name) {
  Napi::Env env = options.Env();
  Napi::Value v = options.Get(name);
  if (v.IsUndefined()) return {};
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string(name) + " must be an array of strings");
  Napi::Array list = v.As<Napi::Array>();
  if (list.Length() > kMaxWebSocketOrigins) {
    throw Napi::RangeError::New(
        env, std::string(name) + " may hold at most " + std::to_string(kMaxWebSocketOrigins) + " origins");
  }
  std::vector<std::string> out;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Value item = list.Get(i);
    if (!item.IsString()) throw Napi::TypeError::New(env, std::string(name) + " must be an array of strings");
    std::string origin = item.As<Napi::String>().Utf8Value();
    bool printable = !origin.empty() && origin.size() <= kMaxWebSocketOriginLength;
    for (char ch : origin) printable = printable && ch > 0x20 && ch < 0x7F;
    if (!printable) {
      throw Napi::RangeError::New(env, std::string(name) + " entries must be 1 to " +
                                           std::to_string(kMaxWebSocketOriginLength) + " printable ASCII characters");
    }
    out.push_back(std::move(origin));
  }
  return out;
}

}  // namespace

Napi::Function NativeServer::Init(Napi::Env env) {
  return DefineClass(env, "NativeServer",
                     {
                         InstanceMethod<&NativeServer::Listen>("listen"),
                         InstanceMethod<&NativeServer::Submit>("submit"),
                         InstanceMethod<&NativeServer::Shutdown>("shutdown"),
                         InstanceMethod<&NativeServer::Stats>("stats"),
                     });
}

// new NativeServer(options, onEvents(batch: ArrayBuffer | undefined, finished: boolean, length: number))
// The batch is the first `length` bytes of the buffer, which is reused: it is valid only during the call.
NativeServer::NativeServer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeServer>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  if (info.Length() < 2 || !info[0].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  if (!info[1].IsFunction()) throw Napi::TypeError::New(env, "onEvents must be a function");
  Napi::Object o = info[0].As<Napi::Object>();
  EngineOptions options;
  options.ioThreads = optionU32(o, kIoThreadsOption);
  options.maxConnections = optionU32(o, kMaxConnectionsOption);
  options.maxPacketSize = optionU32(o, kMaxPacketSizeOption);
  options.idleTimeoutMs = optionU32(o, kIdleTimeoutMsOption);
  options.maxSendQueueBytes = optionU32(o, kMaxSendQueueBytesOption);
  options.sendQueueHighWaterBytes = optionU32(o, kSendQueueHighWaterBytesOption);
  options.sendQueueLowWaterBytes = optionU32(o, kSendQueueLowWaterBytesOption);
  options.maxPendingBytes = optionU32(o, kMaxPendingBytesOption);
  options.closeTimeoutMs = optionU32(o, kCloseTimeoutMsOption);
  options.reusePort = optionBool(o, kReusePortOption);
  options.webSocket = optionBool(o, kWebSocketOption, true);
  options.maxUpgradeRequestBytes = optionU32(o, kMaxUpgradeRequestBytesOption, true);
  options.upgradeTimeoutMs = optionU32(o, kUpgradeTimeoutMsOption, true);
  options.transportDetectMs = optionU32(o, kTransportDetectMsOption, true);
  options.webSocketOrigins = optionOrigins(o, "webSocketOrigins");
  engine_ = createEngine(options);
  onEvents_ = Napi::Persistent(info[1].As<Napi::Function>());
}

NativeServer::~NativeServer() {
  if (hookAdded_) napi_remove_env_cleanup_hook(env_, CleanupHook, this);
  StopNow();
}

Napi::Value NativeServer::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString()) throw Napi::TypeError::New(env, "ip must be a string");
  if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "port must be a number");
  double port = info[1].As<Napi::Number>().DoubleValue();
  if (!(port >= 0 && port <= 65535) || port != static_cast<double>(static_cast<uint16_t>(port))) {
    throw Napi::RangeError::New(env, "port must be an integer between 0 and 65535");
  }
  if (listening_) {
    Napi::Error err = Napi::Error::New(env, "listen() was already called");
    err.Set("code", "ERR_SERVER_STATE");
    throw err;
  }
  // The wake-up exists before any IO thread can use it.
  tsfn_ = Napi::ThreadSafeFunction::New(env, onEvents_.Value(), "iocpnet.events", 0, 1);
  napi_threadsafe_function raw = tsfn_;
  NativeServer* self = this;
  engine_->setWake([raw, self] {
    // Runs on IO threads; the batch is drained on the JS thread.
    Napi::ThreadSafeFunction tsfn(raw);
    tsfn.NonBlockingCall([self](Napi::Env env, Napi::Function fn) { self->Deliver(env, fn); });
  });
  uint16_t bound = 0;
  EngineError error = engine_->listen(info[0].As<Napi::String>().Utf8Value(), static_cast<uint16_t>(port), &bound);
  if (error) {
    engine_->setWake(nullptr);
    tsfn_.Release();
    Napi::Error err = Napi::Error::New(env, error.message);
    err.Set("code", error.code);
    throw err;
  }
  listening_ = true;
  // Registered after the thread-safe function, so it runs before that one's
  // own teardown: the IO threads are joined while it still exists.
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  hookAdded_ = true;
  // The JS object must outlive the threads that call back into it.
  Ref();
  return Napi::Number::New(env, bound);
}

Napi::Value NativeServer::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "batch must be a Uint8Array");
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(env, "batch must be a Uint8Array");
  Napi::Uint8Array bytes = ta.As<Napi::Uint8Array>();
  if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "length must be a number");
  double length = info[1].As<Napi::Number>().DoubleValue();
  if (!(length >= 0 && length <= static_cast<double>(bytes.ElementLength())) ||
      length != static_cast<double>(static_cast<size_t>(length))) {
    throw Napi::RangeError::New(env, "length must be an integer within the batch");
  }
  std::string error = engine_->submit(bytes.Data(), static_cast<size_t>(length));
  if (!error.empty()) throw Napi::TypeError::New(env, "malformed outbound batch: " + error);
  return env.Undefined();
}

Napi::Value NativeServer::Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!listening_ || finished_) return env.Undefined();
  engine_->shutdown(false);
  return env.Undefined();
}

Napi::Value NativeServer::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  iocpnet::Stats& s = engine_->stats();
  auto load = [](const std::atomic<uint64_t>& v) { return static_cast<double>(v.load(std::memory_order_relaxed)); };
  size_t threads = engine_->ioThreadCount();
  Napi::Float64Array out = Napi::Float64Array::New(env, kStatsLength + threads * kThreadStatsFieldCount);
  auto set = [&out](StatsField field, double value) { out[static_cast<size_t>(field)] = value; };
  auto total = [this](ThreadStatsField field) { return static_cast<double>(engine_->total(field)); };
  set(StatsField::Connections, static_cast<double>(engine_->openConnections()));
  set(StatsField::Accepted, load(s.accepted));
  set(StatsField::PacketsIn, total(ThreadStatsField::PacketsIn));
  set(StatsField::PacketsOut, total(ThreadStatsField::PacketsOut));
  set(StatsField::BytesIn, total(ThreadStatsField::BytesIn));
  set(StatsField::BytesOut, total(ThreadStatsField::BytesOut));
  set(StatsField::Pings, load(s.pings));
  set(StatsField::IgnoredSystemPackets, load(s.ignoredSystemPackets));
  set(StatsField::StaleRefused, load(s.staleRefused));
  set(StatsField::ReadPauses, load(s.readPauses));
  set(StatsField::ReadPausesSendQueue, load(s.readPausesSendQueue));
  set(StatsField::DescriptorRefused, load(s.descriptorRefused));
  set(StatsField::PendingBytes, static_cast<double>(engine_->pendingBytes()));
  set(StatsField::SendQueueBytes, total(ThreadStatsField::SendQueueBytes));
  for (size_t i = 0; i < kCloseReasonCount; ++i) out[kStatsFieldCount + i] = load(s.closes[i]);
  for (size_t t = 0; t < threads; ++t) {
    const ThreadStats& ts = engine_->threadStats(t);
    for (size_t f = 0; f < kThreadStatsFieldCount; ++f) {
      out[kStatsLength + t * kThreadStatsFieldCount + f] =
          static_cast<double>(ts.get(static_cast<ThreadStatsField>(f)));
    }
  }
  return out;
}

void NativeServer::Deliver(Napi::Env env, Napi::Function onEvents) {
  if (finished_ || env == nullptr) return;
  // Events that arrive while JS handles a batch are taken in the same
  // wake-up: under load this saves a thread hand-over per batch.
  for (int round = 0; round < kBatchesPerWake; ++round) {
    engine_->drain(batch_);
    if (batch_.empty()) break;
    Hand(env, onEvents);
    // Handlers have run and their replies are submitted: the IO threads may
    // count those requests as answered (flow control).
    engine_->batchHandled();
    if (finished_) return;
  }
  if (engine_->finished()) Finish(env, onEvents);
}

void NativeServer::Hand(Napi::Env env, Napi::Function onEvents) {
  const size_t size = batch_.size();
  Napi::ArrayBuffer ab;
  if (size <= inboundCapacity_) {
    ab = inbound_.Value();
  } else {
    size_t capacity = std::max(kInboundInitialBytes, inboundCapacity_);
    while (capacity < size) capacity *= 2;
    ab = Napi::ArrayBuffer::New(env, capacity);
    if (capacity <= kRetainedBatchBytes) {
      inbound_ = Napi::Persistent(ab);
      inboundCapacity_ = capacity;
    }
  }
  // One copy per batch into memory V8 owns; bodies are views into it.
  std::memcpy(ab.Data(), batch_.data(), size);
  // A buffer grown by a burst is not kept, not even until the next drain.
  if (batch_.capacity() > kRetainedBatchBytes) std::vector<uint8_t>().swap(batch_);
  onEvents.Call({ab, Napi::Boolean::New(env, false), Napi::Number::New(env, static_cast<double>(size))});
}

void NativeServer::Finish(Napi::Env env, Napi::Function onEvents) {
  if (finished_) return;
  finished_ = true;
  engine_->join();
  // Events the last threads handed over after the drain above.
  engine_->drain(batch_);
  if (!batch_.empty()) Hand(env, onEvents);
  if (hookAdded_) {
    napi_remove_env_cleanup_hook(env, CleanupHook, this);
    hookAdded_ = false;
  }
  engine_->setWake(nullptr);
  tsfn_.Release();
  onEvents.Call({env.Undefined(), Napi::Boolean::New(env, true), Napi::Number::New(env, 0)});
  Unref();
}

void NativeServer::StopNow() {
  if (!engine_ || !listening_ || finished_) return;
  finished_ = true;
  engine_->shutdown(true);
  engine_->join();
}

void NativeServer::CleanupHook(void* arg) {
  NativeServer* self = static_cast<NativeServer*>(arg);
  self->hookAdded_ = false;
  self->StopNow();
}

}  // namespace iocpnet
