// SPDX-License-Identifier: MIT
// examples/http — an HTTP/1.1 static file server over the directory given by --root.
//
// Per connection (examples/http/session.cpp), one request after another (so pipelined
// responses go out in request order): the head is read as one frame with the terminator "\r\n\r\n" (the channel's
// max_frame, --max-header, bounds it: 431 past it), parsed (request.hpp), then the body, if
// any: Content-Length as counted frames, chunked by switching between "\r\n" (size lines) and
// counts (data), both in slices of at most max_frame bytes, so --max-body (413 past it) is
// independent of the frame limit. Then the response:
//   GET/HEAD of a file: found in the open-file cache (file_cache.hpp: a descriptor, its stat
//       and its fields, kept --file-cache-validity) or opened under the root (site.hpp) and
//       cached. A file of 16 KiB at most is held in memory: head and bytes go out in one
//       push (one send). A larger one: the head with push(), the bytes with producers::file
//       (on a duplicate of the cached descriptor) pushed by itself, so the channel sends them
//       with sendfile(2) (zero copy). Range → 206 or 416.
//   A directory: 301 to the path with "/", its index.html, or else a listing sent with
//       producers::chunked (Transfer-Encoding: chunked; Content-Length for HTTP/1.0).
//   POST /echo: the request body back, chunked when the request came chunked.
// An error in the framing (400, 413, 431, 501, 505) ends the connection after the response,
// with a lingering close so that the client reads it; 403, 404 and 405 keep it open. Out of
// descriptors (EMFILE or ENFILE from openat2(2) for a path that exists: site.hpp), a request
// gets 503 with "Retry-After: 1" and its connection is closed the same way, which gives one
// descriptor back; one line on stderr says so, at most once a second.
//
// With --threads N, a reactor per thread (SO_REUSEPORT listeners: the kernel spreads the
// connections), each with a server of its own: its own open-file cache (a N-th of the
// --file-cache entries, so the descriptors it holds stay within the same share of
// RLIMIT_NOFILE), its own sweep and root descriptor: no server state is shared between
// threads (the TLS context is, and may be).
//
//     build/examples/http --root www &            # port 8080
//     build/examples/http --root www --threads 0 &   # a reactor per CPU
//     curl -v http://127.0.0.1:8080/index.html
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "chat/serve.hpp"
#include "core/reactor.hpp"
#include "core/reactor_group.hpp"
#include "examples/common/group_server.hpp"
#include "examples/common/options.hpp"
#include "examples/http/file_cache.hpp"
#include "examples/http/session.hpp"
#include "examples/http/site.hpp"

using namespace ringchat;

namespace {

constexpr std::uint16_t default_port = 8080;
/// Files the open-file cache holds at most (--file-cache).
constexpr std::size_t default_cache_entries = 256;

/// Closes what the open-file cache holds past its validity, a validity after it expired at
/// most (find() drops an expired entry too, but only for a path asked for again).
task<> sweep(reactor& r, http::file_cache& cache) {
    for (;;) {
        // TRICKY: awaited into a variable; GCC 12 miscompiles `if (!co_await ...)`.
        auto slept = co_await r.sleep_for(cache.validity());
        if (!slept) {
            break;  // ECANCELED: the server is stopping
        }
        cache.drop_expired();
    }
}

/// Starts the sweep of `srv`'s cache on `r`, if it has one.
void start_sweep(reactor& r, http::server& srv) {
    if (srv.cache.enabled()) {
        r.spawn(sweep(r, srv.cache));
    }
}

task<> serve_http(reactor& r, listener& l, http::server& srv, chat::serve_options so) {
    start_sweep(r, srv);
    co_await chat::serve(r, l, http::handler{&srv}, so);
}

}  // namespace

int main(int argc, char** argv) {
    examples::command_line cli("http", "An HTTP/1.1 static file server.", default_port);
    std::string root = ".";
    http::config cfg;
    cli.text("root", "DIR", "the directory to serve (default: the current one)", root);
    cli.number("max-body", "N", "largest request body, in bytes (default 1m); larger: 413",
               cfg.max_body);
    cli.number("max-header", "N",
               "largest request head (request line and fields), in bytes (default 16k); "
               "larger: 431",
               cfg.max_header);
    cli.seconds("header-timeout",
                "a request head must be complete S seconds after its first byte; else 408 "
                "and close (default 20; 0 = none)",
                cfg.header_timeout);
    cli.seconds("body-timeout",
                "each --max-header slice of a request body must be complete S seconds after "
                "its first byte; else 408 and close (default 60; 0 = none)",
                cfg.body_timeout);
    std::size_t cache_entries = default_cache_entries;
    std::chrono::nanoseconds cache_validity = std::chrono::seconds(1);
    cli.number("file-cache", "N",
               "files kept open with their stat for --file-cache-validity (default 256; 0 = "
               "none; at most a 16th of RLIMIT_NOFILE, none below 1024)",
               cache_entries);
    cli.seconds("file-cache-validity",
                "a cached file is served S seconds at most before it is opened again "
                "(default 1; 0 = no cache)",
                cache_validity);
    bool no_zero_copy = false;
    cli.flag("no-zero-copy", "read files into memory and send them, instead of sendfile(2)",
             no_zero_copy);
    cli.tls();
    cli.threads();
    const auto opts = cli.parse(argc, argv);
    if (cfg.max_header < 64) {
        cli.usage_error("--max-header: must be at least 64");
    }
    // A server whose cache holds a `shares`-th of the entries (one per reactor).
    const auto make_server = [&](std::size_t shares) {
        const std::size_t entries = http::cache_size(cache_entries, cache_validity) / shares;
        return std::make_unique<http::server>(http::server{
            http::site(root), cfg, http::file_cache({entries, cache_validity}), {}});
    };
    std::unique_ptr<http::server> srv;
    try {
        srv = make_server(1);
    } catch (const std::exception& e) {
        cli.usage_error(e.what());  // "--root DIR: not a directory", say: a bad value
    }
    chat::serve_options so;
    so.channel = http::channel_options(cfg, !no_zero_copy);
    so.make_transport = examples::transport_or_exit(opts);
    if (opts.threads != 1) {
        srv.reset();  // it showed that the root opens; each reactor gets its own
        std::vector<std::unique_ptr<http::server>> servers;  // outlive the group
        chat::group_serve_options o;
        o.serve = so;
        return examples::run_group_server(
            "http", opts,
            [&](reactor_group& g) {
                for (unsigned k = 0; k < g.size(); ++k) {
                    servers.push_back(make_server(g.size()));
                }
                return http::group_handler{&g, &servers};
            },
            o,
            [&servers](reactor& r, unsigned k) { start_sweep(r, *servers[k]); });
    }
    return examples::run_server("http", opts, [&srv, so](reactor& r, listener& l) {
        return serve_http(r, l, *srv, so);
    });
}
