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
#include <utility>

#include <fmt/core.h>

#include "chat/channel.hpp"
#include "chat/serve.hpp"
#include "core/reactor.hpp"
#include "examples/common/group_server.hpp"
#include "examples/common/options.hpp"
#include "examples/echo/session.hpp"
#include "version.hpp"
#if RINGCHAT_HAS_TLS
#include "chat/tls_transport.hpp"
#endif

using namespace ringchat;

namespace {

constexpr std::uint16_t default_port = 7007;

task<> serve_echo(reactor& r, listener& l, chat::serve_options so) {
    return chat::serve(r, l, &echo::echo_lines, std::move(so));
}

/// --tls: the client's transport (the server verified against --ca, or the system's CAs,
/// and the name --host gives); empty without --tls.
chat::transport_factory client_transport(bool tls, const std::string& ca,
                                         const examples::common_options& opts) {
    if (!tls) {
        return {};
    }
#if RINGCHAT_HAS_TLS
    chat::tls::context_options o;
    o.ca_file = ca;
    auto ctx = chat::tls::context::client(o);
    if (!ctx) {
        cli::startup_error("echo", ctx.error().message());
    }
    return chat::tls_client(std::move(*ctx), opts.host);
#else
    (void)ca;
    (void)opts;
    cli::startup_error("echo", "--tls: this ringchat was built without TLS");
#endif
}

/// Client mode: one line out, one line back, until stdin ends. Reading stdin blocks the
/// reactor, which serves this one connection only, so that is harmless here.
task<int> run_client(reactor& r, address to, chat::transport_factory make) {
    auto ch = co_await chat::connect(r, to, std::move(make));
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
    bool tls = false;
    std::string ca;
    cli.flag("tls", "with --client: connect over TLS (the server's name: --host)", tls);
    cli.text("ca", "FILE", "with --tls: the CA certificates to verify the server with (PEM; "
             "default: the system's)", ca);
    cli.tls();
    cli.threads();
    const auto opts = cli.parse(argc, argv);
    if (client) {
        try {
            reactor r(opts.reactor());
            return r.block_on(run_client(r, opts.where(), client_transport(tls, ca, opts)));
        } catch (const std::exception& e) {
            fmt::print(stderr, "echo: {}\n", e.what());
            return 1;
        }
    }
    if (opts.threads != 1) {
        chat::group_serve_options o;
        o.serve.channel = echo::channel_options();
        o.serve.make_transport = examples::transport_or_exit(opts);
        return examples::run_group_server("echo", opts, &echo::echo_lines, o);
    }
    chat::serve_options so;
    so.channel = echo::channel_options();
    so.make_transport = examples::transport_or_exit(opts);
    return examples::run_server("echo", opts, [so](reactor& r, listener& l) {
        return serve_echo(r, l, so);
    });
}
