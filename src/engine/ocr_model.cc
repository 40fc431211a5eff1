#include "engine/ocr_model.h"

#include <cstdlib>
#include <system_error>

#include "repository/repository.h"

namespace brainstem {
namespace {

namespace fs = std::filesystem;

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

// The card fills the keys the operator did not set; an explicit key always wins, so a
// deployment can change one setting without editing (and re-hashing) the card.
void ApplyCard(const Config& config, const OcrCard& card, OcrConfig* out) {
  if (!config.IsSet("ocr.language")) out->language = card.language;
  if (!config.IsSet("ocr.tile_size")) out->tile_size = card.tile_size;
  if (!config.IsSet("ocr.psm")) out->psm = card.whole_psm;
  if (!config.IsSet("ocr.segmentation")) out->segmentation = card.segmentation;
  if (!config.IsSet("ocr.polarity_fix")) out->polarity_fix = card.polarity_fix;
  if (!config.IsSet("ocr.line_width_scale")) out->line_width_scale = card.line_width_scale;
  if (!config.IsSet("ocr.max_image_pixels")) out->max_image_pixels = card.max_image_pixels;
}

}  // namespace

fs::path FindTraineddata(const std::string& tessdata_dir, const std::string& file) {
  std::vector<fs::path> dirs;
  if (!tessdata_dir.empty()) {
    dirs.push_back(tessdata_dir);
  } else {
    if (const char* prefix = std::getenv("TESSDATA_PREFIX"); prefix != nullptr && *prefix) {
      dirs.push_back(prefix);
      dirs.push_back(fs::path(prefix) / "tessdata");
    }
    for (const char* d :
         {"/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
          "/usr/share/tessdata", "/usr/local/share/tessdata"}) {
      dirs.push_back(d);
    }
  }
  std::error_code ec;
  for (const fs::path& dir : dirs) {
    if (fs::is_regular_file(dir / file, ec)) return dir / file;
  }
  return {};
}

Result<OcrModel> ResolveOcrModel(const Config& config) {
  OcrModel model;
  model.effective = config.ocr;
  if (config.ocr.model.empty()) return model;

  const bool explicit_model = config.IsSet("ocr.model");
  const bool explicit_version = !config.ocr.version.empty();
  const std::string& name = config.ocr.model;
  const fs::path& root = config.model.artifact_dir;
  const std::string fallback =
      "; using the built-in ocr.* settings (set ocr.model: \"\" to "
      "silence this, or add the OCR artifact)";

  Result<Repository> repository = Repository::Scan(root);
  if (!repository.ok() || repository->Versions(name).empty()) {
    const std::string why =
        !repository.ok()
            ? repository.status().message()
            : "OCR model '" + name + "' not found in " + root.string() +
                  " (OCR models there: " + JoinNames(repository->ModelNames(CardKind::kOcr)) + ")";
    if (explicit_model || explicit_version) {
      return NotFoundError(std::string(explicit_model ? "ocr.model" : "ocr.version") + ": " + why);
    }
    model.warnings.push_back(why + fallback);
    return model;
  }

  std::optional<std::string> requested;
  if (explicit_version) requested = config.ocr.version;
  Result<const VersionEntry*> selected = repository->Select(name, requested, false);
  if (!selected.ok() && !explicit_model && !explicit_version) {
    // Nobody asked for this model by name: a broken OCR card must not take the policy API down.
    model.warnings.push_back("OCR model '" + name + "': " + selected.status().message() + fallback);
    return model;
  }
  if (!selected.ok()) {
    return Status(selected.status().code(),
                  std::string(explicit_version ? "ocr.version" : "ocr.model") + ": " +
                      selected.status().message());
  }
  const VersionEntry& entry = **selected;
  if (entry.kind != CardKind::kOcr) {
    return InvalidArgumentError("ocr.model: '" + name + "' is a " +
                                std::string(CardKindName(entry.kind)) +
                                " model, not an OCR model (its card has no kind: ocr)");
  }
  // Select only returns versions whose card parsed.
  const OcrCard& card = *entry.ocr_card;
  model.name = name;
  model.version = entry.version.ToString();
  model.dir = entry.dir;
  model.card = card;
  ApplyCard(config, card, &model.effective);

  if (model.effective.language != card.language) {
    model.hash_problem = "ocr.language '" + model.effective.language + "' overrides the card's '" +
                         card.language + "'; its traineddata is not the one the card pins";
    model.warnings.push_back("OCR model " + name + " " + model.version + ": " + model.hash_problem);
    return model;
  }
  model.traineddata = FindTraineddata(model.effective.tessdata_dir, card.traineddata_file);
  if (model.traineddata.empty()) {
    model.hash_problem = card.traineddata_file + " not found (ocr.tessdata_dir '" +
                         model.effective.tessdata_dir + "', TESSDATA_PREFIX, default directories)";
  } else if (Status verified = VerifyTraineddata(card, model.traineddata); !verified.ok()) {
    model.hash_problem = verified.message();
  } else {
    model.hash_verified = true;
    return model;
  }
  model.warnings.push_back("OCR model " + name + " " + model.version +
                           ": traineddata NOT verified: " + model.hash_problem +
                           ". Serving anyway; results may differ from the validated model "
                           "(brainstem_ocr_model_info{hash_verified=\"false\"})");
  return model;
}

}  // namespace brainstem
