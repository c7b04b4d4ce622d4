// SPDX-License-Identifier: MIT
// The io_uring backend: prepare an SQE per operation, submit in batches from poll(), harvest
// completions, then let the reactor resume the waiters.
//
// Internal CQEs carry a tag below 8 in user_data; everything else is an io_request*.
#include "uring_backend.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <csignal>
#include <cstdint>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include <liburing.h>

#include "error.hpp"
#include "log.hpp"
#include "uring_buffer_ring.hpp"

namespace ringchat {
namespace {

enum tag : std::uint64_t {
    tag_ignore = 1,  // linked timeouts and cancels: their CQEs only confirm
    tag_wake = 2,    // the eventfd read that wake() completes
    tag_msg = 3,     // a peer's wake_peer() (IORING_OP_MSG_RING): only makes poll() return
    tag_msg_failed = 4,  // with the peer's eventfd << 3: our MSG_RING failed; wake it so
};

// IORING_FEAT_REG_REG_RING came with Linux 6.3, after liburing 2.3: written here by hand.
// From 6.3 on, MSG_RING reaches a DEFER_TASKRUN ring through its task work (and wakes it);
// wake_peer() uses MSG_RING only there, and an eventfd write before.
#ifndef IORING_FEAT_REG_REG_RING
#define IORING_FEAT_REG_REG_RING (1U << 13)
#endif

// IORING_CQE_F_BUF_MORE (6.12): the kernel goes on filling the completion's buffer (see
// uring_buffer_ring); liburing 2.3's headers predate it.
constexpr std::uint32_t cqe_f_buf_more = 1U << 4;

constexpr std::uint16_t buffer_group = 0;

__kernel_timespec to_timespec(clock::time_point t) noexcept {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch());
    __kernel_timespec ts{};
    ts.tv_sec = ns.count() / 1'000'000'000;
    ts.tv_nsec = ns.count() % 1'000'000'000;
    return ts;
}

/// sendfile(2) for an opcode::sendfile request: bytes sent, or -errno (-EAGAIN: not now).
int send_file_now(const io_request& r) noexcept {
    off_t offset = static_cast<off_t>(r.offset);
    const ssize_t n = ::sendfile(r.fd, r.flags, &offset, r.len);
    if (n < 0) {
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
    return static_cast<int>(n);
}

}  // namespace

struct uring_backend::state {
    io_uring ring{};
    bool ring_ready = false;
    unsigned setup_flags = 0;
    detail::uring_buffer_ring buffers;
    int wake_fd = -1;
    std::uint64_t wake_value = 0;
    bool wake_armed = false;
    bool msg_ring = false;  // wake_peer() may send IORING_OP_MSG_RING
    bool ring_fd_registered = false;  // reactor_options::registered_ring_fd, in effect
    unsigned min_wait_us = 0;         // reactor_options::min_wait, where the kernel has it
    unsigned min_wait_batch = 1;

    // TRICKY: the harvest is never re-entered. A completion's callback (a multishot recv or
    // accept re-armed, a timer cancelled, a sendfile polled again) may ask for an SQE while
    // walk() is between the CQ's head and tail; making room there (a submit that answers
    // EBUSY, then a reap) would walk the same CQEs again, handling some twice. So what is
    // asked for during the walk is queued here and prepared once the CQ head has moved on.
    struct queued_op {
        io_request* r;
        bool cancel;
    };
    std::vector<queued_op> queued;
    bool walking = false;
    bool flushing = false;

