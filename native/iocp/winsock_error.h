// Winsock error numbers as the stable codes the rest of the package uses
// (the names libuv and Node give the same conditions, e.g. EADDRINUSE).
// Any thread.
#pragma once

#include <string>

#include "../core/engine_core.h"

namespace iocpnet {

// The code name for a Winsock or Win32 error number; "UNKNOWN" if unmapped.
const char* winsockErrorName(int error);

// An EngineError for error, with what failed and the system's message.
EngineError winsockError(int error, const std::string& what);

}  // namespace iocpnet
