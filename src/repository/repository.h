// Repository: the on-disk model store, laid out as <root>/<model>/<version>/ where <version>
// is a semver directory name ("v0.1.0" or "0.1.0") holding model_card.yaml and the artifact
// files it names. A card's `kind` (card_kind.h) says whether the version is a policy (ModelCard)
// or screen OCR (OcrCard); both live side by side in one repository. Scanning reads cards but loads
// no model; sha256 verification is a separate, explicit step done before a version is loaded. No
// pickle is ever read. Thread-compatible: a scanned Repository is immutable; rescan to see changes.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "repository/card_kind.h"
#include "repository/model_card.h"
#include "repository/ocr_card.h"
#include "repository/semver.h"

namespace brainstem {

struct VersionEntry {
  std::string model;
  SemVer version;
  std::filesystem::path dir;
  CardKind kind = CardKind::kPolicy;  // from the card's `kind` (policy when unreadable)
  // The parsed card of this version's kind, or why it could not be used (the version is still
  // listed by /versions). The field of the other kind holds kFailedPrecondition saying so.
  Result<ModelCard> card = InternalError("not loaded");
  Result<OcrCard> ocr_card = InternalError("not loaded");

  // Why this version cannot be used (the status of the card of its kind); Ok when it can.
  Status card_status() const { return kind == CardKind::kOcr ? ocr_card.status() : card.status(); }
};

class Repository {
 public:
  // Scans `root`. Directories whose name is not semver are ignored with no error; a version
  // whose card is missing or invalid is kept with the error in VersionEntry::card.
  // Errors: kNotFound when root does not exist or is not a directory.
  static Result<Repository> Scan(const std::filesystem::path& root);

  const std::filesystem::path& root() const { return root_; }
  std::vector<std::string> ModelNames() const;  // sorted
  // The models whose newest version is of `kind`, sorted (a model's kind is that of its
  // newest version: a card that changes kind is a new model in all but name).
  std::vector<std::string> ModelNames(CardKind kind) const;
  // Every version of `model`, oldest first (semver order); empty when the model is unknown.
  const std::vector<VersionEntry>& Versions(const std::string& model) const;

  // Chooses the version to serve: `requested` when given (must exist, pre-releases allowed
  // when named explicitly), else the newest release, else (only when allow_prerelease) the
  // newest pre-release. A version whose card failed to parse is never chosen implicitly.
  // Errors: kNotFound naming the model or version and listing what exists;
  //         kInvalidArgument when `requested` is not semver;
  //         kFailedPrecondition when the requested version's card is invalid.
  Result<const VersionEntry*> Select(const std::string& model,
                                     const std::optional<std::string>& requested,
                                     bool allow_prerelease) const;

 private:
  std::filesystem::path root_;
  std::map<std::string, std::vector<VersionEntry>> models_;
};

// Lowercase hex sha256 of a file's bytes. Errors: kNotFound, kInternal (read failure).
Result<std::string> Sha256File(const std::filesystem::path& file);

// Checks every file listed in card.artifact_hashes under `dir`, and that every model file the
// card names is listed. Errors: kFailedPrecondition naming the file with expected and actual
// hash (mismatch) or naming the unlisted file; kNotFound for a listed file that is missing.
Status VerifyArtifactHashes(const ModelCard& card, const std::filesystem::path& dir);

}  // namespace brainstem
