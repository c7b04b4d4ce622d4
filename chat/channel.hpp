// SPDX-License-Identifier: MIT
// chat/channel.hpp — a connected byte stream with asynchat's framing on input and a producer
// FIFO on output, as coroutines.
//
//     task<> session(chat::channel& ch) {
//         ch.set_terminator("\r\n");
//         while (auto line = co_await ch.read()) {    // one frame, or end of stream
//             ch.push("+OK\r\n");                     // queued; the writer sends it
//         }
//     }
//
// Input: read() awaits chunks from the channel's transport (chat/transport.hpp: a socket, by
// default) and cuts them with the framer (chat/framer.hpp). Output: push() and
// push_with_producer() append to a FIFO that a writer coroutine, owned by the channel, drains
// (started by a push, ended once the queue is empty): it gathers queued chunks into one send
// of up to out_buffer_size bytes, asks producers for more(), and closes the channel at a
// close_when_done() marker once everything queued before it is sent. The input side is chat/channel_reader.cpp, the output side
// chat/channel_writer.cpp, and what both share (a close) chat/channel.cpp.
// Invariants: memory is bounded by max_frame on input and, on output, by high_water plus what
// one frame's handling pushes (read() hands out no frame while more than high_water is
// queued), with max_output as the hard cap for pushes that do not come from reading; nothing
// queued before close_when_done() is lost, nothing queued after it is sent.
#pragma once

#include <chrono>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "frame.hpp"
#include "framer.hpp"
#include "terminator.hpp"
#include "transport.hpp"
#include "../core/intrusive_list.hpp"
#include "../core/reactor.hpp"
#include "../core/receiver.hpp"
#include "../core/ring_deque.hpp"
#include "../core/socket.hpp"
#include "../core/task.hpp"
#include "../producers/producer.hpp"

namespace ringchat::chat {

struct channel_options {
    std::size_t max_frame = 64 * 1024;        ///< 0 = unlimited (asynchat)
    std::size_t out_buffer_size = 64 * 1024;  ///< most bytes gathered into one send
    /// drain() waits until queued output is below this (with 0: until all of it is sent)
    std::size_t low_water = 64 * 1024;
    /// Back-pressure without drain(): while more than this is queued, read() (and the
    /// facade's input) hands the session no new frame until the queue is below low_water, as
    /// a server stops reading a client that does not read. 0 = never pause.
    std::size_t high_water = 256 * 1024;
    /// The hard cap: a push that takes queued output past this closes the channel with
    /// errc::output_overflow (queued output is dropped; the peer sees a reset), unless the
    /// queue held at most high_water before it (one large reply, a 20 MiB value, may go). It
    /// stops what back-pressure cannot: pushes that do not answer this channel's own input (a
    /// broadcast to a member who never reads, a loop that writes without drain()). 0 = none.
    std::size_t max_output = 16 * 1024 * 1024;
    /// Fairness: at most this many received bytes are framed per reactor turn (then the
    /// reader waits for the next turn, after the poll), so that one connection's backlog
    /// cannot starve the writers and the other connections of a turn. 0 = no bound.
    std::size_t input_per_turn = 64 * 1024;
    /// Send a producer's file_region (producers::file) with sendfile(2) instead of reading it
    /// into memory first, where the transport can (a socket can).
    bool zero_copy = true;
    /// 0 = none. idle: no byte in or out for that long; read: one read() waiting that long
    /// (the whole wait, however the bytes trickle in); write: one send waiting that long
    /// (a send the kernel takes at once costs no timer). Each closes the channel with
    /// ETIMEDOUT.
    std::chrono::nanoseconds idle_timeout{0};
    std::chrono::nanoseconds read_timeout{0};
    std::chrono::nanoseconds write_timeout{std::chrono::seconds(60)};
    /// A whole frame, from its first byte to its terminator: a peer that trickles a line a
    /// byte at a time cannot renew it (as it renews idle_timeout). It ends the input: read()
    /// gives ETIMEDOUT (with the partial frame), and the channel stays open for output, so
    /// the session can answer (HTTP's 408) before it returns. The facade closes. 0 = none.
    std::chrono::nanoseconds frame_timeout{std::chrono::seconds(60)};
};

struct channel_stats {
    std::uint64_t sends = 0;       ///< sendmsg calls made by the writer
    std::uint64_t bytes_sent = 0;      ///< all bytes sent, bytes_zero_copy included
    std::uint64_t bytes_zero_copy = 0; ///< of those, sent from file regions (sendfile/splice)
    std::uint64_t bytes_received = 0;
};

class channel {
public:
    /// A channel over a connected socket (a socket_transport).
    explicit channel(ringchat::socket s, channel_options options = {});
    /// A channel over any transport (chat/transport.hpp).
    explicit channel(std::unique_ptr<chat::transport> t, channel_options options = {});
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;
    /// Closes the transport; output still queued is dropped, and the peer gets a reset (use
    /// finish() to flush first).
    ~channel();

