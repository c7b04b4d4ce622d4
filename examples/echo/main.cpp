// SPDX-License-Identifier: MIT
// examples/echo — the smallest complete server on the chat API: every line ("\n"-terminated)
// comes back as it was sent. With --client it is the client too: it reads lines from stdin,
// sends each, and prints each reply.
//
//     build/examples/echo --port 7007 &
//     printf 'hello\nworld\n' | build/examples/echo --client --port 7007
//
// With --threads N it serves on N reactors, one thread each, each with its own SO_REUSEPORT
// listener on the port (the kernel spreads the connections; examples/common/group_server.hpp).
// The session itself, one connection's lines, is examples/echo/session.cpp.
#include <cstdio>
#include <iostream>
#include <string>

#include <fmt/core.h>

#include "chat/channel.hpp"
#include "chat/serve.hpp"
#include "core/reactor.hpp"
#include "examples/common/group_server.hpp"
#include "examples/common/options.hpp"
#include "examples/echo/session.hpp"

using namespace ringchat;

namespace {

constexpr std::uint16_t default_port = 7007;

task<> serve_echo(reactor& r, listener& l) {
    chat::serve_options so;
    so.channel = echo::channel_options();
    return chat::serve(r, l, &echo::echo_lines, so);
}

/// Client mode: one line out, one line back, until stdin ends. Reading stdin blocks the
/// reactor, which serves this one connection only, so that is harmless here.
task<int> run_client(reactor& r, address to) {
    auto ch = co_await chat::connect(r, to);
    if (!ch) {
        fmt::print(stderr, "echo: cannot connect to {}: {}\n", to.to_string(),
                   ch.error().message());
        co_return 1;
    }
    (*ch)->set_terminator("\n");
    std::string line;
    while (std::getline(std::cin, line)) {
        (*ch)->push(line + "\n");
        auto reply = co_await (*ch)->read();
        if (!reply) {
            fmt::print(stderr, "echo: the server closed the connection{}\n",
                       reply.error() ? ": " + reply.error().message() : std::string());
            co_return 1;
        }
        fmt::print("{}\n", reply.text());
        std::fflush(stdout);
    }
    co_await (*ch)->finish();
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    examples::command_line cli("echo", "A line echo server (or, with --client, its client).\n"
                               "Timeouts: a line must be complete 60 s after its first byte, and a reply "
                               "the client does not take for 60 s ends the connection.",
                               default_port);
    bool client = false;
    cli.flag("client", "connect to --host/--port, send each stdin line, print each reply",
             client);
    cli.threads();
    const auto opts = cli.parse(argc, argv);
    if (client) {
        try {
            reactor r(opts.reactor());
            return r.block_on(run_client(r, opts.where()));
        } catch (const std::exception& e) {
            fmt::print(stderr, "echo: {}\n", e.what());
            return 1;
        }
    }
    if (opts.threads != 1) {
        chat::group_serve_options o;
        o.serve.channel = echo::channel_options();
        return examples::run_group_server("echo", opts, &echo::echo_lines, o);
    }
    return examples::run_server("echo", opts, &serve_echo);
}
