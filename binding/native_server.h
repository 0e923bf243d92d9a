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
  void Finish(Napi::Env env, Napi::Function onEvents);
  // Environment teardown with the engine still running (process or worker exit).
  static void CleanupHook(void* arg);
  void StopNow();

  std::unique_ptr<EngineCore> engine_;
  Napi::FunctionReference onEvents_;
  Napi::ThreadSafeFunction tsfn_;
  std::vector<uint8_t> batch_;
  napi_env env_ = nullptr;
  bool listening_ = false;
  bool finished_ = false;
  bool hookAdded_ = false;
};

}  // namespace iocpnet
