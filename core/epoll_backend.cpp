// SPDX-License-Identifier: MIT
// The epoll backend: try the syscall first, park on EAGAIN, retry on readiness.
#include "epoll_backend.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdint>
#include <limits>

#include "log.hpp"

namespace ringchat {
namespace {

constexpr unsigned inline_completions_per_turn = 64;  // then queue: others get a turn
constexpr int completions_per_fd_per_turn = 16;
constexpr std::size_t buffers_per_recv = 4;
constexpr std::uint64_t current_position = ~std::uint64_t{0};

bool is_reader(opcode op) noexcept {
    switch (op) {
    case opcode::accept:
    case opcode::recv:
    case opcode::read:
    case opcode::accept_multishot:
    case opcode::recv_multishot:
        return true;
    default:
        return false;
    }
}

int error_result() noexcept { return errno == EWOULDBLOCK ? -EAGAIN : -errno; }

/// The non-blocking syscall of a single-shot request: its result, or -EAGAIN.
int perform(io_request& r) noexcept {
    ssize_t n = -1;
    switch (r.op) {
    case opcode::accept:
        n = accept4(r.fd, static_cast<sockaddr*>(r.buf),
                    r.buf != nullptr ? reinterpret_cast<socklen_t*>(&r.addrlen) : nullptr,
                    SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    case opcode::recv:
        n = ::recv(r.fd, r.buf, r.len, r.flags);
        break;
    case opcode::send:
        n = ::send(r.fd, r.buf, r.len, r.flags | MSG_NOSIGNAL);
        break;
    case opcode::sendmsg:
        n = ::sendmsg(r.fd, static_cast<const msghdr*>(r.buf), r.flags | MSG_NOSIGNAL);
        break;
    case opcode::read:
        n = r.offset == current_position
                ? ::read(r.fd, r.buf, r.len)
                : ::pread(r.fd, r.buf, r.len, static_cast<off_t>(r.offset));
        break;
    case opcode::write:
        n = r.offset == current_position
                ? ::write(r.fd, r.buf, r.len)
                : ::pwrite(r.fd, r.buf, r.len, static_cast<off_t>(r.offset));
        break;
    case opcode::sendfile: {
        off_t offset = static_cast<off_t>(r.offset);
        n = ::sendfile(r.fd, r.flags, &offset, r.len);
        break;
    }
    case opcode::connect: {
        // Reached only once the socket is writable: the connect has finished.
        int error = 0;
        socklen_t size = sizeof error;
        if (getsockopt(r.fd, SOL_SOCKET, SO_ERROR, &error, &size) < 0) {
            return -errno;
        }
        return error == EINPROGRESS ? -EAGAIN : -error;
    }
    default:
        return -EINVAL;
    }
    return n < 0 ? error_result() : static_cast<int>(n);
}

}  // namespace

result<std::unique_ptr<backend>> epoll_backend::create(const reactor_options& options) {
    auto b = std::unique_ptr<epoll_backend>(new epoll_backend());
    b->epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (b->epfd_ < 0) {
        return std::error_code(errno, std::system_category());
    }
    b->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->wake_fd_ < 0) {
        return std::error_code(errno, std::system_category());
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = b->wake_fd_;
    if (epoll_ctl(b->epfd_, EPOLL_CTL_ADD, b->wake_fd_, &ev) < 0) {
        return std::error_code(errno, std::system_category());
    }
    // The same pool of receive buffers io_uring's buffer ring has, so that multishot recv
    // behaves alike (ENOBUFS included) and idle connections hold no buffer.
    b->memory_bytes_ = std::size_t{options.buffer_count} * options.buffer_size;
    void* mem = mmap(nullptr, b->memory_bytes_, PROT_READ | PROT_WRITE,
                     MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) {
        return std::error_code(errno, std::system_category());
    }
    b->buffer_memory_ = static_cast<std::byte*>(mem);
    b->buffer_size_ = options.buffer_size;
    b->free_.reserve(options.buffer_count);
    for (unsigned id = options.buffer_count; id-- > 0;) {
        b->free_.push_back(static_cast<std::uint16_t>(id));
    }
    // Shared buffers as on io_uring, within the same limits: a chunk's offset is 16 bits, and
    // no_buffer is not an id.
    if (options.incremental_buffers) {
        if (options.buffer_size > 65536 || options.buffer_count > 32768) {
            log::info("epoll: provided buffers are consumed whole, a buffer per receive ({})",
                      options.buffer_size > 65536 ? "buffer_size is over 64 KiB"
                                                  : "buffer_count is over 32768");
        } else {
            b->incremental_ = true;
            b->chunks_.assign(options.buffer_count, 0);
        }
    }
    return std::unique_ptr<backend>(std::move(b));
}

epoll_backend::~epoll_backend() {
    if (buffer_memory_ != nullptr) {
        munmap(buffer_memory_, memory_bytes_);
    }
    if (wake_fd_ >= 0) {
        close(wake_fd_);
    }
    if (epfd_ >= 0) {
        close(epfd_);
    }
}

epoll_backend::fd_state& epoll_backend::state_of(int fd) {
    if (static_cast<std::size_t>(fd) >= fds_.size()) {
        fds_.resize(static_cast<std::size_t>(fd) + 64);
    }
    return fds_[static_cast<std::size_t>(fd)];
}

bool epoll_backend::ensure_registered(int fd, fd_state& st) noexcept {
    if (st.registered) {
        return true;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0 && errno != EEXIST) {
        if (errno != EPERM) {
            return false;
        }
        // A regular file (EPERM: epoll cannot watch it) is always ready: a request parked on
        // it, once this turn's inline budget is spent, is retried next turn (pread never
        // says EAGAIN), with no readiness to wait for.
        st.readable = st.writable = true;
    }
    st.registered = true;
    return true;
}

void epoll_backend::park(io_request& r, fd_state& st) noexcept {
    (is_reader(r.op) ? st.readers : st.writers).push_back(r);
}

void epoll_backend::unpark(io_request& r) noexcept {
    // A request that was never parked (a sleep) has nothing to leave.
    if (!parked_queue::linked(r)) {
        return;
    }
    fd_state& st = fds_[static_cast<std::size_t>(r.fd)];
    [[maybe_unused]] const bool found = (is_reader(r.op) ? st.readers : st.writers).erase(r);
    assert(found && "parked on its own fd, in its own direction");
}

void epoll_backend::schedule_retry(int fd, fd_state& st) noexcept {
    if (!st.queued) {
        st.queued = true;
        retry_.push_back(fd);
    }
}

void epoll_backend::complete(io_request& r, std::int32_t res, std::uint32_t flags,
                             ready_queue& ready) noexcept {
    if ((flags & io_more) == 0) {
        unpark(r);
        heap_remove(r);
    }
    finish(r, res, flags, ready);
}

bool epoll_backend::start(io_request& r) noexcept {
    if (r.has_deadline() && r.deadline <= clock::now() && r.op != opcode::close) {
        r.res = r.op == opcode::sleep ? 0 : -ETIMEDOUT;
        return false;
    }
    switch (r.op) {
    case opcode::sleep:
        track(r);
        heap_push(r);
        return true;
    case opcode::close:
        forget(r.fd);
        r.res = ::close(r.fd) < 0 ? -errno : 0;
        return false;
    case opcode::connect:
        if (::connect(r.fd, static_cast<const sockaddr*>(r.buf), r.len) == 0) {
            r.res = 0;
            return false;
        }
        if (errno != EINPROGRESS) {
            r.res = -errno;
            return false;
        }
        break;
    default:
        break;
    }
    fd_state& st = state_of(r.fd);
    const bool reading = is_reader(r.op);
    const bool first = (reading ? st.readers : st.writers).empty();
    const bool multishot = r.op == opcode::accept_multishot || r.op == opcode::recv_multishot;
    if (!multishot && r.op != opcode::connect && first) {
        if (inline_budget_ > 0) {
            // Speculate: most sends, and recvs on busy connections, finish at once.
            int res = perform(r);
            if (res != -EAGAIN) {
                --inline_budget_;
                r.res = res;
                r.result_flags = 0;
                return false;
            }
            (reading ? st.readable : st.writable) = false;
        } else {
            (reading ? st.readable : st.writable) = true;  // unknown: try next turn
        }
    }
    if (!ensure_registered(r.fd, st)) {
        r.res = -errno;
        return false;
    }
    track(r);
    park(r, st);
    if (r.timeout_if_blocked.count() > 0) {
        r.deadline = clock::now() + r.timeout_if_blocked;  // it waits: its timeout starts
    }
    if (r.has_deadline()) {
        heap_push(r);
    }
    if (reading ? st.readable : st.writable) {
        schedule_retry(r.fd, st);
    }
    return true;
}

void epoll_backend::try_direction(int fd, bool reading, ready_queue& ready) noexcept {
    fd_state& st = fds_[static_cast<std::size_t>(fd)];
    bool& is_ready = reading ? st.readable : st.writable;
    auto& parked = reading ? st.readers : st.writers;
    int budget = completions_per_fd_per_turn;
    while (!parked.empty() && is_ready && budget-- > 0) {
        io_request& r = parked.front();
        if (r.op == opcode::recv_multishot) {
            const received got = receive(r, st, is_ready, ready);
            if (got == received::nothing) {
                break;
            }
            if (got == received::data) {
                budget = 0;  // one recv per connection per turn: the rest wait their turn
            }
            continue;
        }
        if (r.op == opcode::accept_multishot) {
            int s = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (s < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                is_ready = false;
                break;
            }
            complete(r, s >= 0 ? s : -errno, s >= 0 ? std::uint32_t{io_more} : 0u, ready);
            continue;
        }
        int res = perform(r);
        if (res == -EAGAIN) {
            is_ready = false;
            break;
        }
        if (r.op == opcode::recv && res > 0 && static_cast<std::uint32_t>(res) < r.len &&
            (r.flags & MSG_PEEK) == 0 && !st.hung_up) {
            is_ready = false;  // drained (see recv_multishot above)
        }
        complete(r, res, 0, ready);
    }
    if (!parked.empty() && is_ready) {
        schedule_retry(fd, st);
    }
}

epoll_backend::received epoll_backend::receive(io_request& r, fd_state& st, bool& is_ready,
                                               ready_queue& ready) noexcept {
    if (free_.empty() && filling_ == no_buffer) {
        complete(r, -ENOBUFS, 0, ready);  // as io_uring does when its ring is empty
        return received::ended;
    }
    // Small reads share a buffer (incremental_); after a read that filled its buffers, or
    // with no whole buffer free, the bulk path below.
    if (incremental_ && ((r.flags & MSG_PEEK) != 0 || !st.bulk || free_.empty())) {
        return receive_shared(r, st, is_ready, ready);
    }
    // Where the last read filled its buffers, up to buffers_per_recv pool buffers in one
    // recvmsg, each its own completion (as io_uring posts a CQE per buffer): a 64 KiB message
    // is two syscalls, not four turns. Otherwise one buffer and a plain recv, which is cheaper
    // than recvmsg for the small reads most are. The buffers are taken from the back of
    // free_, in order.
    const std::size_t k = (r.flags & MSG_PEEK) != 0 || !st.bulk
                              ? 1
                              : std::min(buffers_per_recv, free_.size());
    iovec iov[buffers_per_recv];
    std::uint16_t ids[buffers_per_recv];
    for (std::size_t i = 0; i < k; ++i) {
        ids[i] = free_[free_.size() - 1 - i];
        iov[i] = {buffer(ids[i]).data(), buffer_size_};
    }
    ssize_t n = 0;
    if (k == 1) {
        n = ::recv(r.fd, iov[0].iov_base, buffer_size_, r.flags);
    } else {
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = k;
        n = ::recvmsg(r.fd, &msg, r.flags);
    }
    if (const received got = after_read(r, st, is_ready, n, k * buffer_size_, ready);
        got != received::data) {
        return got;
    }
    // TRICKY: the buffers filled leave free_ before any completion runs: a completion may
    // give buffers back (a paused receiver spills its chunks), and those must not be taken
    // for the ones this recv filled.
    const std::size_t used = (static_cast<std::size_t>(n) + buffer_size_ - 1) / buffer_size_;
    free_.resize(free_.size() - used);
    if (incremental_) {
        for (std::size_t i = 0; i < used; ++i) {
            chunks_[ids[i]] = 1;
        }
    }
    std::size_t i = 0;
    for (auto left = static_cast<std::size_t>(n); left > 0; ++i) {
        const std::size_t len = std::min(left, std::size_t{buffer_size_});
        r.buffer_id = ids[i];
        r.buffer_offset = 0;
        complete(r, static_cast<std::int32_t>(len), io_more | io_has_buffer, ready);
        left -= len;
    }
    return received::data;
}

epoll_backend::received epoll_backend::receive_shared(io_request& r, fd_state& st,
                                                      bool& is_ready,
                                                      ready_queue& ready) noexcept {
    if (filling_ == no_buffer) {
        filling_ = free_.back();
        free_.pop_back();
        filling_used_ = 0;
    }
    const std::uint32_t room = buffer_size_ - filling_used_;
    const ssize_t n = ::recv(r.fd, buffer(filling_).data() + filling_used_, room, r.flags);
    if (const received got = after_read(r, st, is_ready, n, room, ready);
        got != received::data) {
        return got;
    }
    // Counted before the completion runs, which may release the chunk at once (a spill).
    const std::uint16_t id = filling_;
    r.buffer_id = id;
    r.buffer_offset = static_cast<std::uint16_t>(filling_used_);
    ++chunks_[id];
    filling_used_ += static_cast<std::uint32_t>(n);
    // A rest too small for a useful read: the next read starts a buffer of its own, and
    // this one goes back when its chunks do.
    if (buffer_size_ - filling_used_ < buffer_size_ / 8) {
        filling_ = no_buffer;
    }
    complete(r, static_cast<std::int32_t>(n), io_more | io_has_buffer, ready);
    return received::data;
}

epoll_backend::received epoll_backend::after_read(io_request& r, fd_state& st, bool& is_ready,
                                                  ssize_t n, std::size_t room,
                                                  ready_queue& ready) noexcept {
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        is_ready = false;
        return received::nothing;
    }
    if (n <= 0) {
        complete(r, n == 0 ? 0 : -errno, 0, ready);
        return received::ended;
    }
    const auto got = static_cast<std::size_t>(n);
    st.bulk = got == room;
    // A short read drained the socket: with edge triggering, new data brings a new event, so
    // no recv that would only say EAGAIN is made next turn. Not after a hang-up: the end of
    // stream behind the data brings no new event.
    if (got < room && (r.flags & MSG_PEEK) == 0 && !st.hung_up) {
        is_ready = false;
    }
    return received::data;
}

void epoll_backend::give_back(std::uint16_t id) noexcept {
    if (!incremental_) {
        free_.push_back(id);
        return;
    }
    if (--chunks_[id] != 0) {
        return;
    }
    if (id == filling_) {
        filling_used_ = 0;  // nothing of it is held: filled again from its start
    } else {
        free_.push_back(id);
    }
}

void epoll_backend::cancel(io_request& r) noexcept {
    r.cancel_requested = true;
    if (r.in_flight) {
        complete(r, -ECANCELED, 0, deferred_);
    }
}

void epoll_backend::forget(int fd) noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) {
        return;
    }
    fd_state& st = fds_[static_cast<std::size_t>(fd)];
    // A request still parked on a descriptor being closed can never complete: end it.
    while (!st.readers.empty()) {
        complete(st.readers.front(), -EBADF, 0, deferred_);
    }
    while (!st.writers.empty()) {
        complete(st.writers.front(), -EBADF, 0, deferred_);
    }
    if (st.registered) {
        epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    }
    const bool queued = st.queued;
    st = fd_state{};
    st.queued = queued;  // its entry in retry_ finds nothing parked and is dropped
}

