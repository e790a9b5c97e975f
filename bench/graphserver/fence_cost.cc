// fence_cost: what the term fence adds to a write, inside MariaDB. Starts a private MariaDB,
// creates the graph's schema, and times on one connection, one statement after another:
//
//   plain               INSERT INTO entities ... VALUES (...), (...): no fence (the baseline)
//   fenced insert       graphdb::RunFencedInsert with graph::EntityInsert(), as the leader runs
//                       it: one autocommitted INSERT whose first value passes the fence
//   fenced transaction  graphdb::RunFencedTransaction around the plain INSERT: START, the
//                       fence check, the INSERT, COMMIT (the path a new term's first write takes)
//
// for 1, 8 and 32 rows per statement, first with the server's durable defaults and then with
// innodb_flush_log_at_trx_commit=0, so that the log flush does not hide the statement's own
// cost. The three alternate in short rounds so that machine noise falls on all of them.
//
//   fence_cost [--statements N]   (per method, rows and durability; default 1200)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "instaface/graph/statements.h"
#include "instaface/graphdb/connection_string.h"
#include "instaface/graphdb/fence.h"
#include "instaface/graphdb/pool.h"
#include "instaface/graphdb/schema.h"
#include "support/mariadb_server.h"

namespace {

using namespace instaface;
using Clock = std::chrono::steady_clock;

std::string PlainInsertSql(size_t rows) {
  std::string sql = "INSERT INTO entities (type, created, attributes) VALUES ";
  for (size_t r = 0; r < rows; ++r)
    sql += r == 0 ? "(?, UTC_TIMESTAMP(6), ?)" : ", (?, UTC_TIMESTAMP(6), ?)";
  return sql;
}

common::Status PlainInsert(graphdb::Connection& conn, const std::string& sql,
                           const std::vector<graphdb::Value>& params) {
  auto stmt = conn.Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  auto r = (*stmt)->Execute(params);
  return r.ok() ? common::Status() : r.status();
}

struct Method {
  const char* name;
  std::function<common::Status()> write;
  double seconds = 0;
  uint64_t statements = 0;
  double micros() const { return statements ? seconds * 1e6 / static_cast<double>(statements) : 0; }
};

// Runs every method `per_method` times, in rounds of 50 each, alternating; false on an error.
bool Measure(std::vector<Method>& methods, int per_method) {
  for (int done = 0; done < per_method; done += 50) {
    for (Method& m : methods) {
      const auto start = Clock::now();
      for (int i = 0; i < 50; ++i) {
        if (common::Status s = m.write(); !s.ok()) {
          std::cerr << m.name << ": " << s.message() << "\n";
          return false;
        }
      }
      m.seconds += std::chrono::duration<double>(Clock::now() - start).count();
      m.statements += 50;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int per_method = 1200;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--statements" && i + 1 < argc) {
      per_method = std::max(50, std::atoi(argv[++i]));
    } else if (a == "-h" || a == "--help") {
      std::cout << "usage: fence_cost [--statements N]\n";
      return 0;
    } else {
      std::cerr << "usage: fence_cost [--statements N]\n";
      return 2;
    }
  }
  instaface::testing::MariaDbServer server;
  std::string error;
  if (!server.Start(&error)) {
    std::cerr << "mariadbd: " << error << "\n";
    return 1;
  }
  auto config = graphdb::ParseConnectionString(server.ConnectionString("fence_cost"));
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 1;
  }
  if (common::Status s = graphdb::EnsureSchema(*config); !s.ok()) {
    std::cerr << "schema: " << s.message() << "\n";
    return 1;
  }
  graphdb::PoolOptions pool_options;
  pool_options.max_connections = 1;
  graphdb::Pool pool(*config, pool_options);
  const uint64_t term = 1;
  if (common::Status s = graphdb::RunFencedTransaction(
          pool, term, [](graphdb::Connection&) { return common::Status(); });
      !s.ok()) {
    std::cerr << "raising the fence: " << s.message() << "\n";
    return 1;
  }

  printf("%-10s %5s %14s %26s %26s\n", "log flush", "rows", "plain", "fenced insert",
         "fenced transaction");
  for (const bool durable : {true, false}) {
    common::Status set = pool.Write([&](graphdb::Connection& conn) {
      return conn.ExecuteFixed(durable ? "SET GLOBAL innodb_flush_log_at_trx_commit = 1"
                                       : "SET GLOBAL innodb_flush_log_at_trx_commit = 0");
    });
    if (!set.ok()) {
      std::cerr << set.message() << "\n";
      return 1;
    }
    for (const size_t rows : {size_t{1}, size_t{8}, size_t{32}}) {
      std::vector<graphdb::Value> params;  // the plain insert's: type, attributes
      std::vector<graphdb::Value> fenced;  // graph::EntityInsert()'s: no key, and the term
      for (size_t r = 0; r < rows; ++r) {
        params.emplace_back(std::string("bench"));
        params.emplace_back("{\"n\":" + std::to_string(r) + "}");
        fenced.insert(fenced.end(), {params[params.size() - 2], params.back(), graphdb::Value{},
                                     graph::TermParam(term)});
      }
      const std::string plain_sql = PlainInsertSql(rows);
      std::vector<Method> methods = {
          {"plain",
           [&] {
             return pool.Write(
                 [&](graphdb::Connection& conn) { return PlainInsert(conn, plain_sql, params); });
           }},
          {"fenced insert",
           [&] {
             auto r = graphdb::RunFencedInsert(pool, term, graph::EntityInsert(), fenced);
             return r.ok() ? common::Status() : r.status();
           }},
          {"fenced transaction", [&] {
             return graphdb::RunFencedTransaction(pool, term, [&](graphdb::Connection& conn) {
               return PlainInsert(conn, plain_sql, params);
             });
           }}};
      if (!Measure(methods, per_method)) return 1;
      auto cell = [&](const Method& m) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%.0f us (%.2fx)", m.micros(), m.micros() / methods[0].micros());
        return std::string(buf);
      };
      printf("%-10s %5zu %11.0f us %26s %26s\n", durable ? "each" : "none", rows,
             methods[0].micros(), cell(methods[1]).c_str(), cell(methods[2]).c_str());
    }
  }
  return 0;
}
