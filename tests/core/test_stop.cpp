// SPDX-License-Identifier: MIT
// Stopping a reactor: stop() with connections open unwinds every task and closes every
// descriptor; operations started after it fail at once; request_stop() works from another
// thread and from a signal handler; a task that throws is logged and the loop goes on.
//
// Ordering comes from the reactor itself (spawned tasks run in spawn order, the turn after),
// never from sleeps; nothing here asserts how long anything took.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "core/listener.hpp"
#include "core/receiver.hpp"
#include "tests/support/peers.hpp"
#include "tests/support/support.hpp"

using namespace ringchat;
using namespace std::chrono_literals;

namespace {

const std::error_code canceled(ECANCELED, std::system_category());

/// Resumes the awaiting coroutine on the reactor's next turn (after one poll).
struct next_turn {
    reactor& r;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept { r.io().deferred().push_back(h); }
    void await_resume() const noexcept {}
};

// --- stop() with connections open ------------------------------------------------------

constexpr int client_count = 20;

/// What the tasks of the stop test saw; lives in the TEST_CASE, outside the reactor.
struct stop_log {
    int accepted = 0;
    int clients_waiting = 0;
    int waiting_at_stop = 0;
    std::size_t in_flight_at_stop = 0;
    bool server_ended = false;
    std::error_code server_error;
    std::vector<std::error_code> connection_ends;  // one per echo task: how its loop ended
    std::vector<std::error_code> client_ends;      // one per idle client: how its recv ended
    int unexpected_data = 0;
};

task<> echo_connection(ringchat::socket s, stop_log& log) {
    receiver in(s);
    std::error_code ended;
    for (;;) {
        auto chunk = co_await in.next();
        if (!chunk) {
            ended = chunk.error();
            break;
        }
        if (chunk->empty()) {
            break;  // end of stream: not expected here, recorded as no error
        }
        auto sent = co_await s.send_all(chunk->data());
        if (!sent) {
            ended = sent.error();
            break;
        }
    }
    log.connection_ends.push_back(ended);
}

task<> accept_loop(reactor& r, listener l, stop_log& log) {
    for (;;) {
        auto s = co_await l.accept();
        if (!s) {
            log.server_error = s.error();
            break;
        }
        ++log.accepted;
        r.spawn(echo_connection(std::move(*s), log));
    }
    log.server_ended = true;
}

/// A client that had its echo and now waits for more that never comes.
task<> idle_client(ringchat::socket s, stop_log& log) {
    std::byte buf[64];
    ++log.clients_waiting;
    auto got = co_await s.recv(buf);
    if (got) {
        ++log.unexpected_data;
        log.client_ends.emplace_back();
    } else {
        log.client_ends.push_back(got.error());
    }
}

task<> stop_now(reactor& r, stop_log& log) {
    log.waiting_at_stop = log.clients_waiting;
    log.in_flight_at_stop = r.io().in_flight();
    r.stop(std::chrono::nanoseconds::zero());
    co_return;
}

task<> serve_then_stop(reactor& r, stop_log& log) {
    auto l = listener::bind(r, address::ipv4("127.0.0.1", 0));
    REQUIRE(l);
    const address at = l->local_address();
    r.spawn(accept_loop(r, std::move(*l), log));

    std::vector<ringchat::socket> clients;
    for (int i = 0; i < client_count; ++i) {
        auto c = co_await ringchat::socket::connect(r, at);
        REQUIRE(c);
        const std::string message = "client " + std::to_string(i) + "\n";
        auto sent = co_await c->send_all(test::bytes(message));
        REQUIRE(sent);
        const std::string back = co_await test::recv_exactly(*c, message.size());
        REQUIRE(back == message);
        clients.push_back(std::move(*c));
    }
    CHECK(log.accepted == client_count);
    // TRICKY: spawned tasks run in spawn order on the next turn, so every client is parked
    // in recv by the time the stopper runs.
    for (auto& c : clients) {
        r.spawn(idle_client(std::move(c), log));
    }
    r.spawn(stop_now(r, log));
}

// --- request_stop() from another thread, and from a signal ------------------------------

/// A task blocked in a long sleep until something stops the reactor; the thread that stops
/// it is joined here, so it is done with the reactor before the reactor goes.
struct sleeper_log {
    std::atomic<bool> sleeping{false};
    std::thread stopper;
    bool ended = false;
    std::error_code error;
};

task<> long_sleep(reactor& r, sleeper_log& log) {
    log.sleeping.store(true);
    log.sleeping.notify_one();
    auto slept = co_await r.sleep_for(1h);
    log.ended = true;
    log.error = slept ? std::error_code() : slept.error();
    log.stopper.join();
}

task<> start_sleeper(reactor& r, sleeper_log& log, void (*stop)(reactor&)) {
    r.spawn(long_sleep(r, log));
    log.stopper = std::thread([&r, &log, stop] {
        log.sleeping.wait(false);
        stop(r);
    });
    co_return;
}

// --- a task that throws ------------------------------------------------------------------

task<> throw_at_once(bool& started) {
    started = true;
    throw std::runtime_error("boom at once");
    co_return;
}

task<> throw_after_recv(ringchat::socket s, bool& resumed) {
    std::byte buf[8];
    auto got = co_await s.recv(buf);
    resumed = got.has_value();
    throw std::runtime_error("boom after recv");
}

task<> survivor(ringchat::socket s, std::string& heard) {
    heard = co_await test::recv_exactly(s, 5);
    auto sent = co_await s.send_all(test::bytes("done"));
    REQUIRE(sent);
}

struct throw_log {
    bool started = false;
    bool resumed = false;
    std::string heard;
    std::string reply;
};

task<> throwers_and_survivor(reactor& r, throw_log& log) {
    auto doomed = test::socket_pair(r);
    auto lucky = test::socket_pair(r);
    const std::size_t tasks_before = r.tasks();
    r.spawn(survivor(std::move(lucky.first), log.heard));
    r.spawn(throw_at_once(log.started));
    r.spawn(throw_after_recv(std::move(doomed.first), log.resumed));
    REQUIRE(r.tasks() == tasks_before + 3);
    auto poke = co_await doomed.second.send_all(test::bytes("x"));
    REQUIRE(poke);
    // Both throwers end (their frames are gone) while the survivor still waits.
    while (r.tasks() > tasks_before + 1) {
        co_await next_turn{r};
    }
    CHECK(log.started);
    CHECK(log.resumed);
    auto sent = co_await lucky.second.send_all(test::bytes("hello"));
    REQUIRE(sent);
    log.reply = co_await test::recv_exactly(lucky.second, 4);
}

/// Sends what is written to stderr (fd 2) to a temporary file for a scope.
class captured_stderr {
public:
    captured_stderr() : file_(std::tmpfile()) {
        REQUIRE(file_ != nullptr);
        std::fflush(stderr);
        saved_ = dup(2);
        REQUIRE(saved_ >= 0);
        REQUIRE(dup2(fileno(file_), 2) == 2);
    }
    ~captured_stderr() {
        restore();
        std::fclose(file_);
    }
    captured_stderr(const captured_stderr&) = delete;
    captured_stderr& operator=(const captured_stderr&) = delete;

