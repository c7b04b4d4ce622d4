// SPDX-License-Identifier: MIT
// chat/terminator.hpp — what ends a record on the input side, and the pure scanner over it.
//
// A `terminator` is asynchat's `terminator`: a byte string, a byte count, or none. `scan()` is
// one iteration of asynchat's `handle_read` loop ported 1:1 (docs/asynchat-semantics.md §4.2),
// so a channel built on it reports exactly asynchat's collect/found calls for every chunking of
// the stream. Invariant: scanning never allocates, never does I/O, and only ever holds back a
// proper prefix of a string terminator (fewer bytes than the terminator); every other byte is
// delivered in the read that brought it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace ringchat::chat {

/// Which of asynchat's three terminator branches a `terminator` takes (§2.2).
enum class terminator_kind : std::uint8_t { none, count, bytes };

/// A byte string, a byte count, or none: a value type (copyable, comparable).
/// \note A count counts down as `scan()` delivers data and stays at `count(0)` once it is
/// reached, as asynchat's `get_terminator()` shows 0; count(0) then behaves as none.
class terminator {
public:
    /// No terminator: every byte is data and nothing is ever found (asynchat's `None`).
    terminator() noexcept = default;

    /// Same as the default constructor, for symmetry with the other factories.
    static terminator none() noexcept { return terminator(); }

    /// Ends a record after `n` more bytes. `count(0)` is inactive (falsy in asynchat).
    static terminator count(std::uint64_t n) noexcept;

    /// `count(n)` from a signed number, as asynchat's `set_terminator(int)` takes it.
    /// \throws std::invalid_argument("the number of received bytes must be positive") for
    /// `n < 0` (asynchat's ValueError, same words; 0 is accepted, as asynchat does).
    static terminator checked_count(std::int64_t n);

    /// Ends a record at the next occurrence of `s` (copied). `bytes("")` is inactive.
    static terminator bytes(std::string_view s);

    /// As `bytes(std::string_view)`, from raw bytes.
    static terminator bytes(std::span<const std::byte> s);

    /// `*this = bytes(s)` and `*this = count(n)` in place, without a temporary: a protocol
    /// may set a terminator before every read (RESP, HTTP). The string keeps its bytes while
    /// a count is set, so a protocol that switches between one string and counts (RESP's
    /// "\n" and bulk lengths) compares it and copies nothing.
    void assign_bytes(std::string_view s) {
        kind_ = terminator_kind::bytes;
        count_ = 0;
        if (std::string_view(text_) != s) {
            store_text(s);
        }
    }
    void assign_count(std::uint64_t n) noexcept {
        kind_ = terminator_kind::count;
        count_ = n;
    }
    /// The number checked_count() takes, checked the same way (the same exception).
    static std::uint64_t checked(std::int64_t n);

    /// The branch this terminator takes (before the falsy rule: see `active()`).
    terminator_kind kind() const noexcept { return kind_; }

    /// Bytes still to come for a count; 0 for the other kinds.
    std::uint64_t remaining() const noexcept { return count_; }

    /// The byte string of a `bytes` terminator; empty for the other kinds.
    std::string_view text() const noexcept {
        return kind_ == terminator_kind::bytes ? std::string_view(text_) : std::string_view();
    }

    /// False where asynchat's falsy rule applies (none, count 0, empty string): such a
    /// terminator collects everything and never finds.
    bool active() const noexcept {
        switch (kind_) {
        case terminator_kind::none:
            return false;
        case terminator_kind::count:
            return count_ > 0;
        case terminator_kind::bytes:
            return !text_.empty();
        }
        return false;
    }

    friend bool operator==(const terminator& a, const terminator& b) noexcept {
        return a.kind_ == b.kind_ && a.count_ == b.count_ && a.text() == b.text();
    }

private:
    void store_text(std::string_view s);

    terminator_kind kind_ = terminator_kind::none;
    std::uint64_t count_ = 0;   // 0 unless kind_ == count
    std::string text_;          // what text() is when kind_ == bytes; otherwise unused
};

/// Length of the longest proper prefix of `needle` that `haystack` ends with; 0 if none.
/// \note A one-byte or empty needle gives 0. asynchat returns -1 for an empty needle, which its
/// `handle_read` never asks about (`b''` is falsy), and neither does `scan()`.
std::size_t find_prefix_at_end(std::span<const std::byte> haystack,
                               std::span<const std::byte> needle) noexcept;

