// SPDX-License-Identifier: MIT
// The shared test helpers.
#include "tests/support/support.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>

namespace ringchat {

std::ostream& operator<<(std::ostream& os, backend_kind kind) { return os << to_string(kind); }

}  // namespace ringchat

namespace ringchat::test {
namespace {

/// Aborts the process if not disarmed within `limit`: a hung test must fail, not hang CI.
class watchdog {
public:
    explicit watchdog(std::chrono::seconds limit)
        : thread_([this, limit] {
              std::unique_lock lock(mutex_);
              if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
                  std::fprintf(stderr, "watchdog: test still running after %llds; aborting\n",
                               static_cast<long long>(limit.count()));
                  std::abort();
              }
          }) {}
    ~watchdog() {
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_;
};

}  // namespace

const std::vector<backend_kind>& backends() {
    static const std::vector<backend_kind> kinds = [] {
        std::vector<backend_kind> out{backend_kind::epoll};
        try {
            reactor_options o;
            o.kind = backend_kind::uring;
            reactor probe(o);
            out.insert(out.begin(), backend_kind::uring);
        } catch (const std::exception& e) {
            const char* require = std::getenv("RINGCHAT_REQUIRE_URING");
            if (require != nullptr && std::string_view(require) == "1") {
                FAIL("io_uring required (RINGCHAT_REQUIRE_URING=1) but unavailable: " << e.what());
            }
            WARN("io_uring unavailable here (" << e.what() << "); tests run on epoll only");
        }
        return out;
    }();
    return kinds;
}

std::size_t open_fds() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::directory_iterator("/proc/self/fd")) {
        ++n;
    }
    return n;
}

void run(const reactor_options& options, std::function<task<>(reactor&)> body,
         std::chrono::seconds limit) {
    const std::size_t fds_before = open_fds();
    {
        watchdog guard(limit);
        reactor r(options);
        REQUIRE(r.kind() == options.kind);
        r.block_on(body(r));
        // Whatever the body spawned must have finished too.
        r.run();
        CHECK(r.tasks() == 0);
        CHECK(r.io().free_buffers() == options.buffer_count);
    }
    CHECK(open_fds() == fds_before);
}

void run(backend_kind kind, std::function<task<>(reactor&)> body, std::chrono::seconds limit) {
    reactor_options o;
    o.kind = kind;
    run(o, std::move(body), limit);
}

void run_group(const group_options& options,
               std::function<task<>(reactor_group&, reactor&, unsigned)> start,
               std::chrono::seconds limit) {
    const std::size_t fds_before = open_fds();
    {
        watchdog guard(limit);
        reactor_group g(options);
        g.run([&](reactor& r, unsigned k) { return start(g, r, k); });
    }
    CHECK(open_fds() == fds_before);
}

group_options group_of(backend_kind kind, unsigned threads) {
    group_options o;
    o.threads = threads;
    o.reactor.kind = kind;
    return o;
}

std::pair<socket, socket> socket_pair(reactor& r) {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    return {socket(r, fds[0]), socket(r, fds[1])};
}

std::string text(std::span<const std::byte> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

task<std::string> recv_exactly(socket& s, std::size_t n) {
    std::string out;
    std::byte buf[16384];
    while (out.size() < n) {
        auto got = co_await s.recv(std::span(buf, std::min(sizeof buf, n - out.size())));
        if (!got || *got == 0) {
            break;
        }
        out.append(reinterpret_cast<const char*>(buf), *got);
    }
    co_return out;
}

task<std::string> recv_all(socket& s) {
    std::string out;
    std::byte buf[16384];
    for (;;) {
        auto got = co_await s.recv(buf);
        if (!got || *got == 0) {
            break;
        }
        out.append(reinterpret_cast<const char*>(buf), *got);
    }
    co_return out;
}

}  // namespace ringchat::test
