// Region: one client's shared-memory region on the server side: an anonymous memfd (never
// named in /dev/shm), sized from the accepted hello, sealed against resizing, mapped and with
// its header written; or, for the named rendezvous, a POSIX shm object whose name lives only
// until the client has attached (seals do not exist for those; docs/shm-protocol.md section 8).
// RegionView is the address arithmetic over a mapping, shared with test clients so both sides
// compute slot addresses from the same code. Thread-safety: a Region's geometry and addresses are
// constant after Create; the bytes they point to are shared with the client and follow the slot
// protocol (docs/shm-protocol.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "telemetry/server_metrics.h"
#include "transport/shm/shm_layout.h"

namespace brainstem::shm {

// Non-owning view of a mapped region. `geometry` is the view's own copy: the server builds it
// from the validated hello and never re-reads it from shared memory, where the client could
// change it.
struct RegionView {
  uint8_t* base = nullptr;
  RegionGeometry geometry;

  RegionHeader* header() const { return reinterpret_cast<RegionHeader*>(base); }
  // REQUIRES for the slot accessors: i < the matching count in `geometry`.
  TensorSlot* tensor_slot(uint32_t i) const {
    return reinterpret_cast<TensorSlot*>(base + geometry.tensor_slots_offset() +
                                         uint64_t{i} * geometry.tensor_slot_stride());
  }
  float* tensor_input(uint32_t i) const {
    return reinterpret_cast<float*>(reinterpret_cast<uint8_t*>(tensor_slot(i)) +
                                    kTensorInputOffset);
  }
  float* tensor_output(uint32_t i) const {
    return reinterpret_cast<float*>(reinterpret_cast<uint8_t*>(tensor_slot(i)) +
                                    geometry.tensor_output_offset());
  }
  FrameSlot* frame_slot(uint32_t i) const {
    return reinterpret_cast<FrameSlot*>(base + geometry.frame_slots_offset() +
                                        uint64_t{i} * geometry.frame_slot_stride());
  }
  uint8_t* frame_pixels(uint32_t i) const {
    return reinterpret_cast<uint8_t*>(frame_slot(i)) + kFramePixelsOffset;
  }
};

class Region {
 public:
  // Creates the memfd (MFD_CLOEXEC | MFD_ALLOW_SEALING), sizes it to geometry.region_size(),
  // seals it (no shrink, no grow, no further seals), maps it shared and writes the header
  // (server_state = 1). Adds the size to metrics->shm_bytes_mapped (metrics may be null).
  // Errors: kInternal naming the failed system call and errno text.
  static Result<std::unique_ptr<Region>> Create(const RegionGeometry& geometry,
                                                ChecksumKind checksum, uint64_t generation,
                                                ServerMetrics* metrics);
  // The same region as a named shm object: shm_open(`shm_name`, O_CREAT | O_EXCL), mode 0600
  // set with fchmod (whatever the umask), sized, mapped, header written; not sealed. The name
  // stays until Unlink or the destructor. Errors: kInternal naming the system call (EEXIST
  // included: names are random, a collision is not retried).
  static Result<std::unique_ptr<Region>> CreateNamed(const std::string& shm_name,
                                                     const RegionGeometry& geometry,
                                                     ChecksumKind checksum, uint64_t generation,
                                                     ServerMetrics* metrics);
  // Unmaps, closes the memfd if still open, removes the shm name if still there and subtracts
  // the size from shm_bytes_mapped.
  ~Region();

  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  // The memfd to pass to the client; -1 after CloseMemfd. The mapping stays valid without it.
  int memfd() const { return memfd_; }
  void CloseMemfd();
  // Named regions: the shm_open name ("" for a memfd), and its removal once the client mapped
  // it (idempotent; the mappings stay valid).
  const std::string& shm_name() const { return shm_name_; }
  void Unlink();

  const RegionView& view() const { return view_; }
  const RegionGeometry& geometry() const { return view_.geometry; }
  ChecksumKind checksum() const { return checksum_; }
  uint64_t size() const { return size_; }

 private:
  Region(int memfd, uint8_t* base, uint64_t size, const RegionGeometry& geometry,
         ChecksumKind checksum, ServerMetrics* metrics);
  // Sizes, maps and initializes the region in `fd` (taking it; closed on error).
  static Result<std::unique_ptr<Region>> FromFd(int fd, bool seal, const RegionGeometry& geometry,
                                                ChecksumKind checksum, uint64_t generation,
                                                ServerMetrics* metrics);

  int memfd_;
  std::string shm_name_;  // named regions until Unlink
  const uint64_t size_;
  const RegionView view_;
  const ChecksumKind checksum_;
  ServerMetrics* const metrics_;
};

}  // namespace brainstem::shm
