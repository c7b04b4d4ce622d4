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
#include <cstdio>
#include <iostream>
#include <string>

#include <fmt/core.h>

#include "chat/channel.hpp"
#include "chat/serve.hpp"
#include "core/reactor.hpp"
#include "examples/common/group_server.hpp"
#include "examples/common/options.hpp"

using namespace ringchat;

namespace {

constexpr std::uint16_t default_port = 7007;

/// One connection: each line back, with its "\n". A line over max_frame (64 KiB) or the
/// peer's close ends the session; serve() then flushes what is queued and closes.
task<> echo_lines(chat::channel& ch) {
    ch.set_terminator("\n");
    while (auto line = co_await ch.read()) {
        // Small lines are copied into the output queue (appended to the chunk queued last,
        // so they cost no allocation each); a large one the framer joined is handed over.
        ch.push(std::move(line));
        ch.push("\n");
        if (ch.queued_bytes() >= ch.options().low_water) {
            co_await ch.drain();  // a peer that sends but does not read cannot grow our memory
        }
    }
}

task<> serve_echo(reactor& r, listener& l) { return chat::serve(r, l, &echo_lines); }

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
        return examples::run_group_server("echo", opts, &echo_lines);
    }
    return examples::run_server("echo", opts, &serve_echo);
}
