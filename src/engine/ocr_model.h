// OcrModel: chooses the screen-OCR model version a server runs (ocr.model / ocr.version in
// model.artifact_dir, same semver rules as the policy), turns its card into the effective OCR
// settings and checks the traineddata file it pins. Nothing here loads Tesseract: the result
// only configures the OCR service, so a build without OCR can still report the model.
// Thread-compatible: the result is an immutable value once returned.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "config/config.h"
#include "repository/ocr_card.h"

namespace brainstem {

struct OcrModel {
  std::string name;     // "" when no card is used (ocr.model "" or the fallback below)
  std::string version;  // semver of the chosen version
  std::filesystem::path dir;
  std::optional<OcrCard> card;
  // config.ocr with the card's values in every key that was left at its default.
  OcrConfig effective;
  std::filesystem::path traineddata;  // the file that was hashed; empty when none was found
  bool hash_verified = false;         // the traineddata's sha256 matches the card
  std::string hash_problem;           // why not verified (empty when verified or no card)
  // Things the operator must hear about (fallback to the built-in defaults, hash mismatch);
  // the caller logs each as a warning.
  std::vector<std::string> warnings;
};

// Resolves the OCR model. Without a card (ocr.model "") the built-in ocr.* settings apply.
// When neither ocr.model nor ocr.version was set and the artifact directory has no such model
// (or no usable version of it), the built-in settings apply with a warning, so repositories
// that predate the OCR card keep working and a broken OCR card cannot stop the policy API. A
// traineddata hash mismatch or a missing traineddata file is a warning and hash_verified=false, not
// an error (see docs/perception.md: Debian updates the package). Errors: kNotFound when an
// explicitly set ocr.model or ocr.version does not exist (the message names the key and lists what
// exists); kInvalidArgument when ocr.version is not semver or ocr.model names a policy;
// kFailedPrecondition when the named version's card is invalid.
Result<OcrModel> ResolveOcrModel(const Config& config);

// Where Tesseract will look for `file`: ocr.tessdata_dir when set, else $TESSDATA_PREFIX (the
// directory itself or its tessdata/), else the Debian and /usr/local default directories.
// Returns the first that exists, or empty.
std::filesystem::path FindTraineddata(const std::string& tessdata_dir, const std::string& file);

}  // namespace brainstem
