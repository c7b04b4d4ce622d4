// SPDX-License-Identifier: MIT
// tests/fuzz/fuzz_async_chat.cpp — the facade (chat::async_chat) over the decoded scripts of
// script.hpp, against the same model. The chunks go through a real socket: a SOCK_SEQPACKET
// pair keeps each chunk one read, so the facade's per-read loop sees exactly the decoded
// chunking. One reactor (epoll, or RINGCHAT_BACKEND) serves every input.
//
// Checked: the records (collects joined up to each found_terminator) and the data after the
// terminator went inactive are the model's; collect is never called with nothing; inside
// collect a count shows what was left before the data being delivered, inside found 0; the
// bytes collected but not found at the end are the model's partial less its held prefix; the
// terminator at the end is the model's. With a frame limit, the records are a prefix of the
// model's, and a close for frame_too_long comes only where a record is longer than the limit.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <system_error>

#include "chat/async_chat.hpp"
#include "core/error.hpp"
#include "core/reactor.hpp"
#include "core/socket.hpp"
#include "tests/fuzz/script.hpp"

using namespace fuzz;
using ringchat::chat::async_chat;

namespace {

ringchat::reactor& the_reactor() {
    static ringchat::reactor r([] {
        ringchat::reactor_options o;
        o.kind = ringchat::backend_kind::epoll;
        o.buffer_count = 64;
        return ringchat::reactor_options::from_env(o);
    }());
    return r;
}

constexpr std::size_t max_read = 4096;  // a chunk is one read of a pool buffer (16 KiB)

class recorder : public async_chat {
public:
    recorder(ringchat::socket s, ringchat::chat::channel_options o, const script& sc)
        : async_chat(std::move(s), o), sc_(sc) {
        set(sc.first);
    }

    void collect_incoming_data(std::span<const std::byte> d) override {
        FUZZ_CHECK(!d.empty(), "collect with no data");
        const terminator shown = get_terminator();
        if (shown.kind() == terminator_kind::count && shown.active()) {
            FUZZ_CHECK(shown.remaining() == left_ && left_ >= d.size(),
                       "in collect of %zu bytes a count shows %s, %llu were left", d.size(),
                       describe(shown).c_str(), static_cast<unsigned long long>(left_));
            left_ -= d.size();
        }
        record_.append(reinterpret_cast<const char*>(d.data()), d.size());
    }
    void found_terminator() override {
        const terminator shown = get_terminator();
        FUZZ_CHECK(shown.kind() != terminator_kind::count || shown.remaining() == 0,
                   "in found a count shows %s", describe(shown).c_str());
        got.events.push_back({event::kind::frame, std::exchange(record_, {}), shown});
        if (const auto* a = sc_.action(frames_); a != nullptr && *a) {
            set(**a);
        }
        ++frames_;
    }
    void handle_close() override {
        ++closes;
        reason = close_reason();
        const terminator last = get_terminator();
        if (!last.active() && !record_.empty()) {
            got.events.push_back({event::kind::eager, std::exchange(record_, {}), last});
        }
        got.partial = record_;
        got.last = last;
    }

    expectation got;
    int closes = 0;
    std::error_code reason;

private:
    void set(const terminator& t) {
        set_terminator(t);
        left_ = t.kind() == terminator_kind::count ? t.remaining() : 0;
    }

    const script& sc_;
    std::string record_;
    std::size_t frames_ = 0;
    std::uint64_t left_ = 0;  // what a count should show in the next collect
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const script sc = decode_script(data, size);
    ringchat::reactor& r = the_reactor();
    int fds[2];
    FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0,
               "socketpair: %d", errno);
    for (const std::string& c : sc.chunks) {
        for (std::size_t at = 0; at < c.size(); at += max_read) {  // no empty message: EOF
            const std::size_t n = std::min(max_read, c.size() - at);
            FUZZ_CHECK(::send(fds[1], c.data() + at, n, MSG_NOSIGNAL) == static_cast<ssize_t>(n),
                       "send: %d", errno);
        }
    }
    ::close(fds[1]);  // the end of the stream
    ringchat::chat::channel_options o;
    o.max_frame = sc.max_frame;
    recorder c(ringchat::socket(r, fds[0]), o, sc);
    r.block_on(c.run());
    FUZZ_CHECK(c.closes == 1, "handle_close called %d times", c.closes);

    const expectation want = model(sc, false);
    const std::string delivered = want.partial.substr(0, want.partial.size() - want.held);
    const auto report = [&] {
        return "max_frame " + std::to_string(sc.max_frame) + ", first " + describe(sc.first) +
               ", close: " + c.reason.message() + "\n  model:" + describe(want.events) +
               " | delivered \"" + escaped(delivered) + "\", last " + describe(want.last) +
               "\n  got:  " + describe(c.got.events) + " | delivered \"" +
               escaped(c.got.partial) + "\", last " + describe(c.got.last);
    };
    if (c.reason == ringchat::errc::frame_too_long) {
        FUZZ_CHECK(sc.max_frame > 0, "frame_too_long without a limit\n%s", report().c_str());
        // The records before the close are the model's; the next one (or the record in
        // progress at the end) is longer than the limit.
        const std::size_t n = c.got.events.size();
        FUZZ_CHECK(n <= want.events.size() &&
                       std::equal(c.got.events.begin(), c.got.events.end(), want.events.begin()),
                   "records before a frame_too_long\n%s", report().c_str());
        const std::size_t next = n == want.events.size() ? delivered.size()
                                 : want.events[n].k == event::kind::frame ? want.events[n].data.size()
                                                                          : 0;
        FUZZ_CHECK(next > sc.max_frame, "frame_too_long for a record of %zu bytes\n%s", next,
                   report().c_str());
        return 0;
    }
    FUZZ_CHECK(!c.reason, "closed for %s\n%s", c.reason.message().c_str(), report().c_str());
    FUZZ_CHECK(c.got.events == want.events && c.got.partial == delivered &&
                   c.got.last == want.last,
               "%s", report().c_str());
    return 0;
}
