// SPDX-License-Identifier: MIT
// producers/escaping.hpp — a message body as SMTP DATA sends it (RFC 5321 §4.5.2): every line
// that starts with "." gets one more "." in front (dot-stuffing), and the data ends with
// "<CRLF>.<CRLF>".
//
//     ch.push("DATA\r\n");   // after the 354 reply:
//     ch.push_with_producer(producers::escaping(producers::simple(message)));
//
// A line starts at the beginning of the data and after every "\n": after each CRLF, as RFC
// 5321 defines lines, and also after a bare LF, as smtplib's `(?m)^\.` does. A bare LF is not
// a line end in SMTP, but some servers take it for one; stuffing there too means no input can
// end the DATA early ("\n.\r\n" smuggling). Nothing else is rewritten: line endings are not
// normalized (give CRLF text). The end: ".\r\n" if the data ended with "\r\n", else
// "\r\n.\r\n" (smtplib's rule; empty data gives "\r\n.\r\n").
// Works across chunk boundaries: the state is the last two bytes of the input.
#pragma once

#include <optional>
#include <type_traits>
#include <utility>

#include "producer.hpp"
#include "wrapper.hpp"

namespace ringchat::producers {

template <producer P>
class escaping : public detail::wrapper<escaping<P>, sync_producer<P>> {
public:
    explicit escaping(P inner) noexcept(std::is_nothrow_move_constructible_v<P>)
        : inner_(std::move(inner)) {}

    /// The wrapped producer.
    P& first() noexcept { return inner_; }

private:
    friend detail::wrapper_state<escaping>;

    std::optional<chunk> feed(chunk in) {
        const bool starts_line = last_ == '\n';
        std::size_t dots = 0;
        bool at_start = starts_line;
        for (const char c : in) {
            dots += at_start && c == '.' ? 1 : 0;
            at_start = c == '\n';
        }
        before_last_ = in.size() >= 2 ? in[in.size() - 2] : last_;
        last_ = in.back();
        if (dots == 0) {
            return in;
        }
        chunk out;
        out.reserve(in.size() + dots);
        at_start = starts_line;
        for (const char c : in) {
            if (at_start && c == '.') {
                out += '.';
            }
            out += c;
            at_start = c == '\n';
        }
        return out;
    }
    chunk finish() {
        if (before_last_ == '\r' && last_ == '\n') {
            return chunk(".\r\n");
        }
        return chunk("\r\n.\r\n");
    }

    P inner_;
    // The last two bytes of the input so far. Stuffing only inserts a '.' before a '.', so
    // the output ends with CRLF exactly when the input does. TRICKY: before any input they
    // are "\0\n": the first byte starts a line, and empty data does not end with CRLF.
    char before_last_ = '\0';
    char last_ = '\n';
};

}  // namespace ringchat::producers
