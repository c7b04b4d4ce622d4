// SPDX-License-Identifier: MIT
// reactor_group: calls between reactors (results, exceptions, 100,000 in flight, a target
// that is stopping), owning captures destroyed once, connections spread under both
// placements, a stop under load that loses nothing, a reactor whose task throws, a group of
// one. With 2 and 4 reactors, on every backend.
//
// Catch2's macros are not thread-safe: what the reactors see is recorded (each slot written
// by one reactor only) and checked once the group has returned. Ordering comes from the
// inboxes (one sender's messages run in the order sent, a turn's drain takes what was there
// when it began), never from sleeps; nothing here asserts how long anything took.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <memory>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "chat/serve.hpp"
#include "core/reactor_group.hpp"
#include "tests/support/peers.hpp"
#include "tests/support/support.hpp"

using namespace ringchat;
using namespace std::chrono_literals;

namespace ringchat::chat {
std::ostream& operator<<(std::ostream& os, placement p) {
    return os << (p == placement::reuse_port ? "reuse_port" : "round_robin");
}
}  // namespace ringchat::chat


namespace {

constexpr unsigned group_sizes[] = {2, 4};

// --- calls --------------------------------------------------------------------------------

struct call_log {
    unsigned ran_on = 99;
    unsigned back_on = 99;
    int value = 0;
    int from_task = 0;
    std::string errors;
    bool void_ran = false;
};

task<> make_calls(reactor_group& g, unsigned k, call_log& log) {
    const unsigned to = (k + 1) % g.size();
    log.ran_on = co_await g.on(to, [&g] { return g.here(); });
    log.back_on = g.here();
    log.value = co_await g.on(to, [k] { return static_cast<int>(k) * 10; });
    try {
        co_await g.on(to, []() -> int { throw std::runtime_error("thrown there"); });
    } catch (const std::runtime_error& e) {
        log.errors = e.what();
    }
    log.from_task = co_await g.on(to, [&g, to]() -> task<int> {
        co_await g.at(to).sleep_for(1ms);
        co_return static_cast<int>(g.here()) + 100;
    });
    try {
        co_await g.on(to, [&g, to]() -> task<> {
            co_await g.at(to).sleep_for(0ms);
            throw std::logic_error(", and from a task");
        });
    } catch (const std::logic_error& e) {
        log.errors += e.what();
    }
    co_await g.on(to, [&log] { log.void_ran = true; });
}

TEST_CASE("reactor_group: a call runs on its target and brings back its result or exception",
          "[group]") {
    for (backend_kind kind : test::backends()) {
        for (unsigned n : group_sizes) {
            CAPTURE(kind, n);
            std::vector<call_log> logs(n);
            test::run_group(test::group_of(kind, n),
                            [&](reactor_group& g, reactor&, unsigned k) {
                                return make_calls(g, k, logs[k]);
                            });
            for (unsigned k = 0; k < n; ++k) {
                CAPTURE(k);
                CHECK(logs[k].ran_on == (k + 1) % n);
                CHECK(logs[k].back_on == k);
                CHECK(logs[k].value == static_cast<int>(k) * 10);
                CHECK(logs[k].from_task == static_cast<int>((k + 1) % n) + 100);
                CHECK(logs[k].errors == "thrown there, and from a task");
                CHECK(logs[k].void_ran);
            }
        }
    }
}

// --- a callable's captures: made and destroyed as often -----------------------------------

/// Counts its lives (atomics: copies are made on one thread and destroyed on another).
struct lives {
    static inline std::atomic<int> made{0};
    static inline std::atomic<int> gone{0};
    int value = 0;
    explicit lives(int v) : value(v) { ++made; }
    lives(const lives& o) : value(o.value) { ++made; }
    lives(lives&& o) noexcept : value(o.value) { ++made; }
    ~lives() { ++gone; }
};

struct capture_log {
    int by_value = 0;
    int shared = 0;
    long use_count_after = 0;
    int from_task = 0;
};

task<> calls_with_owning_captures(reactor_group& g, capture_log& log) {
    lives l(20);
    auto p = std::make_shared<int>(3);
    // Named first, then moved in: GCC 12 destroys a lambda written inside a co_await
    // expression one time too many (docs/gcc12-coroutines.md); on() itself moves the
    // callable into the call once and destroys it once, which is what this checks.
    auto plus_one = [l] { return l.value + 1; };
    log.by_value = co_await g.on(1, std::move(plus_one));
    auto twice = [p] { return *p * 2; };
    log.shared = co_await g.on(1, std::move(twice));
    auto sum = [l, p]() -> task<int> { co_return l.value + *p; };
    log.from_task = co_await g.on(1, std::move(sum));
    log.use_count_after = p.use_count();  // the lambdas moved from hold none
}

TEST_CASE("reactor_group: a callable's owning captures are destroyed once each", "[group]") {
    for (backend_kind kind : test::backends()) {
        CAPTURE(kind);
        capture_log log;
        lives::made = 0;
        lives::gone = 0;
        test::run_group(test::group_of(kind, 2),
                        [&](reactor_group& g, reactor&, unsigned k) -> task<> {
                            if (k == 0) {
                                co_await calls_with_owning_captures(g, log);
                            }
                        });
        CHECK(log.by_value == 21);
        CHECK(log.shared == 6);
        CHECK(log.use_count_after == 1);
        CHECK(log.from_task == 23);
        CHECK(lives::made.load() == lives::gone.load());
    }
}

// --- 100,000 calls in flight --------------------------------------------------------------

constexpr int total_calls = 100'000;

struct load_log {
    long counted = 0;  // calls that ran here (written on this reactor only)
    long summed = 0;   // results that came back here
    int in_flight = 0;
    int most_in_flight = 0;
    int wrong_reactor = 0;
};

task<> one_call(reactor_group& g, unsigned to, int i, std::vector<load_log>& logs) {
    load_log& mine = logs[g.here()];
    mine.most_in_flight = std::max(mine.most_in_flight, ++mine.in_flight);
    const int back = co_await g.on(to, [&g, &logs, to, i] {
        ++logs[g.here()].counted;
        return g.here() == to ? i : -total_calls;
    });
    --mine.in_flight;
    mine.summed += back;
    if (back < 0) {
        ++mine.wrong_reactor;
    }
}

TEST_CASE("reactor_group: a hundred thousand calls in flight from many tasks", "[group]") {
    for (backend_kind kind : test::backends()) {
        for (unsigned n : group_sizes) {
            CAPTURE(kind, n);
            const int per = total_calls / static_cast<int>(n);
            std::vector<load_log> logs(n);
            test::run_group(test::group_of(kind, n),
                            [&](reactor_group& g, reactor& r, unsigned k) -> task<> {
                                // Spawned in one turn, run in the next, all before any reply
                                // is taken (at the start of a later turn): all in flight.
                                for (int i = 0; i < per; ++i) {
                                    r.spawn(one_call(g, (k + static_cast<unsigned>(i)) % n, i,
                                                     logs));
                                }
                                co_return;
                            });
            long counted = 0;
            for (unsigned k = 0; k < n; ++k) {
                CAPTURE(k);
                counted += logs[k].counted;
                CHECK(logs[k].most_in_flight == per);
                CHECK(logs[k].in_flight == 0);
                CHECK(logs[k].wrong_reactor == 0);
                CHECK(logs[k].summed == static_cast<long>(per) * (per - 1) / 2);
                CHECK(logs[k].counted == per);  // (k + i) % n spreads each origin evenly
            }
            CHECK(counted == total_calls);
        }
    }
}

// --- a target that is stopping ------------------------------------------------------------

struct stop_call_log {
    std::vector<int> sleep_results;  // errno each sleep on reactor 1 ended with (0: its time)
    bool target_stopping = false;
    int after_graceful = -1;
    int after_hard = -1;
    int plain_after_hard = 0;
};

task<int> sleep_result_there(reactor_group& g);

task<> sleep_there(reactor_group& g, stop_call_log& log) {
    const int e = co_await sleep_result_there(g);
    log.sleep_results.push_back(e);
}

task<int> sleep_result_there(reactor_group& g) {
    const int e = co_await g.on(1, [&g]() -> task<int> {
        auto slept = co_await g.at(1).sleep_for(1h);
        co_return slept ? 0 : slept.error().value();
    });
    co_return e;
}

task<> stop_target(reactor_group& g, reactor& r, stop_call_log& log) {
    constexpr int waiting = 50;
    for (int i = 0; i < waiting; ++i) {
        r.spawn(sleep_there(g, log));
    }
    co_await test::yield_now{r};  // the spawned tasks send their calls first
    // Reactor 1 took the calls and spawned their tasks in an earlier drain than this one's:
    // by the time it stops (the next message), all 50 sleeps are in flight.
    co_await g.on(1, [] {});
    co_await g.on(1, [&g] { g.at(1).stop(); });
    log.target_stopping = co_await g.on(1, [&g] { return g.at(1).stopping(); });
    log.after_graceful = co_await sleep_result_there(g);
    co_await g.on(1, [&g] { g.at(1).stop(0s); });
    log.after_hard = co_await sleep_result_there(g);
    log.plain_after_hard = co_await g.on(1, [] { return 7; });
    // Every call above completed, so every sleep's task has reported back by now.
}

TEST_CASE("reactor_group: calls to a reactor that is stopping complete", "[group]") {
    for (backend_kind kind : test::backends()) {
        for (unsigned n : group_sizes) {
            CAPTURE(kind, n);
            stop_call_log log;
            test::run_group(test::group_of(kind, n),
                            [&](reactor_group& g, reactor& r, unsigned k) -> task<> {
                                if (k == 0) {
                                    co_await stop_target(g, r, log);
                                }
                            });
            CHECK(log.sleep_results == std::vector<int>(50, ECANCELED));
            CHECK(log.target_stopping);
            CHECK(log.after_graceful == ECANCELED);  // a plain sleep is refused in a stop
            CHECK(log.after_hard == ECANCELED);
            CHECK(log.plain_after_hard == 7);
        }
    }
}

// --- failures stay on their reactor; a group of one ---------------------------------------

TEST_CASE("reactor_group: a reactor whose task throws does not take the others down",
          "[group]") {
    for (backend_kind kind : test::backends()) {
        CAPTURE(kind);
        int answered = 0;
        test::run_group(test::group_of(kind, 2),
                        [&](reactor_group& g, reactor&, unsigned k) -> task<> {
                            if (k == 1) {
                                throw std::runtime_error("reactor 1's start fails");
                            }
                            g.post(1, [] { throw std::runtime_error("so does a post"); });
                            answered = co_await g.on(1, [&g] { return 40 + g.here(); });
                        });
        CHECK(answered == 41);
    }
}

TEST_CASE("reactor_group: a group of one runs on the calling thread", "[group]") {
    for (backend_kind kind : test::backends()) {
        CAPTURE(kind);
        std::thread::id ran_on;
        int posted = 0;
        int called = 0;
        test::run_group(test::group_of(kind, 1),
                        [&](reactor_group& g, reactor& r, unsigned k) -> task<> {
                            ran_on = std::this_thread::get_id();
                            g.post(k, [&] { ++posted; });
                            called = co_await g.on(0, [&] { return posted + 1; });
                            co_await r.sleep_for(0ms);
                        });
        CHECK(ran_on == std::this_thread::get_id());
        CHECK(posted == 1);
        CHECK(called == 2);
    }
}


// --- connections spread ---------------------------------------------------------------------

constexpr chat::placement placements[] = {chat::placement::reuse_port,
                                          chat::placement::round_robin};


/// Each line gets back the index of the reactor serving the connection.
auto which_reactor(reactor_group& g) {
    return [&g](chat::channel& ch) -> task<> {
        ch.set_terminator("\n");
        while (auto line = co_await ch.read()) {
            ch.push(std::to_string(g.here()) + "\n");
        }
    };
}

struct spread_log {
    std::vector<int> replies;  // per reactor: connections that said it served them
    std::vector<std::shared_ptr<chat::serve_state>> states;
    std::error_code served;
    int bad = 0;
};

/// which_reactor(g) served on the group with `o`, from reactor `r`, beside the test; `at` is
/// its address once `ready`. Stays where it is made (o.ready points into it).
struct which_server {
    which_server(reactor_group& g, reactor& r, chat::group_serve_options o) {
        o.ready = [this](const address& a) {
            at = a;
            ready = true;
        };
        serving.emplace(r, chat::serve(g, *address::parse("127.0.0.1:0"), which_reactor(g), o));
    }
    which_server(const which_server&) = delete;
    which_server& operator=(const which_server&) = delete;

