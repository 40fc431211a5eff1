#include "perception/shm_frame_consumer.h"

#include <charconv>

#include "perception/ocr_json.h"

namespace brainstem::perception {
namespace {

Result<OcrBox> ParseBox(const std::string& text) {
  OcrBox box;
  int* fields[] = {&box.x, &box.y, &box.w, &box.h};
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int i = 0; i < 4; ++i) {
    auto [next, ec] = std::from_chars(p, end, *fields[i]);
    if (ec != std::errc() || *fields[i] < 0 || (i < 3 && (next == end || *next != ','))) {
      return InvalidArgumentError("result (region query): '" + text + "' is not x,y,w,h");
    }
    p = i < 3 ? next + 1 : next;
  }
  if (p != end) return InvalidArgumentError("result (region query): '" + text + "' is not x,y,w,h");
  return box;
}

}  // namespace

Status OcrFrameConsumer::Consume(const Frame& frame, Done done) {
  const uint32_t kind = frame.request;
  if (kind != shm::kFrameRequestOcrText && kind != shm::kFrameRequestOcrFind &&
      kind != shm::kFrameRequestOcrRegion) {
    return UnimplementedError("request: " + std::to_string(kind) +
                              " is not a frame request kind (0 verify, 1 OCR text, 2 find, "
                              "3 region)");
  }
  OcrBox region;
  if (kind == shm::kFrameRequestOcrFind && frame.query.empty()) {
    return InvalidArgumentError(
        "result (find query): empty; write the query into `result` "
        "and its length into `result_length` before submitting");
  }
  if (kind == shm::kFrameRequestOcrRegion) {
    ASSIGN_OR_RETURN(region, ParseBox(frame.query));
  }
  auto job = std::make_unique<OcrJob>();
  job->frame = {frame.pixels, frame.width, frame.height, frame.stride,
                static_cast<PixelFormat>(frame.format)};
  RETURN_IF_ERROR(ValidateFrame(job->frame, service_->options().max_image_pixels, UINT64_MAX));
  job->stream = frame.stream;
  if (timeout_ms_ > 0) job->deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_);
  job->done = [kind, query = frame.query, region, done](Result<OcrOutcome>&& outcome) {
    if (!outcome.ok()) return done(outcome.status(), "");
    const size_t budget = shm::kFrameResultCapacity;
    if (kind == shm::kFrameRequestOcrText) {
      return done(Status::Ok(), CompactTextJson(*outcome, outcome->page->text, budget));
    }
    if (kind == shm::kFrameRequestOcrRegion) {
      return done(Status::Ok(),
                  CompactTextJson(*outcome, RegionText(*outcome->page, region), budget));
    }
    Result<std::vector<FindMatch>> matches = Find(*outcome->page, query, {});
    if (!matches.ok()) return done(matches.status(), "");
    done(Status::Ok(), CompactFindJson(*outcome, *matches, budget));
  };
  return service_->Submit(std::move(job));
}

}  // namespace brainstem::perception
