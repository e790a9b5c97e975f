// A unique shared-memory name per test, removed when the test ends (even when it fails), so
// tests never collide with each other, with parallel CTest runs, or with a real agent.
#ifndef INSTAFACE_TESTS_SDK_TEST_SEGMENT_H_
#define INSTAFACE_TESTS_SDK_TEST_SEGMENT_H_

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <string>

namespace instaface::testing {

class TestSegment {
 public:
  explicit TestSegment(const std::string& tag) {
    static std::atomic<int> sequence{0};
    name_ = "instaface-test-" + tag + "-" + std::to_string(getpid()) + "-" +
            std::to_string(sequence.fetch_add(1));
    shm_unlink(posix().c_str());
  }
  ~TestSegment() { shm_unlink(posix().c_str()); }
  TestSegment(const TestSegment&) = delete;
  TestSegment& operator=(const TestSegment&) = delete;

  const std::string& name() const { return name_; }
  std::string posix() const { return "/" + name_; }

 private:
  std::string name_;
};

// Maps an existing segment read-write, to corrupt or inspect it as a foreign process would.
class RawMapping {
 public:
  RawMapping(const std::string& posix_name, size_t size) : size_(size) {
    const int fd = shm_open(posix_name.c_str(), O_RDWR, 0);
    if (fd < 0) return;
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p != MAP_FAILED) address_ = p;
  }
  ~RawMapping() {
    if (address_ != nullptr) munmap(address_, size_);
  }
  RawMapping(const RawMapping&) = delete;
  RawMapping& operator=(const RawMapping&) = delete;

  template <typename T>
  T* as() const {
    return static_cast<T*>(address_);
  }
  bool ok() const { return address_ != nullptr; }

 private:
  void* address_ = nullptr;
  size_t size_;
};

}  // namespace instaface::testing

#endif  // INSTAFACE_TESTS_SDK_TEST_SEGMENT_H_