    address at;
    bool ready = false;
    std::optional<test::background<std::error_code>> serving;
};

task<> spread_clients(reactor_group& g, reactor& r, chat::placement p, int connections,
                      spread_log& log) {
    chat::group_serve_options o;
    o.place = p;
    o.states = &log.states;
    which_server server(g, r, o);
    while (!server.ready) {
        co_await test::yield_now{r};
    }
    const address at = server.at;
    std::vector<std::unique_ptr<chat::channel>> open;
    for (int i = 0; i < connections; ++i) {
        auto ch = co_await chat::connect(r, at);
        if (!ch) {
            ++log.bad;
            continue;
        }
        (*ch)->set_terminator("\n");
        (*ch)->push("which?\n");
        auto reply = co_await (*ch)->read();
        unsigned k = g.size();  // no ?: with a std::string in a coroutine (GCC 12)
        if (reply) {
            const std::string text(reply.text());
            k = static_cast<unsigned>(std::stoul(text));
        }
        if (k < g.size()) {
            ++log.replies[k];
        } else {
            ++log.bad;
        }
        open.push_back(std::move(*ch));  // kept open: every connection is its own
    }
    for (auto& ch : open) {
        co_await ch->finish();
    }
    open.clear();
    g.request_stop();
    log.served = co_await server.serving->join();
}

TEST_CASE("reactor_group: connections spread over every reactor under both placements",
          "[group]") {
    for (backend_kind kind : test::backends()) {
        for (unsigned n : group_sizes) {
            for (chat::placement p : placements) {
                CAPTURE(kind, n, p);
                const int connections = 40 * static_cast<int>(n);
                spread_log log;
                log.replies.assign(n, 0);
                test::run_group(test::group_of(kind, n),
                                [&](reactor_group& g, reactor& r, unsigned k) -> task<> {
                                    if (k == 0) {
                                        co_await spread_clients(g, r, p, connections, log);
                                    }
                                });
                CHECK(log.bad == 0);
                CHECK(!log.served);
                REQUIRE(log.states.size() == n);
                int total = 0;
                for (unsigned k = 0; k < n; ++k) {
                    CAPTURE(k);
                    CHECK(log.replies[k] > 0);  // 1 in 10^12 or less to fail by chance
                    CHECK(log.states[k]->served == static_cast<std::size_t>(log.replies[k]));
                    CHECK(log.states[k]->open == 0);
                    total += log.replies[k];
                    if (p == chat::placement::round_robin) {
                        CHECK(log.replies[k] == 40);  // in turn, from reactor 0
                    }
                }
                CHECK(total == connections);
            }
        }
    }
}

/// Round robin with max_connections 1: one connection per reactor, in turn; a newcomer waits
/// while every reactor is full, then goes to the one whose connection ended (not the next).
task<> limited_round(reactor_group& g, reactor& r, spread_log& log) {
    chat::group_serve_options o;
    o.place = chat::placement::round_robin;
    o.serve.max_connections = 1;
    o.states = &log.states;
    which_server server(g, r, o);
    while (!server.ready) {
        co_await test::yield_now{r};
    }
    const address at = server.at;
    const auto which = [](chat::channel& ch) -> task<unsigned> {
        auto reply = co_await ch.read();
        unsigned k = 1000;
        if (reply) {
            k = static_cast<unsigned>(std::stoul(std::string(reply.text())));
        }
        co_return k;
    };
    std::vector<std::unique_ptr<chat::channel>> open;
    for (unsigned i = 0; i < g.size(); ++i) {
        auto ch = co_await chat::connect(r, at);
        REQUIRE(ch);
        (*ch)->set_terminator("\n");
        (*ch)->push("which?\n");
        const unsigned k = co_await which(**ch);
        CHECK(k == i);  // in turn from reactor 0
        open.push_back(std::move(*ch));
    }
    // Every reactor full: the next connects (the kernel's backlog) but is not served.
    auto extra = co_await chat::connect(r, at);
    REQUIRE(extra);
    (*extra)->set_terminator("\n");
    (*extra)->push("which?\n");
    co_await r.sleep_for(50ms);
    char probe = 0;
    CHECK(::recv((*extra)->socket()->fd(), &probe, 1, MSG_DONTWAIT) < 0);
    std::size_t served = 0;
    for (unsigned k = 0; k < g.size(); ++k) {
        served += co_await g.on(k, [&log, k] { return log.states[k]->served; });
    }
    CHECK(served == g.size());
    // Reactor 1's connection ends: the newcomer goes there, though reactor 0 is next in turn.
    co_await open[1]->finish();
    const unsigned k = co_await which(**extra);
    CHECK(k == 1);
    open.push_back(std::move(*extra));
    for (auto& ch : open) {
        co_await ch->finish();
    }
    open.clear();
    g.request_stop();
    log.served = co_await server.serving->join();
}

TEST_CASE("reactor_group: round robin holds max_connections on each reactor; a newcomer waits "
          "for room and goes where it is",
          "[group]") {
    for (backend_kind kind : test::backends()) {
        for (unsigned n : group_sizes) {
            CAPTURE(kind, n);
            spread_log log;
            test::run_group(test::group_of(kind, n),
                            [&](reactor_group& g, reactor& r, unsigned k) -> task<> {
                                if (k == 0) {
                                    co_await limited_round(g, r, log);
                                }
                            });
            CHECK(!log.served);
            REQUIRE(log.states.size() == n);
            for (unsigned k = 0; k < n; ++k) {
                CAPTURE(k);
                CHECK(log.states[k]->served == (k == 1 ? 2U : 1U));
                CHECK(log.states[k]->open == 0);
            }
        }
    }
}

// --- SIGTERM under load ---------------------------------------------------------------------

constexpr int load_clients = 16;

struct load_client_log {
    long replies = 0;
    int wrong = 0;
    int short_lived = 0;  // clients that ended before 5 replies
};

/// Line by line: send one, wait for its echo. Ends at the server's close (EOF or reset).
task<> echo_client(reactor& r, address at, int id, int& ready_clients, load_client_log& log) {
    auto s = co_await ringchat::socket::connect(r, at, 10s);
    if (!s) {
        ++log.short_lived;
        co_return;
    }
    long mine = 0;
    std::string pending;
    for (int i = 0;; ++i) {
        const std::string line = "client " + std::to_string(id) + " line " + std::to_string(i);
        const std::string out = line + "\n";
        auto sent = co_await s->send_all(test::bytes(out));
        if (!sent) {
            break;
        }
        std::string got = co_await test::recv_exactly(*s, line.size() + 1);
        if (got.size() < line.size() + 1) {
            if (!got.empty()) {
                ++log.wrong;  // a cut reply
            }
            break;
        }
        if (got != line + "\n") {
            ++log.wrong;
        }
        ++log.replies;
        if (++mine == 5) {
            if (++ready_clients == load_clients) {
                ::kill(::getpid(), SIGTERM);  // all under load: stop the server
            }
        }
    }
    if (mine < 5) {
        ++log.short_lived;
    }
}

task<> load_clients_body(reactor& r, address at, load_client_log& log) {
    int ready_clients = 0;
    std::vector<test::background<bool>> running;
    auto client = [](reactor& r, address at, int id, int& ready,
                     load_client_log& log) -> task<bool> {
        co_await echo_client(r, at, id, ready, log);
        co_return true;
    };
    running.reserve(load_clients);
    for (int id = 0; id < load_clients; ++id) {
        running.emplace_back(r, client(r, at, id, ready_clients, log));
    }
    for (auto& c : running) {
        co_await c.join();
    }
}

auto echo_and_count(reactor_group& g, std::vector<long>& echoed) {
    return [&g, &echoed](chat::channel& ch) -> task<> {
        ch.set_terminator("\n");
        while (auto line = co_await ch.read()) {
            ch.push(std::move(line));
            ch.push("\n");
            ++echoed[g.here()];
        }
    };
}

TEST_CASE("reactor_group: SIGTERM under load stops every reactor with nothing lost",
          "[group]") {
    for (backend_kind kind : test::backends()) {
        for (unsigned n : group_sizes) {
            for (chat::placement p : placements) {
                CAPTURE(kind, n, p);
                test::saved_stop_signals restore;
                std::vector<long> echoed(n, 0);
                std::atomic<int> port{0};
                load_client_log clients;
                std::thread client_thread([&] {
                    while (port.load() == 0) {
                        std::this_thread::sleep_for(1ms);
                    }
                    reactor_options o;
                    o.kind = kind;
                    reactor r(o);
                    r.block_on(load_clients_body(
                        r, *address::parse("127.0.0.1:" + std::to_string(port.load())), clients));
                });
                std::error_code served;
                const std::size_t fds_before = test::open_fds();
                {
                    // Not test::run_group: its descriptor count would see the clients'.
                    reactor_group g(test::group_of(kind, n));
                    g.run([&](reactor&, unsigned k) -> task<> {
                        if (k != 0) {
                            co_return;
                        }
                        g.stop_on_signals();
                        chat::group_serve_options o;
                        o.place = p;
                        o.ready = [&](const address& a) { port = a.port(); };
                        served = co_await chat::serve(g, *address::parse("127.0.0.1:0"),
                                                      echo_and_count(g, echoed), o);
                    });
                }
                client_thread.join();
                CHECK(test::open_fds() == fds_before);
                CHECK(!served);
                CHECK(clients.wrong == 0);
                CHECK(clients.short_lived == 0);
                // Every line the server answered reached its client (chat/channel.cpp's
                // graceful stop flushes the answer to a line read as it began: 74fc605).
                const long echoed_total = std::accumulate(echoed.begin(), echoed.end(), 0L);
                CHECK(clients.replies == echoed_total);
                CHECK(clients.replies >= 5 * load_clients);
            }
        }
    }
}

}  // namespace
