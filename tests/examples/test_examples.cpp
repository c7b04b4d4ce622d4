// SPDX-License-Identifier: MIT
// tests/examples/test_examples.cpp — the example programs, run as real servers on both
// backends and driven by real clients: Python sockets, the echo client mode, redis-cli,
// redis-benchmark. Each test ends by stopping its server with SIGTERM: it must exit 0 (a
// sanitizer report in the server fails the test there).
#include <sched.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "examples/resp/shards.hpp"
#include "tests/examples/harness.hpp"
#include "tests/support/support.hpp"

using namespace ringchat;
using namespace ringchat::test;

namespace {

/// Runs a Python client script of tests/examples against `port`; it prints "ok" when satisfied.
void run_python(const std::string& script, const example_server& server,
                std::vector<std::string> args = {}) {
    std::vector<std::string> argv{"python3", example_script(script).string(), server.port_text()};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = run_command(argv, {}, std::chrono::seconds(120));
    INFO(script << " said:\n" << r.out << r.err);
    CHECK_FALSE(r.timed_out);
    CHECK(r.status == 0);
    CHECK(r.out == "ok\n");
}

void stop_cleanly(example_server& server) {
    const int code = server.stop();
    CHECK(code == 0);
}

/// redis-cli -p PORT --no-raw ARGS...: the reply as redis-cli shows it, types included.
std::string redis(const example_server& server, std::vector<std::string> args,
                  const std::string& input = {}) {
    std::vector<std::string> argv{"redis-cli", "-p", server.port_text()};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = run_command(argv, input, std::chrono::seconds(60));
    INFO("redis-cli " << args.front() << " stderr: " << r.err);
    CHECK_FALSE(r.timed_out);
    return r.out;
}

std::string redis_cli(const example_server& server, std::vector<std::string> args) {
    args.insert(args.begin(), "--no-raw");
    return redis(server, args);
}

void require_client(const std::string& program) {
    if (!have_program(program)) {
        FAIL(program << " is not installed (tests/run installs it: tools/ensure-deps)");
    }
}

}  // namespace

TEST_CASE("echo: lines come back, over several connections at once", "[examples][echo]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    example_server server("echo", kind);
    CHECK(server.ready_line() ==
          "echo: ready on 127.0.0.1:" + server.port_text() + " (" + backend_shown(kind) + ")");
    run_python("echo_client.py", server);
    stop_cleanly(server);
}

TEST_CASE("echo: the client mode sends stdin's lines and prints the replies", "[examples][echo]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    example_server server("echo", kind);
    const auto r = run_command({example_program("echo").string(), "--client", "--port",
                                server.port_text(), "--backend", backend_flag(kind)},
                               "hello\nworld\n\nlast line without a newline",
                               std::chrono::seconds(30));
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out == "hello\nworld\n\nlast line without a newline\n");
    stop_cleanly(server);
}

TEST_CASE("echo: with --threads 2 it serves several connections and stops on SIGTERM",
          "[examples][echo][threads]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    example_server server("echo", kind, {"--threads", "2"});
    CHECK(server.ready_line() ==
          "echo: ready on 127.0.0.1:" + server.port_text() + " (" + backend_shown(kind) + ")");
    run_python("echo_client.py", server);
    stop_cleanly(server);  // every reactor stops; exit 0
}

namespace {

/// The CPUs each thread of process `pid` may run on ("Cpus_allowed_list" of its status).
std::vector<std::string> cpus_of_threads(pid_t pid) {
    std::vector<std::string> lists;
    const auto tasks = std::filesystem::path("/proc") / std::to_string(pid) / "task";
    for (const auto& t : std::filesystem::directory_iterator(tasks)) {
        std::ifstream status(t.path() / "status");
        for (std::string line; std::getline(status, line);) {
            constexpr std::string_view key = "Cpus_allowed_list:";
            if (line.starts_with(key)) {
                const auto at = line.find_first_not_of(" \t", key.size());
                lists.push_back(at == std::string::npos ? "" : line.substr(at));
            }
        }
    }
    return lists;
}

}  // namespace

