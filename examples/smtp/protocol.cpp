// SPDX-License-Identifier: MIT
// examples/smtp/protocol.cpp — the SMTP command parser, the envelope, DATA's dot-unstuffing.
#include "examples/smtp/protocol.hpp"

#include <algorithm>
#include <cctype>
#include <utility>

#include <fmt/format.h>

namespace smtp {

std::string upper(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return out;
}

bool parse_path(std::string_view arg, std::string_view keyword, std::string& path) {
    if (arg.size() < keyword.size() || upper(arg.substr(0, keyword.size())) != keyword) {
        return false;
    }
    arg.remove_prefix(keyword.size());
    while (!arg.empty() && arg.front() == ' ') {
        arg.remove_prefix(1);  // "FROM: <a@b>" is common enough to accept
    }
    if (arg.empty() || arg.front() != '<') {
        return false;
    }
    const auto close = arg.find('>');
    if (close == std::string_view::npos) {
        return false;
    }
    path = std::string(arg.substr(1, close - 1));
    return true;
}

command_line split_command(std::string_view line) {
    const auto space = line.find(' ');
    return {upper(line.substr(0, space)),
            space == std::string_view::npos ? std::string_view() : line.substr(space + 1)};
}

void dialogue::reset() {
    from_.reset();
    to_.clear();
}

void dialogue::started_tls() noexcept {
    reset();
    greeted_ = false;
    in_tls_ = true;
}

dialogue::next dialogue::command(std::string_view line, std::vector<std::string>& replies) {
    const auto reply = [&replies](std::string text) { replies.push_back(std::move(text)); };
    if (line.find_first_of("\r\n") != std::string_view::npos) {
        // A line ends only at CRLF (§2.3.8); a bare CR or LF inside one is refused, never
        // echoed: EHLO's argument went into its reply, where a client reading lines by LF
        // took what followed the LF for another reply line (found by tests/fuzz/fuzz_smtp).
        reply("500 5.5.2 Syntax error: bare <CR> or <LF> in a command");
        return next::command;
    }
    const auto [verb, arg] = split_command(line);
    if (verb == "HELO" || verb == "EHLO") {
        if (arg.empty()) {
            reply(fmt::format("501 5.5.4 Syntax: {} hostname", verb));
            return next::command;
        }
        reset();
        greeted_ = true;
        if (verb == "HELO") {
            reply(fmt::format("250 {}", hostname_));
        } else {
            reply(fmt::format("250-{} greets {}", hostname_, arg));
            reply(fmt::format("250-SIZE {}", max_size_));
            reply("250-8BITMIME");
            if (starttls_offered_ && !in_tls_) {
                reply("250-STARTTLS");
            }
            reply("250 PIPELINING");
        }
    } else if (verb == "MAIL") {
        std::string path;
        if (!greeted_) {
            reply("503 5.5.1 Say HELO or EHLO first");
        } else if (from_) {
            reply("503 5.5.1 Nested MAIL command");
        } else if (!parse_path(arg, "FROM:", path)) {
            reply("501 5.5.4 Syntax: MAIL FROM:<address>");
        } else {
            from_ = std::move(path);
            reply("250 2.1.0 OK");
        }
    } else if (verb == "RCPT") {
        std::string path;
        if (!from_) {
            reply("503 5.5.1 Need MAIL before RCPT");
        } else if (!parse_path(arg, "TO:", path) || path.empty()) {
            reply("501 5.5.4 Syntax: RCPT TO:<address>");
        } else if (to_.size() >= max_recipients) {
            reply("452 4.5.3 Too many recipients");
        } else {
            to_.push_back(std::move(path));
            reply("250 2.1.5 OK");
        }
    } else if (verb == "DATA") {
        if (!arg.empty()) {
            reply("501 5.5.4 Syntax: DATA");
        } else if (to_.empty()) {
            reply("503 5.5.1 Need RCPT before DATA");
        } else {
            reply("354 End data with <CR><LF>.<CR><LF>");
            return next::data;
        }
    } else if (verb == "RSET") {
        reset();
        reply("250 2.0.0 OK");
    } else if (verb == "NOOP") {
        reply("250 2.0.0 OK");
    } else if (verb == "QUIT") {
        reply(fmt::format("221 2.0.0 {} closing connection", hostname_));
        return next::quit;
    } else if (verb == "STARTTLS" && starttls_offered_ && !in_tls_) {
        if (!arg.empty()) {
            reply("501 5.5.4 Syntax: STARTTLS");
        } else {
            reply("220 2.0.0 Ready to start TLS");
            return next::starttls;
        }
    } else if (verb == "VRFY") {
        reply("252 2.1.5 Cannot VRFY user, but will accept message");
    } else {
        reply("500 5.5.2 Command not recognized");
    }
    return next::command;
}

bool data_reader::line(std::string_view frame, bool piece, std::string_view& text, bool& crlf) {
    const bool whole_line = line_start_ && !piece;
    if (whole_line && frame == ".") {
        return false;
    }
    if (line_start_ && !frame.empty() && frame.front() == '.') {
        frame.remove_prefix(1);  // dot-unstuffing (§4.5.2)
    }
    line_start_ = !piece;
    const std::size_t adds = frame.size() + (piece ? 0 : 2);
    if (too_big_ || size_ + adds > max_size_) {
        too_big_ = true;  // keep reading to the end, keep nothing
        text = {};
        crlf = false;
        return true;
    }
    size_ += adds;
    text = frame;
    crlf = !piece;
    return true;
}

}  // namespace smtp
