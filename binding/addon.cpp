// Module entry: exports the NativeServer class. Nothing is global, so the
// addon loads in several worker threads at once.
#include <napi.h>

#include "native_server.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeServer", iocpnet::NativeServer::Init(env));
#ifdef _WIN32
  exports.Set("engine", Napi::String::New(env, "iocp"));
#else
  exports.Set("engine", Napi::String::New(env, "libuv"));
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(iocpnet, Init)