    /// Submits, and waits for min_wait_batch completions for up to min_wait_us, then for the
    /// first one until `ts` (null: no end). By hand: liburing 2.3 has no min_wait.
    int submit_and_wait_batch(const __kernel_timespec* ts) noexcept {
        // As liburing's __io_uring_flush_sq (private in 2.3): the SQEs prepared go to the
        // kernel's tail. (No SQPOLL here, so a plain store.)
        io_uring_sq& sq = ring.sq;
        if (sq.sqe_head != sq.sqe_tail) {
            sq.sqe_head = sq.sqe_tail;
            IO_URING_WRITE_ONCE(*sq.ktail, sq.sqe_tail);
        }
        const unsigned to_submit = sq.sqe_tail - IO_URING_READ_ONCE(*sq.khead);
        // struct io_uring_getevents_arg of Linux 6.12, where 2.3's header has `pad`.
        struct {
            std::uint64_t sigmask;
            std::uint32_t sigmask_sz;
            std::uint32_t min_wait_usec;
            std::uint64_t ts;
        } arg{0, _NSIG / 8, min_wait_us, reinterpret_cast<std::uint64_t>(ts)};
        // With registered_ring_fd, enter_ring_fd is its index, as liburing's own enters use it.
        unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
        if (ring_fd_registered) {
            flags |= IORING_ENTER_REGISTERED_RING;
        }
        return io_uring_enter2(static_cast<unsigned>(ring.enter_ring_fd), to_submit,
                               min_wait_batch, flags, reinterpret_cast<sigset_t*>(&arg),
                               sizeof arg);
    }

    ~state() {
        if (wake_fd >= 0) {
            close(wake_fd);
        }
        if (ring_ready) {
            buffers.reset();  // unregisters from the ring, so before the ring goes
            if (ring_fd_registered) {
                // The thread's table of registered rings holds 16: a thread that makes and
                // ends many reactors (the tests) must give each slot back. liburing 2.3's
                // queue_exit does it too; done here so as not to depend on that.
                io_uring_unregister_ring_fd(&ring);
            }
            io_uring_queue_exit(&ring);
        }
    }