    /// Puts stderr back and returns what was written meanwhile.
    std::string text() {
        restore();
        std::string out;
        std::rewind(file_);
        char buf[512];
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, file_)) > 0;) {
            out.append(buf, n);
        }
        return out;
    }

private:
    void restore() {
        if (saved_ >= 0) {
            std::fflush(stderr);
            dup2(saved_, 2);
            close(saved_);
            saved_ = -1;
        }
    }
    std::FILE* file_;
    int saved_ = -1;
};

}  // namespace

TEST_CASE("stop() with connections open ends every task and leaks no descriptor", "[stop]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    stop_log log;
    test::run(kind, [&log](reactor& r) { return serve_then_stop(r, log); },
              std::chrono::seconds(30));
    // test::run has checked that run() returned with no task left and no descriptor open.
    CHECK(log.accepted == client_count);
    CHECK(log.waiting_at_stop == client_count);
    // The accept, one multishot recv per connection, one recv per client at least.
    CHECK(log.in_flight_at_stop >= 1 + 2 * static_cast<std::size_t>(client_count));
    CHECK(log.server_ended);
    CHECK(log.server_error == canceled);
    REQUIRE(log.connection_ends.size() == static_cast<std::size_t>(client_count));
    for (const auto& e : log.connection_ends) {
        CHECK(e == canceled);
    }
    REQUIRE(log.client_ends.size() == static_cast<std::size_t>(client_count));
    for (const auto& e : log.client_ends) {
        CHECK(e == canceled);
    }
    CHECK(log.unexpected_data == 0);
}

TEST_CASE("after stop() a new operation fails at once with ECANCELED", "[stop]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        auto pair = test::socket_pair(r);
        auto l = listener::bind(r, address::ipv4("127.0.0.1", 0));
        REQUIRE(l);
        const address at = l->local_address();
        r.stop(std::chrono::nanoseconds::zero());
        CHECK(r.stopping());

        std::byte buf[16];
        auto got = co_await pair.first.recv(buf);
        REQUIRE_FALSE(got);
        CHECK(got.error() == canceled);

        auto slept = co_await r.sleep_for(1h);
        REQUIRE_FALSE(slept);
        CHECK(slept.error() == canceled);

        auto accepted = co_await l->accept();
        REQUIRE_FALSE(accepted);
        CHECK(accepted.error() == canceled);

        auto sent = co_await pair.first.send(test::bytes("x"));
        REQUIRE_FALSE(sent);
        CHECK(sent.error() == canceled);

        auto connected = co_await ringchat::socket::connect(r, at);
        REQUIRE_FALSE(connected);
        CHECK(connected.error() == canceled);

        receiver in(pair.second);
        auto chunk = co_await in.next();
        REQUIRE_FALSE(chunk);
        CHECK(chunk.error() == canceled);

        CHECK(r.io().in_flight() == 0);
        // close is the exception: it still runs, so descriptors can be given back.
        auto closed = co_await pair.first.close();
        CHECK(closed);
    }, std::chrono::seconds(20));
}

