// SPDX-License-Identifier: MIT
// The README's example: an echo server on the core API alone (no framing), on io_uring or
// epoll. Usage: raw_echo [ADDRESS]   (default 127.0.0.1:7000; also "[::1]:7000", "unix:/p")
#include <string_view>

#include <fmt/core.h>

#include "core/listener.hpp"
#include "core/log.hpp"
#include "core/reactor.hpp"
#include "core/receiver.hpp"
#include "examples/common/cli.hpp"

using namespace ringchat;

constexpr std::string_view usage =
    "usage: raw_echo [ADDRESS]\n"
    "An echo server on the core API alone: every byte comes back as it was sent.\n"
    "ADDRESS: 127.0.0.1:PORT, [::1]:PORT or unix:PATH (default 127.0.0.1:7000).\n"
    "RINGCHAT_BACKEND=uring|epoll|auto picks the backend (default auto).\n";

task<> echo(ringchat::socket s) {
    receiver in(s);                                    // multishot recv, pooled buffers
    while (auto chunk = co_await in.next()) {
        if (chunk->empty()) {
            break;                                     // the peer closed
        }
        auto sent = co_await s.send_all(chunk->data());  // not in the condition: GCC 12
        if (!sent) {
            break;                                     // a send failed
        }
    }
}

task<> serve(reactor& r, listener l) {
    while (auto s = co_await l.accept()) {
        r.spawn(echo(std::move(*s)));
    }
}

int main(int argc, char** argv) {
    const std::string_view arg = argc > 1 ? argv[1] : "127.0.0.1:7000";
    cli::help_or_version("raw_echo", arg, usage);      // --help, --version: exit 0
    if (arg.starts_with("-")) {                        // exit 2, with "try 'raw_echo --help'"
        cli::usage_error("raw_echo", fmt::format("unknown option '{}'", arg));
    }
    if (argc > 2) {
        cli::usage_error("raw_echo", fmt::format("unexpected argument '{}'", argv[2]));
    }
    const auto at = address::parse(arg);
    if (!at) {
        cli::usage_error("raw_echo", fmt::format("not an address: '{}'", arg));
    }
    try {
        reactor r;                                     // RINGCHAT_BACKEND=uring|epoll|auto
        auto l = listener::bind(r, *at);
        if (!l) {                                      // in use, no permission ...: exit 1
            cli::startup_error("raw_echo", fmt::format("cannot listen on {}: {}", arg,
                                                       l.error().message()));
        }
        log::info("echo on {} ({})", l->local_address().to_string(), r.backend_name());
        r.stop_on_signals();                           // Ctrl-C: a graceful stop
        r.spawn(serve(r, std::move(*l)));
        r.run();
    } catch (const std::exception& e) {                // no backend could be made, say
        cli::startup_error("raw_echo", e.what());
    }
}
