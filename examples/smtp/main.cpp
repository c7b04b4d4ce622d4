// examples/smtp — an SMTP receiver (RFC 5321, a subset): HELO/EHLO, MAIL FROM, RCPT TO, DATA
// (ended by "<CRLF>.<CRLF>", dot-unstuffed), RSET, NOOP, QUIT. Each message accepted is written
// to --maildir DIR as one file, exactly the message data as the client sent it (lines
// with CRLF, the leading dot of stuffed lines removed), nothing added.
//
//     build/examples/smtp --port 2525 --maildir /tmp/mail &
//     python3 -c 'import smtplib; smtplib.SMTP("127.0.0.1", 2525).sendmail("a@x", ["b@y"], "Subject: hi\r\n\r\nhello\r\n")'
//
// The session is a line protocol: terminator "\r\n", one reply per command, in order (so a
// client may pipeline). DATA is read line by line too, so that a line over the limit or a
// message over --max-size costs nothing but a refusal at its end.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "chat/channel.hpp"
#include "chat/serve.hpp"
#include "core/error.hpp"
#include "core/file.hpp"
#include "core/reactor.hpp"
#include "examples/common/options.hpp"

using namespace ringchat;

namespace {

constexpr std::uint16_t default_port = 2525;
constexpr std::size_t max_recipients = 100;  // RFC 5321 §4.5.3.1.8: at least 100
constexpr std::size_t max_line = 1000;       // §4.5.3.1.6: a text line, CRLF included

struct config {
    std::filesystem::path maildir;
    std::size_t max_size = 10 * 1024 * 1024;
    std::string hostname = "ringchat.local";
};

/// What the server shares between its sessions: where mail goes, and unique file names.
struct mailbox {
    config conf;
    std::atomic<std::uint64_t> delivered{0};
};

std::string upper(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return out;
}

/// "FROM:<a@b> SIZE=10" after MAIL (or "TO:<a@b>" after RCPT): the path between < and >.
/// \return false for a malformed argument; an empty path ("<>") is the null reverse-path.
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

/// Writes `data` to a new file in the maildir: first under tmp/, then renamed into new/, so
/// that a reader never sees half a message (the Maildir convention).
task<result<std::filesystem::path>> store(reactor& r, mailbox& box, const std::string& data) {
    const std::uint64_t n = ++box.delivered;
    const auto stamp = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    const std::string name = fmt::format("{}.{}_{}.{}", stamp / 1000000, getpid(), n,
                                         box.conf.hostname);
    const auto tmp = box.conf.maildir / "tmp" / name;
    const auto done = box.conf.maildir / "new" / name;
    auto f = file::open(r, tmp.string(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (!f) {
        co_return f.error();
    }
    std::size_t at = 0;
    while (at < data.size()) {
        auto wrote = co_await f->write(
            std::as_bytes(std::span(data.data() + at, data.size() - at)), at);
        if (!wrote) {
            ::unlink(tmp.c_str());
            co_return wrote.error();
        }
        at += *wrote;
    }
    f->close_now();
    if (::rename(tmp.c_str(), done.c_str()) != 0) {
        const std::error_code why(errno, std::system_category());
        ::unlink(tmp.c_str());
        co_return why;
    }
    co_return done;
}

/// One SMTP session.
class session {
public:
    session(reactor& r, chat::channel& ch, mailbox& box) : r_(r), ch_(ch), box_(box) {}

    task<> run() {
        ch_.set_terminator("\r\n");
        reply(fmt::format("220 {} ringchat ESMTP ready", box_.conf.hostname));
        while (ch_.is_open()) {
            auto line = co_await ch_.read();
            if (!line) {
                if (line.error() == make_error_code(errc::frame_too_long)) {
                    reply("500 5.5.6 Line too long");
                    continue;
                }
                co_return;  // the client went away (or timed out): nothing to answer
            }
            const bool go_on = co_await command(line.text());
            if (!go_on) {
                co_return;
            }
        }
    }

private:
    void reply(std::string_view text) { ch_.push(fmt::format("{}\r\n", text)); }

    void reset() {
        from_.reset();
        to_.clear();
    }

    /// One command line; false once the session is over (QUIT).
    task<bool> command(std::string_view line) {
        const auto space = line.find(' ');
        const std::string verb = upper(line.substr(0, space));
        const std::string_view arg =
            space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
        if (verb == "HELO" || verb == "EHLO") {
            if (arg.empty()) {
                reply(fmt::format("501 5.5.4 Syntax: {} hostname", verb));
                co_return true;
            }
            reset();
            greeted_ = true;
            if (verb == "HELO") {
                reply(fmt::format("250 {}", box_.conf.hostname));
            } else {
                reply(fmt::format("250-{} greets {}", box_.conf.hostname, arg));
                reply(fmt::format("250-SIZE {}", box_.conf.max_size));
                reply("250-8BITMIME");
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
                co_return co_await data();
            }
        } else if (verb == "RSET") {
            reset();
            reply("250 2.0.0 OK");
        } else if (verb == "NOOP") {
            reply("250 2.0.0 OK");
        } else if (verb == "QUIT") {
            reply(fmt::format("221 2.0.0 {} closing connection", box_.conf.hostname));
            ch_.close_when_done();
            co_return false;
        } else if (verb == "VRFY") {
            reply("252 2.1.5 Cannot VRFY user, but will accept message");
        } else {
            reply("500 5.5.2 Command not recognized");
        }
        co_return true;
    }

    /// The message, line by line up to a line that is ".", then stored (or refused).
    task<bool> data() {
        std::string message;
        bool too_big = false;
        bool line_too_long = false;
        for (;;) {
            auto line = co_await ch_.read();
            if (!line) {
                if (line.error() == make_error_code(errc::frame_too_long)) {
                    line_too_long = true;
                    continue;
                }
                co_return false;  // the connection ended inside DATA: nothing is stored
            }
            std::string_view text = line.text();
            if (text == ".") {
                break;
            }
            if (!text.empty() && text.front() == '.') {
                text.remove_prefix(1);  // dot-unstuffing (§4.5.2)
            }
            if (message.size() + text.size() + 2 > box_.conf.max_size) {
                too_big = true;  // keep reading to the end, keep nothing
                continue;
            }
            if (!too_big) {
                message.append(text);
                message.append("\r\n");
            }
        }
        if (too_big) {
            reply("552 5.3.4 Message size exceeds fixed maximum message size");
        } else if (line_too_long) {
            reply("500 5.5.6 Line too long in message");
        } else {
            auto stored = co_await store(r_, box_, message);
            if (stored) {
                reply(fmt::format("250 2.0.0 OK: queued as {}", stored->filename().string()));
            } else {
                fmt::print(stderr, "smtp: cannot store a message: {}\n",
                           stored.error().message());
                reply("451 4.3.0 Cannot store the message, try again later");
            }
        }
        reset();
        co_return true;
    }

    reactor& r_;
    chat::channel& ch_;
    mailbox& box_;
    bool greeted_ = false;
    std::optional<std::string> from_;
    std::vector<std::string> to_;
};

task<> smtp_session(chat::channel& ch, reactor& r, mailbox& box) {
    session s(r, ch, box);
    co_await s.run();
}

task<> serve_smtp(reactor& r, listener& l, mailbox& box) {
    chat::serve_options so;
    so.channel.max_frame = max_line;  // a longer line is refused, not buffered
    so.channel.idle_timeout = std::chrono::minutes(5);  // §4.5.3.2.7: 5 minutes
    co_await chat::serve(
        r, l, [&r, &box](chat::channel& ch) { return smtp_session(ch, r, box); }, so);
}

}  // namespace

int main(int argc, char** argv) {
    examples::command_line cli("smtp", "An SMTP receiver that writes each message to a maildir.",
                               default_port);
    std::string maildir;
    std::size_t max_size = 10 * 1024 * 1024;
    std::string hostname = "ringchat.local";
    cli.text("maildir", "DIR", "where messages go (DIR/new, one file each; created if missing)",
             maildir);
    cli.number("max-size", "BYTES", "the largest message accepted (default 10m)", max_size);
    cli.text("hostname", "NAME", "the name in the greeting (default ringchat.local)", hostname);
    const auto opts = cli.parse(argc, argv);
    if (maildir.empty()) {
        fmt::print(stderr, "smtp: --maildir DIR is required\n{}", cli.usage());
        return 2;
    }
    mailbox box;
    box.conf.maildir = maildir;
    box.conf.max_size = max_size;
    box.conf.hostname = hostname;
    std::error_code ec;
    for (const char* sub : {"tmp", "new", "cur"}) {
        std::filesystem::create_directories(box.conf.maildir / sub, ec);
        if (ec) {
            fmt::print(stderr, "smtp: cannot create {}: {}\n", (box.conf.maildir / sub).string(),
                       ec.message());
            return 1;
        }
    }
    return examples::run_server("smtp", opts,
                                [&box](reactor& r, listener& l) { return serve_smtp(r, l, box); });
}
