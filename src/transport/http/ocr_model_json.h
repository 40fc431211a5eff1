// JSON views of the OCR model for GET /versions and GET /v1/ocr/info: one writer, so both
// routes describe a card with the same field names (docs/api.md).
// Thread-safe: pure functions.
#pragma once

#include <string>

#include "engine/ocr_model.h"
#include "repository/ocr_card.h"

namespace brainstem {

// Appends the card as a JSON object (every field of ocr_card.h, limits nested).
void AppendOcrCardJson(const OcrCard& card, std::string* out);

// Appends what is loaded: {"name","version","language","source":"card"|"built-in",
// "hash_verified","traineddata","hash_problem","card":{...}|null}.
void AppendLoadedOcrModelJson(const OcrModel& model, std::string* out);

}  // namespace brainstem
