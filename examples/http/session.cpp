// SPDX-License-Identifier: MIT
// examples/http/session.cpp — the http session (see session.hpp; the request cycle is
// described in main.cpp's header): the head as one frame, the body in slices, then the
// response, which for a file is one push (small) or a head and a file producer (sendfile).
#include "examples/http/session.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/core.h>

#include "chat/terminator.hpp"
#include "core/error.hpp"
#include "core/file.hpp"
#include "core/reactor.hpp"
#include "examples/common/linger.hpp"
#include "examples/http/body.hpp"
#include "examples/http/request.hpp"
#include "examples/http/response.hpp"
#include "producers/chunked.hpp"
#include "producers/file.hpp"

namespace http {

using namespace ringchat;

namespace {

/// A keep-alive connection with no byte in or out for this long is closed.
constexpr auto idle_timeout = std::chrono::seconds(60);
/// With this many file responses queued (each holds a descriptor), a session waits until
/// the queue is empty before it reads on: a client pipelining GETs cannot exhaust descriptors.
constexpr std::size_t max_queued_files = 16;
/// A lingering close reads (and drops) this long and this much at most.
constexpr auto linger_time = std::chrono::seconds(2);
constexpr std::size_t linger_bytes = 1 << 20;
/// The chunk size of a chunked response body.
constexpr std::size_t chunk_size = 16 * 1024;

/// How a read inside a request ended: 408 when its deadline passed (the channel is still
/// open for the answer), -1 for any other end (closed, reset, end of stream, a stop).
int ended(const chat::frame& f, const chat::channel& ch) {
    return f.error() == std::errc::timed_out && ch.is_open() ? 408 : -1;
}

/// What a GET or HEAD queued.
enum class sent {
    response,     ///< a whole response (a file's head and nothing more, a listing, an error)
    file,         ///< a file producer (it holds a descriptor until sent)
    unavailable,  ///< nothing: descriptors are exhausted, the caller answers 503 and closes
};

/// 503, for a request that found no descriptor free: a client should try again soon, on a
/// new connection (this one is closed after the response).
std::string unavailable_response(const http::exchange& ex) {
    return http::error_response(503, ex, "Retry-After: 1\r\n");
}

/// Reads the request body (kept in `body` if `keep`). \return 0 when read, a status to
/// refuse it with (400 malformed chunking, 408 too slow, 413 over --max-body, 431 trailers
/// over --max-header), or -1 when the connection ended.
task<int> read_body(chat::channel& ch, http::body_framing framing, const config& cfg, bool keep,
                    std::string& body) {
    http::body_reader reader(framing, cfg.max_body, cfg.max_header, keep, body);
    while (!reader.finished()) {
        ch.set_terminator(reader.terminator());
        auto f = co_await ch.read();
        if (!f && f.error() != errc::frame_too_long) {
            co_return ended(f, ch);
        }
        reader.feed(f);
    }
    co_return reader.refusal();
}

/// POST /echo: the body back, with the request's Content-Type.
void echo(chat::channel& ch, const http::request& req, const http::exchange& ex, bool chunked,
          std::string& body) {
    http::response_head h(200);
    const std::string* type = req.find("content-type");
    h.field("Content-Type", type != nullptr ? std::string_view(*type) : "application/octet-stream");
    if (chunked && ex.minor >= 1) {
        h.field("Transfer-Encoding", "chunked");
        ch.push(h.finish(ex));
        ch.push_with_producer(producers::chunked(producers::simple(std::move(body), chunk_size)));
    } else {
        h.length(body.size());
        ch.push(h.finish(ex));
        ch.push(std::move(body));
    }
    body = std::string();
}

sent directory_listing(chat::channel& ch, http::opened dir, std::string_view path,
                       const http::exchange& ex) {
    std::string page = http::site::listing(std::move(dir), path);
    http::response_head h(200);
    h.field("Content-Type", "text/html; charset=utf-8");
    if (ex.minor >= 1) {
        h.field("Transfer-Encoding", "chunked");
        ch.push(h.finish(ex));
        if (!ex.head_only) {
            ch.push_with_producer(producers::chunked(producers::simple(std::move(page), 4096)));
        }
    } else {
        h.length(page.size());
        ch.push(h.finish(ex));
        if (!ex.head_only) {
            ch.push(std::move(page));
        }
    }
    return sent::response;
}

/// GET/HEAD of a regular file, whole or one range of it.
/// `f` is the cache's (its descriptor is duplicated for the send), or the caller's alone
/// (`uncached`: its descriptor goes to the send).
sent send_file(chat::channel& ch, server& srv, http::cached_file& f, bool uncached,
               std::string_view path, const http::request& req, const http::exchange& ex) {
    const std::uint64_t size = f.size();
    std::uint64_t first = 0;
    std::uint64_t length = size;
    int status = 200;
    if (const std::string* range = req.find("range")) {
        switch (http::parse_range(*range, size, first, length)) {
        case http::range_kind::none:
            break;
        case http::range_kind::satisfiable:
            status = 206;
            break;
        case http::range_kind::unsatisfiable:
            ch.push(http::error_response(416, ex,
                                         fmt::format("Content-Range: bytes */{}\r\n", size)));
            return sent::response;
        }
    }
    http::response_head h(status);
    h.fields(f.fields);
    if (status == 206) {
        h.field("Content-Range", fmt::format("bytes {}-{}/{}", first, first + length - 1, size));
    }
    h.length(length);
    if (f.in_memory) {
        // Head and body in one string: one send, one segment.
        std::string out = h.finish(ex);
        if (!ex.head_only) {
            out.append(f.content, static_cast<std::size_t>(first),
                       static_cast<std::size_t>(length));
        }
        ch.push(std::move(out));
        return sent::response;
    }
    if (ex.head_only || length == 0) {
        ch.push(h.finish(ex));
        return sent::response;
    }
    // A descriptor of its own, so that the cache may close the entry's while this one sends
    // (before the head is pushed: without one, the answer is a 503 instead).
    const int fd = uncached ? f.file.release() : ::fcntl(f.file.fd(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        const int err = errno;
        if (http::descriptors_exhausted(err)) {
            srv.exhausted.note(err, path);
            return sent::unavailable;
        }
        ch.push(http::error_response(500, ex));
        return sent::response;
    }
    ch.push(h.finish(ex));
    // By itself in the queue, so that the channel sends it with sendfile (zero copy).
    ch.push_with_producer(producers::file(ringchat::file(ch.owner(), fd), first, length));
    return sent::file;
}

/// A failed resolve: 503 (descriptors exhausted, errno says which) is the caller's to
/// answer; any other status is pushed here.
sent refuse(chat::channel& ch, server& srv, int status, std::string_view path,
            const http::exchange& ex) {
    if (status == 503) {
        srv.exhausted.note(errno, path);
        return sent::unavailable;
    }
    ch.push(http::error_response(status, ex));
    return sent::response;
}

/// A regular file just opened for `path`: held by the cache (when it is on), then sent.
sent cache_and_send(chat::channel& ch, server& srv, std::string_view path, http::opened opened,
                    std::string_view name, const http::request& req, const http::exchange& ex) {
    auto f = http::cached_file::make(std::move(opened), name);
    if (!srv.cache.enabled()) {
        return send_file(ch, srv, *f, true, path, req, ex);
    }
    http::cached_file* held = srv.cache.insert(path, std::move(f));
    return send_file(ch, srv, *held, false, path, req, ex);
}

/// GET/HEAD of a path under the root.
sent send_path(chat::channel& ch, server& srv, const http::request& req, const std::string& path,
               const http::exchange& ex) {
    if (http::cached_file* hit = srv.cache.find(path)) {
        return send_file(ch, srv, *hit, false, path, req, ex);
    }
    http::opened opened;
    int status = srv.site.open(path, opened);
    if (status == 503 && srv.cache.size() > 0) {
        srv.cache.clear();  // its descriptors go back (those no response is sending from)
        status = srv.site.open(path, opened);
    }
    if (status != 0) {
        return refuse(ch, srv, status, path, ex);
    }
    if (S_ISDIR(opened.st.st_mode)) {
        if (!path.ends_with('/')) {
            const auto location = fmt::format("Location: {}/\r\n", http::percent_encode(path));
            ch.push(http::error_response(301, ex, location));
            return sent::response;
        }
        http::opened index;
        status = srv.site.open(path + "index.html", index);
        if (status == 404) {
            return directory_listing(ch, std::move(opened), path, ex);
        }
        if (status != 0) {
            return refuse(ch, srv, status, path, ex);
        }
        opened = std::move(index);
        if (!S_ISREG(opened.st.st_mode)) {
            ch.push(http::error_response(403, ex));  // an index.html that is not a file
            return sent::response;
        }
        return cache_and_send(ch, srv, path, std::move(opened), "index.html", req, ex);
    }
    if (!S_ISREG(opened.st.st_mode)) {
        ch.push(http::error_response(403, ex));  // a device, a FIFO, a socket
        return sent::response;
    }
    return cache_and_send(ch, srv, path, std::move(opened), path, req, ex);
}

}  // namespace

void exhaustion_log::note(int err, std::string_view path) {
    ++answered_;
    const auto now = std::chrono::steady_clock::now();
    if (logged_ && now - last_ < std::chrono::seconds(1)) {
        return;
    }
    const std::string more =
        answered_ > 1 ? fmt::format("; {} more since the last such line", answered_ - 1)
                      : std::string();
    fmt::print(stderr,
               "http: out of file descriptors ({}: {}) serving {:?}: answering 503 "
               "Service Unavailable with Retry-After: 1{}\n",
               err == EMFILE ? "EMFILE" : "ENFILE", std::generic_category().message(err),
               path, more);
    logged_ = true;
    last_ = now;
    answered_ = 0;
}

chat::channel_options channel_options(const config& cfg, bool zero_copy) {
    chat::channel_options o;
    o.max_frame = cfg.max_header;  // the head's limit, and the body's slice size
    o.low_water = 0;               // drain() waits until all output is sent
    o.idle_timeout = idle_timeout;
    o.zero_copy = zero_copy;  // the bench compares the two paths
    return o;
}

std::size_t cache_size(std::size_t wanted, std::chrono::nanoseconds validity) {
    rlimit limit{};
    if (validity.count() <= 0 || ::getrlimit(RLIMIT_NOFILE, &limit) != 0 ||
        limit.rlim_cur < 1024) {
        return 0;
    }
    return std::min<std::size_t>(wanted, limit.rlim_cur / 16);
}

task<> session(chat::channel& ch, server& srv) {
    std::size_t files_queued = 0;
    std::string body;
    for (;;) {
        ch.set_terminator("\r\n\r\n");
        ch.set_frame_timeout(srv.cfg.header_timeout);
        auto head = co_await ch.read();
        if (!head) {
            if (head.error() == errc::frame_too_long) {
                ch.push(http::error_response(431, {1, false, false}));
                co_await examples::lingering_close(ch, linger_time, linger_bytes);
            } else if (ended(head, ch) == 408) {
                // A head trickled past --header-timeout; the client may not read either,
                // so no lingering close: what it did not take is reset.
                ch.push(http::error_response(408, {1, false, false}));
            }
            break;  // end of stream (an unfinished request is dropped), reset, timeout, stop
        }
        std::string_view block = head.text();
        while (block.starts_with("\r\n")) {
            block.remove_prefix(2);  // empty lines before a request line are ignored
        }
        if (block.empty()) {
            continue;
        }
        http::request req;
        std::string why;
        http::exchange ex{1, false, false};
        http::body_framing framing;
        int refused = http::parse_head(block, req, why);
        if (refused == 0) {
            ex = {req.minor, req.keep_alive(), req.method == "HEAD"};
            refused = http::body_framing_of(req, framing);
        }
        body.clear();
        std::string path;
        const int bad_path = refused == 0 ? http::decode_path(req.target, path) : 0;
        const bool is_echo = bad_path == 0 && path == "/echo" && req.method == "POST";
        if (refused == 0 && framing.what != http::body_framing::kind::none) {
            if (framing.what == http::body_framing::kind::length &&
                framing.length > srv.cfg.max_body) {
                refused = 413;
            } else {
                if (req.minor >= 1 && req.lists("expect", "100-continue")) {
                    ch.push("HTTP/1.1 100 Continue\r\n\r\n");
                }
                ch.set_frame_timeout(srv.cfg.body_timeout);
                refused = co_await read_body(ch, framing, srv.cfg, is_echo, body);
                if (refused < 0) {
                    break;  // the connection ended inside the body
                }
                if (refused == 408) {
                    ex.keep_alive = false;
                    ch.push(http::error_response(408, ex));
                    break;  // the input has ended: no lingering close to read it
                }
            }
        }
        if (refused != 0) {
            ex.keep_alive = false;
            ch.push(http::error_response(refused, ex));
            co_await examples::lingering_close(ch, linger_time, linger_bytes);
            break;
        }
        if (!ch.writable()) {
            files_queued = 0;  // everything before went out
        }
        bool queued_file = false;
        if (bad_path != 0) {
            ch.push(http::error_response(bad_path, ex));
        } else if (path == "/echo") {
            if (is_echo) {
                echo(ch, req, ex, framing.what == http::body_framing::kind::chunked, body);
            } else {
                ch.push(http::error_response(405, ex, "Allow: POST\r\n"));
            }
        } else if (req.method == "GET" || req.method == "HEAD") {
            const sent what = send_path(ch, srv, req, path, ex);
            if (what == sent::unavailable) {
                ex.keep_alive = false;  // closing gives a descriptor back
                ch.push(unavailable_response(ex));
                co_await examples::lingering_close(ch, linger_time, linger_bytes);
                break;
            }
            queued_file = what == sent::file;
        } else {
            ch.push(http::error_response(405, ex, "Allow: GET, HEAD\r\n"));
        }
        if (!ex.keep_alive) {
            break;  // serve() sends what is queued, then closes
        }
        files_queued += queued_file ? 1 : 0;
        if (files_queued >= max_queued_files) {
            co_await ch.flush();
            files_queued = 0;
        } else if (ch.queued_bytes() >= high_water) {
            co_await ch.drain();
        }
    }
}

}  // namespace http
