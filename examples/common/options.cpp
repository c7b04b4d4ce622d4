// SPDX-License-Identifier: MIT
// examples/common/options.cpp — the shared command line, listener and ready line.
#include "examples/common/options.hpp"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <fmt/core.h>

#include "core/reactor.hpp"
#include "examples/common/cli.hpp"
#include "version.hpp"
#if RINGCHAT_HAS_TLS
#include "chat/tls_transport.hpp"
#endif

namespace ringchat::examples {

address common_options::where() const {
    if (host.starts_with("unix:")) {
        return address::unix_path(std::string_view(host).substr(5));
    }
    if (host == "localhost") {
        return address::ipv4("127.0.0.1", port);
    }
    std::string_view h = host;
    if (h.size() > 2 && h.front() == '[' && h.back() == ']') {
        h = h.substr(1, h.size() - 2);
    }
    if (h.find(':') != std::string_view::npos) {
        return address::ipv6(h, port);
    }
    return address::ipv4(h, port);
}

reactor_options common_options::reactor() const {
    auto o = reactor_options::from_env();
    if (backend_given) {
        o.kind = backend;
    }
    o.grace = grace;
    return o;
}

bool parse_seconds(std::string_view text, std::chrono::nanoseconds& out) noexcept {
    // Whole seconds, then up to nine decimals: no floating point, so "0.1" is exact.
    const auto dot = text.find('.');
    const std::string_view whole = text.substr(0, dot);
    const std::string_view fraction =
        dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
    std::int64_t s = 0;
    const auto [end, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), s);
    if (whole.empty() || ec != std::errc() || end != whole.data() + whole.size() || s < 0 ||
        s > 86'400 || fraction.size() > 9 || (dot != std::string_view::npos && fraction.empty())) {
        return false;
    }
    std::int64_t ns = 0;
    for (std::size_t i = 0; i < 9; ++i) {
        const char c = i < fraction.size() ? fraction[i] : '0';
        if (c < '0' || c > '9') {
            return false;
        }
        ns = ns * 10 + (c - '0');
    }
    out = std::chrono::seconds(s) + std::chrono::nanoseconds(ns);
    return true;
}

bool parse_size(std::string_view text, std::size_t& out) noexcept {
    std::size_t scale = 1;
    if (!text.empty()) {
        switch (text.back()) {
        case 'k': case 'K': scale = std::size_t{1} << 10; break;
        case 'm': case 'M': scale = std::size_t{1} << 20; break;
        case 'g': case 'G': scale = std::size_t{1} << 30; break;
        default: break;
        }
        if (scale != 1) {
            text.remove_suffix(1);
        }
    }
    std::size_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
        n > SIZE_MAX / scale) {
        return false;
    }
    out = n * scale;
    return true;
}

command_line::command_line(std::string program, std::string summary, std::uint16_t default_port)
    : program_(std::move(program)), summary_(std::move(summary)) {
    parsed_.program = program_;
    parsed_.port = default_port;
    text("host", "ADDR",
         "address to listen on or connect to: an IPv4 or IPv6 literal, localhost, or "
         "unix:PATH (default 127.0.0.1)",
         parsed_.host);
    options_.push_back({"port", "N",
                        fmt::format("TCP port (default {}; 0 = any free port)", default_port),
                        "a port number", [this](std::string_view v) {
                            return cli::parse_number<std::uint16_t>(v, parsed_.port, 0, 65535);
                        }});
    options_.push_back({"backend", "KIND",
                        "uring, epoll or auto (default auto: io_uring, else epoll; "
                        "RINGCHAT_BACKEND sets it too)",
                        "uring, epoll or auto", [this](std::string_view v) {
                            parsed_.backend_given = true;
                            return parse_backend_kind(v, parsed_.backend);
                        }});
    seconds("grace",
            "on SIGINT/SIGTERM: stop accepting, let responses in flight finish for S "
            "seconds, then reset what is left (default 10)",
            parsed_.grace);
}

