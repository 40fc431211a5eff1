#include "repository/repository.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>

namespace brainstem {
namespace {

namespace fs = std::filesystem;

// sha256 values below were computed with `sha256sum`, not by the code under test.
constexpr char kBrainstemLineSha[] =  // printf 'brainstem\n' | sha256sum
    "cd76734f783600f86194193155b2330b4e8cb3928e38c206ec65b0f39c014257";
constexpr char kEmptySha[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kHelloWorldSha[] =  // printf 'hello world' | sha256sum
    "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
// 3 MiB + 5 bytes, byte i = i % 251: spans several 1 MiB hashing chunks.
constexpr char kBigSha[] = "b01669d77761c4dfdfc8fb927821087bcf5c9ef1f917c4f1f8504e529f19edab";

// A scratch directory unique to this process and test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = fs::temp_directory_path() / ("brainstem_repo_test_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter++) + "_" + std::to_string(now));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void WriteFile(const fs::path& file, const std::string& bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary);
  out << bytes;
}

std::string Card(const std::string& name, const std::string& version,
                 const std::string& hashes = "") {
  return "name: " + name + "\nversion: " + version +
         "\nfiles: {onnx: model.onnx}\ninput: [{name: x, size: 2}]\n"
         "output: {actions: [{name: a, low: -1, high: 1}]}\n" +
         (hashes.empty() ? "" : "artifact_hashes:\n" + hashes);
}

// Adds <root>/<model>/<dir>/model_card.yaml describing version `version`.
void AddVersion(const fs::path& root, const std::string& model, const std::string& dir,
                const std::string& version) {
  WriteFile(root / model / dir / "model_card.yaml", Card(model, version));
}

class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path& root = tmp_.path();
    AddVersion(root, "lane", "v0.1.0", "0.1.0");
    AddVersion(root, "lane", "0.2.0", "0.2.0");
    AddVersion(root, "lane", "v0.10.0-beta.1", "0.10.0-beta.1");
    AddVersion(root, "lane", "v0.3.0-rc.1", "0.3.0-rc.1");
    WriteFile(root / "lane" / "v0.9.0" / "model_card.yaml", "name: lane\nversion: 0.9.0\n");
    fs::create_directories(root / "lane" / "notes");  // not semver: ignored
    AddVersion(root, "beta-only", "v1.0.0-alpha", "1.0.0-alpha");
    AddVersion(root, "beta-only", "v1.0.0-alpha.1", "1.0.0-alpha.1");
    fs::create_directories(root / "empty-folder");  // no versions: not a model
    Result<Repository> repo = Repository::Scan(root);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_.emplace(std::move(repo).value());
  }

  const Repository& repo() const { return *repo_; }

  TempDir tmp_;
  std::optional<Repository> repo_;
};

TEST_F(RepositoryTest, ScanListsModelsAndVersionsInOrder) {
  EXPECT_EQ(repo().ModelNames(), (std::vector<std::string>{"beta-only", "lane"}));
  const auto& versions = repo().Versions("lane");
  std::vector<std::string> names;
  for (const auto& v : versions) names.push_back(v.version.ToString());
  EXPECT_EQ(names,
            (std::vector<std::string>{"0.1.0", "0.2.0", "0.3.0-rc.1", "0.9.0", "0.10.0-beta.1"}));
  EXPECT_TRUE(versions[0].card.ok());
  EXPECT_EQ(versions[0].dir.filename(), "v0.1.0");
  EXPECT_EQ(versions[0].model, "lane");
  // The broken card is listed with its error.
  EXPECT_FALSE(versions[3].card.ok());
  EXPECT_NE(versions[3].card.status().message().find("files"), std::string::npos);
}

TEST_F(RepositoryTest, UnknownModelHasNoVersions) {
  EXPECT_TRUE(repo().Versions("nope").empty());
  EXPECT_TRUE(repo().Versions("empty-folder").empty());
}

