// SPDX-License-Identifier: MIT
// examples/smtp — an SMTP receiver (RFC 5321, a subset): HELO/EHLO, MAIL FROM, RCPT TO, DATA
// (ended by "<CRLF>.<CRLF>", dot-unstuffed), RSET, NOOP, QUIT. Each message accepted is written
// to --maildir DIR as one file, exactly the message data as the client sent it (lines
// with CRLF, the leading dot of stuffed lines removed), nothing added.
//
//     build/examples/smtp --port 2525 --maildir /tmp/mail &
//     python3 -c 'import smtplib; smtplib.SMTP("127.0.0.1", 2525).sendmail("a@x", ["b@y"], "Subject: hi\r\n\r\nhello\r\n")'
//
// The session (examples/smtp/session.cpp) is a line protocol: terminator "\r\n", one reply per
// command, in order (so a client may pipeline). A command line over 1,000 bytes is refused (500).
// DATA is read line by line too, and written to the file as it comes (64 KiB at a time), so a
// message costs the server a bounded amount of memory whatever its size; a DATA line may be as
// long as --max-size (RFC 5321 §4.5.3.1 asks servers to avoid such limits; Postfix accepts them),
// and comes from the channel in pieces (set_frame_pieces). A message over --max-size is read to
// its end, dropped, and refused (552). Timeouts (§4.5.3.2): a command line must be complete
// --command-timeout after its first byte and a DATA line --data-timeout after its first byte
// (then 421 and the close); a connection with no byte for 5 minutes is closed.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

#include <fmt/format.h>

#include "chat/serve.hpp"
#include "core/reactor.hpp"
#include "examples/common/options.hpp"
#include "examples/smtp/session.hpp"

using namespace ringchat;

namespace {

constexpr std::uint16_t default_port = 2525;

task<> serve_smtp(reactor& r, listener& l, smtp::mailbox& box) {
    chat::serve_options so;
    so.channel = smtp::channel_options();
    co_await chat::serve(
        r, l, [&r, &box](chat::channel& ch) { return smtp::session(ch, r, box); }, so);
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
    cli.tls();  // offered by STARTTLS
    auto opts = cli.parse(argc, argv);
    opts.starttls = true;
    if (maildir.empty()) {
        cli.usage_error("--maildir DIR is required");
    }
    smtp::mailbox box;
    box.conf.maildir = maildir;
    box.conf.max_size = max_size;
    box.conf.hostname = hostname;
    box.conf.command_timeout = command_timeout;
    box.conf.data_timeout = data_timeout;
    box.conf.starttls = examples::starttls_or_exit(opts);
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