TEST_CASE("echo: --threads 2 --pin pins each reactor's thread to a CPU of its own",
          "[examples][echo][threads]") {
    cpu_set_t usable;
    REQUIRE(::sched_getaffinity(0, sizeof usable, &usable) == 0);
    if (CPU_COUNT(&usable) < 2) {
        WARN("fewer than 2 usable CPUs: nothing to pin apart");
        return;
    }
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    example_server server("echo", kind, {"--threads", "2", "--pin"});
    run_python("echo_client.py", server);  // serving, so every reactor has pinned itself
    const auto lists = cpus_of_threads(server.pid());
    std::string shown;
    for (const auto& l : lists) {
        shown += "[" + l + "] ";
    }
    INFO("each thread's CPUs: " << shown);
    // The reactors' threads each on one CPU (a list of one number), two different ones.
    std::set<std::string> single;
    for (const auto& l : lists) {
        if (!l.empty() && l.find_first_of(",-") == std::string::npos) {
            single.insert(l);
        }
    }
    CHECK(single.size() == 2);
    stop_cleanly(server);
    const auto alone = run_command({example_program("echo").string(), "--pin"});
    CHECK(alone.status == 2);
    CHECK_THAT(alone.err, Catch::StartsWith("echo: --pin: needs --threads N (N other than 1)\n"));
}

TEST_CASE("examples: --help lists every option, and a bad option is refused", "[examples]") {
    // Every program that serves TLS (--tls-cert) has these too.
    const std::vector<std::string> tls{"--tls-cert FILE", "--tls-key FILE",
                                       "--tls-handshake-timeout S"};
    auto with_tls = [&tls](std::vector<std::string> own, std::vector<std::string> after = {}) {
        own.insert(own.end(), tls.begin(), tls.end());
        own.insert(own.end(), after.begin(), after.end());
        return own;
    };
    const std::vector<std::pair<std::string, std::vector<std::string>>> programs{
        {"echo", with_tls({"--client", "--tls", "--ca FILE"}, {"--threads N", "--pin"})},
        {"chatroom", with_tls({"--max-queue BYTES", "--pace-limit MS", "--write-timeout SECONDS"},
                              {"--threads N", "--pin"})},
        {"resp", with_tls({"--client-query-buffer-limit BYTES"}, {"--threads N", "--pin"})},
        {"smtp", with_tls({"--maildir DIR", "--max-size BYTES", "--hostname NAME",
                           "--command-timeout S", "--data-timeout S"})},
        {"http", with_tls({"--root DIR", "--max-body N", "--max-header N", "--header-timeout S",
                           "--body-timeout S", "--file-cache N", "--file-cache-validity S",
                           "--no-zero-copy"}, {"--threads N", "--pin"})},
    };
    for (const auto& [name, own] : programs) {
        CAPTURE(name);
        const auto help = run_command({example_program(name).string(), "--help"});
        CHECK(help.status == 0);
        CHECK(help.err.empty());
        std::vector<std::string> want{"--host ADDR", "--port N", "--backend KIND", "--grace S"};
        want.insert(want.end(), own.begin(), own.end());
        want.emplace_back("--help");
        want.emplace_back("--version");
        // One line per option, "  --name [METAVAR]  what it does", and no other option.
        std::size_t lines = 0;
        for (auto at = help.out.find("\n  --"); at != std::string::npos;
             at = help.out.find("\n  --", at + 1)) {
            ++lines;
        }
        CHECK(lines == want.size());
        for (const auto& w : want) {
            CAPTURE(w);
            CHECK(help.out.find("\n  " + w + " ") != std::string::npos);
        }
        const auto bad = run_command({example_program(name).string(), "--backend", "kqueue"});
        CHECK(bad.status == 2);
        CHECK(bad.err.find("--backend: not uring, epoll or auto: 'kqueue'") != std::string::npos);
        const auto unknown = run_command({example_program(name).string(), "--no-such-option"});
        CHECK(unknown.status == 2);
        CHECK(unknown.err.find("unknown option '--no-such-option'") != std::string::npos);
    }
}

TEST_CASE("chatroom: nicks, broadcast to the others, /who, /quit, unknown commands",
          "[examples][chatroom]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    example_server server("chatroom", kind);
    run_python("chatroom_client.py", server, {"basic"});
    stop_cleanly(server);
}

