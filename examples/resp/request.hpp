// examples/resp/request.hpp — RESP2 requests as a state machine over a channel's frames:
// multibulk ("*N", then N times "$LEN" + LEN bytes + CRLF) and inline (a line of words, as
// redis-cli and telnet send).
//
// The session asks terminator() before each read and feeds each frame back; feed() says when
// a request is complete. Lines use the terminator "\n" (a "\r" before it is dropped); a bulk
// body a byte count, LEN + 2, so it is binary-safe. A body longer than the channel's max_frame
// comes as several counted frames of at most max_frame bytes, joined here, so that lines stay
// limited to max_frame while a bulk may be as long as its request declared (at most 512 MB).
// Invariant: memory follows what a request declared, once validated, and what has arrived.
//
// It is a plain state machine, not a coroutine: it costs no coroutine frame (an allocation)
// per request.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "chat/channel.hpp"
#include "chat/terminator.hpp"

namespace resp {

constexpr long long max_bulk = 512LL * 1024 * 1024;  ///< proto-max-bulk-len
constexpr long long max_multibulk = 1024LL * 1024;   ///< arguments in one request

class request_parser {
public:
    enum class status { more, request, protocol_error };

    /// `piece`: the most bytes one frame may hold (the channel's max_frame; 0 = no limit).
    explicit request_parser(std::size_t piece) : piece_(piece) {}

    /// What the next read must use.
    ringchat::chat::terminator terminator() const;
    /// One frame read with terminator(): a frame, or frame_too_long (other ends of the stream
    /// are the caller's). On `request`, args() holds it until the next feed().
    status feed(const ringchat::chat::frame& f);
    std::vector<std::string>& args() noexcept { return args_; }
    /// After protocol_error: Redis' words ("Protocol error: ...").
    const std::string& error() const noexcept { return error_; }

private:
    enum class state { request_line, bulk_header, bulk_body };
    status line(std::string_view s);
    status header(std::string_view s);
    status body(std::string_view s);
    status fail(std::string why);

    std::size_t piece_;
    state state_ = state::request_line;
    std::vector<std::string> args_;
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
