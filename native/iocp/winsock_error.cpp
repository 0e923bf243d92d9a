#include "winsock_error.h"

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <windows.h>

namespace iocpnet {

namespace {

struct ErrorName {
  int error;
  const char* name;
};

// The conditions a listen or a socket call can report, named as on POSIX.
constexpr ErrorName kErrorNames[] = {
    {WSAEADDRINUSE, "EADDRINUSE"},
    {WSAEADDRNOTAVAIL, "EADDRNOTAVAIL"},
    {WSAEACCES, "EACCES"},
    {ERROR_ACCESS_DENIED, "EACCES"},
    {WSAEAFNOSUPPORT, "EAFNOSUPPORT"},
    {WSAEPROTONOSUPPORT, "EPROTONOSUPPORT"},
    {WSAEINVAL, "EINVAL"},
    {WSAEFAULT, "EFAULT"},
    {WSAEMFILE, "EMFILE"},
    {WSAENOBUFS, "ENOBUFS"},
    {ERROR_NOT_ENOUGH_MEMORY, "ENOMEM"},
    {ERROR_OUTOFMEMORY, "ENOMEM"},
    {WSAENETDOWN, "ENETDOWN"},
    {WSAECONNRESET, "ECONNRESET"},
    {WSAECONNABORTED, "ECONNABORTED"},
    {WSAENOTCONN, "ENOTCONN"},
    {WSAENOTSOCK, "ENOTSOCK"},
    {WSAESHUTDOWN, "EPIPE"},
    {WSAETIMEDOUT, "ETIMEDOUT"},
    {WSAEWOULDBLOCK, "EAGAIN"},
    {WSANOTINITIALISED, "ENOTINITIALISED"},
    {WSASYSNOTREADY, "ENOTREADY"},
    {WSAVERNOTSUPPORTED, "ENOTSUP"},
    {ERROR_OPERATION_ABORTED, "ECANCELED"},
};

std::string systemMessage(int error) {
  char buf[512];
  DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr,
                           static_cast<DWORD>(error), 0, buf, sizeof buf, nullptr);
  // The system's text ends with a line break (and often a full stop).
  while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '.')) --n;
  if (n == 0) return "error " + std::to_string(error);
  return std::string(buf, n);
}

}  // namespace

const char* winsockErrorName(int error) {
  for (const ErrorName& e : kErrorNames) {
    if (e.error == error) return e.name;
  }
  return "UNKNOWN";
}

EngineError winsockError(int error, const std::string& what) {
  return EngineError{winsockErrorName(error), what + ": " + systemMessage(error)};
}

}  // namespace iocpnet
