#include "repository/ocr_card.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>

#include "common/json_writer.h"
#include "repository/repository.h"
#include "repository/semver.h"

namespace brainstem {
namespace {

// Every message starts with "ocr card: <dotted key>:" so that an operator finds the line.
Status CardError(const std::string& path, const std::string& problem) {
  return InvalidArgumentError("ocr card: " + path + ": " + problem);
}

std::string Child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

bool Present(const YAML::Node& node) { return node.IsDefined() && !node.IsNull(); }

std::string Join(const std::vector<std::string_view>& items) {
  std::string out;
  for (auto item : items) out += (out.empty() ? "" : ", ") + std::string(item);
  return out;
}

// Unknown and duplicate keys are errors: a misspelt limit would otherwise silently keep its
// default (yaml-cpp returns the first of two duplicate keys).
Status CheckKeys(const YAML::Node& map, const std::string& path,
                 const std::vector<std::string_view>& allowed) {
  if (!map.IsMap()) return CardError(path.empty() ? "top level" : path, "must be a mapping");
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) return CardError(path, "keys must be plain strings");
    const std::string key = kv.first.Scalar();
    bool known = false;
    for (auto a : allowed) known = known || a == key;
    if (!known) {
      return InvalidArgumentError("ocr card: unknown key '" + Child(path, key) +
                                  "' (allowed: " + Join(allowed) + ")");
    }
    if (!seen.insert(key).second) {
      return InvalidArgumentError("ocr card: duplicate key '" + Child(path, key) + "'");
    }
  }
  return Status::Ok();
}

Result<YAML::Node> Required(const YAML::Node& parent, std::string_view key,
                            const std::string& path) {
  const YAML::Node node = parent[std::string(key)];
  if (!Present(node)) return CardError(Child(path, key), "is required");
  return node;
}

Result<std::string> GetString(const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) return CardError(path, "must be a string");
  if (node.Scalar().empty()) return CardError(path, "must not be empty");
  return node.Scalar();
}

Result<std::string> GetChoice(const YAML::Node& node, const std::string& path,
                              const std::vector<std::string_view>& allowed) {
  ASSIGN_OR_RETURN(std::string value, GetString(node, path));
  for (auto a : allowed) {
    if (a == value) return value;
  }
  return CardError(path, "'" + value + "' is not one of: " + Join(allowed));
}

Result<int64_t> GetInt(const YAML::Node& node, const std::string& path, int64_t low, int64_t high) {
  if (!node.IsScalar()) return CardError(path, "must be an integer");
  int64_t value = 0;
  try {
    value = node.as<int64_t>();
  } catch (const YAML::Exception&) {
    return CardError(path, "'" + node.Scalar() + "' is not an integer");
  }
  if (value < low || value > high) {
    return CardError(path, std::to_string(value) + " is out of range [" + std::to_string(low) +
                               ", " + std::to_string(high) + "]");
  }
  return value;
}

std::string JsonNumber(double value) {
  std::string out;
  AppendJsonNumber(&out, value);
  return out;
}

Result<double> GetDouble(const YAML::Node& node, const std::string& path, double low, double high) {
  if (!node.IsScalar()) return CardError(path, "must be a number");
  double value = 0;
  try {
    value = node.as<double>();
  } catch (const YAML::Exception&) {
    return CardError(path, "'" + node.Scalar() + "' is not a number");
  }
  // NaN fails both comparisons, so it is refused as out of range.
  if (!(value >= low && value <= high)) {
    return CardError(path, node.Scalar() + " is out of range [" + JsonNumber(low) + ", " +
                               JsonNumber(high) + "]");
  }
  return value;
}

Result<bool> GetBool(const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) return CardError(path, "must be true or false");
  try {
    return node.as<bool>();
  } catch (const YAML::Exception&) {
    return CardError(path, "'" + node.Scalar() + "' is not true or false");
  }
}

bool IsLowerHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Optional integer: keeps `*out` when the key is absent.
template <typename T>
Status OptionalInt(const YAML::Node& parent, std::string_view key, const std::string& path,
                   int64_t low, int64_t high, T* out) {
  const YAML::Node node = parent[std::string(key)];
  if (!Present(node)) return Status::Ok();
  ASSIGN_OR_RETURN(int64_t v, GetInt(node, Child(path, key), low, high));
  *out = static_cast<T>(v);
  return Status::Ok();
}

