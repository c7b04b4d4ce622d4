// SPDX-License-Identifier: MIT
// examples/smtp/protocol.hpp — the SMTP receiver's protocol, without I/O: the command parser
// and the envelope it builds (HELO/EHLO, MAIL FROM, RCPT TO, DATA, RSET, NOOP, QUIT, VRFY),
// and the DATA reader's dot-unstuffing (RFC 5321 §4.5.2). The session (session.cpp) reads the
// lines and writes the message; these decide what each line means and what is answered. Kept
// apart so that tests/fuzz drives exactly what the server runs.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtp {

constexpr std::size_t max_recipients = 100;  // RFC 5321 §4.5.3.1.8: at least 100
constexpr std::size_t max_line = 1000;       // §4.5.3.1.6: a text line, CRLF included

/// `s` in upper case (ASCII).
std::string upper(std::string_view s);

/// "FROM:<a@b> SIZE=10" after MAIL (or "TO:<a@b>" after RCPT): the path between < and >.
/// \return false for a malformed argument; an empty path ("<>") is the null reverse-path.
bool parse_path(std::string_view arg, std::string_view keyword, std::string& path);

/// A command line cut into its verb (upper case) and its argument (after the first space).
struct command_line {
    std::string verb;
    std::string_view arg;
};
command_line split_command(std::string_view line);

/// The envelope and its dialogue: each command line gets its reply lines (each without its
/// CRLF; the last one's code is followed by a space, the others' by '-').
class dialogue {
public:
    enum class next {
        command,  ///< read the next command line
        data,     ///< 354 was answered: read the message (data_reader), then call delivered()
        quit,     ///< 221 was answered: close when it is sent
        starttls, ///< 220 was answered to STARTTLS: once it is sent, the handshake
                  ///< (RFC 3207), then started_tls()
    };

    dialogue(std::string hostname, std::size_t max_size)
        : hostname_(std::move(hostname)), max_size_(max_size) {}

    /// One command line (its CRLF cut off); appends the replies to `replies`. A line with a
    /// bare CR or LF in it is refused (500 5.5.2) whatever its verb, and changes nothing.
    next command(std::string_view line, std::vector<std::string>& replies);
    /// Forgets the envelope (RSET, and after each message).
    void reset();
    /// EHLO offers STARTTLS (until TLS is on).
    void offer_starttls(bool on) noexcept { starttls_offered_ = on; }
    /// The TLS handshake follows: all that was known of the client is forgotten (RFC 3207
    /// §4.2: it greets again), and STARTTLS is no longer offered.
    void started_tls() noexcept;
    bool in_tls() const noexcept { return in_tls_; }

    bool greeted() const noexcept { return greeted_; }
    const std::optional<std::string>& from() const noexcept { return from_; }
    const std::vector<std::string>& to() const noexcept { return to_; }
    const std::string& hostname() const noexcept { return hostname_; }
    std::size_t max_size() const noexcept { return max_size_; }

private:
    std::string hostname_;
    std::size_t max_size_;
    bool greeted_ = false;
    bool starttls_offered_ = false;
    bool in_tls_ = false;
    std::optional<std::string> from_;
    std::vector<std::string> to_;
};

/// DATA's lines, as the channel hands them out (a line longer than max_frame in pieces):
/// finds the end line "." and removes the leading dot of stuffed lines, and counts the size.
class data_reader {
public:
    explicit data_reader(std::size_t max_size) : max_size_(max_size) {}

    /// A frame of DATA (`piece`: more of the same line follows). \return false at the end
    /// line "."; else true, with `text` the bytes to store (the line unstuffed, or a piece of
    /// it) and `crlf` whether its CRLF follows (a whole line, or the last part of one). Once
    /// the message passed max_size, `text` is empty and too_big() is true.
    bool line(std::string_view frame, bool piece, std::string_view& text, bool& crlf);
    /// The message is over max_size: read on to its end, keep nothing, answer 552.
    bool too_big() const noexcept { return too_big_; }
    /// The bytes of the message so far (lines with CRLF).
    std::size_t size() const noexcept { return size_; }

private:
    std::size_t max_size_;
    std::size_t size_ = 0;
    bool too_big_ = false;
    bool line_start_ = true;  // the next frame (or piece) begins a line
};

}  // namespace smtp
