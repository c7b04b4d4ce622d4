// SPDX-License-Identifier: MIT
// examples/http/body.hpp — a request body (RFC 9112 §6, §7.1) read frame by frame, as a state
// machine over a channel's frames: Content-Length as counted frames, chunked by switching
// between "\r\n" (size lines, the CRLF after the data, trailer fields) and counts (data), all
// in slices of at most `slice` bytes (the channel's max_frame), so that the body limit is
// independent of the frame limit. No I/O: the session asks terminator() before each read and
// feeds each frame back (as examples/resp/request.hpp does), and tests/fuzz drives it alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "chat/channel.hpp"
#include "chat/terminator.hpp"
#include "examples/http/request.hpp"

namespace http {

/// A chunk-size line: hex digits, then optional ";extensions". \return false if malformed.
bool chunk_size_of(std::string_view line, std::uint64_t& size);

class body_reader {
public:
    enum class status {
        more,     ///< read on, with terminator()
        done,     ///< the body is read (appended to `body` if `keep`)
        refused,  ///< refusal() says with what
    };

    /// `max_body`: the most bytes a chunked body may declare (a Content-Length over it is
    /// the caller's to refuse before). `slice`: the channel's max_frame, which also bounds
    /// the trailer fields. The body goes to `body` if `keep`.
    body_reader(body_framing framing, std::size_t max_body, std::size_t slice, bool keep,
                std::string& body);

    /// What the next read must use.
    ringchat::chat::terminator terminator() const;
    /// One frame read with terminator(): a frame, or frame_too_long (other ends of the stream
    /// are the caller's).
    status feed(const ringchat::chat::frame& f);
    /// The body is read, or refused.
    bool finished() const noexcept { return state_ == state::done || refusal_ != 0; }
    /// 0, or the status to refuse the body with: 400 (malformed chunking), 413 (a chunked
    /// body over max_body), 431 (trailer fields over `slice`).
    int refusal() const noexcept { return refusal_; }

private:
    enum class state { data, size_line, data_end, trailers, done };
    status refuse(int why);

    std::size_t max_body_;
    std::size_t slice_;
    bool keep_;
    bool chunked_;
    std::string& body_;
    state state_;
    std::uint64_t left_ = 0;     // bytes of the body (Content-Length) or chunk still to come
    std::uint64_t total_ = 0;    // chunked: bytes of data declared so far
    std::size_t trailers_ = 0;   // bytes of trailer fields (dropped)
    int refusal_ = 0;
};

}  // namespace http
