// JSON answers of screen perception, shared by HTTP (/v1/ocr, /v1/ocr/find) and the
// shared-memory frame slot (whose `result` holds at most 3072 bytes: the compact forms below
// fit a budget and say "truncated": true when something was left out).
// Thread-compatible: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_writer.h"
#include "perception/layout.h"
#include "perception/ocr_pipeline.h"

namespace brainstem::perception {

// JSON string escaping is the project-wide one (common/json_writer.h).
using ::brainstem::AppendJsonString;

// {"width","height","text","blocks":[{"box":[x,y,w,h],"lines":[{"box","text","words":[{"text",
// "box","confidence"}]}]}],"cache":{...},"timing_ms":{...}}; words omitted unless `words`.
std::string PageJson(const OcrOutcome& outcome, bool words);

// {"query","regex","matches":[{"text","box","center":[x,y],"score","kind"}],"cache":...}
std::string FindJson(const OcrOutcome& outcome, std::string_view query, bool regex,
                     const std::vector<FindMatch>& matches);

// {"region":[x,y,w,h],"text":...,"cache":...}
std::string RegionJson(const OcrOutcome& outcome, const OcrBox& region, std::string_view text);

// Compact answers within `budget` bytes (the shm result buffer). Text is cut at a UTF-8
// boundary and matches are dropped from the end until the answer fits; "truncated" says so.
std::string CompactTextJson(const OcrOutcome& outcome, std::string_view text, size_t budget);
std::string CompactFindJson(const OcrOutcome& outcome, const std::vector<FindMatch>& matches,
                            size_t budget);

}  // namespace brainstem::perception