void epoll_backend::poll(std::chrono::nanoseconds timeout, ready_queue& ready) {
    inline_budget_ = inline_completions_per_turn;
    if (!deferred_.empty() || !retry_.empty()) {
        timeout = std::chrono::nanoseconds::zero();
    }
    // Deadlines up to `horizon` may pass during this wait; a later one cannot (or, where the
    // wait overran its timeout, is found next turn, whose timeout is then 0). A server's
    // heap is rarely empty (a listener's accept may hold a far-off timer), and this saves a
    // clock read per turn after the wait.
    clock::time_point horizon = clock::time_point::min();
    if (heap_.size() > 1) {
        const auto now = clock::now();
        timeout = std::min(timeout, std::max(std::chrono::nanoseconds::zero(),
                                             std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                 heap_[1]->deadline - now)));
        horizon = now + timeout;
    }
    epoll_event events[256];
    const int n = wait(events, 256, timeout);
    for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == wake_fd_) {
            std::uint64_t value = 0;
            [[maybe_unused]] ssize_t got = ::read(wake_fd_, &value, sizeof value);
            continue;
        }
        fd_state& st = fds_[static_cast<std::size_t>(fd)];
        const std::uint32_t e = events[i].events;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            st.readable = true;
        }
        if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            st.hung_up = true;
        }
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
            st.writable = true;
        }
        try_direction(fd, true, ready);
        try_direction(fd, false, ready);
    }
    std::vector<int> retry;
    retry.swap(retry_);
    for (int fd : retry) {
        fds_[static_cast<std::size_t>(fd)].queued = false;
        try_direction(fd, true, ready);
        try_direction(fd, false, ready);
    }
    if (retry_.empty()) {
        retry_.swap(retry);  // keep the capacity
        retry_.clear();
    }
    if (heap_.size() > 1 && heap_[1]->deadline <= horizon) {
        const auto now = clock::now();
        while (heap_.size() > 1 && heap_[1]->deadline <= now) {
            io_request& r = *heap_[1];
            complete(r, r.op == opcode::sleep ? 0 : -ETIMEDOUT, 0, ready);
        }
    }
    ready.insert(ready.end(), deferred_.begin(), deferred_.end());
    deferred_.clear();
}

