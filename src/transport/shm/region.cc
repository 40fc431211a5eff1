#include "transport/shm/region.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>

namespace brainstem::shm {
namespace {

Status SysError(const std::string& what) {
  return InternalError("shm region: " + what + ": " + std::strerror(errno));
}

}  // namespace

Result<std::unique_ptr<Region>> Region::Create(const RegionGeometry& geometry,
                                               ChecksumKind checksum, uint64_t generation,
                                               ServerMetrics* metrics) {
  const uint64_t size = geometry.region_size();
  const int fd = memfd_create("brainstem-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return SysError("memfd_create");
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    Status s = SysError("ftruncate to " + std::to_string(size) + " bytes");
    close(fd);
    return s;
  }
  // Sealed before the client sees it: a client cannot shrink the file under the server's
  // mapping (which would turn server reads into SIGBUS).
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    Status s = SysError("F_ADD_SEALS");
    close(fd);
    return s;
  }
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    Status s = SysError("mmap of " + std::to_string(size) + " bytes");
    close(fd);
    return s;
  }
  // A fresh memfd reads as zeros: every slot starts FREE with no response.
  auto* header = new (base) RegionHeader{};
  header->magic = kMagic;
  header->abi_version = kAbiVersion;
  header->header_size = static_cast<uint32_t>(kHeaderSize);
  header->region_size = size;
  header->generation = generation;
  header->input_width = geometry.input_width;
  header->output_width = geometry.output_width;
  header->max_rows = geometry.max_rows;
  header->tensor_slot_count = geometry.tensor_slot_count;
  header->tensor_slots_offset = geometry.tensor_slots_offset();
  header->tensor_slot_stride = geometry.tensor_slot_stride();
  header->frame_slot_count = geometry.frame_slot_count;
  header->checksum_kind = static_cast<uint32_t>(checksum);
  header->frame_slots_offset = geometry.frame_slots_offset();
  header->frame_slot_stride = geometry.frame_slot_stride();
  header->frame_capacity = geometry.frame_capacity;
  header->server_sleeping.store(0, std::memory_order_relaxed);
  // The welcome (a system call) publishes the header to the client.
  header->server_state.store(1, std::memory_order_release);
  return std::unique_ptr<Region>(
      new Region(fd, static_cast<uint8_t*>(base), size, geometry, checksum, metrics));
}

Region::Region(int memfd, uint8_t* base, uint64_t size, const RegionGeometry& geometry,
               ChecksumKind checksum, ServerMetrics* metrics)
    : memfd_(memfd), size_(size), view_{base, geometry}, checksum_(checksum), metrics_(metrics) {
  if (metrics_ != nullptr) {
    metrics_->shm_bytes_mapped.fetch_add(static_cast<int64_t>(size_), std::memory_order_relaxed);
  }
}

Region::~Region() {
  munmap(view_.base, size_);
  CloseMemfd();
  if (metrics_ != nullptr) {
    metrics_->shm_bytes_mapped.fetch_sub(static_cast<int64_t>(size_), std::memory_order_relaxed);
  }
}

void Region::CloseMemfd() {
  if (memfd_ >= 0) close(memfd_);
  memfd_ = -1;
}

}  // namespace brainstem::shm
