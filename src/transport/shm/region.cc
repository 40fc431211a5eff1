#include "transport/shm/region.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
  const int fd = memfd_create("brainstem-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return SysError("memfd_create");
  return FromFd(fd, /*seal=*/true, geometry, checksum, generation, metrics);
}

Result<std::unique_ptr<Region>> Region::CreateNamed(const std::string& shm_name,
                                                    const RegionGeometry& geometry,
                                                    ChecksumKind checksum, uint64_t generation,
                                                    ServerMetrics* metrics) {
  const int fd = shm_open(shm_name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return SysError("shm_open " + shm_name);
  // shm_open applies the umask; 0600 is what the client checks, so set it exactly.
  if (fchmod(fd, 0600) != 0) {
    Status s = SysError("fchmod 0600 " + shm_name);
    close(fd);
    shm_unlink(shm_name.c_str());
    return s;
  }
  auto region = FromFd(fd, /*seal=*/false, geometry, checksum, generation, metrics);
  if (!region.ok()) {
    shm_unlink(shm_name.c_str());
    return region.status();
  }
  (*region)->shm_name_ = shm_name;
  return region;
}

Result<std::unique_ptr<Region>> Region::FromFd(int fd, bool seal, const RegionGeometry& geometry,
                                               ChecksumKind checksum, uint64_t generation,
                                               ServerMetrics* metrics) {
  const uint64_t size = geometry.region_size();
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    Status s = SysError("ftruncate to " + std::to_string(size) + " bytes");
    close(fd);
    return s;
  }
  // Sealed before the client sees it: a client cannot shrink the file under the server's
  // mapping (which would turn server reads into SIGBUS).
  if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
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
  Unlink();
  if (metrics_ != nullptr) {
    metrics_->shm_bytes_mapped.fetch_sub(static_cast<int64_t>(size_), std::memory_order_relaxed);
  }
}

void Region::Unlink() {
  if (!shm_name_.empty()) shm_unlink(shm_name_.c_str());
  shm_name_.clear();
}

void Region::CloseMemfd() {
  if (memfd_ >= 0) close(memfd_);
  memfd_ = -1;
}

}  // namespace brainstem::shm