TEST_F(RepositoryTest, SelectNewestStableSkippingInvalidCard) {
  // 0.9.0 is newer but its card is invalid, so it must not be chosen implicitly.
  Result<const VersionEntry*> v = repo().Select("lane", std::nullopt, false);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)->version.ToString(), "0.2.0");
  EXPECT_TRUE((*v)->card.ok());
}

TEST_F(RepositoryTest, SelectExplicitVersions) {
  Result<const VersionEntry*> v = repo().Select("lane", "0.1.0", false);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)->version.ToString(), "0.1.0");
  v = repo().Select("lane", "v0.2.0", false);  // leading v accepted
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)->version.ToString(), "0.2.0");
  // A pre-release named explicitly is allowed without allow_prerelease.
  v = repo().Select("lane", "0.3.0-rc.1", false);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)->version.ToString(), "0.3.0-rc.1");
}

TEST_F(RepositoryTest, SelectPrereleaseOnlyWhenAllowed) {
  Result<const VersionEntry*> v = repo().Select("beta-only", std::nullopt, false);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kNotFound);
  EXPECT_NE(v.status().message().find("1.0.0-alpha.1"), std::string::npos);
  v = repo().Select("beta-only", std::nullopt, true);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)->version.ToString(), "1.0.0-alpha.1");
  // With a release present, the release still wins (pre-releases are a fallback).
  v = repo().Select("lane", std::nullopt, true);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)->version.ToString(), "0.2.0");
}

TEST_F(RepositoryTest, SelectErrors) {
  Result<const VersionEntry*> v = repo().Select("lane", "0.4.0", false);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kNotFound);
  EXPECT_NE(v.status().message().find("0.4.0"), std::string::npos);
  EXPECT_NE(v.status().message().find("available: 0.1.0, 0.2.0, 0.3.0-rc.1"), std::string::npos)
      << v.status().message();

  v = repo().Select("lane", "latest", false);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);

  v = repo().Select("lane", "0.9.0", false);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(v.status().message().find("0.9.0"), std::string::npos);

  v = repo().Select("missing", std::nullopt, false);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kNotFound);
  EXPECT_NE(v.status().message().find("available: beta-only, lane"), std::string::npos)
      << v.status().message();
}

TEST(RepositoryScanTest, MissingRootIsNotFound) {
  Result<Repository> repo = Repository::Scan("/nonexistent/brainstem/artifacts");
  ASSERT_FALSE(repo.ok());
  EXPECT_EQ(repo.status().code(), StatusCode::kNotFound);
}

