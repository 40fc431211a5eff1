// X11Capture: grabs an X screen (the root window) as BGRA8 pixels. With MIT-SHM 1.2 the X
// server writes the image straight into a memfd that this process maps (xcb_shm_attach_fd with
// read_only = 0, which GetImage needs, then ShmGetImage): no copy through the socket. Without
// MIT-SHM (a remote display, or an X server without the extension) it falls back to the core
// GetImage request, whose reply carries the pixels through the socket (10-20x slower at 1080p),
// and says so in warning(). Captures can go into the object's own memfd (Capture) or into any
// memfd the caller names (CaptureInto: e.g. a frame slot of a shared-memory region).
// Thread-compatible: one thread uses an X11Capture at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "perception/image.h"

namespace brainstem::perception {

struct CapturedFrame {
  FrameView view;             // valid until the next capture or destruction
  uint64_t timestamp_ns = 0;  // CLOCK_MONOTONIC when the capture completed
  uint64_t sequence = 0;      // 1, 2, ... per X11Capture
  uint64_t checksum = 0;      // xxh3-64 of the payload when asked for, else 0
  bool used_shm = false;
  double capture_ms = 0;
};

class X11Capture {
 public:
  // Connects to `display` (":9"; "" = $DISPLAY). prefer_shm=false forces the GetImage path
  // (for comparisons). Errors: kUnavailable (no display), kFailedPrecondition (a screen that is
  // not 24/32-bit TrueColor with 8-bit BGR masks).
  static Result<std::unique_ptr<X11Capture>> Open(const std::string& display, bool prefer_shm);
  ~X11Capture();

  // Captures the whole screen into this object's memory.
  Result<CapturedFrame> Capture(bool with_checksum);

  // Captures into the memfd `fd` at byte `offset` (mapped by the caller at `mapped`, which
  // receives the pixels; `capacity` bytes available). With MIT-SHM the X server writes there
  // directly; without it the reply is copied there. The fd is attached once and cached.
  // Errors: kInvalidArgument when the screen does not fit in `capacity`.
  Result<CapturedFrame> CaptureInto(int fd, uint64_t offset, uint8_t* mapped, uint64_t capacity,
                                    bool with_checksum);
  // Detaches every fd attached by CaptureInto, so the X server lets go of memory the caller no
  // longer uses (a restarted server's old region). The next CaptureInto attaches again.
  void DetachTargets();

  uint32_t width() const { return width_; }
  uint32_t height() const { return height_; }
  uint32_t stride() const { return width_ * 4; }
  bool using_shm() const { return shm_; }
  // Non-empty when MIT-SHM was wanted but is unavailable (the reason).
  const std::string& warning() const { return warning_; }

 private:
  struct Impl;
  explicit X11Capture(std::unique_ptr<Impl> impl);
  Result<CapturedFrame> Finish(uint8_t* pixels, uint64_t start_ns, bool used_shm,
                               bool with_checksum);

  std::unique_ptr<Impl> impl_;
  uint32_t width_ = 0;
  uint32_t height_ = 0;
  bool shm_ = false;
  std::string warning_;
  uint64_t sequence_ = 0;
};

}  // namespace brainstem::perception
