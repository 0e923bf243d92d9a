// Module entry: exports the NativeServer class and the name of the engine the
// build compiled in. Nothing is global, so the addon loads in several worker
// threads at once.
#include <napi.h>

#include "../native/core/engine_core.h"
#include "native_server.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeServer", iocpnet::NativeServer::Init(env));
  exports.Set("engine", Napi::String::New(env, iocpnet::engineName()));
  return exports;
}

}  // namespace

NODE_API_MODULE(iocpnet, Init)
