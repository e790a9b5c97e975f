#include "support/mariadb_server.h"

#include <pwd.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <thread>

#include "support/free_port.h"

namespace instaface::testing {
namespace {

std::string CurrentUserName() {
  if (passwd* pw = getpwuid(geteuid()); pw != nullptr && pw->pw_name != nullptr) {
    return pw->pw_name;
  }
  return "root";
}

// Single quotes for an SQL string literal of test-controlled text.
std::string SqlQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// Loopback, and `host` too when it is another address (MariaDB 10.11 takes a list).
std::string BindAddress(const std::string& host) {
  return host == "127.0.0.1" ? host : "127.0.0.1," + host;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

}  // namespace

MariaDbServer::MariaDbServer(MariaDbServerOptions options)
    : options_(std::move(options)), dir_("instaface-mariadb") {}

MariaDbServer::~MariaDbServer() {
  // A clean stop is slower but leaves no half-written files behind for a Keep()'d dir.
  if (process_.Running()) {
    process_.Terminate();
    if (!process_.Wait(std::chrono::seconds(10))) process_.Kill();
  }
}

bool MariaDbServer::running() { return process_.Running(); }

std::string MariaDbServer::log() const { return ReadFileOrEmpty(dir_.File("error.log")); }

// mariadb-install-db takes from one to several seconds (it fsyncs a fresh system schema), so
// one pristine data directory per process is installed once and copied for every server.
bool MariaDbServer::Install(std::string* error) {
  static TempDir* const pristine = new TempDir("instaface-mariadb-pristine");
  // Removed at exit (a heap TempDir would never be destroyed).
  static const struct Cleanup {
    ~Cleanup() { delete pristine; }
  } cleanup;
  static bool pristine_ready = false;
  if (!pristine_ready) {
    SubprocessOptions options;
    // A temporary directory of its own: install-db's bootstrap server names its temporary tables
    // after its pid, and one of a concurrent run's in the shared /tmp broke the install once.
    std::filesystem::create_directories(pristine->File("tmp"));
    options.argv = {"mariadb-install-db",
                    "--no-defaults",
                    "--user=" + CurrentUserName(),
                    "--datadir=" + pristine->File("data"),
                    "--tmpdir=" + pristine->File("tmp"),
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db"};
    options.stdout_path = pristine->File("install.log");
    options.stderr_path = pristine->File("install.log");
    Subprocess install(options);
    if (!install.ok()) {
      if (error) *error = "mariadb-install-db: " + install.error();
      return false;
    }
    std::optional<ExitStatus> status = install.Wait(std::chrono::seconds(120));
    if (!status || !status->success()) {
      if (error) {
        *error = "mariadb-install-db failed: " + ReadFileOrEmpty(pristine->File("install.log"));
      }
      return false;
    }
    pristine_ready = true;
  }
  std::error_code ec;
  std::filesystem::copy(pristine->File("data"), dir_.File("data"),
                        std::filesystem::copy_options::recursive, ec);
  if (ec) {
    if (error) *error = "copying the installed data directory: " + ec.message();
    return false;
  }
  installed_ = true;
  return true;
}

bool MariaDbServer::Start(std::string* error) {
  auto fail = [&](std::string message) {
    if (error) *error = std::move(message);
    return false;
  };
  if (process_.Running()) return true;
  if (!installed_ && !Install(error)) return false;

  const bool reuse_port = port_ != 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (!reuse_port) port_ = FreePort();
    if (port_ == 0) return fail("no free port");
    SubprocessOptions options;
    std::filesystem::create_directories(dir_.File("tmp"));
    // --no-defaults must come first, or /etc/mysql's configuration applies.
    options.argv = {"mariadbd",
                    "--no-defaults",
                    "--user=" + CurrentUserName(),
                    "--datadir=" + dir_.File("data"),
                    "--tmpdir=" + dir_.File("tmp"),
                    "--socket=" + socket_path(),
                    "--port=" + std::to_string(port_),
                    "--bind-address=" + BindAddress(options_.host),
                    "--pid-file=" + dir_.File("mysqld.pid"),
                    "--log-error=" + dir_.File("error.log"),
                    "--skip-name-resolve",
                    "--innodb-buffer-pool-size=64M",
                    "--innodb-log-file-size=16M"};
    if (options_.server_id != 0) {
      for (const char* arg :
           {"--log-bin", "--binlog-format=ROW", "--gtid-strict-mode=1", "--log-slave-updates"}) {
        options.argv.push_back(arg);
      }
      options.argv.push_back("--server-id=" + std::to_string(options_.server_id));
      options.argv.push_back("--log-basename=node" + std::to_string(options_.server_id));
    }
    options.stderr_path = dir_.File("mariadbd.stderr");
    process_ = Subprocess(options);
    if (!process_.ok()) return fail("mariadbd: " + process_.error());

    const auto deadline = std::chrono::steady_clock::now() + options_.ready_timeout;
    bool ready = false;
    while (std::chrono::steady_clock::now() < deadline && process_.Running()) {
      if (PortAcceptsConnections(port_) && Answers()) {
        ready = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (ready) break;
    process_.Kill();
    if (attempt == 4 || !reuse_port) {
      if (attempt == 4) {
        return fail("mariadbd did not become ready on port " + std::to_string(port_) + ": " +
                    log());
      }
      continue;  // maybe the port was taken meanwhile: try another
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }

  if (!password_set_) {
    // install-db already created root@127.0.0.1, so it gets a password rather than CREATE USER.
    // Not binlogged: a replica sets its own and must not receive the primary's.
    const std::string pw = SqlQuote(options_.root_password);
    std::string err;
    std::string sql = "SET sql_log_bin = 0; ALTER USER root@localhost IDENTIFIED BY " + pw +
                      "; SET PASSWORD FOR root@'127.0.0.1' = PASSWORD(" + pw + ");";
    if (options_.host != "127.0.0.1") {
      sql += " CREATE USER IF NOT EXISTS root@'%' IDENTIFIED BY " + pw +
             "; GRANT ALL PRIVILEGES ON *.* TO root@'%' WITH GRANT OPTION;";
    }
    if (!Execute(sql, nullptr, &err)) {
      return fail("setting the root password: " + err);
    }
    password_set_ = true;
  }
  return true;
}

bool MariaDbServer::Answers() { return Execute("SELECT 1", nullptr, nullptr); }

void MariaDbServer::Stop() {
  if (!process_.Running()) return;
  process_.Terminate();
  if (!process_.Wait(std::chrono::seconds(60))) process_.Kill();
}

void MariaDbServer::Kill() { process_.Kill(); }

bool MariaDbServer::Execute(const std::string& sql, std::string* output, std::string* error) {
  static int counter = 0;
  const std::string out_path = dir_.File("client-" + std::to_string(++counter) + ".out");
  const std::string err_path = out_path + ".err";
  SubprocessOptions options;
  options.argv = {"mariadb", "--no-defaults", "-uroot", "--socket=" + socket_path(), "-N", "-B"};
  if (password_set_) options.argv.push_back("-p" + options_.root_password);
  options.argv.push_back("-e");
  options.argv.push_back(sql);
  options.stdout_path = out_path;
  options.stderr_path = err_path;
  Subprocess client(options);
  bool ok = false;
  if (client.ok()) {
    std::optional<ExitStatus> status = client.Wait(std::chrono::seconds(60));
    ok = status && status->success();
  }
  if (output) *output = Trim(ReadFileOrEmpty(out_path));
  if (error) *error = client.ok() ? ReadFileOrEmpty(err_path) : client.error();
  std::error_code ignored;
  std::filesystem::remove(out_path, ignored);
  std::filesystem::remove(err_path, ignored);
  return ok;
}

std::string MariaDbServer::ConnectionString(const std::string& database, const std::string& user,
                                            const std::string& password) const {
  const std::string& pw = (user == "root" && password.empty()) ? options_.root_password : password;
  return "server=" + options_.host + ";port=" + std::to_string(port_) + ";database=" + database +
         ";user=" + user + ";password=" + pw;
}

std::vector<std::string> MariaDbServer::BinlogFiles() const {
  std::vector<std::string> files;
  if (options_.server_id == 0) return files;
  // node<id>-bin.index lists the files in order, by names relative to the data directory.
  std::istringstream index(
      ReadFileOrEmpty(dir_.File("data/node" + std::to_string(options_.server_id) + "-bin.index")));
  for (std::string line; std::getline(index, line);) {
    if (line.rfind("./", 0) == 0) line = line.substr(2);
    if (!line.empty()) files.push_back(dir_.File("data/" + line));
  }
  return files;
}

bool MariaDbServer::ReplicateFrom(const MariaDbServer& primary, std::string* error) {
  const std::string sql =
      "STOP SLAVE; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=" +
      std::to_string(primary.port()) +
      ", MASTER_USER='root', MASTER_PASSWORD=" + SqlQuote(primary.root_password()) +
      ", MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE;";
  return Execute(sql, nullptr, error);
}

std::string MariaDbServer::ReplicationReport() {
  std::string status, error;
  Execute("SHOW SLAVE STATUS\\G", &status, &error);
  return "SHOW SLAVE STATUS:\n" + status + error + "\nerror log:\n" + log();
}

bool MariaDbServer::WaitForReplication(MariaDbServer& primary, std::chrono::milliseconds timeout) {
  std::string position;
  if (!primary.Execute("SELECT @@gtid_binlog_pos", &position)) return false;
  if (position.empty()) return true;  // nothing logged yet
  std::string result;
  const double seconds = std::chrono::duration<double>(timeout).count();
  if (!Execute(
          "SELECT MASTER_GTID_WAIT(" + SqlQuote(position) + ", " + std::to_string(seconds) + ")",
          &result)) {
    return false;
  }
  return result == "0";
}

}  // namespace instaface::testing
