// OcrCard: the declarative description of one version of a screen-OCR model, read from a
// model_card.yaml with `kind: ocr`: which engine and language it runs, the traineddata file it
// expects (with the sha256 of the exact file it was validated with, and where that file came
// from), how frames are segmented, the change-detection tile size and the limits the server
// enforces. The OCR model's weights are not in the repository (Debian ships them); the card
// pins them by hash instead.
// Thread-compatible: a parsed card is an immutable value.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"

namespace brainstem {

struct OcrCard {
  std::string name;
  std::string version;  // semver text as written in the card
  std::string description;

  std::string engine = "tesseract";  // the only engine built in
  std::string engine_mode = "lstm";  // Tesseract OEM: the LSTM recognizer only
  std::string language;              // Tesseract language name, e.g. "eng"

  // The traineddata file, found in ocr.tessdata_dir or Tesseract's default directory.
  std::string traineddata_file;    // e.g. "eng.traineddata" (a bare file name)
  std::string traineddata_sha256;  // lowercase hex
  std::string traineddata_source;  // where the hashed file came from (package and version)

  std::string segmentation = "xycut";  // xycut | tesseract
  int line_psm = 7;                    // lines found by xycut are read as one line each
  int whole_psm = 11;                  // pieces taller than a line, and the "tesseract" mode
  bool polarity_fix = true;            // light-on-dark pieces are read inverted
  double line_width_scale = 1.0;       // lines narrowed to this fraction before reading
  int tile_size = 128;                 // change-detection tiles, pixels

  int64_t max_image_pixels = 8192ll * 8192ll;  // larger frames are refused (422)
  int64_t max_frame_dimension = 16384;         // widest or tallest frame accepted
  int64_t max_answer_bytes = 3071;             // largest JSON answer in an shm frame slot

  // Free-form key/value facts shown by /versions and /v1/ocr/info.
  std::map<std::string, std::string> info;
};

// Parses and validates an OCR card (`kind: ocr` is required). Errors: kInvalidArgument naming
// the dotted key and the problem (unknown key, wrong type, out of range, missing required key,
// a sha256 that is not 64 lowercase hex digits).
Result<OcrCard> ParseOcrCard(const std::string& yaml_text);
Result<OcrCard> LoadOcrCard(const std::filesystem::path& card_file);

// Hashes `file` and compares it with the card. Errors: kNotFound (no such file),
// kFailedPrecondition naming the file, the expected and the actual hash (mismatch).
Status VerifyTraineddata(const OcrCard& card, const std::filesystem::path& file);

}  // namespace brainstem