void command_line::flag(std::string name, std::string help, bool& target) {
    options_.push_back({std::move(name), {}, std::move(help), {}, [&target](std::string_view) {
                            target = true;
                            return true;
                        }});
}

void command_line::text(std::string name, std::string metavar, std::string help,
                        std::string& target) {
    options_.push_back({std::move(name), std::move(metavar), std::move(help), {},
                        [&target](std::string_view v) {
                            target = std::string(v);
                            return true;
                        }});
}

void command_line::number(std::string name, std::string metavar, std::string help,
                          std::size_t& target) {
    options_.push_back({std::move(name), std::move(metavar), std::move(help),
                        "a whole number (k, m or g may follow)",
                        [&target](std::string_view v) { return parse_size(v, target); }});
}

void command_line::seconds(std::string name, std::string help,
                           std::chrono::nanoseconds& target) {
    options_.push_back({std::move(name), "S", std::move(help),
                        "a number of seconds (0 to 86400)",
                        [&target](std::string_view v) { return parse_seconds(v, target); }});
}

void command_line::threads() {
    options_.push_back({"threads", "N", "reactors, one thread each (default 1; 0 = one per CPU)",
                        "a number of threads (0 to 1024)", [this](std::string_view v) {
                            return cli::parse_number<unsigned>(v, parsed_.threads, 0, 1024);
                        }});
    flag("pin", "with --threads: pin reactor k's thread to the k-th CPU this process may run on",
         parsed_.pin);
}

void command_line::tls() {
    options_.push_back({"tls-cert", "FILE", "TLS with this certificate (PEM; and --tls-key): on connecting, or by STARTTLS (smtp)",
                        "a file", [this](std::string_view v) {
                            parsed_.tls_cert = v;
                            return !v.empty();
                        }});
    options_.push_back({"tls-key", "FILE", "the private key of --tls-cert (PEM)", "a file",
                        [this](std::string_view v) {
                            parsed_.tls_key = v;
                            return !v.empty();
                        }});
    options_.push_back({"tls-handshake-timeout", "S",
                        "with --tls-cert: a TLS handshake must be complete S seconds after the "
                        "connection is accepted (smtp: after STARTTLS); else it is closed "
                        "(default 10; 0 = none)",
                        "a number of seconds (0 to 86400)", [this](std::string_view v) {
                            handshake_timeout_given_ = true;
                            return parse_seconds(v, parsed_.tls_handshake_timeout);
                        }});
}

std::string command_line::usage() const {
    std::string out = fmt::format("usage: {} [options]\n{}\n\noptions:\n", program_, summary_);
    for (const auto& o : options_) {
        const std::string left =
            o.metavar.empty() ? "--" + o.name : fmt::format("--{} {}", o.name, o.metavar);
        out += fmt::format("  {:<20} {}\n", left, o.help);
    }
    out += fmt::format("  {:<20} {}\n", "--help", "show this help and exit");
    out += fmt::format("  {:<20} {}\n", "--version", "show the version and exit");
    return out;
}

void command_line::usage_error(const std::string& why) const {
    cli::usage_error(program_, why);
}

common_options command_line::parse(int argc, char** argv) {
    const std::string help = usage();
    cli::args a(program_, help, argc, argv);
    while (a.next()) {
        const option* found = nullptr;
        for (const auto& o : options_) {
            if (a.name() == "--" + o.name) {
                found = &o;
            }
        }
        if (found == nullptr) {
            a.unknown();
        }
        if (found->metavar.empty()) {
            (void)a.flag(a.name());  // a usage error if it came with "=VALUE"
            found->set({});
        } else if (!found->set(a.value())) {
            a.bad_value(found->what);
        }
    }
    if (parsed_.tls_cert.empty() != parsed_.tls_key.empty()) {
        a.error(parsed_.tls_cert.empty() ? "--tls-key: needs --tls-cert"
                                         : "--tls-cert: needs --tls-key");
    }
    if (parsed_.pin && parsed_.threads == 1) {
        a.error("--pin: needs --threads N (N other than 1)");
    }
    if (handshake_timeout_given_ && parsed_.tls_cert.empty()) {
        a.error("--tls-handshake-timeout: needs --tls-cert");
    }
    if (!parsed_.tls_cert.empty() && RINGCHAT_HAS_TLS == 0) {
        a.error("--tls-cert: this ringchat was built without TLS (OpenSSL: meson -Dtls)");
    }
    try {
        (void)parsed_.where();
    } catch (const std::exception&) {
        a.error(fmt::format("--host: not an address: '{}'", parsed_.host));
    }
    return parsed_;
}