TEST_CASE("chatroom: a client that never reads is dropped, and the room goes on",
          "[examples][chatroom]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    // The room waits 100 ms for the slow one (the pace limit), then drops it at max-queue.
    example_server server("chatroom", kind, {"--max-queue", "65536", "--pace-limit", "100"});
    run_python("chatroom_client.py", server, {"slow"});
    stop_cleanly(server);
}

TEST_CASE("chatroom: with --threads, one room over every reactor",
          "[examples][chatroom][threads]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    {
        // Connections go to the reactors in turn: the three members are on both.
        example_server server("chatroom", kind, {"--threads", "2"});
        run_python("chatroom_client.py", server, {"basic"});
        stop_cleanly(server);
    }
    {
        example_server server("chatroom", kind, {"--threads", "2", "--max-queue", "65536"});
        run_python("chatroom_client.py", server, {"slow"});
        stop_cleanly(server);
    }
    {
        // Eight members, two on each of four reactors: one order for all.
        example_server server("chatroom", kind, {"--threads", "4"});
        run_python("chatroom_client.py", server, {"order", "8"});
        stop_cleanly(server);
    }
}

TEST_CASE("resp: every command through redis-cli", "[examples][resp]") {
    require_client("redis-cli");
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    example_server server("resp", kind);
    struct step {
        std::vector<std::string> args;
        std::string want;
    };
    const std::vector<step> steps{
        {{"PING"}, "PONG\n"},
        {{"ping", "hello there"}, "\"hello there\"\n"},
        {{"ECHO", "a b"}, "\"a b\"\n"},
        {{"GET", "nokey"}, "(nil)\n"},
        {{"SET", "k", "v1"}, "OK\n"},
        {{"GET", "k"}, "\"v1\"\n"},
        {{"SET", "k", "v2", "NX"}, "(nil)\n"},
        {{"SET", "k", "v3", "XX"}, "OK\n"},
        {{"SET", "other", "x", "XX"}, "(nil)\n"},
        {{"SET", "other", "x", "NX"}, "OK\n"},
        {{"GET", "k"}, "\"v3\"\n"},
        {{"SET", "k", "v", "NX", "XX"}, "(error) ERR syntax error\n"},
        {{"SET", "k", "v", "EX", "ten"}, "(error) ERR value is not an integer or out of range\n"},
        {{"SET", "k", "v", "EX", "0"}, "(error) ERR invalid expire time in 'set' command\n"},
        {{"SET", "k", "v", "BOGUS"}, "(error) ERR syntax error\n"},
        {{"SET", "ex", "v", "EX", "100"}, "OK\n"},
        {{"TTL", "ex"}, "(integer) 100\n"},
        {{"SET", "px", "v", "PX", "50000"}, "OK\n"},
        {{"TTL", "px"}, "(integer) 50\n"},
        {{"TTL", "k"}, "(integer) -1\n"},
        {{"TTL", "nokey"}, "(integer) -2\n"},
        {{"EXPIRE", "k", "30"}, "(integer) 1\n"},
        {{"TTL", "k"}, "(integer) 30\n"},
        {{"EXPIRE", "nokey", "30"}, "(integer) 0\n"},
        {{"EXPIRE", "k", "x"}, "(error) ERR value is not an integer or out of range\n"},
        {{"SET", "gone", "v", "PX", "1"}, "OK\n"},
        {{"EXISTS", "k", "gone", "nokey", "k"}, "(integer) 2\n"},
        {{"DEL", "k", "nokey", "other"}, "(integer) 2\n"},
        {{"EXISTS", "k"}, "(integer) 0\n"},
        {{"INCR", "n"}, "(integer) 1\n"},
        {{"INCRBY", "n", "41"}, "(integer) 42\n"},
        {{"DECR", "n"}, "(integer) 41\n"},
        {{"INCRBY", "n", "-50"}, "(integer) -9\n"},
        {{"INCRBY", "n", "1.5"}, "(error) ERR value is not an integer or out of range\n"},
        {{"SET", "s", "abc"}, "OK\n"},
        {{"INCR", "s"}, "(error) ERR value is not an integer or out of range\n"},
        {{"SET", "big", "9223372036854775807"}, "OK\n"},
        {{"INCR", "big"}, "(error) ERR increment or decrement would overflow\n"},
        {{"APPEND", "s", "def"}, "(integer) 6\n"},
        {{"APPEND", "new", "xy"}, "(integer) 2\n"},
        {{"GET", "s"}, "\"abcdef\"\n"},
        {{"STRLEN", "s"}, "(integer) 6\n"},
        {{"STRLEN", "nokey"}, "(integer) 0\n"},
        {{"MSET", "m1", "a", "m2", "b"}, "OK\n"},
        {{"MSET", "m1", "a", "m2"}, "(error) ERR wrong number of arguments for 'mset' command\n"},
        {{"MGET", "m1", "nokey", "m2"}, "1) \"a\"\n2) (nil)\n3) \"b\"\n"},
        {{"LPUSH", "l", "a", "b"}, "(integer) 2\n"},
        {{"RPUSH", "l", "c", "d"}, "(integer) 4\n"},
        {{"LLEN", "l"}, "(integer) 4\n"},
        {{"LRANGE", "l", "0", "-1"}, "1) \"b\"\n2) \"a\"\n3) \"c\"\n4) \"d\"\n"},
        {{"LRANGE", "l", "1", "2"}, "1) \"a\"\n2) \"c\"\n"},
        {{"LRANGE", "l", "-2", "100"}, "1) \"c\"\n2) \"d\"\n"},
        {{"LRANGE", "l", "5", "10"}, "(empty array)\n"},
        {{"LPOP", "l"}, "\"b\"\n"},
        {{"RPOP", "l"}, "\"d\"\n"},
        {{"LPOP", "l", "5"}, "1) \"a\"\n2) \"c\"\n"},
        {{"LPOP", "l"}, "(nil)\n"},
        {{"LLEN", "l"}, "(integer) 0\n"},
        {{"RPOP", "nokey"}, "(nil)\n"},
        {{"MGET", "m1", "l"}, "1) \"a\"\n2) (nil)\n"},
        {{"RPUSH", "list", "x"}, "(integer) 1\n"},
        {{"GET", "list"},
         "(error) WRONGTYPE Operation against a key holding the wrong kind of value\n"},
        {{"INCR", "list"},
         "(error) WRONGTYPE Operation against a key holding the wrong kind of value\n"},
        {{"LPUSH", "s", "x"},
         "(error) WRONGTYPE Operation against a key holding the wrong kind of value\n"},
        {{"LRANGE", "s", "0", "1"},
         "(error) WRONGTYPE Operation against a key holding the wrong kind of value\n"},
        {{"GET"}, "(error) ERR wrong number of arguments for 'get' command\n"},
        {{"set", "onlykey"}, "(error) ERR wrong number of arguments for 'set' command\n"},
        {{"LRANGE", "l", "0"}, "(error) ERR wrong number of arguments for 'lrange' command\n"},
        {{"FOO", "bar", "baz"},
         "(error) ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' \n"},
        {{"foo"}, "(error) ERR unknown command 'foo', with args beginning with: \n"},
        {{"FLUSHALL"}, "OK\n"},
        {{"DBSIZE"}, "(integer) 0\n"},
        {{"MSET", "user:1", "a", "user:2", "b", "user:10", "c", "admin", "d"}, "OK\n"},
        {{"DBSIZE"}, "(integer) 4\n"},
        {{"KEYS", "user:?"}, ""},  // order is the store's: checked as a set below
        {{"KEYS", "nomatch*"}, "(empty array)\n"},
        {{"KEYS", "[a-b]dmi[^x]"}, "1) \"admin\"\n"},
        {{"COMMAND"}, "(empty array)\n"},
        {{"COMMAND", "DOCS"}, "(empty array)\n"},
        {{"CONFIG", "GET", "save"}, "1) \"save\"\n2) \"\"\n"},
        {{"CONFIG", "GET", "appendonly"}, "1) \"appendonly\"\n2) \"no\"\n"},
        {{"CONFIG", "GET", "nosuchthing"}, "(empty array)\n"},
        {{"QUIT"}, "OK\n"},
    };
    for (const auto& s : steps) {
        CAPTURE(s.args);
        const auto got = redis_cli(server, s.args);
        if (s.args[0] == "KEYS" && s.args[1] == "user:?") {
            CHECK((got == "1) \"user:1\"\n2) \"user:2\"\n" || got == "1) \"user:2\"\n2) \"user:1\"\n"));
            continue;
        }
        CHECK(got == s.want);
    }
    // The 1 ms key expired (lazily, or by the sweep).
    CHECK(redis_cli(server, {"GET", "gone"}) == "(nil)\n");
    stop_cleanly(server);
}