    // Input.

    /// A byte string (any length), a count (an integer; negative throws
    /// std::invalid_argument, 0 means none as in asynchat), or none. The default is "\n".
    void set_terminator(terminator t) { framer_.set_terminator(std::move(t)); }
    // (In place: no terminator is built and moved, for protocols that set one per read.)
    void set_terminator(std::string_view s) { framer_.set_terminator(s); }
    void set_terminator(const char* s) { framer_.set_terminator(std::string_view(s)); }
    template <std::integral Count>
    void set_terminator(Count count) {
        framer_.set_terminator_count(terminator::checked(static_cast<std::int64_t>(count)));
    }
    /// The frame limit from now on, the frame in progress included (0 = unlimited): raise it
    /// for one large frame whose size the protocol declared, then lower it again.
    void set_max_frame(std::size_t n) noexcept { framer_.set_max_frame(n); }
    /// From now on a frame longer than max_frame is handed over in pieces (frame::piece())
    /// instead of ending with frame_too_long: a record of any length with bounded memory
    /// (SMTP's DATA lines). Off by default.
    void set_frame_pieces(bool on) noexcept { framer_.set_pieces(on); }
    /// The frame deadline from the next wait on (0 = none): a protocol's phases may differ
    /// (HTTP: a head, then a body).
    void set_frame_timeout(std::chrono::nanoseconds d) noexcept { options_.frame_timeout = d; }
    std::size_t max_frame() const noexcept { return framer_.max_frame(); }
    /// The terminator now; a count shows what is left of it, 0 once reached (then "none").
    const terminator& get_terminator() const noexcept { return framer_.get_terminator(); }
    class read_awaitable;
    class frame_stream;
    /// The next frame, or end of stream (see frame). No allocation: a frame already in the
    /// buffered input is cut at once; otherwise the channel's one reader coroutine waits for
    /// input and resumes the caller with the frame.
    read_awaitable read() noexcept;
    /// read() as an async generator:
    ///
    ///     auto frames = ch.frames();
    ///     for (auto it = co_await frames.begin(); it != frames.end(); co_await ++it) {
    ///         if (!*it) continue;            // a frame dropped for its size (frame_too_long)
    ///         use(it->text());
    ///     }
    ///     // frames.error(): why it ended (empty at a clean end of stream)
    frame_stream frames() noexcept;
    /// The next received chunk as it came (for async_chat, which frames by itself); an empty
    /// one at end of stream. `in_frame`: a record is in progress, so frame_timeout runs (from
    /// the first wait with one in progress). Do not mix with read().
    task<result<recv_buffer>> read_chunk(bool in_frame = false);

    // Output.

