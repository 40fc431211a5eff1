#include "perception/x11_capture.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xcb/shm.h>
#include <xcb/xcb.h>

#include <cstdlib>
#include <cstring>
#include <map>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace brainstem::perception {
namespace {

uint64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

struct X11Capture::Impl {
  xcb_connection_t* connection = nullptr;
  xcb_window_t root = 0;
  // Our own memfd and mapping (Capture), and the segments attached per caller fd
  // (CaptureInto), keyed by (device, inode) so a reused fd number is not mistaken.
  int own_fd = -1;
  uint8_t* own_map = nullptr;
  size_t own_size = 0;
  std::map<std::pair<uint64_t, uint64_t>, xcb_shm_seg_t> segments;
  xcb_shm_seg_t own_segment = 0;

  ~Impl() {
    if (connection != nullptr) {
      for (const auto& [key, seg] : segments) xcb_shm_detach(connection, seg);
      xcb_disconnect(connection);
    }
    if (own_map != nullptr) munmap(own_map, own_size);
    if (own_fd >= 0) close(own_fd);
  }

  // Attaches `fd` read-write (the server writes GetImage results into it). xcb closes the
  // descriptor it sends, so it gets a duplicate.
  Result<xcb_shm_seg_t> Attach(int fd) {
    struct stat st {};
    if (fstat(fd, &st) != 0) return InvalidArgumentError("capture: fstat of the target fd failed");
    const auto key =
        std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
    if (auto it = segments.find(key); it != segments.end()) return it->second;
    const int copy = dup(fd);
    if (copy < 0) return InternalError("capture: dup failed");
    const xcb_shm_seg_t seg = xcb_generate_id(connection);
    xcb_generic_error_t* error =
        xcb_request_check(connection, xcb_shm_attach_fd_checked(connection, seg, copy, 0));
    if (error != nullptr) {
      const int code = error->error_code;
      std::free(error);
      return UnavailableError("capture: the X server refused to attach the memfd (X error " +
                              std::to_string(code) + ")");
    }
    segments[key] = seg;
    return seg;
  }
};

X11Capture::X11Capture(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

void X11Capture::DetachTargets() {
  for (const auto& [key, seg] : impl_->segments) xcb_shm_detach(impl_->connection, seg);
  impl_->segments.clear();
  xcb_flush(impl_->connection);
}
X11Capture::~X11Capture() = default;

Result<std::unique_ptr<X11Capture>> X11Capture::Open(const std::string& display, bool prefer_shm) {
  auto impl = std::make_unique<Impl>();
  int screen_number = 0;
  impl->connection = xcb_connect(display.empty() ? nullptr : display.c_str(), &screen_number);
  if (xcb_connection_has_error(impl->connection) != 0) {
    return UnavailableError(
        "capture: cannot connect to X display '" +
        (display.empty() ? std::string(std::getenv("DISPLAY") != nullptr ? std::getenv("DISPLAY")
                                                                         : "(DISPLAY unset)")
                         : display) +
        "'");
  }
  const xcb_setup_t* setup = xcb_get_setup(impl->connection);
  xcb_screen_iterator_t it = xcb_setup_roots_iterator(setup);
  for (int i = 0; i < screen_number && it.rem > 0; ++i) xcb_screen_next(&it);
  if (it.rem == 0) return UnavailableError("capture: no screen " + std::to_string(screen_number));
  xcb_screen_t* screen = it.data;
  // The root visual must be 8-bit-per-channel TrueColor laid out as B, G, R, pad in memory.
  bool bgr = false;
  for (auto d = xcb_screen_allowed_depths_iterator(screen); d.rem > 0; xcb_depth_next(&d)) {
    for (auto v = xcb_depth_visuals_iterator(d.data); v.rem > 0; xcb_visualtype_next(&v)) {
      if (v.data->visual_id != screen->root_visual) continue;
      bgr = v.data->red_mask == 0xff0000 && v.data->green_mask == 0x00ff00 &&
            v.data->blue_mask == 0x0000ff;
    }
  }
  if (!bgr || (screen->root_depth != 24 && screen->root_depth != 32)) {
    return FailedPreconditionError("capture: the screen is depth " +
                                   std::to_string(screen->root_depth) +
                                   " without 8-bit BGR masks; only 24/32-bit TrueColor is "
                                   "supported");
  }
  std::unique_ptr<X11Capture> capture(new X11Capture(std::move(impl)));
  Impl& im = *capture->impl_;
  im.root = screen->root;
  capture->width_ = screen->width_in_pixels;
  capture->height_ = screen->height_in_pixels;
  if (!prefer_shm) return capture;

  xcb_shm_query_version_reply_t* version =
      xcb_shm_query_version_reply(im.connection, xcb_shm_query_version(im.connection), nullptr);
  const bool has_fd_attach =
      version != nullptr &&
      (version->major_version > 1 || (version->major_version == 1 && version->minor_version >= 2));
  std::free(version);
  if (!has_fd_attach) {
    capture->warning_ =
        "MIT-SHM 1.2 (fd passing) is not available on this display: capturing with GetImage "
        "through the socket (slower)";
    return capture;
  }
  im.own_size = size_t{capture->width_} * capture->height_ * 4;
  im.own_fd = memfd_create("brainstem-capture", MFD_CLOEXEC);
  if (im.own_fd < 0 || ftruncate(im.own_fd, static_cast<off_t>(im.own_size)) != 0) {
    return InternalError("capture: memfd_create/ftruncate failed");
  }
  void* map = mmap(nullptr, im.own_size, PROT_READ | PROT_WRITE, MAP_SHARED, im.own_fd, 0);
  if (map == MAP_FAILED) return InternalError("capture: mmap failed");
  im.own_map = static_cast<uint8_t*>(map);
  Result<xcb_shm_seg_t> seg = im.Attach(im.own_fd);
  if (!seg.ok()) {
    capture->warning_ = seg.status().message() + ": capturing with GetImage instead (slower)";
    return capture;
  }
  im.own_segment = *seg;
  capture->shm_ = true;
  return capture;
}

Result<CapturedFrame> X11Capture::Finish(uint8_t* pixels, uint64_t start_ns, bool used_shm,
                                         bool with_checksum) {
  CapturedFrame frame;
  frame.view = {pixels, width_, height_, stride(), PixelFormat::kBgra8};
  frame.timestamp_ns = NowNs();
  frame.capture_ms = static_cast<double>(frame.timestamp_ns - start_ns) / 1e6;
  frame.sequence = ++sequence_;
  frame.used_shm = used_shm;
  if (with_checksum) frame.checksum = XXH3_64bits(pixels, size_t{stride()} * height_);
  return frame;
}

Result<CapturedFrame> X11Capture::CaptureInto(int fd, uint64_t offset, uint8_t* mapped,
                                              uint64_t capacity, bool with_checksum) {
  const uint64_t bytes = uint64_t{stride()} * height_;
  if (bytes > capacity) {
    return InvalidArgumentError("capture: the screen needs " + std::to_string(bytes) +
                                " bytes, the target holds " + std::to_string(capacity));
  }
  Impl& im = *impl_;
  const uint64_t start = NowNs();
  if (shm_ && fd >= 0) {
    Result<xcb_shm_seg_t> seg = im.Attach(fd);
    if (seg.ok()) {
      xcb_generic_error_t* error = nullptr;
      xcb_shm_get_image_reply_t* reply = xcb_shm_get_image_reply(
          im.connection,
          xcb_shm_get_image(im.connection, im.root, 0, 0, static_cast<uint16_t>(width_),
                            static_cast<uint16_t>(height_), ~0u, XCB_IMAGE_FORMAT_Z_PIXMAP, *seg,
                            static_cast<uint32_t>(offset)),
          &error);
      if (reply != nullptr) {
        std::free(reply);
        return Finish(mapped, start, true, with_checksum);
      }
      const int code = error != nullptr ? error->error_code : 0;
      std::free(error);
      return InternalError("capture: ShmGetImage failed (X error " + std::to_string(code) + ")");
    }
  }
  xcb_generic_error_t* error = nullptr;
  xcb_get_image_reply_t* reply = xcb_get_image_reply(
      im.connection,
      xcb_get_image(im.connection, XCB_IMAGE_FORMAT_Z_PIXMAP, im.root, 0, 0,
                    static_cast<uint16_t>(width_), static_cast<uint16_t>(height_), ~0u),
      &error);
  if (reply == nullptr) {
    const int code = error != nullptr ? error->error_code : 0;
    std::free(error);
    return InternalError("capture: GetImage failed (X error " + std::to_string(code) + ")");
  }
  const int length = xcb_get_image_data_length(reply);
  if (static_cast<uint64_t>(length) < bytes) {
    std::free(reply);
    return InternalError("capture: GetImage returned " + std::to_string(length) +
                         " bytes, expected " + std::to_string(bytes));
  }
  std::memcpy(mapped, xcb_get_image_data(reply), bytes);
  std::free(reply);
  return Finish(mapped, start, false, with_checksum);
}

Result<CapturedFrame> X11Capture::Capture(bool with_checksum) {
  Impl& im = *impl_;
  if (im.own_map == nullptr) {
    im.own_size = size_t{stride()} * height_;
    void* map =
        mmap(nullptr, im.own_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) return InternalError("capture: mmap failed");
    im.own_map = static_cast<uint8_t*>(map);
  }
  return CaptureInto(shm_ ? im.own_fd : -1, 0, im.own_map, im.own_size, with_checksum);
}

}  // namespace brainstem::perception