int epoll_backend::wait(epoll_event* events, int size, std::chrono::nanoseconds timeout) {
    const bool forever = timeout == std::chrono::nanoseconds::max();
    if (has_pwait2_) {
        timespec ts{};
        ts.tv_sec = timeout.count() / 1'000'000'000;
        ts.tv_nsec = timeout.count() % 1'000'000'000;
        const int n = epoll_pwait2(epfd_, events, size, forever ? nullptr : &ts, nullptr);
        if (n >= 0 || errno != ENOSYS) {
            return n;
        }
        // Linux before 5.11, or a seccomp profile that does not know the call (containers;
        // valgrind 3.19): where io_uring is missing, epoll_pwait2 often is too.
        has_pwait2_ = false;
        log::info("epoll_pwait2 is missing (ENOSYS): waiting with epoll_wait, to the millisecond");
    }
    // Milliseconds, rounded up: a deadline 0.3 ms away must not turn into a spin of
    // zero-timeout waits until it passes.
    int ms = -1;
    if (!forever) {
        const auto up = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
        ms = static_cast<int>(std::min<std::int64_t>(up, std::numeric_limits<int>::max()));
    }
    return epoll_wait(epfd_, events, size, ms);
}

void epoll_backend::wake() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

// The deadline heap: a binary min-heap on deadline; each request knows its index.