Status ParseEngine(const YAML::Node& node, OcrCard& card) {
  RETURN_IF_ERROR(CheckKeys(node, "engine", {"name", "mode"}));
  ASSIGN_OR_RETURN(YAML::Node name, Required(node, "name", "engine"));
  ASSIGN_OR_RETURN(card.engine, GetChoice(name, "engine.name", {"tesseract"}));
  if (Present(node["mode"])) {
    ASSIGN_OR_RETURN(card.engine_mode, GetChoice(node["mode"], "engine.mode", {"lstm"}));
  }
  return Status::Ok();
}

Status ParseTraineddata(const YAML::Node& node, OcrCard& card) {
  RETURN_IF_ERROR(CheckKeys(node, "traineddata", {"file", "sha256", "source"}));
  ASSIGN_OR_RETURN(YAML::Node file, Required(node, "file", "traineddata"));
  ASSIGN_OR_RETURN(card.traineddata_file, GetString(file, "traineddata.file"));
  // A bare name: the file is looked up in the tessdata directory, never anywhere else.
  if (card.traineddata_file.find('/') != std::string::npos ||
      card.traineddata_file.starts_with(".") || !card.traineddata_file.ends_with(".traineddata")) {
    return CardError("traineddata.file", "'" + card.traineddata_file +
                                             "' must be a bare file name ending in .traineddata");
  }
  ASSIGN_OR_RETURN(YAML::Node sha, Required(node, "sha256", "traineddata"));
  ASSIGN_OR_RETURN(card.traineddata_sha256, GetString(sha, "traineddata.sha256"));
  if (!IsLowerHex64(card.traineddata_sha256)) {
    return CardError("traineddata.sha256",
                     "'" + card.traineddata_sha256 + "' is not a sha256 (64 lowercase hex digits)");
  }
  // Required: Debian updates the package, and a hash without its origin cannot be re-checked.
  ASSIGN_OR_RETURN(YAML::Node source, Required(node, "source", "traineddata"));
  ASSIGN_OR_RETURN(card.traineddata_source, GetString(source, "traineddata.source"));
  return Status::Ok();
}

Status ParseSegmentation(const YAML::Node& node, OcrCard& card) {
  const std::string path = "segmentation";
  RETURN_IF_ERROR(
      CheckKeys(node, path, {"mode", "line_psm", "whole_psm", "polarity_fix", "line_width_scale"}));
  ASSIGN_OR_RETURN(YAML::Node mode, Required(node, "mode", path));
  ASSIGN_OR_RETURN(card.segmentation, GetChoice(mode, "segmentation.mode", {"xycut", "tesseract"}));
  // The pipeline reads every line it cut with PSM 7; a card cannot ask for another.
  RETURN_IF_ERROR(OptionalInt(node, "line_psm", path, 7, 7, &card.line_psm));
  RETURN_IF_ERROR(OptionalInt(node, "whole_psm", path, 3, 13, &card.whole_psm));
  if (Present(node["polarity_fix"])) {
    ASSIGN_OR_RETURN(card.polarity_fix, GetBool(node["polarity_fix"], "segmentation.polarity_fix"));
  }
  if (Present(node["line_width_scale"])) {
    // Below 0.3 even wide screen fonts lose letters (0.5 already misread 11 px text).
    ASSIGN_OR_RETURN(card.line_width_scale, GetDouble(node["line_width_scale"],
                                                      "segmentation.line_width_scale", 0.3, 1.0));
  }
  return Status::Ok();
}

Status ParseLimits(const YAML::Node& node, OcrCard& card) {
  const std::string path = "limits";
  RETURN_IF_ERROR(
      CheckKeys(node, path, {"max_image_pixels", "max_frame_dimension", "max_answer_bytes"}));
  // The same ranges as the ocr.* config keys and the wire limits (16384 per side, 3071 bytes
  // of answer in an shm frame slot).
  RETURN_IF_ERROR(OptionalInt(node, "max_image_pixels", path, 1, int64_t{16384} * 16384,
                              &card.max_image_pixels));
  RETURN_IF_ERROR(
      OptionalInt(node, "max_frame_dimension", path, 1, 16384, &card.max_frame_dimension));
  RETURN_IF_ERROR(OptionalInt(node, "max_answer_bytes", path, 1, 3071, &card.max_answer_bytes));
  return Status::Ok();
}

