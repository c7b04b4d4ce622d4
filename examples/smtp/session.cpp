// SPDX-License-Identifier: MIT
// examples/smtp/session.cpp — the smtp session (see session.hpp): command lines read with the
// terminator "\r\n", DATA's lines in bounded pieces, each message written as it comes to
// DIR/tmp and renamed into DIR/new once it is complete (the Maildir convention).
#include "examples/smtp/session.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/file.hpp"
#include "examples/smtp/protocol.hpp"

namespace smtp {

using namespace ringchat;

namespace {

/// The most of a message held in memory before it is written to its file.
constexpr std::size_t write_batch = 64 * 1024;

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

/// One SMTP session, its state and its steps.
class conversation {
public:
    conversation(reactor& r, chat::channel& ch, mailbox& box)
        : r_(r), ch_(ch), box_(box), envelope_(box.conf.hostname, box.conf.max_size) {
        envelope_.offer_starttls(static_cast<bool>(box.conf.starttls));
    }

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
        if (next == dialogue::next::data) {
            co_return co_await data();
        }
        if (next == dialogue::next::quit) {
            ch_.close_when_done();
            co_return false;
        }
        if (next == dialogue::next::starttls) {
            co_return co_await start_tls();
        }
        co_return true;
    }

    /// The 220 goes out in plaintext, then the channel is put on TLS: what the client sent
    /// after STARTTLS (it may not, RFC 3207 §4.2) is dropped, and it greets again.
    task<bool> start_tls() {
        co_await ch_.flush();
        if (!ch_.is_open() || !ch_.replace_transport(box_.conf.starttls)) {
            ch_.close();
            co_return false;
        }
        envelope_.started_tls();
        co_return true;
    }

    /// The message, line by line up to a line that is ".", written as it comes (or refused).
    task<bool> data() {
        message_file message(r_, box_);
        std::error_code store_error;
        if (auto opened = message.open(); !opened) {
            store_error = opened.error();  // read the message to its end, then say so
        }
        data_reader reader(box_.conf.max_size);
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
    dialogue envelope_;
    std::vector<std::string> replies_;
};

}  // namespace

chat::channel_options channel_options() {
    chat::channel_options o;
    o.max_frame = max_line;  // a longer command line is refused, not buffered
    o.idle_timeout = std::chrono::minutes(5);  // §4.5.3.2.7: 5 minutes
    return o;
}

task<> session(chat::channel& ch, reactor& r, mailbox& box) {
    conversation s(r, ch, box);
    co_await s.run();
}

}  // namespace smtp
