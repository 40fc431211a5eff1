// Internal to src/topology: the rule that turns per-CPU capacity / max frequency into core
// kinds, shared by the sysfs reader and the hwloc reader (when hwloc cannot rank its kinds).
// Thread-safe (pure function).
#pragma once

#include <vector>

#include "topology/topology.h"

namespace brainstem::topology_internal {

// CPUs whose value is at least this fraction of the largest are performance cores. Turbo
// binning makes a few P cores of one chip 5-10% faster than the rest; E cores sit at 55-76%
// of P cores on every hybrid we know (Alder/Raptor/Meteor Lake, Apple M1-M4, Arm big.LITTLE).
inline constexpr double kPerformanceFraction = 0.8;

// Sets every core's kind from capacity when all cores report one and they differ, else from
// max_freq_khz likewise, else marks all performance (uniform).
void AssignKindsByRatio(std::vector<Core>* cores);

}  // namespace brainstem::topology_internal
