// The NativeServer class exported to JS: one engine, the wake-up that hands
// its event batches to JS, and the calls JS makes (listen, submit, shutdown,
// stats). JS thread only, except the engine's IO threads, which reach JS
// solely through the thread-safe function.
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "../native/core/engine_core.h"

namespace iocpnet {

class NativeServer : public Napi::ObjectWrap<NativeServer> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit NativeServer(const Napi::CallbackInfo& info);
  ~NativeServer() override;

 private:
  // listen(ip: string, port: number): number (the bound port)
  Napi::Value Listen(const Napi::CallbackInfo& info);
  // submit(batch: Uint8Array, length: number): void
  Napi::Value Submit(const Napi::CallbackInfo& info);
  // shutdown(): void; onEvents(undefined, true) follows once every thread is done
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  // stats(): Float64Array (the contract's layout: counters, closes, one block per IO thread)
  Napi::Value Stats(const Napi::CallbackInfo& info);

  // Runs on the JS thread for each wake-up.
  void Deliver(Napi::Env env, Napi::Function onEvents);
  // Copies batch_ into the ArrayBuffer handed to JS and calls onEvents(buffer, false, length).
  void Hand(Napi::Env env, Napi::Function onEvents);
  void Finish(Napi::Env env, Napi::Function onEvents);
  // Environment teardown with the engine still running (process or worker exit).
  static void CleanupHook(void* arg);
  void StopNow();

  std::unique_ptr<EngineCore> engine_;
  Napi::FunctionReference onEvents_;
  Napi::ThreadSafeFunction tsfn_;
  std::vector<uint8_t> batch_;
  // The ArrayBuffer batches are copied into, reused from batch to batch:
  // bodies are views valid only during the handler call, so a batch may
  // overwrite the one before it. Replaced by a larger one when a batch does
  // not fit, up to kRetainedBatchBytes; a larger batch gets one of its own.
  Napi::Reference<Napi::ArrayBuffer> inbound_;
  size_t inboundCapacity_ = 0;
  napi_env env_ = nullptr;
  bool listening_ = false;
  bool finished_ = false;
  bool hookAdded_ = false;
};

}  // namespace iocpnet