TEST_CASE("resp: binary values (CRLF and NUL inside) and a 1 MiB value, byte for byte",
          "[examples][resp]") {
    require_client("redis-cli");
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    example_server server("resp", kind);

    static constexpr char raw[] = "line one\r\nline two\r\n\0after a NUL\r\n\r\n*1\r\n$3\r\nend";
    const std::string binary(raw, sizeof raw - 1);
    REQUIRE(binary.size() == 47);
    CHECK(redis(server, {"-x", "SET", "bin"}, binary) == "OK\n");
    CHECK(redis(server, {"--raw", "GET", "bin"}) == binary + "\n");
    CHECK(redis_cli(server, {"STRLEN", "bin"}) == "(integer) 47\n");
    CHECK(redis_cli(server, {"GET", "bin"}) ==
          "\"line one\\r\\nline two\\r\\n\\x00after a NUL\\r\\n\\r\\n*1\\r\\n$3\\r\\nend\"\n");

    std::string big(1 << 20, '\0');
    std::mt19937 rng(5);
    for (auto& c : big) {
        c = static_cast<char>(rng());
    }
    big.replace(1000, 4, "\r\n\r\n");
    CHECK(redis(server, {"-x", "SET", "big"}, big) == "OK\n");
    CHECK(redis_cli(server, {"STRLEN", "big"}) == "(integer) 1048576\n");
    const auto back = redis(server, {"--raw", "GET", "big"});
    CHECK(back.size() == big.size() + 1);
    CHECK((back == big + "\n"));
    CHECK(redis(server, {"--no-raw", "-x", "APPEND", "big"}, binary) == "(integer) 1048623\n");
    stop_cleanly(server);
}

