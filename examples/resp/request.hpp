// SPDX-License-Identifier: MIT
// examples/resp/request.hpp — RESP2 requests as a state machine over a channel's frames:
// multibulk ("*N", then N times "$LEN" + LEN bytes + CRLF) and inline (a line of words, as
// redis-cli and telnet send).
//
// The session asks count_wanted() (or terminator()) before each read and feeds each frame
// back; feed() says when a request is complete. Lines use the terminator "\n" (a "\r" before
// it is dropped); a bulk body a byte count, LEN + 2, so it is binary-safe. A body longer than
// the channel's max_frame comes as several counted frames of at most max_frame bytes, joined
// here, so that lines stay limited to max_frame while a bulk may be as long as its request
// declared (at most 512 MB).
// Invariant: memory follows what a request declared, once validated, and what has arrived;
// and the bytes of the request in progress (its arguments so far, the bulk being read
// included) never pass the query-buffer limit (client-query-buffer-limit, 1 GB by default):
// one byte past it, feed() says too_big, and the caller closes the connection, as Redis does.
//
// It is a plain state machine, not a coroutine: it costs no coroutine frame (an allocation)
// per request.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chat/channel.hpp"
#include "chat/terminator.hpp"

namespace resp {

constexpr long long max_bulk = 512LL * 1024 * 1024;  ///< proto-max-bulk-len
constexpr long long max_multibulk = 1024LL * 1024;   ///< arguments in one request
/// client-query-buffer-limit: the most bytes of arguments one request in progress may hold.
constexpr std::size_t default_query_limit = std::size_t{1} << 30;  // 1 GB, Redis' default
constexpr std::size_t min_query_limit = std::size_t{1} << 20;      // 1 MB, Redis' least

class request_parser {
public:
    enum class status {
        more,            ///< read on
        request,         ///< args() holds a request
        protocol_error,  ///< malformed: error() says why
        too_big,         ///< the request in progress passed the query-buffer limit (held())
    };

    /// `piece`: the most bytes one frame may hold (the channel's max_frame; 0 = no limit).
    /// `limit`: the most bytes of arguments a request in progress may hold.
    explicit request_parser(std::size_t piece, std::size_t limit = default_query_limit)
        : piece_(piece), limit_(limit) {}

    /// What the next read must use.
    ringchat::chat::terminator terminator() const;
    /// The same, as a number: the byte count the next read must use, or 0 for a line ("\n").
    /// The session sets its channel's terminator from it in place, once per read.
    std::size_t count_wanted() const noexcept {
        if (state_ != state::bulk_body) {
            return 0;
        }
        return piece_ == 0 ? bulk_left_ : std::min(bulk_left_, piece_);  // never 0: CRLF
    }
    /// One frame read with terminator(): a frame, or frame_too_long (other ends of the stream
    /// are the caller's). On `request`, args() holds it until the next feed(); its strings
    /// may be moved from.
    status feed(const ringchat::chat::frame& f);
    std::span<std::string> args() noexcept { return {args_.data(), argc_}; }
    /// After protocol_error: Redis' words ("Protocol error: ...").
    const std::string& error() const noexcept { return error_; }
    /// The bytes of arguments the request in progress holds: those read whole, and what has
    /// arrived of the bulk being read (its CRLF aside). After too_big: what it came to with
    /// the frame that passed the limit; args() then holds the arguments read before that
    /// frame, until the next feed().
    std::size_t held() const noexcept { return held_; }
    std::size_t limit() const noexcept { return limit_; }

private:
    enum class state { request_line, bulk_header, bulk_body };
    status line(std::string_view s);
    status header(std::string_view s);
    status body(std::string_view s);
    status fail(std::string why);
    status too_big();
    void clear_args();
    std::string& new_arg();

    std::size_t piece_;
    std::size_t limit_;
    std::size_t held_ = 0;      // bytes of arguments in args_ (see held())
    state state_ = state::request_line;
    // The request's arguments are the first argc_; the strings after them are kept from
    // earlier requests (clear_args()) for the next ones, so that a key longer than
    // std::string's inline 15 bytes costs no malloc and free per request. At most max_kept
    // of at most max_kept_capacity bytes each are kept, so an idle connection holds little.
    static constexpr std::size_t max_kept = 8;
    static constexpr std::size_t max_kept_capacity = 128;
    std::vector<std::string> args_;
    std::size_t argc_ = 0;
    long long args_left_ = 0;   // bulks still to come in this request
    std::size_t bulk_len_ = 0;  // the bulk being read: its declared length
    std::size_t bulk_left_ = 0; // ... and how much of it (with its CRLF) is still to come
    bool done_ = false;         // args_ was handed out: clear it at the next feed()
    std::string error_;
};

/// Splits an inline request as Redis' sdssplitargs does (quotes, \x escapes); false for
/// unbalanced quotes.
bool split_inline(std::string_view line, std::vector<std::string>& out);

}  // namespace resp
