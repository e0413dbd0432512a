/* flashnce.h is a C99 header: this file is compiled as C99 with -Wall -Wextra -pedantic -Werror
 * and linked into flashnce_api_tests, which calls c_header_check(). */
#include "flashnce/flashnce.h"

#include <string.h>

/* 0 when a C caller sees the documented defaults, else the number of the first wrong field. */
int c_header_check(void) {
  fnceLossParams p;
  memset(&p, 0xFF, sizeof p);
  if (fnceLossParamsInit(&p) != FNCE_SUCCESS)
    return 1;
  if (p.struct_size != sizeof(fnceLossParams))
    return 2;
  if (p.backend != FNCE_BACKEND_CUDA || p.dtype != FNCE_F32)
    return 3;
  if (p.similarity != FNCE_SIM_DOT || p.positives != FNCE_POSITIVES_DIAGONAL)
    return 4;
  if (p.normalizer != FNCE_NORMALIZER_ALL || p.direction != FNCE_DIRECTION_ROWS)
    return 5;
  if (p.reduction != FNCE_REDUCTION_MEAN || p.allow_tf32 != 0 || p.exclude_self != 0)
    return 6;
  if (strcmp(fnceGetStatusString(FNCE_SUCCESS), "FNCE_SUCCESS") != 0)
    return 7;
  {
    size_t bytes = 0;
    p.backend = FNCE_BACKEND_CPU; /* n = 0: rejected, from C too */
    if (fnceForwardWorkspaceSize(&p, &bytes) != FNCE_ERROR_INVALID_VALUE)
      return 8;
    if (strcmp(fnceGetLastErrorMessage(), "n must be >= 1, got 0") != 0)
      return 9;
  }
  return 0;
}