TEST_CASE("resp: pipelining, inline requests and big bulks over a raw socket",
          "[examples][resp]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    example_server server("resp", kind);
    run_python("resp_client.py", server, {"pipeline"});
    stop_cleanly(server);
}

TEST_CASE("resp: redis-cli --pipe sends 20,000 commands in one stream", "[examples][resp]") {
    require_client("redis-cli");
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    example_server server("resp", kind);
    const std::string value("v\r\n\0x", 5);
    std::string stream;
    for (int i = 0; i < 20000; ++i) {
        const std::string key = "k" + std::to_string(i);
        stream += "*3\r\n$3\r\nSET\r\n$" + std::to_string(key.size()) + "\r\n" + key +
                  "\r\n$5\r\n" + value + "\r\n";
    }
    const auto r = run_command({"redis-cli", "-p", server.port_text(), "--pipe"}, stream);
    INFO(r.out << r.err);
    CHECK(r.status == 0);
    CHECK(r.out.find("errors: 0, replies: 20000") != std::string::npos);
    CHECK(redis_cli(server, {"DBSIZE"}) == "(integer) 20000\n");
    CHECK(redis_cli(server, {"GET", "k19999"}) == "\"v\\r\\n\\x00x\"\n");
    stop_cleanly(server);
}

TEST_CASE("resp: a malformed request gets a protocol error and the connection closes",
          "[examples][resp]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    example_server server("resp", kind);
    run_python("resp_client.py", server, {"malformed"});
    stop_cleanly(server);
}

