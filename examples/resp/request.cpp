// SPDX-License-Identifier: MIT
// examples/resp/request.cpp — the RESP2 request parser.
#include "examples/resp/request.hpp"

#include <algorithm>
#include <charconv>
#include <utility>
#include <string_view>

#include <fmt/core.h>


namespace resp {
namespace {

using ringchat::chat::frame;

std::string_view line_of(const frame& f) {
    std::string_view s = f.text();
    if (!s.empty() && s.back() == '\r') {
        s.remove_suffix(1);
    }
    return s;
}

/// A whole decimal number (optional '-'), as Redis' string2ll takes a length: what
/// std::from_chars takes, all of `s`. Up to 18 digits (every length and count a request
/// can have) by hand, where no overflow can happen; longer ones by from_chars, for its range
/// check.
inline bool to_number(std::string_view s, long long& out) {
    const bool negative = !s.empty() && s.front() == '-';
    const std::string_view digits = s.substr(negative ? 1 : 0);
    if (digits.empty() || digits.size() > 18) {
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return !s.empty() && ec == std::errc() && end == s.data() + s.size();
    }
    long long n = 0;
    for (const char c : digits) {
        if (c < '0' || c > '9') {
            return false;
        }
        n = n * 10 + (c - '0');
    }
    out = negative ? -n : n;
    return true;
}

/// s without its first byte. \pre !s.empty() (substr(1) would check it again, and throw)
std::string_view after_first(std::string_view s) noexcept { return {s.data() + 1, s.size() - 1}; }

int hex(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = static_cast<char>(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f'; }

}  // namespace

bool split_inline(std::string_view s, std::vector<std::string>& out) {
    std::size_t i = 0;
    for (;;) {
        while (i < s.size() && space(s[i])) {
            ++i;
        }
        if (i == s.size()) {
            return true;
        }
        std::string& word = out.emplace_back();
        char quote = 0;
        for (;;) {
            if (quote == 0) {
                if (i == s.size() || space(s[i])) {
                    break;
                }
                if (s[i] == '"' || s[i] == '\'') {
                    quote = s[i++];
                    continue;
                }
                word += s[i++];
                continue;
            }
            if (i == s.size()) {
                return false;  // unterminated quotes
            }
            if (s[i] == quote) {
                // A closing quote must be followed by a space or the end.
                if (++i < s.size() && !space(s[i])) {
                    return false;
                }
                break;
            }
            if (quote == '"' && s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x' &&
                hex(s[i + 2]) >= 0 && hex(s[i + 3]) >= 0) {
                word += static_cast<char>(hex(s[i + 2]) * 16 + hex(s[i + 3]));
                i += 4;
            } else if (quote == '"' && s[i] == '\\' && i + 1 < s.size()) {
                const char c = s[i + 1];
                word += c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c == 'b' ? '\b'
                      : c == 'a' ? '\a' : c;
                i += 2;
            } else if (quote == '\'' && s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '\'') {
                word += '\'';
                i += 2;
            } else {
                word += s[i++];
            }
        }
    }
}

ringchat::chat::terminator request_parser::terminator() const {
    const std::size_t n = count_wanted();
    return n == 0 ? ringchat::chat::terminator::bytes("\n") : ringchat::chat::terminator::count(n);
}

void request_parser::clear_args() {
    for (std::size_t i = 0; i < argc_; ++i) {
        if (args_[i].capacity() > max_kept_capacity) {
            args_[i] = std::string();  // a long value's buffer is not kept
        }
    }
    argc_ = 0;
    if (args_.size() > max_kept) {
        args_.resize(max_kept);
        if (args_.capacity() > 8 * max_kept) {
            args_.shrink_to_fit();  // after a request of many arguments (up to 1,024 reserved)
        }
    }
}

std::string& request_parser::new_arg() {
    if (argc_ == args_.size()) {
        args_.emplace_back();
    }
    std::string& a = args_[argc_++];
    a.clear();
    return a;
}

request_parser::status request_parser::fail(std::string why) {
    error_ = std::move(why);
    state_ = state::request_line;
    clear_args();
    held_ = 0;
    return status::protocol_error;
}

request_parser::status request_parser::too_big() {
    state_ = state::request_line;
    done_ = true;  // args_ (and held_) stay for the caller's log line, until the next feed()
    return status::too_big;
}

request_parser::status request_parser::feed(const frame& f) {
    if (std::exchange(done_, false)) {
        clear_args();
        held_ = 0;
    }
    if (!f) {
        // The frame limit: a line too long (a count's pieces never are).
        return fail(state_ == state::request_line ? "Protocol error: too big inline request"
                                                  : "Protocol error: too big bulk count string");
    }
    switch (state_) {
    case state::request_line:
        return line(line_of(f));
    case state::bulk_header:
        return header(line_of(f));
    case state::bulk_body:
        return body(f.text());
    }
    return status::more;
}

request_parser::status request_parser::line(std::string_view s) {
    if (s.empty()) {
        return status::more;  // Redis skips empty lines between requests
    }
    if (s.front() != '*') {
        args_.clear();  // split_inline() appends (the kept buffers go: inline is rare)
        const bool split = split_inline(s, args_);
        argc_ = args_.size();
        if (!split) {
            return fail("Protocol error: unbalanced quotes in request");
        }
        held_ = s.size();  // a line is bounded by max_frame too; a limit below it still holds
        if (held_ > limit_) {
            return too_big();
        }
        done_ = true;
        return argc_ == 0 ? status::more : status::request;
    }
    long long count = 0;
    if (!to_number(after_first(s), count) || count > max_multibulk) {
        return fail("Protocol error: invalid multibulk length");
    }
    if (count <= 0) {
        return status::more;  // "*0" and "*-1" are empty requests, skipped
    }
    args_.reserve(static_cast<std::size_t>(std::min(count, 1024LL)));
    args_left_ = count;
    state_ = state::bulk_header;
    return status::more;
}

request_parser::status request_parser::header(std::string_view s) {
    if (s.empty() || s.front() != '$') {
        return fail(fmt::format("Protocol error: expected '$', got '{}'",
                                s.empty() ? ' ' : s.front()));
    }
    long long len = 0;
    if (!to_number(after_first(s), len) || len < 0 || len > max_bulk) {
        return fail("Protocol error: invalid bulk length");
    }
    bulk_len_ = static_cast<std::size_t>(len);
    bulk_left_ = bulk_len_ + 2;
    std::string& arg = new_arg();
    if (piece_ != 0 && bulk_left_ > piece_) {
        arg.reserve(std::min<std::size_t>(bulk_len_, 1 << 20));  // grows as the bytes arrive
    }
    state_ = state::bulk_body;
    return status::more;
}

request_parser::status request_parser::body(std::string_view s) {
    std::string& arg = args_[argc_ - 1];
    // The bulk's own bytes in this piece: all of it but what belongs to its CRLF.
    const std::size_t data_left = bulk_left_ > 2 ? bulk_left_ - 2 : 0;
    held_ += std::min(s.size(), data_left);
    if (held_ > limit_) {
        return too_big();  // as Redis does, on the bytes that arrived, not on those declared
    }
    if (arg.empty() && s.size() == bulk_left_) {
        // The whole bulk in one piece (the usual case): its CRLF is checked where it lies.
        if (!s.ends_with("\r\n")) {
            return fail("Protocol error: expected CRLF after bulk data");
        }
        arg.assign(s.data(), bulk_len_);
        bulk_left_ = 0;
    } else {
        arg.append(s);
        bulk_left_ -= s.size();
        if (bulk_left_ > 0) {
            return status::more;
        }
        if (!arg.ends_with("\r\n")) {
            return fail("Protocol error: expected CRLF after bulk data");
        }
        arg.resize(bulk_len_);
    }
    if (--args_left_ > 0) {
        state_ = state::bulk_header;
        return status::more;
    }
    state_ = state::request_line;
    done_ = true;
    return status::request;
}

}  // namespace resp
