// CpuRelax: the spin-wait hint of the current architecture (x86 PAUSE, Arm YIELD), so busy
// polling loops yield pipeline resources to the SMT sibling and save power.
// Thread-safe: no state.
#pragma once

namespace brainstem {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace brainstem
