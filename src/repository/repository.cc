#include "repository/repository.h"

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>
#include <system_error>

namespace brainstem {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCardFileName = "model_card.yaml";
// Files are hashed in chunks so that a multi-gigabyte artifact never sits in memory at once.
constexpr size_t kHashChunkBytes = 1 << 20;

std::string JoinVersions(const std::vector<VersionEntry>& versions) {
  std::string out;
  for (const auto& v : versions) {
    if (!out.empty()) out += ", ";
    out += v.version.ToString();
  }
  return out.empty() ? "none" : out;
}

// Explains why each version of a model was passed over by an implicit Select.
std::string DescribeVersions(const std::vector<VersionEntry>& versions) {
  std::string out;
  for (const auto& v : versions) {
    if (!out.empty()) out += "; ";
    out += v.version.ToString();
    if (!v.card_status().ok()) {
      out += " (invalid card: " + v.card_status().message() + ")";
    } else if (v.version.is_prerelease()) {
      out += " (pre-release: name it or allow pre-releases)";
    }
  }
  return out.empty() ? "none" : out;
}

std::string Hex(const unsigned char* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xf]);
  }
  return out;
}

// Checks that a card describes the version its directory says it holds; a card copied into the
// wrong directory would otherwise serve under a false name.
Status CheckIdentity(const std::string& model, const SemVer& version, const fs::path& dir,
                     const std::string& card_name, const std::string& card_version) {
  if (card_name != model) {
    return InvalidArgumentError((dir / kCardFileName).string() + ": card name '" + card_name +
                                "' does not match the model directory '" + model + "'");
  }
  // The parsers already validated the version text.
  Result<SemVer> parsed = ParseSemVer(card_version);
  if (!parsed.ok() || !(*parsed == version)) {
    return InvalidArgumentError((dir / kCardFileName).string() + ": card version '" + card_version +
                                "' does not match the directory '" + dir.filename().string() + "'");
  }
  return Status::Ok();
}

// Reads the card in `dir` with the parser of its kind and fills the entry's card fields.
void LoadCardFor(VersionEntry& entry) {
  const fs::path file = entry.dir / kCardFileName;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    entry.card = NotFoundError("model card not found: " + file.string());
    entry.ocr_card = entry.card.status();
    return;
  }
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  Result<CardKind> kind = ReadCardKind(text.str());
  if (!kind.ok()) {
    entry.card = Status(kind.status().code(), file.string() + ": " + kind.status().message());
    entry.ocr_card = entry.card.status();
    return;
  }
  entry.kind = *kind;
  const std::string model_version = entry.model + " " + entry.version.ToString();
  if (entry.kind == CardKind::kOcr) {
    entry.card = FailedPreconditionError(model_version + " is an OCR model, not a policy");
    entry.ocr_card = LoadOcrCard(file);
    if (entry.ocr_card.ok()) {
      Status identity = CheckIdentity(entry.model, entry.version, entry.dir, entry.ocr_card->name,
                                      entry.ocr_card->version);
      if (!identity.ok()) entry.ocr_card = identity;
    }
    return;
  }
  entry.ocr_card = FailedPreconditionError(model_version + " is a policy, not an OCR model");
  entry.card = LoadModelCard(file);
  if (entry.card.ok()) {
    Status identity =
        CheckIdentity(entry.model, entry.version, entry.dir, entry.card->name, entry.card->version);
    if (!identity.ok()) entry.card = identity;
  }
}

}  // namespace

Result<Repository> Repository::Scan(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return NotFoundError("model repository not found or not a directory: " + root.string());
  }
  Repository repo;
  repo.root_ = root;

  fs::directory_iterator models(root, ec);
  if (ec) return InternalError("cannot list " + root.string() + ": " + ec.message());
  for (const auto& model_dir : models) {
    const std::string model = model_dir.path().filename().string();
    if (model.empty() || model[0] == '.' || !model_dir.is_directory(ec)) continue;

    std::vector<VersionEntry> versions;
    fs::directory_iterator version_dirs(model_dir.path(), ec);
    if (ec) return InternalError("cannot list " + model_dir.path().string() + ": " + ec.message());
    for (const auto& version_dir : version_dirs) {
      if (!version_dir.is_directory(ec)) continue;
      Result<SemVer> version = ParseSemVer(version_dir.path().filename().string());
      if (!version.ok()) continue;  // not a version directory: ignored by design
      VersionEntry entry;
      entry.model = model;
      entry.version = *version;
      entry.dir = version_dir.path();
      LoadCardFor(entry);
      versions.push_back(std::move(entry));
    }
    // A directory with no version inside is not a model (e.g. a README folder).
    if (versions.empty()) continue;

    std::sort(versions.begin(), versions.end(), [](const VersionEntry& a, const VersionEntry& b) {
      if (auto c = a.version <=> b.version; c != 0) return c < 0;
      return a.dir.filename() < b.dir.filename();
    });
    // "v1.0.0" and "1.0.0" (or two build tags) name the same version; refuse to guess which one
    // is meant, keeping both listed with the reason.
    for (size_t i = 0; i + 1 < versions.size(); ++i) {
      if (versions[i].version == versions[i + 1].version) {
        Status dup = FailedPreconditionError(
            "version " + versions[i].version.ToString() + " of model '" + model +
            "' appears in two directories: " + versions[i].dir.filename().string() + " and " +
            versions[i + 1].dir.filename().string());
        for (VersionEntry* v : {&versions[i], &versions[i + 1]}) {
          v->card = dup;
          v->ocr_card = dup;
        }
      }
    }
    repo.models_.emplace(model, std::move(versions));
  }
  return repo;
}