Status ParseInfo(const YAML::Node& node, OcrCard& card) {
  if (!node.IsMap()) return CardError("info", "must be a mapping of names to scalar values");
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) return CardError("info", "keys must be strings");
    const std::string key = kv.first.Scalar();
    if (!kv.second.IsNull() && !kv.second.IsScalar()) {
      return CardError(Child("info", key), "must be a scalar (string, number or boolean)");
    }
    if (!card.info.emplace(key, kv.second.IsNull() ? "" : kv.second.Scalar()).second) {
      return CardError(Child("info", key), "listed twice");
    }
  }
  return Status::Ok();
}

Result<OcrCard> ParseRoot(const YAML::Node& root) {
  if (!root.IsMap()) return InvalidArgumentError("ocr card: the document must be a mapping");
  RETURN_IF_ERROR(CheckKeys(root, "",
                            {"kind", "name", "version", "description", "engine", "language",
                             "traineddata", "segmentation", "tile_size", "limits", "info"}));
  OcrCard card;
  ASSIGN_OR_RETURN(YAML::Node kind, Required(root, "kind", ""));
  RETURN_IF_ERROR(GetChoice(kind, "kind", {"ocr"}).status());
  ASSIGN_OR_RETURN(YAML::Node name, Required(root, "name", ""));
  ASSIGN_OR_RETURN(card.name, GetString(name, "name"));
  ASSIGN_OR_RETURN(YAML::Node version, Required(root, "version", ""));
  ASSIGN_OR_RETURN(card.version, GetString(version, "version"));
  if (auto parsed = ParseSemVer(card.version); !parsed.ok()) {
    return CardError("version", parsed.status().message());
  }
  if (Present(root["description"])) {
    if (!root["description"].IsScalar()) return CardError("description", "must be a string");
    card.description = root["description"].Scalar();
  }
  ASSIGN_OR_RETURN(YAML::Node engine, Required(root, "engine", ""));
  RETURN_IF_ERROR(ParseEngine(engine, card));
  ASSIGN_OR_RETURN(YAML::Node language, Required(root, "language", ""));
  ASSIGN_OR_RETURN(card.language, GetString(language, "language"));
  ASSIGN_OR_RETURN(YAML::Node traineddata, Required(root, "traineddata", ""));
  RETURN_IF_ERROR(ParseTraineddata(traineddata, card));
  // One file pins one language; a card for "eng+deu" would leave deu unchecked.
  if (card.traineddata_file != card.language + ".traineddata") {
    return CardError("traineddata.file", "'" + card.traineddata_file +
                                             "' is not the file of language '" + card.language +
                                             "' (expected " + card.language + ".traineddata)");
  }
  ASSIGN_OR_RETURN(YAML::Node segmentation, Required(root, "segmentation", ""));
  RETURN_IF_ERROR(ParseSegmentation(segmentation, card));
  RETURN_IF_ERROR(OptionalInt(root, "tile_size", "", 16, 1024, &card.tile_size));
  ASSIGN_OR_RETURN(YAML::Node limits, Required(root, "limits", ""));
  RETURN_IF_ERROR(ParseLimits(limits, card));
  if (Present(root["info"])) RETURN_IF_ERROR(ParseInfo(root["info"], card));
  return card;
}

}  // namespace

Result<OcrCard> ParseOcrCard(const std::string& yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError("ocr card: YAML syntax error: " + std::string(e.what()));
  }
  // yaml-cpp conversions may throw; its exceptions stay inside this module.
  try {
    return ParseRoot(root);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError("ocr card: " + std::string(e.what()));
  }
}

Result<OcrCard> LoadOcrCard(const std::filesystem::path& card_file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(card_file, ec)) {
    return NotFoundError("ocr card not found: " + card_file.string());
  }
  std::ifstream in(card_file, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (!in || in.bad()) return InternalError("cannot read ocr card " + card_file.string());
  Result<OcrCard> card = ParseOcrCard(buffer.str());
  if (!card.ok()) {
    return Status(card.status().code(), card_file.string() + ": " + card.status().message());
  }
  return card;
}

Status VerifyTraineddata(const OcrCard& card, const std::filesystem::path& file) {
  ASSIGN_OR_RETURN(std::string actual, Sha256File(file));
  if (actual != card.traineddata_sha256) {
    return FailedPreconditionError("sha256 mismatch for " + file.string() + ": " + card.name + " " +
                                   card.version + " expects " + card.traineddata_sha256 + " (" +
                                   card.traineddata_source + "), actual " + actual);
  }
  return Status::Ok();
}

}  // namespace brainstem