    /// Whether SQEs must wait in `queued` rather than be prepared now.
    bool must_queue() const noexcept { return walking || !queued.empty(); }
    /// Room for `n` SQEs in the SQ (an operation and its linked timeout go in together).
    void make_room(unsigned n, ready_queue& overflow, uring_backend& self);
    /// The SQE(s) of `r` (POLL_ADD for a sendfile that has to wait), with its linked timeout.
    void prepare(io_request& r, ready_queue& overflow, uring_backend& self);
    void prepare_cancel(io_request& r, ready_queue& overflow, uring_backend& self);
    /// Harvests the CQ, then prepares what the callbacks queued meanwhile.
    void reap(ready_queue& ready, uring_backend& self);
    void walk(ready_queue& ready, uring_backend& self);
    void flush_queued(ready_queue& ready, uring_backend& self);
    void arm_wake(ready_queue& overflow, uring_backend& self);
};

void uring_backend::state::make_room(unsigned n, ready_queue& overflow, uring_backend& self) {
    assert(!walking && "an SQE asked for inside the harvest must be queued");
    while (io_uring_sq_space_left(&ring) < n) {
        // SQ full: submit the batch. -EBUSY means the CQ overflowed and the kernel wants us to
        // reap first (IORING_FEAT_NODROP keeps the overflowed CQEs for us); -EAGAIN, that it
        // is short of memory for now.
        const int rc = io_uring_submit(&ring);
        if (rc == -EBUSY || rc == -EAGAIN) {
            reap(overflow, self);
        }
    }
}

void uring_backend::state::arm_wake(ready_queue& overflow, uring_backend& self) {
    make_room(1, overflow, self);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_read(sqe, wake_fd, &wake_value, sizeof wake_value, 0);
    io_uring_sqe_set_data64(sqe, tag_wake);
    wake_armed = true;
}

result<std::unique_ptr<backend>> uring_backend::create(const reactor_options& options) {
    auto s = std::make_unique<state>();
    // Best first, per liburing's proxy.c: DEFER_TASKRUN (6.1) runs task work only when we
    // wait and needs SINGLE_ISSUER (6.0); COOP_TASKRUN (5.19) avoids IPIs. Older kernels
    // answer EINVAL for an unknown flag: only then try the next. CQSIZE (5.5) always, four
    // times the SQ, so bursts of multishot completions fit.
    const unsigned attempts[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    int rc = -EINVAL;
    for (unsigned flags : attempts) {
        io_uring_params params{};
        params.flags = flags | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
        params.cq_entries = options.queue_depth * 4;
        rc = io_uring_queue_init_params(options.queue_depth, &s->ring, &params);
        if (rc == 0) {
            s->setup_flags = flags;
            // IORING_FEAT_MIN_TIMEOUT (Linux 6.12); liburing 2.3 does not name it.
            constexpr unsigned feat_min_timeout = 1U << 15;
            if (options.min_wait.count() > 0) {
                if ((params.features & feat_min_timeout) != 0) {
                    s->min_wait_us = static_cast<unsigned>(options.min_wait.count());
                    s->min_wait_batch = std::max(1U, options.min_wait_batch);
                } else {
                    log::info("io_uring: min_wait is ignored (the kernel lacks it, Linux 6.12)");
                }
            }
            s->msg_ring = (params.features & IORING_FEAT_REG_REG_RING) != 0 &&
                          (params.features & IORING_FEAT_CQE_SKIP) != 0;
            if ((params.features & IORING_FEAT_NODROP) == 0 ||
                (params.features & IORING_FEAT_EXT_ARG) == 0) {
                io_uring_queue_exit(&s->ring);
                return make_error_code(errc::backend_unavailable);
            }
            break;
        }
        if (rc != -EINVAL) {
            break;
        }
    }
    if (rc < 0) {
        return errno_code(rc);
    }
    s->ring_ready = true;

    // Probe once: every opcode ringchat prepares must be there (Seastar's try_create_uring).
    io_uring_probe* probe = io_uring_get_probe_ring(&s->ring);
    if (probe == nullptr) {
        return make_error_code(errc::backend_unavailable);
    }
    const int needed[] = {IORING_OP_ACCEPT, IORING_OP_CONNECT, IORING_OP_RECV,
                          IORING_OP_SEND, IORING_OP_SENDMSG, IORING_OP_READ,
                          IORING_OP_WRITE, IORING_OP_TIMEOUT, IORING_OP_LINK_TIMEOUT,
                          IORING_OP_ASYNC_CANCEL, IORING_OP_CLOSE};
    bool complete = true;
    for (int op : needed) {
        complete = complete && io_uring_opcode_supported(probe, op) != 0;
    }
    s->msg_ring = s->msg_ring && io_uring_opcode_supported(probe, IORING_OP_MSG_RING) != 0;
    io_uring_free_probe(probe);
    if (!complete) {
        return make_error_code(errc::backend_unavailable);
    }

    // Multishot recv needs a provided-buffer ring (5.19); without it, io_uring here is not
    // worth using.
    if (auto ok = s->buffers.setup(s->ring, buffer_group, options.buffer_count,
                                   options.buffer_size, options.incremental_buffers);
        !ok) {
        return ok.error() == std::errc::invalid_argument
                   ? make_error_code(errc::backend_unavailable)
                   : ok.error();
    }
    if (options.incremental_buffers && !s->buffers.incremental()) {
        log::info("io_uring: provided buffers are consumed whole, a buffer per receive ({})",
                  options.buffer_size > 65536 ? "buffer_size is over 64 KiB"
                                              : "the kernel lacks IOU_PBUF_RING_INC, Linux 6.12");
    }
    if (options.registered_ring_fd) {
        // liburing then enters with the registered index (IORING_ENTER_REGISTERED_RING) by
        // itself; MSG_RING from other reactors still names the ring's plain descriptor.
        const int n = io_uring_register_ring_fd(&s->ring);
        s->ring_fd_registered = n == 1;
        if (n != 1) {
            log::info("io_uring: the ring's descriptor is not registered ({}): each enter "
                      "looks it up",
                      n < 0 ? std::generic_category().message(-n) : std::string("refused"));
        }
    }
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd < 0) {
        return std::error_code(errno, std::system_category());
    }
    auto b = std::unique_ptr<uring_backend>(new uring_backend(std::move(s)));
    b->buffer_memory_ = b->s_->buffers.memory();
    b->buffer_size_ = options.buffer_size;
    return std::unique_ptr<backend>(std::move(b));
}

uring_backend::uring_backend(std::unique_ptr<state> s) noexcept : s_(std::move(s)) {}

uring_backend::~uring_backend() = default;

bool uring_backend::registered_ring_fd() const noexcept { return s_->ring_fd_registered; }

std::string_view uring_backend::setup_mode() const noexcept {
    if (s_->setup_flags & IORING_SETUP_DEFER_TASKRUN) {
        return "SINGLE_ISSUER|DEFER_TASKRUN";
    }
    if (s_->setup_flags & IORING_SETUP_COOP_TASKRUN) {
        return "COOP_TASKRUN";
    }
    return "plain";
}

bool uring_backend::start(io_request& r) noexcept {
    if (r.op == opcode::sendfile) {
        // io_uring has no sendfile: try sendfile(2) now; on EAGAIN, a POLL_ADD for POLLOUT
        // stands in for the request and walk() sends when it fires (see send_file_now).
        const int res = send_file_now(r);
        if (res != -EAGAIN) {
            r.res = res;
            return false;
        }
    }
    track(r);
    if (s_->must_queue()) {
        s_->queued.push_back({&r, false});
    } else {
        s_->prepare(r, deferred_, *this);
    }
    return true;
}

void uring_backend::state::prepare(io_request& r, ready_queue& overflow, uring_backend& self) {
    // A timeout that starts only once the request waits: first without it, and without
    // waiting (MSG_DONTWAIT completes with EAGAIN rather than poll); walk() then submits
    // it again with its deadline set and linked. Other opcodes cannot try first.
    const bool can_try_first =
        r.op == opcode::send || r.op == opcode::sendmsg || r.op == opcode::recv;
    if (r.timeout_if_blocked.count() > 0 && !can_try_first) {
        r.deadline = clock::now() + std::exchange(r.timeout_if_blocked, {});
    }
    const bool try_first = r.timeout_if_blocked.count() > 0;
    const int dontwait = try_first ? MSG_DONTWAIT : 0;
    const bool linked = r.has_deadline() && r.op != opcode::sleep && !try_first;
    // A linked timeout needs its SQE right after the operation's, in the same submission:
    // room for both first, so that a full SQ never sends the operation out without it.
    make_room(linked ? 2 : 1, overflow, self);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    const int nosignal = MSG_NOSIGNAL;
    switch (r.op) {
    case opcode::accept:
        io_uring_prep_accept(sqe, r.fd, static_cast<sockaddr*>(r.buf),
                             r.buf != nullptr ? reinterpret_cast<socklen_t*>(&r.addrlen) : nullptr,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    case opcode::connect:
        io_uring_prep_connect(sqe, r.fd, static_cast<const sockaddr*>(r.buf), r.len);
        break;
    case opcode::recv:
        io_uring_prep_recv(sqe, r.fd, r.buf, r.len, r.flags | dontwait);
        break;
    case opcode::send:
        io_uring_prep_send(sqe, r.fd, r.buf, r.len, r.flags | nosignal | dontwait);
        break;
    case opcode::sendmsg:
        io_uring_prep_sendmsg(sqe, r.fd, static_cast<const msghdr*>(r.buf),
                              static_cast<unsigned>(r.flags | nosignal | dontwait));
        break;
    case opcode::read:
        io_uring_prep_read(sqe, r.fd, r.buf, r.len, r.offset);
        break;
    case opcode::write:
        io_uring_prep_write(sqe, r.fd, r.buf, r.len, r.offset);
        break;
    case opcode::sleep: {
        // The kernel copies the timespec while submitting; it lives in the request anyway.
        auto* ts = new (r.backend_storage) __kernel_timespec(to_timespec(r.deadline));
        io_uring_prep_timeout(sqe, ts, 0, IORING_TIMEOUT_ABS);
        break;
    }
    case opcode::close:
        io_uring_prep_close(sqe, r.fd);
        break;
    case opcode::accept_multishot:
        io_uring_prep_multishot_accept(sqe, r.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    case opcode::recv_multishot:
        io_uring_prep_recv_multishot(sqe, r.fd, nullptr, 0, r.flags);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = buffer_group;
        break;
    case opcode::sendfile:
        io_uring_prep_poll_add(sqe, r.fd, POLLOUT);
        break;
    }
    io_uring_sqe_set_data(sqe, &r);
    if (linked) {
        sqe->flags |= IOSQE_IO_LINK;
        auto* ts = new (r.backend_storage) __kernel_timespec(to_timespec(r.deadline));
        io_uring_sqe* timeout = io_uring_get_sqe(&ring);
        io_uring_prep_link_timeout(timeout, ts, IORING_TIMEOUT_ABS);
        io_uring_sqe_set_data64(timeout, tag_ignore);
    }
}

bool uring_backend::repoll(io_request& r) noexcept {
    if (r.cancel_requested) {
        return false;  // a cancel is on its way and would miss the new poll: end it here
    }
    // Called from the walk: the POLL_ADD (and its linked timeout) is prepared after it.
    s_->queued.push_back({&r, false});
    return true;  // still in flight, still tracked
}

void uring_backend::cancel(io_request& r) noexcept {
    r.cancel_requested = true;
    if (s_->must_queue()) {
        s_->queued.push_back({&r, true});
    } else {
        s_->prepare_cancel(r, deferred_, *this);
    }
}

void uring_backend::state::prepare_cancel(io_request& r, ready_queue& overflow,
                                          uring_backend& self) {
    make_room(1, overflow, self);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(&r), 0);
    io_uring_sqe_set_data64(sqe, tag_ignore);
}

void uring_backend::state::flush_queued(ready_queue& ready, uring_backend& self) {
    if (flushing) {
        return;  // a reap inside make_room, inside this loop: the loop takes what it queued
    }
    flushing = true;
    // By index, and by value: preparing one may reap (make_room), and that queues more.
    for (std::size_t i = 0; i < queued.size(); ++i) {
        const queued_op op = queued[i];
        if (op.cancel) {
            prepare_cancel(*op.r, ready, self);
        } else {
            prepare(*op.r, ready, self);
        }
    }
    queued.clear();
    flushing = false;
}

void uring_backend::state::reap(ready_queue& ready, uring_backend& self) {
    walk(ready, self);
    flush_queued(ready, self);
}

void uring_backend::state::walk(ready_queue& ready, uring_backend& self) {
    walking = true;
    for (;;) {
        unsigned head = 0;
        unsigned count = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(&ring, head, cqe) {
            ++count;
            const std::uint64_t data = io_uring_cqe_get_data64(cqe);
            if (data == tag_wake) {
                wake_armed = false;
                continue;
            }
            if ((data & 7) == tag_msg_failed) {
                // Our wake_peer()'s MSG_RING did not reach the peer: its eventfd instead.
                const std::uint64_t one = 1;
                [[maybe_unused]] ssize_t n =
                    ::write(static_cast<int>(data >> 3), &one, sizeof one);
                continue;
            }
            if (data < 8) {
                continue;
            }
            auto& r = *reinterpret_cast<io_request*>(data);
            std::int32_t res = cqe->res;
            std::uint32_t flags = 0;
            if (cqe->flags & IORING_CQE_F_MORE) {
                flags |= io_more;
            }
            if (cqe->flags & IORING_CQE_F_BUFFER) {
                flags |= io_has_buffer;
                r.buffer_id = static_cast<std::uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
                r.buffer_offset = static_cast<std::uint16_t>(
                    buffers.filled(r.buffer_id, res, (cqe->flags & cqe_f_buf_more) != 0));
            }
            if (r.op == opcode::sleep && res == -ETIME) {
                res = 0;  // a sleep that ran its course
            }
            if (res == -EAGAIN && !r.cancel_requested &&
                (r.op == opcode::send || r.op == opcode::sendmsg || r.op == opcode::recv)) {
                // Not now: either the try without waiting of a timeout_if_blocked request
                // (again with the deadline linked), or a kernel quirk: the socket is
                // O_NONBLOCK (for sendfile(2) and the epoll backend), and when the kernel
                // retries a send that already polled (a partial send, then a full buffer)
                // it punts it to io-wq, where O_NONBLOCK answers EAGAIN instead of waiting.
                // Either way it is submitted again, and polls.
                if (r.timeout_if_blocked.count() > 0) {
                    r.deadline = clock::now() + std::exchange(r.timeout_if_blocked, {});
                }
                queued.push_back({&r, false});
                continue;
            }
            if (r.op == opcode::sendfile && res >= 0 && r.cancel_requested) {
                res = -ECANCELED;  // its socket may be closed already: send nothing
            } else if (r.op == opcode::sendfile && res >= 0) {
                // The socket is writable: send now, or wait again if someone else filled it.
                res = send_file_now(r);
                if (res == -EAGAIN && self.repoll(r)) {
                    continue;
                }
            }
            self.finish(r, res, flags, ready);
        }
        io_uring_cq_advance(&ring, count);
        // CQEs that did not fit wait in the kernel (FEAT_NODROP); flush them and go again.
        if (!(IO_URING_READ_ONCE(*ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)) {
            break;
        }
        io_uring_get_events(&ring);
    }
    walking = false;
}

void uring_backend::poll(std::chrono::nanoseconds timeout, ready_queue& ready) {
    assert(!s_->walking && "poll() from a completion callback");
    if (!deferred_.empty()) {
        ready.insert(ready.end(), deferred_.begin(), deferred_.end());
        deferred_.clear();
        timeout = std::chrono::nanoseconds::zero();
    }
    if (!s_->wake_armed) {
        s_->arm_wake(deferred_, *this);
    }
    int rc = 0;
    if (timeout <= std::chrono::nanoseconds::zero()) {
        // Submits and, with DEFER_TASKRUN, runs the task work that posts completions.
        rc = io_uring_submit_and_get_events(&s_->ring);
    } else {
        io_uring_cqe* cqe = nullptr;
        __kernel_timespec ts{};
        const bool forever = timeout == std::chrono::nanoseconds::max();
        ts.tv_sec = timeout.count() / 1'000'000'000;
        ts.tv_nsec = timeout.count() % 1'000'000'000;
        if (s_->min_wait_us == 0) {
            rc = io_uring_submit_and_wait_timeout(&s_->ring, &cqe, 1, forever ? nullptr : &ts,
                                                  nullptr);
        } else {
            rc = s_->submit_and_wait_batch(forever ? nullptr : &ts);
        }
    }
    // -ETIME: the wait timed out; -EINTR: a signal; -EBUSY: CQ overflow, reap below.
    (void)rc;
    s_->reap(ready, *this);
    if (!deferred_.empty()) {
        ready.insert(ready.end(), deferred_.begin(), deferred_.end());
        deferred_.clear();
    }
}

void uring_backend::wake() noexcept {
    const std::uint64_t one = 1;
    // write(2) on an eventfd is async-signal-safe; a failure means it is already signalled.
    [[maybe_unused]] ssize_t n = ::write(s_->wake_fd, &one, sizeof one);
}

void uring_backend::wake_peer(backend& target) noexcept {
    auto* peer = target.kind() == backend_kind::uring ? static_cast<uring_backend*>(&target)
                                                      : nullptr;
    if (peer == nullptr || !s_->msg_ring || s_->must_queue()) {
        target.wake();
        return;
    }
    // A CQE tagged tag_msg on the peer's ring, sent with our next io_uring_enter (no syscall
    // of its own); ours only if it fails (CQE_SKIP_SUCCESS), carrying the fallback's fd.
    s_->make_room(1, deferred_, *this);
    io_uring_sqe* sqe = io_uring_get_sqe(&s_->ring);
    io_uring_prep_msg_ring(sqe, peer->s_->ring.ring_fd, 0, tag_msg, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(
        sqe, (static_cast<std::uint64_t>(peer->s_->wake_fd) << 3) | tag_msg_failed);
}

void uring_backend::give_back(std::uint16_t id) noexcept { s_->buffers.release(id); }

std::uint32_t uring_backend::free_buffers() const noexcept { return s_->buffers.free_count(); }

bool uring_backend::incremental_buffers() const noexcept { return s_->buffers.incremental(); }

}  // namespace ringchat
