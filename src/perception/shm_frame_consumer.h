// OcrFrameConsumer: answers shared-memory frame requests (kinds 1 text, 2 find, 3 region; see
// transport/shm/slot_handler.h) with the OCR worker pool. The pixels are read where the client
// wrote them (the slot handler has verified their checksum); each client session has its own
// change cache. Answers are the compact JSON forms that fit the slot's result buffer.
// Thread-safe: Consume is called by the shm thread; answers are written by OCR workers.
#pragma once

#include <cstdint>

#include "perception/ocr_service.h"
#include "transport/shm/slot_handler.h"

namespace brainstem::perception {

class OcrFrameConsumer final : public shm::FrameConsumer {
 public:
  // `service` is borrowed and must outlive every answer (stop the shm server first).
  OcrFrameConsumer(OcrService* service, int64_t timeout_ms)
      : service_(service), timeout_ms_(timeout_ms) {}
  Status Consume(const Frame& frame, Done done) override;

 private:
  OcrService* const service_;
  const int64_t timeout_ms_;
};

}  // namespace brainstem::perception