    void push(std::string_view data) {
        // The common case inline: appended to the chunk queued last, no allocation.
        if (entry* last = coalescing_tail(data.size())) {
            last->data.append(data);
            queued_bytes_ += data.size();
            if (queued_bytes_ > output_cap_ && overflows(data.size())) [[unlikely]] {
                return;
            }
            wake_writer();
            return;
        }
        push_new(data);
    }
    void push(const char* data) { push(std::string_view(data)); }
    void push(std::string&& data);
    void push(std::span<const std::byte> data) {
        push(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
    }
    /// Queues the frame read() gave last, as push(f.data()) would; a large frame that
    /// spanned receive buffers (the framer joined it) is handed over without a copy. `f` is
    /// empty afterwards.
    void push(frame&& f) {
        const auto data = f.data();
        f.forget();
        if (data.size() > coalesce_limit) {
            push_large(data);
        } else {
            push(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
        }
    }
    void push_with_producer(producers::any_producer p);
    /// Closes the channel once everything queued before this is sent.
    void close_when_done();
    /// Drops unread input and all queued output (a close_when_done() marker included).
    void discard_buffers();
    /// Completes when queued output is below the low-water mark (or the channel closed).
    task<> drain();
    /// Completes when everything queued has been sent (bytes and producers, a file sent with
    /// sendfile included), or the channel closed. Unlike drain(), which counts queued bytes
    /// only, this waits for producers too; the channel stays open.
    task<> flush();
    /// Sends everything queued, then closes (bounded by write_timeout). A session's end.
    task<> finish();
    /// The peer reads an end of stream after what was sent; the input goes on (a lingering
    /// close reads what the peer still sends). Call it once flush() has completed.
    void end_output() noexcept { io_->end_output(); }
    /// Puts the channel on the transport `wrap(std::move(current))` returns (never null):
    /// STARTTLS's upgrade to a tls_transport over the plaintext one. Call it between frames
    /// with no output queued (after flush()); input received and not framed yet is dropped
    /// (RFC 3207: a client sends nothing more until the handshake). False, and nothing
    /// changed, where those do not hold or the channel is closed.
    bool replace_transport(
        const std::function<std::unique_ptr<chat::transport>(std::unique_ptr<chat::transport>)>&
            wrap);
    /// Closes now: pending reads end with ECANCELED, queued output is dropped. Whenever a
    /// channel closes with output still queued (this, an error, a timeout, max_output, the
    /// end of a stop's grace period), the connection is reset (SO_LINGER 0), not ended with
    /// a FIN: a peer cannot take a response cut short for a complete one.
    void close() noexcept { shut({}); }
    /// Closes now with `why` as the close_reason().
    void close(std::error_code why) noexcept { shut(why); }

    bool is_open() const noexcept { return open_; }
    /// Why the channel closed: empty for an orderly close (end of stream, close_when_done).
    std::error_code close_reason() const noexcept { return reason_; }
    /// asynchat's writable(): output queued (or a close marker pending).
    bool writable() const noexcept { return !out_.empty(); }
    /// Bytes pushed and not sent yet, a send in progress included (producers count with the
    /// chunks they gave, not what they will give). 0 once the channel is closed.
    std::size_t queued_bytes() const noexcept { return queued_bytes_; }
    const channel_stats& stats() const noexcept { return stats_; }
    const channel_options& options() const noexcept { return options_; }
    chat::transport& transport() noexcept { return *io_; }
    /// The kernel socket under the transport (null for one without, or once closed).
    ringchat::socket* socket() noexcept { return io_->socket(); }
    reactor& owner() const noexcept { return io_->owner(); }

private:
    friend class read_awaitable;
    // 48 bytes: a producer (an any_producer is 120) waits in producers_, in queue order, so
    // that the common entry, bytes, does not carry room for one.
    struct entry {
        std::string data;
        std::size_t offset = 0;
        enum class kind : std::uint8_t { bytes, producer, close } what = kind::bytes;
    };
    /// Small pushes are appended to the last queued chunk up to this size, so that 1,000
    /// pushes of 16 bytes are a few allocations and one gathered send, not 1,000 of each.
    static constexpr std::size_t coalesce_limit = 4096;
    /// Parts in one gathered send. Pushes coalesce into chunks of up to coalesce_limit, so 16
    /// parts hold out_buffer_size's 64 KiB; the array lives in the writer's frame, one per
    /// connection, so it is kept small.
    static constexpr std::size_t max_iovecs = 16;

    /// The chunk queued last, if `n` more bytes may be appended to it: bytes, not in a send
    /// in progress (nor is anything after it), and not grown past coalesce_limit. Null when
    /// the channel is closed (nothing but the entries in flight is left then).
    entry* coalescing_tail(std::size_t n) noexcept {
        if (out_.size() <= in_flight_entries_) {
            return nullptr;
        }
        entry& last = out_.back();
        return last.what == entry::kind::bytes && last.data.size() + n <= coalesce_limit
                   ? &last
                   : nullptr;
    }
    void push_new(std::string_view data);
    void push_large(std::span<const std::byte> data);
    void enqueue(entry e);
    void pop_sent() noexcept;
    void drop_front() noexcept;
    void drop_last() noexcept;
    void drop_output() noexcept;
    bool below_low_water() const noexcept {
        return queued_bytes_ == 0 || queued_bytes_ < options_.low_water;
    }
    /// Reading pauses: more than high_water queued (it resumes below low_water).
    bool input_paused() const noexcept { return queued_bytes_ > input_pause_; }
    /// Waits until queued output is below the low-water mark, or the channel closed.
    struct output_room;
    /// A push of `n` bytes took the queue past max_output: closes the channel (and says so)
    /// unless the queue held at most high_water before it, as one large reply may.
    bool overflows(std::size_t n) noexcept;
    // Per push: inline; a writer that runs sees the push, else the first push of a burst
    // starts one (it sends at the turn's end, and ends once the queue is empty).
    void wake_writer() {
        if (!writer_) {
            start_writer();
        }
    }
    void start_writer();
    /// A coroutine in drain() (for room below low water), flush() (for an empty queue) or
    /// finish() (for the close), linked in waiters_ while it waits: one list for the three,
    /// which are rare, and nothing allocated to wait. Part of the awaiter, in the waiting
    /// frame; a frame destroyed while it waits takes itself out.
    struct waiter {
        enum class until : std::uint8_t { room, empty, closed };
        waiter(channel& c, until u) noexcept : ch(c), what(u) {}
        waiter(const waiter&) = delete;
        waiter& operator=(const waiter&) = delete;
        ~waiter() {
            if (ch.waiters_.linked(*this)) {
                ch.waiters_.erase(*this);
            }
        }
        void wait(std::coroutine_handle<> h) noexcept {
            waiting = h;
            ch.waiters_.push_back(*this);
        }

        channel& ch;
        until what;
        std::coroutine_handle<> waiting;
        list_hook<waiter> link;
    };
    // Inline: the writer calls it each time the queue empties, and there is rarely a waiter.
    void wake(waiter::until what) noexcept {
        if (!waiters_.empty()) {
            wake_all(&what, nullptr);
        }
    }
    /// Takes the waiters for `*what` (every one, for null) out of the list and schedules
    /// them, or (`ready` given: inside the backend's harvest) appends them to `ready`.
    void wake_all(const waiter::until* what, std::vector<std::coroutine_handle<>>* ready) noexcept;
    void shut(std::error_code why) noexcept;
    /// A send of the writer's went out: `n` bytes leave the queue (and count in stats_).
    void count_sent(std::size_t n) noexcept;
    /// A writer's send completed through the backend: counts what the kernel took.
    static void on_sent(io_request& r, std::vector<std::coroutine_handle<>>& ready) noexcept;
    /// The deadline for a wait for input: read_timeout from `started`, idle_timeout from the
    /// last activity, and with `in_frame` frame_timeout from the frame's first wait.
    clock::time_point read_deadline(clock::time_point started, bool in_frame) noexcept;
    /// What a chunk the receiver gave means, when it is ETIMEDOUT: nothing (not a timeout),
    /// a deadline since renewed (output kept the channel busy: wait again), the frame
    /// deadline alone (the input ends), or a read or idle deadline (the channel closes).
    enum class timeout_kind : std::uint8_t { none, renewed, frame, closing };
    timeout_kind classify_timeout(const result<recv_buffer>& chunk, clock::time_point started,
                                  bool in_frame) noexcept;
    /// Ends the input (the frame deadline passed, or the reactor stops) with `out` = the end
    /// for `why`; the output side stays open.
    void end_input(std::error_code why, frame& out);
    /// A graceful stop began: a wait for a new frame ends now (see reactor::stop()).
    static void on_reactor_stop(reactor::stop_hook& h) noexcept;
    /// The reactor is stopping and no frame is in progress: no new frame is waited for.
    bool stop_ends_input(bool in_frame) const noexcept {
        return !in_frame && open_ && owner().stopping();
    }
    /// The receiver's ECANCELED is the stop hook's (not a close's): the input ends as stopped.
    bool stopped_by(const result<recv_buffer>& chunk, bool in_frame) const noexcept {
        return !chunk && chunk.error() == std::errc::operation_canceled &&
               stop_ends_input(in_frame);
    }
    /// A graceful stop ended the input with a request of the peer's still unread.
    bool unserved_input() const noexcept;
    bool take_chunk(result<recv_buffer> chunk, frame& out);
    /// What a stop or a timeout in `chunk` means: true, the input ended (`out` says how);
    /// false, wait again (the idle deadline was renewed by output); nothing, it is input to
    /// take.
    std::optional<bool> judge_input(const result<recv_buffer>& chunk, clock::time_point started,
                                    bool in_frame, frame& out);
    /// The reader's wait for input ended with `chunk`: true when reader_frame_ holds what to
    /// hand over (a frame, or the input's end), false when it must wait again.
    bool frame_received(result<recv_buffer>&& chunk, clock::time_point started, bool in_frame);
    /// This turn's input_per_turn is used up (a new turn starts a new budget).
    bool input_budget_spent() noexcept;
    /// Counts `n` received bytes against this turn's input_per_turn.
    void count_input(std::size_t n) noexcept;
    /// Resumes the caller at the next turn, after a poll.
    struct next_turn;
    // The clock is read only where a timeout needs it (it showed in profiles of ping-pong).
    clock::time_point read_started() const noexcept {
        return options_.read_timeout.count() > 0 ? clock::now() : clock::time_point();
    }
    void note_activity() noexcept {
        if (options_.idle_timeout.count() > 0) {
            last_activity_ = clock::now();
        }
    }
    // A frame from what is buffered, or false when the reader must wait for input. Its common
    // case (a frame in the chunk) is inline: every read() runs it.
    bool try_frame(frame& out) {
        std::span<const std::byte> data;
        const framer::status got = framer_.next(data);
        if (got == framer::status::frame) {
            out.hold(data);
            frame_since_ = clock::time_point();  // the next frame's deadline starts afresh
            return true;
        }
        return try_frame_after(got, data, out);
    }
    bool try_frame_after(framer::status got, std::span<const std::byte> data, frame& out);
    bool reader_busy() const noexcept { return reader_task_.valid() && !reader_; }
    task<> read_loop();
    // The writer (chat/channel_writer.cpp), in its steps.
    /// The writer's coroutine type: its frame frees itself when write_loop() ends, so that an
    /// idle channel holds none (about 800 bytes: the iovecs and the send).
    struct writer_coroutine {
        struct promise_type;
        std::coroutine_handle<> handle;
    };
    struct writer_turn_end;
    /// What the front of the queue holds for the next send.
    struct gathered {
        std::size_t parts = 0;  ///< iovecs filled with queued bytes: send them
        bool producer = false;  ///< a producer is at the front: ask it for more()
        bool close = false;     ///< the close marker is at the front
    };
    gathered gather(iovec (&iov)[max_iovecs]) noexcept;
    /// The close marker reached the front: an orderly close.
    void close_at_marker() noexcept;
    /// The front producer's file region, when it goes without a copy (zero_copy, a transport
    /// that sends files).
    std::optional<producers::file_region> region_to_send();
    task<bool> send_region(producers::file_region region);
    /// Queues what the front producer's more() gave; false when the channel closed meanwhile.
    bool queue_produced(producers::chunk next);
    void producer_failed(std::exception_ptr failure) noexcept;
    /// Takes what a gathered send sent off the queue; false when it failed (closed).
    bool sent_gathered(const result<std::size_t>& sent, std::size_t parts) noexcept;
    writer_coroutine write_loop();

    std::unique_ptr<chat::transport> io_;
    channel_options options_;
    framer framer_;
    recv_buffer current_;
    // The reader coroutine (read_loop) serves read() calls that must wait: parked in
    // reader_ between requests, it resumes reader_consumer_ with reader_frame_.
    std::coroutine_handle<> reader_;
    std::coroutine_handle<> reader_consumer_;
    frame reader_frame_;
    task<> reader_task_;  // TRICKY: after io_, so destroyed first (its wait on io_ dies first)
    ring_deque<entry> out_;
    ring_deque<producers::any_producer> producers_;  // one per producer entry in out_, in order
    // The buffer of the last small chunk sent, kept for the next push(): a session that
    // answers each request with a few small pushes allocates nothing per request.
    std::string spare_;
    std::size_t in_flight_entries_ = 0;  // entries the send in progress points into
    std::size_t queued_bytes_ = 0;
    std::size_t input_pause_;  // high_water, or SIZE_MAX for none: one compare per read()
    std::size_t output_cap_;   // max_output, or SIZE_MAX for none: one compare per push()
    // The running writer's frame, null while there is none (write_loop() clears it as it
    // ends); the destructor destroys one that is suspended, which cancels and awaits its send.
    std::coroutine_handle<> writer_;
    io_request* sending_ = nullptr;  // the writer's send in progress (shut() cancels it)
    std::coroutine_handle<> writer_scheduled_;  // deferred to the turn's end, not resumed yet
    intrusive_list<waiter, &waiter::link> waiters_;
    clock::time_point last_activity_;
    std::uint64_t input_turn_ = 0;      // the turn input_this_turn_ counts for
    std::size_t input_this_turn_ = 0;
    clock::time_point frame_since_;   // the frame in progress was first waited for then (0: none)
    reactor::stop_hook stop_hook_{&on_reactor_stop, this};
    std::error_code input_error_;     // why the input ended while the channel stays open
    channel_stats stats_;
    std::error_code reason_;
    // The flags, together where they pack (a connection holds a channel: 16 bytes of
    // padding when they were spread).
    bool open_ = true;
    bool input_done_ = false;
    bool waiting_for_frame_ = false;  // the reader waits for input with no frame in progress
    bool nothing_buffered_ = false;   // read() found no frame in the input just before
    bool reader_inline_ = false;      // read() is running the reader from its await_suspend
    bool framed_inline_ = false;      // ... and the reader parked with the frame meanwhile
    bool reset_on_shut_ = false;      // output was refused (max_output): the close is a reset
    bool sent_counted_ = false;       // on_sent took the send's bytes off queued_bytes_
    bool discard_in_flight_ = false;  // discard_buffers() ran meanwhile: drop them after
};

class channel::read_awaitable {
public:
    explicit read_awaitable(channel& ch) noexcept : ch_(&ch) {}
    read_awaitable(const read_awaitable&) = delete;
    read_awaitable& operator=(const read_awaitable&) = delete;
    ~read_awaitable() {
        if (waiting_ && ch_->reader_consumer_ == waiting_) {
            ch_->reader_consumer_ = {};  // the caller died waiting: the reader must not resume it
        }
    }

    bool await_ready() {
        if (ch_->reader_busy() || ch_->input_paused()) {
            return false;  // the reader serves it (and waits for the output to drain)
        }
        if (ch_->try_frame(result_)) {
            return true;
        }
        ch_->nothing_buffered_ = true;  // the reader, resumed next, need not look again
        return false;
    }
    bool await_suspend(std::coroutine_handle<> h);
    frame await_resume() noexcept {
        if (waiting_) {
            waiting_ = {};
            return std::move(ch_->reader_frame_);
        }
        return std::move(result_);
    }

private:
    channel* ch_;
    frame result_;
    std::coroutine_handle<> waiting_;
};

class channel::frame_stream {
public:
    explicit frame_stream(channel& ch) noexcept : ch_(&ch) {}

    class iterator {
    public:
        iterator() = default;
        explicit iterator(frame_stream* s) noexcept : s_(s) {}
        const frame& operator*() const noexcept { return s_->current_; }
        const frame* operator->() const noexcept { return &s_->current_; }
        /// Awaitable: reads the next frame; the iterator then equals end() if there is none.
        auto operator++() { return s_->advance(this); }
        bool operator==(const iterator&) const noexcept = default;

    private:
        friend class frame_stream;
        frame_stream* s_ = nullptr;
    };

    /// Awaitable: reads the first frame.
    auto begin() { return advance(nullptr); }
    iterator end() const noexcept { return {}; }
    /// Why the stream ended: empty for a clean end of stream.
    std::error_code error() const noexcept { return error_; }
    /// At the end: bytes received after the last terminator.
    const std::string& partial() const noexcept { return current_.partial(); }

private:
    // One read() and, on its completion, the verdict: a frame (or a dropped one) goes on, any
    // other "no frame" ends the stream.
    struct step {
        frame_stream* s;
        iterator* it;
        read_awaitable read;
        bool await_ready() { return read.await_ready(); }
        auto await_suspend(std::coroutine_handle<> h) { return read.await_suspend(h); }
        iterator& await_resume() noexcept;
    };
    step advance(iterator* it) noexcept { return step{this, it, read_awaitable(*ch_)}; }

    channel* ch_;
    frame current_;
    iterator position_;
    std::error_code error_;
};

inline channel::read_awaitable channel::read() noexcept { return read_awaitable(*this); }
inline channel::frame_stream channel::frames() noexcept { return frame_stream(*this); }

}  // namespace ringchat::chat
