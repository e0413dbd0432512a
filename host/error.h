// Internal: the per-thread error message behind fnceGetLastErrorMessage().
#pragma once

#include "flashnce/flashnce.h"

namespace flashnce {

// Records a printf-style message for this thread and returns `status`, so that library code
// reads `return fail(FNCE_ERROR_INVALID_VALUE, "n must be >= 1, got %lld", (long long)n);`.
fnceStatus_t fail(fnceStatus_t status, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

// Clears this thread's message (called at the start of every public entry point).
void clear_error();

const char* last_error_message();

} // namespace flashnce