TEST_CASE("resp: a client past --client-query-buffer-limit is closed, the others served",
          "[examples][resp]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    // Redis' units: "1mb" is 1,048,576 bytes, "1100k" 1,100,000.
    const auto [given, bytes] = GENERATE(table<std::string, std::string>({
        {"1mb", "1048576"},
        {"1100k", "1100000"},
    }));
    CAPTURE(given);
    const auto log = std::filesystem::temp_directory_path() /
                     ("ringchat-resp-" + std::to_string(::getpid()) + ".log");
    example_server server("resp", kind,
                          server_options{{"--client-query-buffer-limit", given}, log, 0});
    run_python("resp_client.py", server, {"querylimit", bytes});
    stop_cleanly(server);
    std::ifstream in(log);
    const std::string said(std::istreambuf_iterator<char>(in), {});
    std::filesystem::remove(log);
    INFO(said);
    // One line per client closed, in Redis' words.
    std::size_t lines = 0;
    const std::string_view line = "resp: Closing client that reached max query buffer length: ";
    for (auto at = said.find(line); at != std::string::npos; at = said.find(line, at + 1)) {
        ++lines;
    }
    CHECK(lines == 3);
    CHECK(said.find(" limit=" + bytes + " ") != std::string::npos);
    CHECK(said.find("(first argument: \"MSET\")") != std::string::npos);
}

TEST_CASE("resp: --client-query-buffer-limit takes Redis' units and refuses bad values",
          "[examples][resp]") {
    const auto help = run_command({example_program("resp").string(), "--help"});
    CHECK(help.status == 0);
    CHECK(help.out.find("--client-query-buffer-limit BYTES") != std::string::npos);
    for (const char* bad : {"lots", "", "1tb", "-1mb", "1kb", "1048575"}) {
        CAPTURE(bad);
        const auto r = run_command(
            {example_program("resp").string(), "--port", "0", "--client-query-buffer-limit", bad},
            {}, std::chrono::seconds(10));
        CHECK(r.status == 2);
        CHECK(r.err.find("--client-query-buffer-limit") != std::string::npos);
    }
}

TEST_CASE("resp: redis-benchmark runs every test with no errors", "[examples][resp]") {
    require_client("redis-benchmark");
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    example_server server("resp", kind);
    const std::string requests = sanitized() ? "20000" : "100000";
    const auto r = run_command({"redis-benchmark", "-p", server.port_text(), "-t",
                                "ping,set,get,incr,lpush,lpop,mset", "-n", requests, "-P", "16",
                                "-q"},
                               {}, std::chrono::seconds(180));
    INFO(r.out << r.err);
    CHECK_FALSE(r.timed_out);
    CHECK(r.status == 0);
    for (const char* test : {"PING_INLINE: ", "PING_MBULK: ", "SET: ", "GET: ", "INCR: ",
                             "LPUSH: ", "LPOP: ", "MSET (10 keys): "}) {
        CAPTURE(test);
        // -q prints progress lines ending in "\r", then the result: "NAME: N requests per second".
        const auto at = r.out.rfind(test);
        REQUIRE(at != std::string::npos);
        const auto line = r.out.substr(at, r.out.find('\n', at) - at);
        CHECK(line.find("requests per second") != std::string::npos);
    }
    CHECK(r.out.find("ERR") == std::string::npos);
    CHECK(r.out.find("rror") == std::string::npos);
    CHECK(r.err.find("rror") == std::string::npos);
    stop_cleanly(server);
}

// ---- resp --threads N: the keyspace split over N reactors (examples/resp/shards.hpp)

TEST_CASE("resp: --threads 2 and 4 answer a pipelined mix as --threads 1 does, byte for byte",
          "[examples][resp][threads]") {
    const auto kind = GENERATE(from_range(backends()));
    const unsigned threads = GENERATE(2U, 4U);
    CAPTURE(kind, threads);
    // The script's keys (k:0 ... k:39) have every reactor as an owner: its commands cross
    // shards (std::hash is the server's too: the same library, the same build).
    std::vector<bool> owns(threads);
    for (int i = 0; i < 40; ++i) {
        owns[resp::shard_of("k:" + std::to_string(i), threads)] = true;
    }
    REQUIRE(std::count(owns.begin(), owns.end(), true) == static_cast<long>(threads));
    const auto log = temp_log("resp-compare");
    example_server one("resp", kind);
    example_server many("resp", kind,
                        server_options{{"--threads", std::to_string(threads)}, log, 0});
    // One connection per reactor (handed out in turn), one after the other, then the same on
    // the one-reactor server: the two transcripts must be the same bytes.
    run_python("resp_client.py", many,
               {"compare", one.port_text(), std::to_string(threads)});
    // And 2N connections open at once: each reactor gets two.
    run_python("resp_client.py", many, {"connect", std::to_string(2 * threads)});
    stop_cleanly(many);
    stop_cleanly(one);
    const std::string said = read_log(log);
    INFO(said);
    const auto served = served_by_each(said, "resp");
    REQUIRE(served.size() == threads);
    for (unsigned k = 0; k < threads; ++k) {
        CAPTURE(k);
        CHECK(served[k] >= 3);  // every reactor served: one compare connection, two of these
    }
}

