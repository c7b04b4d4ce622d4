// SPDX-License-Identifier: MIT
// examples/smtp — an SMTP receiver (RFC 5321, a subset): HELO/EHLO, MAIL FROM, RCPT TO, DATA
// (ended by "<CRLF>.<CRLF>", dot-unstuffed), RSET, NOOP, QUIT. Each message accepted is written
// to --maildir DIR as one file, exactly the message data as the client sent it (lines
// with CRLF, the leading dot of stuffed lines removed), nothing added.
//
//     build/examples/smtp --port 2525 --maildir /tmp/mail &
//     python3 -c 'import smtplib; smtplib.SMTP("127.0.0.1", 2525).sendmail("a@x", ["b@y"], "Subject: hi\r\n\r\nhello\r\n")'
//
// The session is a line protocol: terminator "\r\n", one reply per command, in order (so a
// client may pipeline). A command line over 1,000 bytes is refused (500). DATA is read line by
// line too, and written to the file as it comes (64 KiB at a time), so a message costs the
// server a bounded amount of memory whatever its size; a DATA line may be as long as
// --max-size (RFC 5321 §4.5.3.1 asks servers to avoid such limits; Postfix accepts them), and
// comes from the channel in pieces (set_frame_pieces). A message over --max-size is read to
// its end, dropped, and refused (552). Timeouts (§4.5.3.2): a command line must be complete
// --command-timeout after its first byte and a DATA line --data-timeout after its first byte
// (then 421 and the close); a connection with no byte for 5 minutes is closed.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
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
#include "examples/smtp/protocol.hpp"

using namespace ringchat;

namespace {

constexpr std::uint16_t default_port = 2525;
using smtp::max_line;

/// The most of a message held in memory before it is written to its file.
constexpr std::size_t write_batch = 64 * 1024;

struct config {
    std::filesystem::path maildir;
    std::size_t max_size = 10 * 1024 * 1024;
    std::string hostname = "ringchat.local";
    std::chrono::nanoseconds command_timeout = std::chrono::minutes(5);  // §4.5.3.2.7
    std::chrono::nanoseconds data_timeout = std::chrono::minutes(3);     // §4.5.3.2.5
};

/// What the server shares between its sessions: where mail goes, and unique file names.
struct mailbox {
    config conf;
    std::atomic<std::uint64_t> delivered{0};
};

/// A message being received: written to DIR/tmp as it comes, renamed into DIR/new when it is
/// complete, so that a reader never sees half a message (the Maildir convention).
class message_file {
public:
    message_file(reactor& r, mailbox& box) : r_(r), box_(box) {}
    message_file(const message_file&) = delete;
    message_file& operator=(const message_file&) = delete;
    ~message_file() { abandon(); }