std::vector<std::string> Repository::ModelNames(CardKind kind) const {
  std::vector<std::string> names;
  for (const auto& [name, versions] : models_) {
    if (versions.back().kind == kind) names.push_back(name);
  }
  return names;
}

std::vector<std::string> Repository::ModelNames() const {
  std::vector<std::string> names;
  names.reserve(models_.size());
  for (const auto& [name, versions] : models_) names.push_back(name);
  return names;  // std::map iterates in sorted order
}

const std::vector<VersionEntry>& Repository::Versions(const std::string& model) const {
  static const std::vector<VersionEntry> kEmpty;
  auto it = models_.find(model);
  return it == models_.end() ? kEmpty : it->second;
}

Result<const VersionEntry*> Repository::Select(const std::string& model,
                                               const std::optional<std::string>& requested,
                                               bool allow_prerelease) const {
  auto it = models_.find(model);
  if (it == models_.end()) {
    std::string available;
    for (const auto& [name, versions] : models_) {
      if (!available.empty()) available += ", ";
      available += name;
    }
    return NotFoundError("model '" + model + "' not found in " + root_.string() +
                         " (available: " + (available.empty() ? "none" : available) + ")");
  }
  const std::vector<VersionEntry>& versions = it->second;

  if (requested.has_value()) {
    Result<SemVer> wanted = ParseSemVer(*requested);
    if (!wanted.ok()) return wanted.status();
    for (const auto& entry : versions) {
      if (!(entry.version == *wanted)) continue;
      if (!entry.card_status().ok()) {
        return FailedPreconditionError("model '" + model + "' version " + entry.version.ToString() +
                                       " cannot be used: " + entry.card_status().message());
      }
      return &entry;
    }
    return NotFoundError("model '" + model + "' has no version " + wanted->ToString() +
                         " (available: " + JoinVersions(versions) + ")");
  }

  // Newest first: the first release with a valid card wins; pre-releases are a fallback only.
  for (auto v = versions.rbegin(); v != versions.rend(); ++v) {
    if (v->card_status().ok() && !v->version.is_prerelease()) return &*v;
  }
  if (allow_prerelease) {
    for (auto v = versions.rbegin(); v != versions.rend(); ++v) {
      if (v->card_status().ok()) return &*v;
    }
  }
  return NotFoundError("model '" + model + "' has no usable version (" +
                       DescribeVersions(versions) + ")");
}

Result<std::string> Sha256File(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return NotFoundError("file not found: " + file.string());
  std::ifstream in(file, std::ios::binary);
  if (!in) return InternalError("cannot open " + file.string());

  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return InternalError("sha256: cannot initialise the digest");
  }
  std::vector<char> buffer(kHashChunkBytes);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n > 0 && EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(n)) != 1) {
      return InternalError("sha256: digest update failed for " + file.string());
    }
  }
  if (in.bad()) return InternalError("read error while hashing " + file.string());

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) {
    return InternalError("sha256: digest final failed for " + file.string());
  }
  return Hex(digest, length);
}

Status VerifyArtifactHashes(const ModelCard& card, const fs::path& dir) {
  // Listing is checked first: it is cheap and an unlisted model file would otherwise be loaded
  // without any integrity check.
  for (const auto& [format, file] : card.files) {
    if (card.artifact_hashes.count(file) == 0) {
      return FailedPreconditionError("model file '" + file + "' of " + card.name + " " +
                                     card.version + " is not listed in artifact_hashes");
    }
  }
  for (const auto& [file, expected] : card.artifact_hashes) {
    const fs::path path = dir / file;
    Result<std::string> actual = Sha256File(path);
    if (!actual.ok()) {
      if (actual.status().code() == StatusCode::kNotFound) {
        return NotFoundError("artifact '" + file +
                             "' listed in artifact_hashes is missing: " + path.string());
      }
      return actual.status();
    }
    if (*actual != expected) {
      return FailedPreconditionError("sha256 mismatch for " + path.string() + ": expected " +
                                     expected + ", actual " + *actual);
    }
  }
  return Status::Ok();
}

}  // namespace brainstem