TEST_CASE("resp: --threads: MSET and MGET, KEYS, DBSIZE, DEL, FLUSHALL across shards",
          "[examples][resp][threads]") {
    const auto kind = GENERATE(from_range(backends()));
    const std::string threads = GENERATE("2", "4");
    CAPTURE(kind, threads);
    example_server server("resp", kind, {"--threads", threads});
    run_python("resp_client.py", server, {"keyspace"});
    stop_cleanly(server);
}

TEST_CASE("resp: --threads: 8 clients x 2,000 INCR at once give exact totals",
          "[examples][resp][threads]") {
    const auto kind = GENERATE(from_range(backends()));
    const std::string threads = GENERATE("2", "4");
    CAPTURE(kind, threads);
    example_server server("resp", kind, {"--threads", threads});
    run_python("resp_client.py", server, {"incr", "8", "2000", "1", "one"});  // 16,000
    run_python("resp_client.py", server, {"incr", "8", "2000", "4", "four"});  // 4,000 each
    stop_cleanly(server);
}

TEST_CASE("resp: --threads: redis-cli, pipelining, protocol errors, the query limit, QUIT",
          "[examples][resp][threads]") {
    require_client("redis-cli");
    const auto kind = GENERATE(from_range(backends()));
    const std::string threads = GENERATE("2", "4");
    CAPTURE(kind, threads);
    example_server server("resp", kind, {"--threads", threads});
    CHECK(server.ready_line() ==
          "resp: ready on 127.0.0.1:" + server.port_text() + " (" + backend_shown(kind) + ")");
    CHECK(redis_cli(server, {"MSET", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5"}) == "OK\n");
    CHECK(redis_cli(server, {"MGET", "e", "d", "nokey", "c", "b", "a"}) ==
          "1) \"5\"\n2) \"4\"\n3) (nil)\n4) \"3\"\n5) \"2\"\n6) \"1\"\n");
    CHECK(redis_cli(server, {"INCR", "a"}) == "(integer) 2\n");
    CHECK(redis_cli(server, {"EXISTS", "a", "b", "nokey", "e"}) == "(integer) 3\n");
    CHECK(redis_cli(server, {"DBSIZE"}) == "(integer) 5\n");
    {
        std::istringstream lines(redis(server, {"--raw", "KEYS", "*"}));
        std::vector<std::string> keys;
        for (std::string k; std::getline(lines, k);) {
            keys.push_back(k);
        }
        std::sort(keys.begin(), keys.end());
        CHECK(keys == std::vector<std::string>{"a", "b", "c", "d", "e"});
    }
    CHECK(redis_cli(server, {"DEL", "a", "b", "nokey"}) == "(integer) 2\n");
    CHECK(redis_cli(server, {"FLUSHALL"}) == "OK\n");
    CHECK(redis_cli(server, {"DBSIZE"}) == "(integer) 0\n");
    CHECK(redis_cli(server, {"PING"}) == "PONG\n");
    // The one-reactor tests' scripts, unchanged: pipelining (its DBSIZE counts every shard),
    // QUIT, protocol errors and the close; then the query-buffer limit.
    run_python("resp_client.py", server, {"pipeline"});
    run_python("resp_client.py", server, {"malformed"});
    stop_cleanly(server);
    const auto log = temp_log("resp-threads");
    example_server limited("resp", kind,
                           server_options{{"--threads", threads, "--client-query-buffer-limit",
                                           "1mb"}, log, 0});
    run_python("resp_client.py", limited, {"querylimit", "1048576"});
    stop_cleanly(limited);
    const std::string said = read_log(log);
    INFO(said);
    std::size_t lines = 0;
    const std::string_view line = "resp: Closing client that reached max query buffer length: ";
    for (auto at = said.find(line); at != std::string::npos; at = said.find(line, at + 1)) {
        ++lines;
    }
    CHECK(lines == 3);
}