    /// Creates the file under tmp/. \return the error (EACCES, ENOSPC, EMFILE ...).
    result<void> open() {
        const std::uint64_t n = ++box_.delivered;
        const auto stamp = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
        name_ = fmt::format("{}.{}_{}.{}", stamp / 1000000, getpid(), n, box_.conf.hostname);
        auto f = file::open(r_, (box_.conf.maildir / "tmp" / name_).string(),
                            O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (!f) {
            return f.error();
        }
        f_ = std::move(*f);
        return result<void>();
    }
    /// Queues `data`; writes once write_batch bytes are waiting.
    task<result<void>> append(std::string_view data) {
        pending_.append(data);
        if (pending_.size() >= write_batch) {
            co_return co_await write_pending();
        }
        co_return result<void>();
    }
    /// Writes what is left and moves the file into new/. \return its name, or the error.
    task<result<std::string>> commit() {
        if (auto wrote = co_await write_pending(); !wrote) {
            abandon();
            co_return wrote.error();
        }
        f_.close_now();
        const auto tmp = box_.conf.maildir / "tmp" / name_;
        const auto done = box_.conf.maildir / "new" / name_;
        if (::rename(tmp.c_str(), done.c_str()) != 0) {
            const std::error_code why(errno, std::system_category());
            abandon();
            co_return why;
        }
        committed_ = true;
        co_return name_;
    }
    /// Drops the message: the file under tmp/ goes.
    void abandon() {
        if (!committed_ && !name_.empty()) {
            f_.close_now();
            ::unlink((box_.conf.maildir / "tmp" / name_).c_str());
            name_.clear();
        }
        pending_.clear();
    }

private:
    task<result<void>> write_pending() {
        std::size_t at = 0;
        while (at < pending_.size()) {
            auto wrote = co_await f_.write(
                std::as_bytes(std::span(pending_.data() + at, pending_.size() - at)),
                written_ + at);
            if (!wrote) {
                co_return wrote.error();
            }
            at += *wrote;
        }
        written_ += at;
        pending_.clear();
        co_return result<void>();
    }

    reactor& r_;
    mailbox& box_;
    file f_;
    std::string name_;
    std::string pending_;
    std::uint64_t written_ = 0;
    bool committed_ = false;
};

/// One SMTP session.
class session {
public:
    session(reactor& r, chat::channel& ch, mailbox& box)
        : r_(r), ch_(ch), box_(box), envelope_(box.conf.hostname, box.conf.max_size) {}

    task<> run() {
        ch_.set_terminator("\r\n");
        reply(fmt::format("220 {} ringchat ESMTP ready", box_.conf.hostname));
        while (ch_.is_open()) {
            ch_.set_frame_timeout(box_.conf.command_timeout);
            auto line = co_await ch_.read();
            if (!line) {
                if (line.error() == make_error_code(errc::frame_too_long)) {
                    reply("500 5.5.6 Line too long");
                    continue;
                }
                timed_out(line);
                co_return;  // the client went away (or timed out), or the server stops
            }
            const bool go_on = co_await command(line.text());
            if (!go_on) {
                co_return;
            }
        }
    }

private:
    void reply(std::string_view text) { ch_.push(fmt::format("{}\r\n", text)); }

    /// A read that ended: if its deadline passed (the channel is still open for an answer),
    /// say so, as §4.5.3.2 lets a server do before it closes; on a stop, say that.
    void timed_out(const chat::frame& f) {
        if (!ch_.is_open()) {
            return;
        }
        if (f.error() == std::errc::timed_out) {
            reply(fmt::format("421 4.4.2 {} Error: timeout exceeded", box_.conf.hostname));
        } else if (f.error() == errc::stopped) {
            reply(fmt::format("421 4.3.2 {} Service shutting down", box_.conf.hostname));
        }
    }

    /// One command line; false once the session is over (QUIT).
    task<bool> command(std::string_view line) {
        replies_.clear();
        const auto next = envelope_.command(line, replies_);
        for (const std::string& r : replies_) {
            reply(r);
        }
        if (next == smtp::dialogue::next::data) {
            co_return co_await data();
        }
        if (next == smtp::dialogue::next::quit) {
            ch_.close_when_done();
            co_return false;
        }
        co_return true;
    }

    /// The message, line by line up to a line that is ".", written as it comes (or refused).
    task<bool> data() {
        message_file message(r_, box_);
        std::error_code store_error;
        if (auto opened = message.open(); !opened) {
            store_error = opened.error();  // read the message to its end, then say so
        }
        smtp::data_reader reader(box_.conf.max_size);
        ch_.set_frame_timeout(box_.conf.data_timeout);
        ch_.set_frame_pieces(true);  // a line as long as --max-size, in bounded pieces
        ch_.set_max_frame(write_batch);
        for (;;) {
            auto line = co_await ch_.read();
            if (!line) {
                timed_out(line);
                co_return false;  // the connection ended inside DATA: nothing is stored
            }
            std::string_view text;
            bool crlf = false;
            if (!reader.line(line.text(), line.piece(), text, crlf)) {
                break;
            }
            if (reader.too_big() || store_error) {
                continue;  // keep reading to the end, keep nothing
            }
            auto wrote = co_await message.append(text);
            if (wrote && crlf) {
                wrote = co_await message.append("\r\n");
            }
            if (!wrote) {
                store_error = wrote.error();
            }
        }
        ch_.set_frame_pieces(false);
        ch_.set_max_frame(max_line);
        if (reader.too_big()) {
            message.abandon();
            reply("552 5.3.4 Message size exceeds fixed maximum message size");
        } else {
            result<std::string> stored = store_error;
            if (!store_error) {
                stored = co_await message.commit();
            }
            if (stored) {
                reply(fmt::format("250 2.0.0 OK: queued as {}", *stored));
            } else {
                fmt::print(stderr, "smtp: cannot store a message: {}\n",
                           stored.error().message());
                reply("451 4.3.0 Cannot store the message, try again later");
            }
        }
        envelope_.reset();
        co_return true;
    }

