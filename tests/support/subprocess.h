// Subprocess: a child process for tests (a server, an agent), started with its own arguments
// and environment, its stderr (and stdout) captured to files, signalled, and waited for with a
// deadline. RAII: a child still running when its Subprocess is destroyed gets SIGKILL and is
// reaped, so a failing test never leaks processes. The child also gets SIGKILL if the thread
// that spawned it exits (PR_SET_PDEATHSIG), which covers a test binary that crashes.
//
// Thread safety: none; one thread owns a Subprocess.
#ifndef INSTAFACE_TESTS_SUPPORT_SUBPROCESS_H_
#define INSTAFACE_TESTS_SUPPORT_SUBPROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace instaface::testing {

struct SubprocessOptions {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH
  // Set (or overridden) on top of this process's environment; a key listed twice takes its
  // last value.
  std::vector<std::pair<std::string, std::string>> env;
  std::string stdout_path;  // empty: /dev/null
  std::string stderr_path;  // empty: /dev/null
  std::string working_dir;  // empty: this process's
  // A network namespace to run in (a path such as /run/netns/NAME, as `ip netns add` makes);
  // empty: this thread's.
  std::string netns;
};

struct ExitStatus {
  bool exited = false;  // true: code is valid; false: killed by `signal`
  int code = 0;
  int signal = 0;
  bool success() const { return exited && code == 0; }
  std::string ToString() const;
};

class Subprocess {
 public:
  Subprocess() = default;
  // Spawns at once; check ok(). An argv[0] that cannot be executed is an error here, not a
  // child that exits 127.
  explicit Subprocess(SubprocessOptions options);
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  ~Subprocess();

  bool ok() const { return pid_ > 0 || exit_.has_value(); }
  const std::string& error() const { return error_; }
  pid_t pid() const { return pid_; }
  const SubprocessOptions& options() const { return options_; }

  // Still running (not yet reaped)? Reaps it if it has exited.
  bool Running();
  // Sends `signal`; false if the child is gone.
  bool Signal(int signal);
  bool Terminate();  // SIGTERM
  bool Stop();       // SIGSTOP
  bool Continue();   // SIGCONT
  // SIGKILL, then reaps.
  void Kill();

  // Waits until the child exits or `timeout` passes (nullopt). Once reaped, returns the same
  // status every time.
  std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout);
  // The captured stderr so far (empty when not captured).
  std::string ReadStderr() const;
  std::string ReadStdout() const;

 private:
  void Reap(int wait_status);

  SubprocessOptions options_;
  pid_t pid_ = -1;
  std::optional<ExitStatus> exit_;
  std::string error_;
};

// The whole file, or "" if it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace instaface::testing

#endif  // INSTAFACE_TESTS_SUPPORT_SUBPROCESS_H_
