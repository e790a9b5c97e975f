// MariaDbServer: a private mariadbd for tests, on 127.0.0.1 at a free port, with its data
// directory, socket and logs in its own temp dir, never touching /etc/mysql or a system service.
// The first Start() installs the data directory (mariadb-install-db runs once per process; later
// servers copy its result) and sets the root password; Stop() + Start() restart it on the same
// port and data (for reconnect tests); Kill() is a crash. With server_id set, it runs with a binary
// log and GTIDs so that a second instance can replicate from it (ReplicateFrom).
//
// SQL for setup (users, grants, replication) runs through the `mariadb` command-line client
// over the Unix socket, so this helper needs no client library.
//
// MariaDbEnvironment is a GoogleTest Environment that starts one server per test binary:
//   ::testing::AddGlobalTestEnvironment(new instaface::testing::MariaDbEnvironment);
//   ... MariaDbEnvironment::server()->port() ...
//
// Thread safety: none; the test's main thread owns a server.
#ifndef INSTAFACE_TESTS_SUPPORT_MARIADB_SERVER_H_
#define INSTAFACE_TESTS_SUPPORT_MARIADB_SERVER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace instaface::testing {

struct MariaDbServerOptions {
  std::string root_password = "instaface-test-root";
  // Non-zero: --server-id, --log-bin, ROW binlog, GTID strict mode (a replication primary or
  // replica).
  uint32_t server_id = 0;
  // The address clients use. Not loopback: the server also listens there, and root may log in
  // from anywhere (for a server inside a network namespace of a test's own, e.g. the chaos
  // suite's hub, whose only other address is its bridge).
  std::string host = "127.0.0.1";
  std::chrono::milliseconds ready_timeout{60000};
};

class MariaDbServer {
 public:
  explicit MariaDbServer(MariaDbServerOptions options = {});
  ~MariaDbServer();
  MariaDbServer(const MariaDbServer&) = delete;
  MariaDbServer& operator=(const MariaDbServer&) = delete;

  // Installs (first time), starts and waits until the server answers a query. The first start
  // picks a free port; later starts reuse it. False with *error set on failure (the error log
  // is included).
  bool Start(std::string* error = nullptr);
  // SIGTERM and wait for a clean shutdown (1-2 s).
  void Stop();
  // SIGKILL (a crash; InnoDB recovers on the next Start).
  void Kill();
  bool running();

  uint16_t port() const { return port_; }
  const std::string& root_password() const { return options_.root_password; }
  std::string socket_path() const { return dir_.File("mysqld.sock"); }
  std::string log() const;
  // SHOW SLAVE STATUS, as text, with this server's error log: what a failed replication wait
  // prints.
  std::string ReplicationReport();

  const std::string& host() const { return options_.host; }
  // The binary log's files, oldest first (servers with server_id set).
  std::vector<std::string> BinlogFiles() const;

  // Runs `sql` (one or more statements) as root over the socket. Output is tab-separated rows
  // without column names. False with *error (the client's stderr) on failure.
  bool Execute(const std::string& sql, std::string* output = nullptr, std::string* error = nullptr);

  // "server=HOST;port=P;database=D;user=U;password=W"; user defaults to root.
  std::string ConnectionString(const std::string& database, const std::string& user = "root",
                               const std::string& password = "") const;

  // Makes this server a GTID replica of `primary` (both need server_id set, distinct) and
  // starts replication.
  bool ReplicateFrom(const MariaDbServer& primary, std::string* error = nullptr);
  // Waits until this replica has applied everything `primary` has logged so far.
  bool WaitForReplication(MariaDbServer& primary, std::chrono::milliseconds timeout);

 private:
  bool Install(std::string* error);
  bool Answers();

  MariaDbServerOptions options_;
  TempDir dir_;
  uint16_t port_ = 0;
  bool installed_ = false;
  bool password_set_ = false;
  Subprocess process_;
};

// One MariaDB server per test binary, started before the first test and stopped after the
// last. A start failure fails every test with the server's log.
class MariaDbEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    server_ = std::make_unique<MariaDbServer>();
    std::string error;
    ASSERT_TRUE(server_->Start(&error)) << error;
    instance_ = server_.get();
  }
  void TearDown() override {
    instance_ = nullptr;
    server_.reset();
  }
  static MariaDbServer* server() { return instance_; }

 private:
  std::unique_ptr<MariaDbServer> server_;
  static inline MariaDbServer* instance_ = nullptr;
};

}  // namespace instaface::testing

#endif  // INSTAFACE_TESTS_SUPPORT_MARIADB_SERVER_H_