    reactor& r_;
    chat::channel& ch_;
    mailbox& box_;
    smtp::dialogue envelope_;
    std::vector<std::string> replies_;
};

task<> smtp_session(chat::channel& ch, reactor& r, mailbox& box) {
    session s(r, ch, box);
    co_await s.run();
}

task<> serve_smtp(reactor& r, listener& l, mailbox& box) {
    chat::serve_options so;
    so.channel.max_frame = max_line;  // a longer command line is refused, not buffered
    so.channel.idle_timeout = std::chrono::minutes(5);  // §4.5.3.2.7: 5 minutes
    co_await chat::serve(
        r, l, [&r, &box](chat::channel& ch) { return smtp_session(ch, r, box); }, so);
}

/// Does at start what a delivery does (create a file in tmp/, rename it into new/), then
/// removes it: a maildir that cannot take mail (read-only, not a directory) stops the server
/// at once, rather than after "ready" with 451 to every message. \return why not, or "".
std::string cannot_deliver(const std::filesystem::path& maildir) {
    const auto name = fmt::format(".ringchat-probe.{}", getpid());
    const auto tmp = maildir / "tmp" / name;
    const auto done = maildir / "new" / name;
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return fmt::format("cannot write to {}: {}", tmp.parent_path().string(),
                           std::generic_category().message(errno));
    }
    ::close(fd);
    if (::rename(tmp.c_str(), done.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        return fmt::format("cannot move a file into {}: {}", done.parent_path().string(),
                           std::generic_category().message(err));
    }
    ::unlink(done.c_str());
    return {};
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
    std::chrono::nanoseconds command_timeout = std::chrono::minutes(5);
    std::chrono::nanoseconds data_timeout = std::chrono::minutes(3);
    cli.seconds("command-timeout",
                "a command line must be complete S seconds after its first byte; else 421 and "
                "close (default 300; a connection silent for 5 minutes is closed too)",
                command_timeout);
    cli.seconds("data-timeout",
                "a line of message data must be complete S seconds after its first byte; else "
                "421 and close (default 180)",
                data_timeout);
    const auto opts = cli.parse(argc, argv);
    if (maildir.empty()) {
        cli.usage_error("--maildir DIR is required");
    }
    mailbox box;
    box.conf.maildir = maildir;
    box.conf.max_size = max_size;
    box.conf.hostname = hostname;
    box.conf.command_timeout = command_timeout;
    box.conf.data_timeout = data_timeout;
    std::error_code ec;
    for (const char* sub : {"tmp", "new", "cur"}) {
        std::filesystem::create_directories(box.conf.maildir / sub, ec);
        if (ec) {
            ringchat::cli::startup_error(
                "smtp", fmt::format("cannot create {}: {}", (box.conf.maildir / sub).string(),
                                    ec.message()));
        }
    }
    if (const auto why = cannot_deliver(box.conf.maildir); !why.empty()) {
        ringchat::cli::startup_error("smtp", why);
    }
    return examples::run_server("smtp", opts,
                                [&box](reactor& r, listener& l) { return serve_smtp(r, l, box); });
}