TEST(RepositoryScanTest, CardMustMatchItsDirectory) {
  TempDir tmp;
  WriteFile(tmp.path() / "lane" / "v1.0.0" / "model_card.yaml", Card("lane", "1.0.1"));
  WriteFile(tmp.path() / "lane" / "v2.0.0" / "model_card.yaml", Card("other", "2.0.0"));
  AddVersion(tmp.path(), "lane", "v3.0.0", "3.0.0");
  AddVersion(tmp.path(), "lane", "3.0.0", "3.0.0");        // same version twice
  fs::create_directories(tmp.path() / "lane" / "v4.0.0");  // no card at all
  Result<Repository> repo = Repository::Scan(tmp.path());
  ASSERT_TRUE(repo.ok());
  const auto& versions = repo->Versions("lane");
  ASSERT_EQ(versions.size(), 5u);
  for (const auto& v : versions) EXPECT_FALSE(v.card.ok()) << v.dir;
  EXPECT_NE(versions[0].card.status().message().find("1.0.1"), std::string::npos);
  EXPECT_NE(versions[1].card.status().message().find("other"), std::string::npos);
  EXPECT_NE(versions[2].card.status().message().find("two directories"), std::string::npos);
  EXPECT_EQ(versions[4].card.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(repo->Select("lane", std::nullopt, true).ok());
}

TEST(Sha256Test, KnownValues) {
  TempDir tmp;
  WriteFile(tmp.path() / "a.txt", "brainstem\n");
  WriteFile(tmp.path() / "empty", "");
  WriteFile(tmp.path() / "hello", "hello world");
  std::string big(3 * 1024 * 1024 + 5, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i % 251);
  WriteFile(tmp.path() / "big.bin", big);

  struct Case {
    const char* file;
    const char* sha;
  };
  for (const Case& c : {Case{"a.txt", kBrainstemLineSha}, Case{"empty", kEmptySha},
                        Case{"hello", kHelloWorldSha}, Case{"big.bin", kBigSha}}) {
    Result<std::string> sha = Sha256File(tmp.path() / c.file);
    ASSERT_TRUE(sha.ok()) << sha.status().ToString();
    EXPECT_EQ(*sha, c.sha) << c.file;
  }
  Result<std::string> missing = Sha256File(tmp.path() / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path() / "lane" / "v1.0.0";
    WriteFile(dir_ / "model.onnx", "brainstem\n");
    WriteFile(dir_ / "extra.txt", "hello world");
  }
  ModelCard MakeCard(const std::string& hashes) {
    Result<ModelCard> card = ParseModelCard(Card("lane", "1.0.0", hashes));
    EXPECT_TRUE(card.ok()) << card.status().ToString();
    return card.ok() ? *card : ModelCard{};
  }

  TempDir tmp_;
  fs::path dir_;
};

TEST_F(VerifyTest, MatchingHashesPass) {
  ModelCard card = MakeCard(std::string("  model.onnx: ") + kBrainstemLineSha +
                            "\n  extra.txt: " + kHelloWorldSha + "\n");
  Status s = VerifyArtifactHashes(card, dir_);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(VerifyTest, MismatchNamesTheFile) {
  ModelCard card = MakeCard(std::string("  model.onnx: ") + kBrainstemLineSha +
                            "\n  extra.txt: " + kEmptySha + "\n");
  Status s = VerifyArtifactHashes(card, dir_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("extra.txt"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(kEmptySha), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(kHelloWorldSha), std::string::npos) << s.message();
}

TEST_F(VerifyTest, TamperedModelFails) {
  ModelCard card = MakeCard(std::string("  model.onnx: ") + kBrainstemLineSha + "\n");
  WriteFile(dir_ / "model.onnx", "brainstem!\n");
  Status s = VerifyArtifactHashes(card, dir_);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("model.onnx"), std::string::npos) << s.message();
}

TEST_F(VerifyTest, MissingListedFileIsNotFound) {
  ModelCard card = MakeCard(std::string("  model.onnx: ") + kBrainstemLineSha +
                            "\n  gone.bin: " + kEmptySha + "\n");
  Status s = VerifyArtifactHashes(card, dir_);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("gone.bin"), std::string::npos) << s.message();
}

TEST_F(VerifyTest, UnlistedModelFileFails) {
  ModelCard card = MakeCard(std::string("  extra.txt: ") + kHelloWorldSha + "\n");
  Status s = VerifyArtifactHashes(card, dir_);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("model.onnx"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("not listed"), std::string::npos) << s.message();
}

// The embedded repository must stay consistent: every card valid and every hash current.
TEST(ShippedArtifactsTest, EveryVersionParsesAndVerifies) {
  const fs::path root = BRAINSTEM_ARTIFACTS_DIR;
  if (!fs::is_directory(root)) GTEST_SKIP() << "no " << root;
  Result<Repository> repo = Repository::Scan(root);
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();
  int versions = 0;
  for (const auto& model : repo->ModelNames()) {
    for (const auto& v : repo->Versions(model)) {
      ++versions;
      ASSERT_TRUE(v.card_status().ok()) << v.dir << ": " << v.card_status().ToString();
      // OCR cards pin a system file, not repository files (ocr_card_test checks it).
      if (v.kind != CardKind::kPolicy) continue;
      Status verified = VerifyArtifactHashes(*v.card, v.dir);
      EXPECT_TRUE(verified.ok()) << v.dir << ": " << verified.ToString();
    }
    EXPECT_TRUE(repo->Select(model, std::nullopt, true).ok()) << model;
  }
  EXPECT_GT(versions, 0);
}

}  // namespace
}  // namespace brainstem