void epoll_backend::heap_push(io_request& r) {
    heap_.push_back(&r);
    r.heap_index = heap_.size() - 1;
    heap_sift(r.heap_index);
}

void epoll_backend::heap_remove(io_request& r) noexcept {
    const std::size_t i = r.heap_index;
    if (i == 0) {
        return;
    }
    const std::size_t last = heap_.size() - 1;
    if (i != last) {
        heap_swap(i, last);
    }
    heap_.pop_back();
    r.heap_index = 0;
    if (i < heap_.size()) {
        heap_sift(i);
    }
}

void epoll_backend::heap_swap(std::size_t a, std::size_t b) noexcept {
    std::swap(heap_[a], heap_[b]);
    heap_[a]->heap_index = a;
    heap_[b]->heap_index = b;
}

void epoll_backend::heap_sift(std::size_t i) noexcept {
    while (i > 1 && heap_[i]->deadline < heap_[i / 2]->deadline) {
        heap_swap(i, i / 2);
        i /= 2;
    }
    for (;;) {
        std::size_t smallest = i;
        for (std::size_t child : {2 * i, 2 * i + 1}) {
            if (child < heap_.size() && heap_[child]->deadline < heap_[smallest]->deadline) {
                smallest = child;
            }
        }
        if (smallest == i) {
            return;
        }
        heap_swap(i, smallest);
        i = smallest;
    }
}

}  // namespace ringchat
