// `brainstem capture`: grabs an X screen (MIT-SHM into a memfd, or GetImage when the display
// has no MIT-SHM) and hands each frame to a server's frame slot over shared memory, asking for
// OCR (request kind 1) or a plain verify (0); or writes one frame as a PNG. With MIT-SHM over
// shm the X server writes straight into the frame slot (the region's memfd is attached to the
// X server): the frame is never copied. Without MIT-SHM, one copy (SubmitFrame).
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "brainstem/client.h"
#include "cli/commands.h"
#include "perception/image.h"
#include "perception/x11_capture.h"

namespace brainstem {
namespace {

struct CaptureFlags {
  std::string display;
  double rate_hz = 0;
  bool once = false;
  int frames = 0;
  std::string url;
  std::string out;
  std::string raw_out;
  std::string request = "text";
  std::string query;
  bool no_shm = false;
  bool quiet = false;
};

// Consecutive UNAVAILABLE answers (100 ms apart) before capture gives up on the server.
constexpr int kMaxUnavailable = 50;

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

int Capture(const CaptureFlags& flags) {
  auto capture = perception::X11Capture::Open(flags.display, !flags.no_shm);
  if (!capture.ok()) {
    std::cerr << "brainstem capture: " << capture.status().message() << "\n";
    return 1;
  }
  perception::X11Capture& x = **capture;
  if (!x.warning().empty()) std::cerr << "brainstem capture: warning: " << x.warning() << "\n";
  uint32_t request = client::kFrameOcrText;
  if (flags.request == "verify") {
    request = client::kFrameVerify;
  } else if (flags.request == "find") {
    request = client::kFrameOcrFind;
  } else if (flags.request == "region") {
    request = client::kFrameOcrRegion;
  } else if (flags.request != "text") {
    std::cerr << "brainstem capture: --request must be text, find, region or verify\n";
    return 2;
  }
  if ((request == client::kFrameOcrFind || request == client::kFrameOcrRegion) &&
      flags.query.empty()) {
    std::cerr << "brainstem capture: --request " << flags.request
              << " needs --query (find: the text; region: x,y,w,h)\n";
    return 2;
  }
  std::unique_ptr<client::Client> client;
  if (!flags.url.empty()) {
    auto connected = client::Connect(flags.url);
    if (!connected.ok()) {
      std::cerr << "brainstem capture: " << connected.status().message() << "\n";
      return 1;
    }
    client = std::move(connected).value();
  }
  const int frames =
      flags.once ? 1 : (flags.frames > 0 ? flags.frames : (flags.rate_hz > 0 ? -1 : 1));
  std::vector<double> capture_ms;
  std::vector<double> round_trip_ms;
  const auto period = flags.rate_hz > 0 ? std::chrono::duration<double>(1.0 / flags.rate_hz)
                                        : std::chrono::duration<double>(0);
  auto next = std::chrono::steady_clock::now();
  // Over shm with MIT-SHM the X server writes each frame straight into a frame slot of the
  // region (the slot's memfd is attached to the X server): no copy anywhere. Otherwise the
  // frame is captured into this process and SubmitFrame copies it into a slot.
  const bool zero_copy = client != nullptr && client->transport() == "shm" && x.using_shm() &&
                         flags.out.empty() && flags.raw_out.empty();
  uint64_t generation = client != nullptr ? client->generation() : 0;
  // A restarted server answers one call UNAVAILABLE, then the client reconnects to it; capture
  // keeps going through that (the frame in hand is dropped) and gives up only when the server
  // stays away.
  int unavailable_in_a_row = 0;
  auto server_unavailable = [&](const Status& status) {
    if (status.code() != StatusCode::kUnavailable || ++unavailable_in_a_row > kMaxUnavailable) {
      return false;
    }
    std::cerr << "brainstem capture: " << status.message() << " (retrying)\n";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return true;
  };
  for (int i = 0; frames < 0 || i < frames; ++i) {
    std::optional<client::FrameBuffer> slot;  // zero copy: the frame slot the X server fills
    Result<perception::CapturedFrame> frame = InternalError("not captured");
    if (zero_copy) {
      auto buffer = client->AcquireFrameBuffer();
      if (!buffer.ok()) {
        if (server_unavailable(buffer.status())) {
          --i;
          continue;
        }
        std::cerr << "brainstem capture: " << buffer.status().message() << "\n";
        return 1;
      }
      if (client->generation() != generation) {
        // A new region: the X server must let go of the old one's segment.
        std::cerr << "brainstem capture: the server restarted; continuing with its new region\n";
        x.DetachTargets();
        generation = client->generation();
      }
      slot = std::move(buffer).value();
      frame = x.CaptureInto(slot->region_fd(), slot->region_offset(), slot->data(),
                            slot->capacity(), false);
    } else {
      frame = x.Capture(false);
    }
    if (!frame.ok()) {
      std::cerr << "brainstem capture: " << frame.status().message() << "\n";
      return 1;
    }
    capture_ms.push_back(frame->capture_ms);
    const perception::FrameView& v = frame->view;
    if (!flags.out.empty() || !flags.raw_out.empty()) {
      // X leaves the padding byte of 24-bit pixels undefined; a PNG reader would take it as
      // transparency.
      std::vector<uint8_t> opaque(v.data, v.data + size_t{v.stride} * v.height);
      for (size_t p = 3; p < opaque.size(); p += 4) opaque[p] = 255;
      perception::FrameView copy{opaque.data(), v.width, v.height, v.stride, v.format};
      if (!flags.raw_out.empty()) {
        std::ofstream(flags.raw_out, std::ios::binary)
            .write(reinterpret_cast<const char*>(opaque.data()),
                   static_cast<std::streamsize>(opaque.size()));
      }
      if (!flags.out.empty()) {
        auto png = perception::EncodePng(copy, true);
        if (!png.ok()) {
          std::cerr << "brainstem capture: " << png.status().message() << "\n";
          return 1;
        }
        std::ofstream(flags.out, std::ios::binary)
            .write(png->data(), static_cast<std::streamsize>(png->size()));
      }
    }
    if (client != nullptr) {
      client::FrameOptions options;
      options.timestamp_ns = frame->timestamp_ns;
      options.request = request;
      options.query = flags.query;
      const auto start = std::chrono::steady_clock::now();
      auto ack = slot.has_value()
                     ? client->SubmitFrameBuffer(std::move(*slot), v.width, v.height, v.stride,
                                                 client::PixelFormat::kBgra8, options)
                     : client->SubmitFrame(v.data, v.width, v.height, v.stride,
                                           client::PixelFormat::kBgra8, options);
      round_trip_ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
      if (!ack.ok()) {
        if (server_unavailable(ack.status())) {
          capture_ms.pop_back();  // a dropped frame is not counted
          round_trip_ms.pop_back();
          --i;
          continue;
        }
        std::cerr << "brainstem capture: frame " << frame->sequence << ": "
                  << ack.status().message() << "\n";
        return 1;
      }
      unavailable_in_a_row = 0;
      if (!flags.quiet) std::cout << ack->result << "\n" << std::flush;
    }
    if (period.count() > 0) {
      next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(period);
      std::this_thread::sleep_until(next);
    }
  }
  std::fprintf(stderr,
               "{\"display\":\"%s\",\"width\":%u,\"height\":%u,\"mit_shm\":%s,"
               "\"zero_copy\":%s,\"frames\":%zu,"
               "\"capture_ms_p50\":%.3f,\"capture_ms_p99\":%.3f,\"round_trip_ms_p50\":%.3f}\n",
               flags.display.c_str(), x.width(), x.height(), x.using_shm() ? "true" : "false",
               zero_copy ? "true" : "false", capture_ms.size(), Percentile(capture_ms, 0.5),
               Percentile(capture_ms, 0.99), Percentile(round_trip_ms, 0.5));
  return 0;
}

}  // namespace

std::function<int()> RegisterCapture(CLI::App* app) {
  CLI::App* command =
      app->add_subcommand("capture", "Capture an X screen into a server's frame slot (OCR)");
  auto flags = std::make_shared<CaptureFlags>();
  command->add_option("--display", flags->display, "X display, e.g. :99 (default $DISPLAY)");
  command->add_option("--rate", flags->rate_hz, "Frames per second (runs until --frames)");
  command->add_flag("--once", flags->once, "Capture one frame");
  command->add_option("--frames", flags->frames,
                      "Number of frames (default 1, or endless with --rate)");
  command->add_option("--url", flags->url,
                      "Server, e.g. shm://default?frames=1&frame_bytes=16777216");
  command->add_option("--out", flags->out, "Write the (last) frame as PNG");
  command->add_option("--raw-out", flags->raw_out, "Write the (last) frame as raw BGRA8");
  command->add_option("--request", flags->request,
                      "text (OCR, kind 1) | find (2) | region (3) | verify (0)");
  command->add_option("--query", flags->query, "find: the text to find; region: x,y,w,h");
  command->add_flag("--no-shm", flags->no_shm, "Use GetImage instead of MIT-SHM (comparison)");
  command->add_flag("--quiet", flags->quiet, "Do not print each answer");
  return [flags]() { return Capture(*flags); };
}

}  // namespace brainstem