/// As above, over characters.
std::size_t find_prefix_at_end(std::string_view haystack, std::string_view needle) noexcept;

namespace detail {
std::size_t find_text(std::span<const std::byte> in, std::string_view text) noexcept;
}  // namespace detail

/// Where the first occurrence of a non-empty `text` starts in `in`, or std::string_view::npos.
/// Inline: the framer's common case runs it once per frame.
inline std::size_t find_terminator(std::span<const std::byte> in, std::string_view text) noexcept {
    if (in.empty()) {
        return std::string_view::npos;  // and no null data() for memchr
    }
    if (text.size() != 1) {
        return detail::find_text(in, text);
    }
    const void* at = std::memchr(in.data(), text.front(), in.size());
    return at == nullptr ? std::string_view::npos
                         : static_cast<std::size_t>(static_cast<const std::byte*>(at) - in.data());
}

/// The outcome of one scan: `in[0, deliver)` is data, then `skip` terminator bytes are dropped.
struct scan_step {
    std::size_t deliver;   ///< bytes for collect_incoming_data (may be 0: then report nothing)
    std::size_t skip;      ///< terminator bytes dropped after them (0 unless `found`)
    bool found;            ///< then call found_terminator, which may change the terminator

    friend bool operator==(const scan_step&, const scan_step&) = default;
};

/// One iteration of asynchat's `handle_read` loop over the buffered bytes `in`.
/// If `found`, the caller calls found_terminator and scans `in[deliver + skip, ...)` again
/// with whatever terminator is then in force. If not, `in[deliver, in.size())` is held: a
/// proper prefix of a string terminator that the caller keeps and puts in front of the next
/// read. A count is decremented by `deliver` here (reaching 0 gives `found`).
/// \note Empty `in` gives {0, 0, false} and leaves `t` alone. An inactive `t` delivers all.
/// \note Unlike asynchat, the count is already decremented when the caller delivers the data:
/// a facade showing `get_terminator()` inside collect_incoming_data adds `deliver` back.
scan_step scan(std::span<const std::byte> in, terminator& t) noexcept;

/// scan() for an active string terminator `text` whose first match in a non-empty `in` the
/// caller has found already: `at` is find_terminator(in, text).
scan_step scan_text(std::span<const std::byte> in, std::string_view text, std::size_t at) noexcept;

/// asynchat's handle_read loop over `in`, the one every caller of scan() runs: scans, calls
/// `on_step(data, step)` with each step's data (`in[0, deliver)`, possibly empty) and the step,
/// and goes on after the terminator with whatever terminator is then in force, until `in` is
/// used up, a step finds no terminator, or `on_step` returns false (asynchat's
/// discard_buffers() in found_terminator; a frame limit). `on_step` calls found_terminator
/// when `step.found`; it may change `t` then (through a reference it holds), not before.
/// \return The bytes at the end of `in` that are held (a possible terminator prefix), or, when
/// `on_step` stopped the loop, nothing.
template <class OnStep>
std::span<const std::byte> scan_each(std::span<const std::byte> in, terminator& t,
                                     OnStep&& on_step) {
    while (!in.empty()) {
        const scan_step step = scan(in, t);
        if (!on_step(in.first(step.deliver), step)) {
            return {};
        }
        if (!step.found) {
            return in.subspan(step.deliver);
        }
        in = in.subspan(step.deliver + step.skip);
    }
    return {};
}

/// Runs the whole loop over `in` (scan_each()): `collect(std::span<const std::byte>)` for each
/// non-empty run of data, `found()` at each terminator.
/// \return How many bytes at the end of `in` are held (a possible terminator prefix).
/// \note The caller owns the held bytes: it keeps them and feeds them again in front of the
/// next read (or drops them; asynchat never delivers a held prefix at end of stream).
/// \note Change `t` in `found()` or between calls, not in `collect()`.
template <class Collect, class Found>
std::size_t feed(std::span<const std::byte> in, terminator& t, Collect&& collect, Found&& found) {
    return scan_each(in, t, [&](std::span<const std::byte> data, const scan_step& step) {
               if (!data.empty()) {
                   collect(data);
               }
               if (step.found) {
                   found();
               }
               return true;
           })
        .size();
}

}  // namespace ringchat::chat
