#include "support/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace instaface::testing {

std::string ExitStatus::ToString() const {
  if (exited) return "exited with code " + std::to_string(code);
  return std::string("killed by signal ") + std::to_string(signal) + " (" + strsignal(signal) + ")";
}

std::string ReadFileOrEmpty(const std::string& path) {
  if (path.empty()) return "";
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

namespace {

// Everything the child needs, prepared before fork: after fork in a threaded process the child
// may only make async-signal-safe calls, so no allocation there.
struct ChildPlan {
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
};

ChildPlan MakePlan(SubprocessOptions& options) {
  ChildPlan plan;
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    bool overridden = false;
    for (const auto& [key, value] : options.env) {
      if (entry.compare(0, key.size() + 1, key + "=") == 0) overridden = true;
    }
    if (!overridden) plan.env_storage.push_back(std::move(entry));
  }
  // A key listed twice takes its last value.
  for (size_t i = 0; i < options.env.size(); ++i) {
    bool later = false;
    for (size_t j = i + 1; j < options.env.size(); ++j)
      later = later || options.env[j].first == options.env[i].first;
    if (!later) plan.env_storage.push_back(options.env[i].first + "=" + options.env[i].second);
  }
  for (auto& arg : options.argv) plan.argv.push_back(arg.data());
  plan.argv.push_back(nullptr);
  for (auto& entry : plan.env_storage) plan.envp.push_back(entry.data());
  plan.envp.push_back(nullptr);
  return plan;
}

[[noreturn]] void ChildFail(int report_fd) {
  int err = errno;
  ssize_t ignored = write(report_fd, &err, sizeof err);
  (void)ignored;
  _exit(127);
}

void RedirectOrFail(const std::string& path, int target_fd, int report_fd) {
  const char* file = path.empty() ? "/dev/null" : path.c_str();
  int flags = path.empty() ? O_WRONLY : (O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
  int fd = open(file, flags | O_CLOEXEC, 0644);
  if (fd < 0 || dup2(fd, target_fd) < 0) ChildFail(report_fd);
  close(fd);
}

}  // namespace

Subprocess::Subprocess(SubprocessOptions options) : options_(std::move(options)) {
  if (options_.argv.empty()) {
    error_ = "no argv";
    return;
  }
  ChildPlan plan = MakePlan(options_);
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    error_ = std::string("pipe2: ") + strerror(errno);
    return;
  }
  int netns = -1;
  if (!options_.netns.empty()) {
    netns = open(options_.netns.c_str(), O_RDONLY | O_CLOEXEC);
    if (netns < 0) {
      error_ = "network namespace " + options_.netns + ": " + strerror(errno);
      close(report[0]);
      close(report[1]);
      return;
    }
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    error_ = std::string("fork: ") + strerror(errno);
    close(report[0]);
    close(report[1]);
    if (netns >= 0) close(netns);
    return;
  }
  if (pid == 0) {
    close(report[0]);
    // Dies with the spawning thread: a crashed test leaves no servers behind.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(report[1]);
    if (getppid() != parent) _exit(127);
    // Its own process group, so a terminal's Ctrl-C reaches the test runner, which cleans up.
    setpgid(0, 0);
    if (netns >= 0 && setns(netns, CLONE_NEWNET) != 0) ChildFail(report[1]);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0) ChildFail(report[1]);
    RedirectOrFail(options_.stdout_path, STDOUT_FILENO, report[1]);
    RedirectOrFail(options_.stderr_path, STDERR_FILENO, report[1]);
    if (!options_.working_dir.empty() && chdir(options_.working_dir.c_str()) != 0) {
      ChildFail(report[1]);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execvpe(plan.argv[0], plan.argv.data(), plan.envp.data());
    ChildFail(report[1]);
  }
  close(report[1]);
  if (netns >= 0) close(netns);
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(report[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  pid_ = pid;
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    error_ = "cannot start " + options_.argv[0] + ": " + strerror(child_errno);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
}

Subprocess::Subprocess(Subprocess&& other) noexcept { *this = std::move(other); }

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !exit_) Kill();
    options_ = std::move(other.options_);
    pid_ = other.pid_;
    exit_ = other.exit_;
    error_ = std::move(other.error_);
    other.pid_ = -1;
    other.exit_.reset();
  }
  return *this;
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !exit_) Kill();
}

void Subprocess::Reap(int wait_status) {
  ExitStatus status;
  if (WIFEXITED(wait_status)) {
    status.exited = true;
    status.code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    status.signal = WTERMSIG(wait_status);
  }
  exit_ = status;
}

bool Subprocess::Running() {
  if (pid_ <= 0 || exit_) return false;
  int wait_status = 0;
  pid_t r = waitpid(pid_, &wait_status, WNOHANG);
  if (r == pid_) {
    Reap(wait_status);
    return false;
  }
  return r == 0;
}

bool Subprocess::Signal(int signal) {
  if (!Running()) return false;
  return kill(pid_, signal) == 0;
}

bool Subprocess::Terminate() { return Signal(SIGTERM); }
bool Subprocess::Stop() { return Signal(SIGSTOP); }
bool Subprocess::Continue() { return Signal(SIGCONT); }

void Subprocess::Kill() {
  if (pid_ <= 0 || exit_) return;
  kill(pid_, SIGKILL);
  int wait_status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &wait_status, 0);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) Reap(wait_status);
}

std::optional<ExitStatus> Subprocess::Wait(std::chrono::milliseconds timeout) {
  if (exit_) return exit_;
  if (pid_ <= 0) return std::nullopt;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(200);
  while (true) {
    int wait_status = 0;
    pid_t r = waitpid(pid_, &wait_status, WNOHANG);
    if (r == pid_) {
      Reap(wait_status);
      return exit_;
    }
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(10));
  }
}

std::string Subprocess::ReadStderr() const { return ReadFileOrEmpty(options_.stderr_path); }
std::string Subprocess::ReadStdout() const { return ReadFileOrEmpty(options_.stdout_path); }

}  // namespace instaface::testing
