// SPDX-License-Identifier: MIT
// examples/common/options.hpp — what every example program shares: its command line
// (--host, --port, --backend, --grace, --help, --version, plus options of its own; the
// conventions of examples/common/cli.hpp), the reactor and listener it
// makes from them, and the one "ready" line it prints when it serves.
//
//     examples::command_line cli("echo", "A line echo server.", 7000);
//     cli.flag("client", "read lines from stdin, send each, print each reply", client);
//     const auto opts = cli.parse(argc, argv);     // exits on --help, --version (0) or a
//                                                  // bad option (2: "echo: ..." and "try ...")
//     return examples::run_server("echo", opts, [](reactor& r, listener& l) { ... });
//     // prints "echo: ready on 127.0.0.1:7000 (io_uring)", serves until SIGINT/SIGTERM
//
// Invariant: the ready line goes to stdout, flushed at once, and carries the bound port (the
// real one when --port 0 asked for any), so that scripts and tests can wait for it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/backend.hpp"
#include "core/listener.hpp"
#include "core/task.hpp"
#include "chat/serve.hpp"
#include "examples/common/cli.hpp"

namespace ringchat {
class reactor;
}

namespace ringchat::examples {

/// The options common to every example, parsed.
struct common_options {
    std::string program;  ///< the name the program's messages begin with ("echo")
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    backend_kind backend = backend_kind::automatic;
    bool backend_given = false;  ///< --backend was on the command line (it beats RINGCHAT_BACKEND)
    /// --grace: how long SIGINT/SIGTERM lets responses in flight finish before what is left
    /// is reset (reactor_options::grace).
    std::chrono::nanoseconds grace = std::chrono::seconds(10);
    /// --threads, for a program that offers it (command_line::threads()): reactors, one
    /// thread each; 0 = one per CPU. 1 (the default) runs no group (run_server).
    unsigned threads = 1;
    /// --pin (with --threads): each reactor's thread pinned to a CPU (group_options::pin).
    bool pin = false;
    /// --tls-cert, --tls-key (command_line::tls()): serve over TLS with these PEM files
    /// (both empty: plaintext).
    std::string tls_cert;
    std::string tls_key;
    /// --tls-handshake-timeout: a TLS handshake must be complete this long after the
    /// connection is accepted (or STARTTLS begins); else the connection is closed
    /// (tls_options::handshake_timeout; 0 = none).
    std::chrono::nanoseconds tls_handshake_timeout = std::chrono::seconds(10);
    /// The program offers TLS by STARTTLS on a plaintext port (smtp), not on connecting.
    bool starttls = false;
    /// What the ready line says of TLS: "", "TLS" or "STARTTLS".
    std::string_view tls_mode() const noexcept {
        return tls_cert.empty() ? "" : starttls ? "STARTTLS" : "TLS";
    }

    /// host:port as an address: an IPv4 or IPv6 literal, "localhost", or "unix:PATH".
    /// \throws std::invalid_argument for a host that is none of these.
    address where() const;
    /// reactor_options::from_env(), with --backend applied over it when given.
    reactor_options reactor() const;
};

/// A small getopt: long options only (`--name VALUE` or `--name=VALUE`).
class command_line {
public:
    command_line(std::string program, std::string summary, std::uint16_t default_port);
    command_line(const command_line&) = delete;  // its options point into it
    command_line& operator=(const command_line&) = delete;

    /// `--name`: sets `target` to true.
    void flag(std::string name, std::string help, bool& target);
    /// `--name VALUE`: a string.
    void text(std::string name, std::string metavar, std::string help, std::string& target);
    /// `--name N`: an unsigned number (a suffix k, m or g multiplies by 1024, 1024², 1024³).
    void number(std::string name, std::string metavar, std::string help, std::size_t& target);
    /// `--name S`: a duration in seconds, decimals allowed (0.5); 0 = none where the help
    /// says so.
    void seconds(std::string name, std::string help, std::chrono::nanoseconds& target);
    /// `--threads N` (0 to 1024) into common_options::threads, and `--pin` into
    /// common_options::pin, for a program that serves on a reactor_group when it is not 1
    /// (examples/common/group_server.hpp).
    void threads();
    /// `--tls-cert FILE` and `--tls-key FILE` into common_options::tls_cert, tls_key, and
    /// `--tls-handshake-timeout S` into tls_handshake_timeout (parse() refuses one file
    /// without the other, the timeout without them, and all where the library was built
    /// without TLS).
    void tls();

    /// Parses argv. `--help` prints the usage, `--version` the version line, and both exit
    /// 0; a bad option or value (an unknown option, a --port that is not one, a --host that
    /// is no address ...) is a usage_error().
    common_options parse(int argc, char** argv);
    std::string usage() const;
    /// Prints "<program>: <why>" and "try '<program> --help'" to stderr and exits 2: for
    /// what a program checks of its own options after parse().
    [[noreturn]] void usage_error(const std::string& why) const;

private:
    struct option {
        std::string name;
        std::string metavar;  // empty for a flag
        std::string help;
        std::string what;  // what a value must be, for "--NAME: not WHAT: 'VALUE'"
        std::function<bool(std::string_view)> set;  // false: a bad value
    };

    std::string program_;
    std::string summary_;
    std::vector<option> options_;
    common_options parsed_;
    bool handshake_timeout_given_ = false;
};

/// What serve_options::make_transport is for these options: TLS with --tls-cert and
/// --tls-key, or empty (plaintext). A certificate or key that cannot be loaded prints
/// "<program>: tls: cannot load ..." to stderr and exits 1.
chat::transport_factory transport_or_exit(const common_options& opts);
/// For STARTTLS (opts.starttls): what wraps a plaintext transport in TLS with --tls-cert and
/// --tls-key (empty without them); exits 1 as transport_or_exit() does.
std::function<std::unique_ptr<chat::transport>(std::unique_ptr<chat::transport>)>
starttls_or_exit(const common_options& opts);
/// Binds a listener at opts.where(); on failure prints "<program>: cannot listen on ..." and
/// exits 1.
listener listen_or_exit(reactor& r, const common_options& opts, listen_options lo = {});

/// Prints "<program>: ready on <address> (<backend>)" to stdout and flushes it ("(<backend>,
/// <tls>)" with a `tls` mode: common_options::tls_mode()).
void announce_ready(std::string_view program, const listener& l, const reactor& r,
                    std::string_view tls = {});
/// The same line for a server bound at `at` on backend `backend` (a reactor_group's).
void announce_ready(std::string_view program, const address& at, std::string_view backend,
                    std::string_view tls = {});

/// The body of a server's main(): makes the reactor (exits 1 if the backend asked for cannot
/// be made), binds (exits 1 on failure; each with one "<program>: ..." line on stderr), prints the ready line, stops on SIGINT/SIGTERM, and
/// runs `start(r, l)` (and what it spawns) until everything has unwound.
/// \return main's exit code.
int run_server(std::string_view program, const common_options& opts,
               const std::function<task<>(reactor&, listener&)>& start, listen_options lo = {});

/// Parses a whole decimal number with an optional k/m/g suffix; false if it is not one.
bool parse_size(std::string_view text, std::size_t& out) noexcept;
/// Parses seconds ("20", "0.5"), at most a day; false if it is not that.
bool parse_seconds(std::string_view text, std::chrono::nanoseconds& out) noexcept;

}  // namespace ringchat::examples