TEST_CASE("request_stop() from another thread ends a blocked run()", "[stop]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    sleeper_log log;
    // The sleep is an hour: if request_stop() did not end it, the watchdog would.
    test::run(kind, [&log](reactor& r) {
        return start_sleeper(r, log, [](reactor& target) { target.request_stop(); });
    }, std::chrono::seconds(20));
    CHECK(log.ended);
    CHECK(log.error == canceled);
}

namespace {

task<> recv_forever(ringchat::socket& s) {
    std::byte buf[8];
    auto got = co_await s.recv(buf);
    (void)got;
}

/// Asks for a stop, then in the same turn destroys a task suspended on a recv: its cancel is
/// waited for by a poll inside the turn, which also harvests the stop's wake-up. Then sleeps
/// for an hour, which only the stop can end.
task<> stop_then_abandon(reactor& r, std::error_code& slept) {
    auto [ours, peer] = test::socket_pair(r);
    co_await test::yield_now{r};  // a poll has run: the wake-up is armed
    auto doomed = recv_forever(ours);
    doomed.start();
    r.request_stop();
    doomed = task<>();  // cancel_and_wait(): a nested poll
    auto done = co_await r.sleep_for(1h);
    slept = done ? std::error_code() : done.error();
}

}  // namespace

TEST_CASE("a stop requested in a turn whose nested poll took the wake-up still stops",
          "[stop]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    std::error_code slept;
    // Without the fix, io_uring's run() slept the hour: the watchdog failed the test.
    test::run(kind, [&slept](reactor& r) { return stop_then_abandon(r, slept); },
              std::chrono::seconds(20));
    CHECK(slept == canceled);
}

namespace {

/// A sleep whose completion may cancel another request, as a receiver's recv cancels its
/// timer when it ends.
struct chained_sleep {
    reactor* owner = nullptr;
    io_request req;
    io_request* also = nullptr;  // cancelled from this one's completion
    int completions = 0;

    chained_sleep(reactor& r, bool cancel_on_stop) : owner(&r) {
        req.op = opcode::sleep;
        req.deadline = clock::now() + 1h;
        req.cancel_on_stop = cancel_on_stop;
        req.owner = this;
        req.on_complete = [](io_request& q, ready_queue&) noexcept {
            auto& self = *static_cast<chained_sleep*>(q.owner);
            ++self.completions;
            if (self.also != nullptr) {
                detail::cancel_io(*self.owner, *self.also);
            }
        };
    }
};

task<> stop_with_chained_cancels(reactor& r, bool graceful) {
    // The backend walks its requests newest first: x, then y, then z. Cancelling x cancels
    // y, the walk's next step.
    chained_sleep z(r, graceful);
    chained_sleep y(r, graceful);
    chained_sleep x(r, graceful);
    x.also = &y.req;
    for (chained_sleep* s : {&z, &y, &x}) {
        REQUIRE(r.start(s->req));
    }
    r.stop(graceful ? std::chrono::nanoseconds(1h) : std::chrono::nanoseconds::zero());
    for (int turn = 0; turn < 100 && (x.req.in_flight || y.req.in_flight || z.req.in_flight);
         ++turn) {
        co_await next_turn{r};
    }
    for (chained_sleep* s : {&x, &y, &z}) {
        CHECK(s->completions == 1);
        CHECK(s->req.res == -ECANCELED);
        if (s->req.in_flight) {
            r.io().abandon(s->req);  // the failure above: do not leave it to the hour
        }
    }
}

}  // namespace

TEST_CASE("a stop cancels every request, also past one that a cancel's callback cancelled",
          "[stop]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const bool graceful = GENERATE(false, true);
    CAPTURE(kind, graceful);
    // On epoll a cancel completes at once, inside the backend's walk over its requests in
    // flight; without the fix, a callback that cancelled the walk's next request ended the
    // walk there, and z kept sleeping.
    test::run(kind, [graceful](reactor& r) { return stop_with_chained_cancels(r, graceful); },
              std::chrono::seconds(20));
}

TEST_CASE("stop_on_signals(): SIGTERM ends a blocked run() gracefully", "[stop]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::saved_stop_signals restore;
    sleeper_log log;
    test::run(kind, [&log](reactor& r) {
        r.stop_on_signals();
        // raise() delivers to the calling thread, so the handler has returned (and is done
        // with the reactor) by the time that thread is joined.
        return start_sleeper(r, log, [](reactor&) { raise(SIGTERM); });
    }, std::chrono::seconds(20));
    CHECK(log.ended);
    CHECK(log.error == canceled);
}

TEST_CASE("a task that throws is logged and the reactor carries on", "[stop]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    throw_log log;
    std::string logged;
    {
        captured_stderr err;
        test::run(kind, [&log](reactor& r) { return throwers_and_survivor(r, log); },
                  std::chrono::seconds(20));
        logged = err.text();
    }
    CHECK(log.heard == "hello");
    CHECK(log.reply == "done");
    CHECK_THAT(logged, Catch::Contains("task failed: boom at once"));
    CHECK_THAT(logged, Catch::Contains("task failed: boom after recv"));
}
