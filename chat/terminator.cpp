// SPDX-License-Identifier: MIT
// chat/terminator.cpp — the terminator value and asynchat's scan step, over plain bytes.
//
// Each branch of `scan()` mirrors one branch of asynchat 3.11's `handle_read` loop
// (docs/asynchat-semantics.md §4.2) and says which. Invariant: nothing here allocates once a
// terminator exists, and `scan()` only writes `t` to count a count down.
#include "terminator.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace ringchat::chat {

namespace {

std::string_view as_chars(std::span<const std::byte> s) noexcept {
    return {reinterpret_cast<const char*>(s.data()), s.size()};
}

}  // namespace

std::size_t detail::find_text(std::span<const std::byte> in, std::string_view text) noexcept {
    // glibc's memmem is the two-way algorithm: linear in the buffer whatever the peer sends.
    const void* at = ::memmem(in.data(), in.size(), text.data(), text.size());
    if (at == nullptr) {
        return std::string_view::npos;
    }
    return static_cast<std::size_t>(static_cast<const std::byte*>(at) - in.data());
}

terminator terminator::count(std::uint64_t n) noexcept {
    terminator t;
    t.kind_ = terminator_kind::count;
    t.count_ = n;
    return t;
}

std::uint64_t terminator::checked(std::int64_t n) {
    if (n < 0) {
        throw std::invalid_argument("the number of received bytes must be positive");
    }
    return static_cast<std::uint64_t>(n);
}

terminator terminator::checked_count(std::int64_t n) { return count(checked(n)); }

terminator terminator::bytes(std::string_view s) {
    terminator t;
    t.kind_ = terminator_kind::bytes;
    t.text_ = s;
    return t;
}

// Out of line: inlined into callers, GCC 12 warns (-Wrestrict, falsely) about string::assign.
void terminator::store_text(std::string_view s) { text_.assign(s); }

terminator terminator::bytes(std::span<const std::byte> s) {
    return bytes(as_chars(s));
}

std::size_t find_prefix_at_end(std::string_view haystack, std::string_view needle) noexcept {
    // asynchat tries l = len(needle)-1 down to 1 and returns the first l with
    // haystack.endswith(needle[:l]); lengths beyond the haystack can never match.
    if (needle.empty()) {
        return 0;
    }
    for (std::size_t l = std::min(needle.size() - 1, haystack.size()); l > 0; --l) {
        if (haystack.substr(haystack.size() - l) == needle.substr(0, l)) {
            return l;
        }
    }
    return 0;
}

std::size_t find_prefix_at_end(std::span<const std::byte> haystack,
                               std::span<const std::byte> needle) noexcept {
    return find_prefix_at_end(as_chars(haystack), as_chars(needle));
}

scan_step scan(std::span<const std::byte> in, terminator& t) noexcept {
    const std::size_t lb = in.size();
    // asynchat's loop runs only `while self.ac_in_buffer`. Returning here also keeps a null
    // data() away from memchr/memmem.
    if (lb == 0) {
        return {0, 0, false};
    }
    // "no terminator, collect it all": None, 0 and b'' are all falsy.
    if (!t.active()) {
        return {lb, 0, false};
    }
    // "numeric terminator": collect up to n bytes; on the n-th, zero the count and find.
    if (t.kind() == terminator_kind::count) {
        const std::uint64_t n = t.remaining();
        if (lb < n) {
            t.assign_count(n - lb);
            return {lb, 0, false};
        }
        t.assign_count(0);
        return {static_cast<std::size_t>(n), 0, true};
    }
    return scan_text(in, t.text(), find_terminator(in, t.text()));
}

scan_step scan_text(std::span<const std::byte> in, std::string_view text,
                    std::size_t at) noexcept {
    // String terminator: the leftmost match wins and is consumed (matches never overlap); an
    // empty run of data before it is not reported (deliver == 0).
    if (at != std::string_view::npos) {
        return {at, text.size(), true};
    }
    // No match: deliver all but the longest tail that could still begin the terminator. When
    // the whole buffer is such a prefix nothing is delivered (deliver == 0).
    const std::size_t held = find_prefix_at_end(as_chars(in), text);
    return {in.size() - held, 0, false};
}

}  // namespace ringchat::chat