#if RINGCHAT_HAS_TLS
namespace {

chat::tls_options server_tls_options(const common_options& opts) {
    chat::tls_options o;
    o.handshake_timeout = opts.tls_handshake_timeout;
    return o;
}

chat::tls::context server_context_or_exit(const common_options& opts) {
    chat::tls::context_options o;
    o.cert_file = opts.tls_cert;
    o.key_file = opts.tls_key;
    auto ctx = chat::tls::context::server(o);
    if (!ctx) {
        cli::startup_error(opts.program, ctx.error().message());
    }
    return std::move(*ctx);
}

}  // namespace
#endif

chat::transport_factory transport_or_exit(const common_options& opts) {
    if (opts.tls_cert.empty()) {
        return {};
    }
#if RINGCHAT_HAS_TLS
    return chat::tls_server(server_context_or_exit(opts), server_tls_options(opts));
#else
    cli::startup_error(opts.program, "built without TLS");
#endif
}

std::function<std::unique_ptr<chat::transport>(std::unique_ptr<chat::transport>)>
starttls_or_exit(const common_options& opts) {
    if (opts.tls_cert.empty()) {
        return {};
    }
#if RINGCHAT_HAS_TLS
    return [ctx = server_context_or_exit(opts),
            o = server_tls_options(opts)](std::unique_ptr<chat::transport> plain) {
        return std::unique_ptr<chat::transport>(
            std::make_unique<chat::tls_transport>(std::move(plain), ctx, o));
    };
#else
    cli::startup_error(opts.program, "built without TLS");
#endif
}

listener listen_or_exit(reactor& r, const common_options& opts, listen_options lo) {
    const address at = opts.where();  // parse() saw that it is one
    auto l = listener::bind(r, at, lo);
    if (!l) {
        cli::startup_error(opts.program, fmt::format("cannot listen on {}: {}", at.to_string(),
                                                     l.error().message()));
    }
    return std::move(*l);
}

void announce_ready(std::string_view program, const listener& l, const reactor& r,
                    std::string_view tls) {
    announce_ready(program, l.local_address(), r.backend_name(), tls);
}

void announce_ready(std::string_view program, const address& at, std::string_view backend,
                    std::string_view tls) {
    fmt::print("{}: ready on {} ({}{}{})\n", program, at.to_string(), backend,
               tls.empty() ? "" : ", ", tls);
    std::fflush(stdout);
}

}  // namespace ringchat::examples

namespace ringchat::examples {

int run_server(std::string_view program, const common_options& opts,
               const std::function<task<>(reactor&, listener&)>& start, listen_options lo) {
    try {
        reactor r(opts.reactor());
        listener l = listen_or_exit(r, opts, lo);
        // SIGINT, SIGTERM: a graceful stop, then run() returns. Before the ready line, which
        // tells a script that it may send SIGTERM.
        r.stop_on_signals();
        announce_ready(program, l, r, opts.tls_mode());
        r.spawn(start(r, l));
        r.run();
    } catch (const std::exception& e) {
        fmt::print(stderr, "{}: {}\n", program, e.what());
        return 1;
    }
    return 0;
}

}  // namespace ringchat::examples
