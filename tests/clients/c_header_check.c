/* Compiles include/brainstem_client.h as C (not C++), so the ABI header stays valid C. */
#include "brainstem_client.h"

int brainstem_client_header_check(void) {
  bs_timings t = {0, 0, 0, 0, 0, 0};
  (void)t;
  return BS_OK + BS_BGRA8 - 1;
}
