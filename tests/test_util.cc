#include "test_util.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace grey::test {

std::string fixture_path(const std::string& rel) {
  return std::string(GREY_FIXTURE_DIR) + "/" + rel;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string read_fixture(const std::string& rel) {
  return read_file(fixture_path(rel));
}

void write_file(const std::string& path, const std::string& content, int mode) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
}

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/grey-test-XXXXXX";
  char* p = mkdtemp(tmpl.data());
  EXPECT_NE(p, nullptr);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace grey::test

#ifdef GREY_BINARY
namespace grey::test {
CommandResult run_grey(const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env,
                       std::chrono::milliseconds limit) {
  std::vector<std::string> argv{GREY_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions o;
  o.timeout = limit;
  o.extra_env = env;
  PosixRunner r;
  return r.run(argv, o);
}
}  // namespace grey::test
#endif
