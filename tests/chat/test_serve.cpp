// SPDX-License-Identifier: MIT
// chat::serve and chat::connect: one channel per connection, handler failures contained, the
// connection limit, and async_chat classes served the same way; on both backends.
#include <sys/socket.h>

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "chat/serve.hpp"
#include "tests/support/support.hpp"

using namespace ringchat;
using namespace std::chrono_literals;

namespace {

/// Echoes lines until the peer says "quit", then says bye (flushed by serve on return).
task<> line_echo(chat::channel& ch) {
    while (auto line = co_await ch.read()) {
        if (line.text() == "quit") {
            ch.push("bye\n");
            co_return;
        }
        if (line.text() == "boom") {
            throw std::runtime_error("handler exploded");
        }
        ch.push(std::string(line.text()) + "\n");
    }
}

class upper_chat final : public chat::async_chat {
public:
    using async_chat::async_chat;
    void collect_incoming_data(std::span<const std::byte> data) override {
        line_.append(reinterpret_cast<const char*>(data.data()), data.size());
    }
    void found_terminator() override {
        for (char& c : line_) {
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        push(line_ + "\n");
        if (line_ == "BYE") {
            close_when_done();
        }
        line_.clear();
    }

private:
    std::string line_;
};

task<std::string> ask(reactor& r, const address& at, std::string text) {
    auto c = co_await chat::connect(r, at);
    REQUIRE(c);
    auto& ch = **c;
    ch.push(std::move(text));
    std::string replies;
    while (auto line = co_await ch.read()) {
        replies += std::string(line.text()) + "|";
    }
    co_return replies;
}

}  // namespace

TEST_CASE("serve runs a handler per connection and contains its failures", "[serve]") {
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor& r) -> task<> {
        auto l = listener::bind(r, address::ipv4("127.0.0.1", 0));
        REQUIRE(l);
        // The line a user writes first: serve() is a task<> for spawn().
        r.spawn(chat::serve(r, *l, &line_echo));
        auto state = std::make_shared<chat::serve_state>();
        chat::serve_options watched;
        watched.state = state;
        auto lw = listener::bind(r, address::ipv4("127.0.0.1", 0));
        REQUIRE(lw);
        r.spawn(chat::serve(r, *lw, &line_echo, watched));
        auto plain = co_await ask(r, l->local_address(), "first\nquit\n");
        CHECK(plain == "first|bye|");
        l->close();

        auto first = co_await ask(r, lw->local_address(), "a\nb\nquit\n");
        CHECK(first == "a|b|bye|");
        // A handler that throws closes its connection only.
        auto failed = co_await ask(r, lw->local_address(), "x\nboom\n");
        CHECK(failed == "x|");
        auto after = co_await ask(r, lw->local_address(), "still\nquit\n");
        CHECK(after == "still|bye|");
        lw->close();
        co_await r.sleep_for(1ms);  // let the accept loop see the close
        REQUIRE(state);
        CHECK(state->served == 3);
        CHECK(state->failures == 1);
        CHECK(state->open == 0);
    });
}

TEST_CASE("serve runs async_chat classes", "[serve][async_chat]") {
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor& r) -> task<> {
        auto l = listener::bind(r, address::ipv4("127.0.0.1", 0));
        REQUIRE(l);
        r.spawn(chat::serve<upper_chat>(r, *l));
        auto replies = co_await ask(r, l->local_address(), "hello\nbye\nignored\n");
        CHECK(replies == "HELLO|BYE|");
        l->close();
        co_await r.sleep_for(1ms);  // serve() sees the close while the listener still lives
    });
}

TEST_CASE("serve's connection limit holds newcomers until a slot frees", "[serve]") {
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor& r) -> task<> {
        auto l = listener::bind(r, address::ipv4("127.0.0.1", 0));
        REQUIRE(l);
        chat::serve_options options;
        options.max_connections = 1;
        options.state = std::make_shared<chat::serve_state>();
        r.spawn(chat::serve(r, *l, &line_echo, options));

        auto first = co_await chat::connect(r, l->local_address());
        REQUIRE(first);
        (*first)->push("one\n");
        auto one = co_await (*first)->read();
        REQUIRE(one);
        CHECK(one.text() == "one");

        // The second connects (backlog) but is not served while the first is open.
        auto second = co_await chat::connect(r, l->local_address());
        REQUIRE(second);
        (*second)->push("two\n");
        co_await r.sleep_for(20ms);
        char probe = 0;
        CHECK(::recv((*second)->socket()->fd(), &probe, 1, MSG_DONTWAIT) < 0);  // not served
        (*first)->push("quit\n");
        auto bye = co_await (*first)->read();
        REQUIRE(bye);
        CHECK(bye.text() == "bye");
        // The first closed: the second is served now, its early line included.
        auto two = co_await (*second)->read();
        REQUIRE(two);
        CHECK(two.text() == "two");
        first->reset();
        second->reset();
        l->close();
        co_await r.sleep_for(1ms);  // serve() sees the close while the listener still lives
    });
}

TEST_CASE("serve ends a connection whose transport cannot be made, and frees its slot",
          "[serve]") {
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor& r) -> task<> {
        auto l = listener::bind(r, address::ipv4("127.0.0.1", 0));
        REQUIRE(l);
        chat::serve_options options;
        options.max_connections = 1;
        options.state = std::make_shared<chat::serve_state>();
        int made = 0;
        options.make_transport = [&made](ringchat::socket s) -> std::unique_ptr<chat::transport> {
            if (++made == 1) {
                throw std::runtime_error("no transport for you");  // the socket closes with it
            }
            return std::make_unique<chat::socket_transport>(std::move(s));
        };
        r.spawn(chat::serve(r, *l, &line_echo, options));
        // The first is closed unserved; had it kept its slot, the second would wait forever.
        auto refused = co_await ask(r, l->local_address(), "hello\nquit\n");
        CHECK(refused.empty());
        auto served = co_await ask(r, l->local_address(), "hello\nquit\n");
        CHECK(served == "hello|bye|");
        l->close();
        co_await r.sleep_for(1ms);
        CHECK(made == 2);
        CHECK(options.state->served == 2);
        CHECK(options.state->open == 0);
        CHECK(options.state->failures == 0);  // handlers that threw: none ran
    });
}
