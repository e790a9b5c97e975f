// TempDir: a fresh private directory (mode 0700) under $TMPDIR or /tmp, removed with all its
// contents on destruction. Paths stay short enough for Unix socket names (108 bytes).
//
// Thread safety: const methods from any thread; one owner destroys it.
#ifndef INSTAFACE_TESTS_SUPPORT_TEMP_DIR_H_
#define INSTAFACE_TESTS_SUPPORT_TEMP_DIR_H_

#include <string>

namespace instaface::testing {

class TempDir {
 public:
  // Aborts the test binary (with a message) if no directory can be made: nothing else could
  // work without one.
  explicit TempDir(const std::string& prefix = "instaface");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string File(const std::string& name) const;
  // Keeps the directory after destruction (to look at a failure's logs).
  void Keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

}  // namespace instaface::testing

#endif  // INSTAFACE_TESTS_SUPPORT_TEMP_DIR_H_
