// The per-thread error message behind fnceGetLastErrorMessage() (see host/error.h).
#include "host/error.h"

#include <cstdarg>
#include <cstdio>

namespace flashnce {
namespace {
// One buffer per thread: a failing call on one thread never clobbers another thread's message.
// 512 bytes holds every message the library writes; vsnprintf truncates anything longer.
thread_local char g_message[512] = "";
} // namespace

fnceStatus_t fail(fnceStatus_t status, const char* fmt, ...) {
  std::va_list args;
  va_start(args, fmt);
  std::vsnprintf(g_message, sizeof g_message, fmt, args);
  va_end(args);
  return status;
}

void clear_error() {
  g_message[0] = '\0';
}

const char* last_error_message() {
  return g_message;
}

} // namespace flashnce
