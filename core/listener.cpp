// SPDX-License-Identifier: MIT
// The accept state machine: multishot accept → queue → waiting accept() calls; a pause
// (a sleep request) after EMFILE/ENFILE/ENOBUFS/ENOMEM, then re-arm.
#include "listener.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <deque>

#include "log.hpp"
#include "reactor.hpp"

namespace ringchat {

struct listener::state {
    reactor* owner = nullptr;
    int fd = -1;
    address local;
    listen_options options;
    listener_stats stats;
    io_request accept_req;
    io_request pause_req;
    std::deque<int> queued;
    // accept() callers, first come first served; in it exactly while their `waiting` is set.
    intrusive_list<accept_awaitable, &accept_awaitable::link> waiters;
    bool closed = false;
    // A graceful stop closes the listener: serve() loops end, connections accepted go on.
    reactor::stop_hook stop_hook{&on_stop, this};

    static void on_stop(reactor::stop_hook& h) noexcept {
        auto* self = static_cast<state*>(h.owner);
        self->shut();
        self->fail_waiters(std::error_code(ECANCELED, std::system_category()),
                           self->owner->io().deferred());
    }

    ~state() {
        // Accepts still waiting end with ECANCELED and must not touch this state again.
        while (!waiters.empty()) {
            accept_awaitable& w = waiters.pop_front();
            w.waiting = false;
            w.error = std::error_code(ECANCELED, std::system_category());
            w.s_ = nullptr;
            owner->io().deferred().push_back(w.waiter);
        }
        shut();
        for (int fd : queued) {
            ::close(fd);
        }
    }

    void shut() noexcept {
        // TRICKY: closed first, so that a socket accepted while the cancel is on its way is
        // closed by on_accept rather than queued.
        closed = true;
        owner->remove_stop_hook(stop_hook);
        owner->io().cancel_and_wait(accept_req);
        owner->io().cancel_and_wait(pause_req);
        if (fd >= 0) {
            owner->io().forget(fd);
            ::close(fd);
            fd = -1;
        }
    }

    void arm() noexcept {
        if (closed || accept_req.in_flight || pause_req.in_flight ||
            queued.size() >= options.max_queued) {
            return;
        }
        accept_req.op = opcode::accept_multishot;
        accept_req.fd = fd;
        accept_req.owner = this;
        accept_req.on_complete = &on_accept;
        ++stats.arms;
        if (!owner->start(accept_req)) {
            // Refused at once (the reactor is stopping): fail the waiters.
            fail_waiters(errno_code(accept_req.res), owner->io().deferred());
        }
    }

    void pause() noexcept {
        ++stats.pauses;
        pause_req.op = opcode::sleep;
        pause_req.deadline = clock::now() + options.pause;
        pause_req.owner = this;
        pause_req.on_complete = &on_pause;
        if (!owner->start(pause_req)) {
            fail_waiters(errno_code(pause_req.res), owner->io().deferred());
        }
    }

    void unlink(accept_awaitable& a) noexcept {
        if (waiters.linked(a)) {
            waiters.erase(a);
        }
        a.waiting = false;
    }

    void hand_over(int new_fd, ready_queue& ready) noexcept {
        if (!waiters.empty()) {
            accept_awaitable& w = waiters.pop_front();
            w.waiting = false;
            w.fd = new_fd;
            ready.push_back(w.waiter);
        } else {
            queued.push_back(new_fd);
        }
    }

    void fail_waiters(std::error_code e, ready_queue& ready) noexcept {
        while (!waiters.empty()) {
            accept_awaitable& w = waiters.pop_front();
            w.waiting = false;
            w.error = e;
            ready.push_back(w.waiter);
        }
    }

    static void on_accept(io_request& r, ready_queue& ready) noexcept {
        auto& s = *static_cast<state*>(r.owner);
        if (r.res >= 0) {
            ++s.stats.accepted;
            if (s.closed) {
                ::close(r.res);  // arrived for an accept that was being cancelled
            } else {
                s.hand_over(r.res, ready);
            }
            if ((r.result_flags & io_more) != 0) {
                if (s.queued.size() >= s.options.max_queued) {
                    detail::cancel_io(*s.owner, r);  // the kernel's backlog holds the rest
                }
                return;
            }
            if (!s.waiters.empty()) {
                s.arm();  // the multishot ended by itself: re-arm
            }
            return;
        }
        switch (-r.res) {
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            log::info("accept: {} ({}); pausing accepts for {} ms",
                      errno_code(r.res).message(), -r.res == EMFILE ? "EMFILE" : "exhausted",
                      s.options.pause.count());
            s.pause();
            return;
        case ECANCELED:
            if (!s.closed && !s.owner->stopping()) {
                // Cancelled because the queue was full. An accept() that drained the queue
                // while the cancel was on its way found this request still in flight and did
                // not arm: arm now if anyone waits or there is room again (arm() checks).
                if (!s.waiters.empty() || s.queued.size() < s.options.max_queued / 2) {
                    s.arm();
                }
                return;
            }
            break;
        case EINTR:
        case ECONNABORTED:
        case EPERM:
        case EPROTO:
            s.arm();  // a connection that died in the backlog, or a firewall refusal
            return;
        default:
            break;
        }
        s.fail_waiters(errno_code(r.res), ready);
    }

    static void on_pause(io_request& r, ready_queue& ready) noexcept {
        auto& s = *static_cast<state*>(r.owner);
        if (r.res < 0) {
            s.fail_waiters(errno_code(r.res), ready);
            return;
        }
        s.arm();
    }
};

listener::accept_awaitable::accept_awaitable(state& s) noexcept : s_(&s), owner_(s.owner) {
    timer_.op = opcode::sleep;
    timer_.owner = this;
    timer_.on_complete = &on_timer;
}

listener::accept_awaitable::~accept_awaitable() {
    if (source_ != nullptr) {
        source_->detach(timer_);
    }
    if (waiting && s_ != nullptr) {
        s_->unlink(*this);  // its coroutine was destroyed while it waited
    } else if (waiter) {
        owner_->unschedule(waiter);  // woken, but destroyed before it resumed
        if (fd >= 0) {
            ::close(fd);
        }
    }
    if (timer_.in_flight) {
        timer_.on_complete = nullptr;
        owner_->io().abandon(timer_);
    }
}

bool listener::accept_awaitable::await_ready() noexcept {
    if (!s_->queued.empty()) {
        fd = s_->queued.front();
        s_->queued.pop_front();
        return true;
    }
    if (s_->closed || s_->owner->stopping() || (source_ != nullptr && source_->cancelled())) {
        error = std::error_code(s_->closed ? EBADF : ECANCELED, std::system_category());
        return true;
    }
    return false;
}

bool listener::accept_awaitable::await_suspend(std::coroutine_handle<> h) noexcept {
    waiter = h;
    waiting = true;
    s_->waiters.push_back(*this);
    if (timer_.has_deadline() || source_ != nullptr) {
        // A cancel_source cancels requests: without a deadline the timer is that request.
        if (!timer_.has_deadline()) {
            timer_.deadline = clock::now() + std::chrono::hours(24 * 365);
        }
        if (!s_->owner->start(timer_)) {
            s_->unlink(*this);
            error = std::error_code(timer_.res == 0 ? ETIMEDOUT : -timer_.res,
                                    std::system_category());
            return false;
        }
        if (source_ != nullptr) {
            source_->attach(*s_->owner, timer_);
        }
    }
    s_->arm();
    return waiting;  // arm() may have failed the waiters at once
}

void listener::accept_awaitable::on_timer(io_request& r, ready_queue& ready) noexcept {
    auto& self = *static_cast<accept_awaitable*>(r.owner);
    if (!self.waiting) {
        return;  // a connection came first; this is the timer's cancellation
    }
    self.s_->unlink(self);
    self.error = std::error_code(r.res == 0 ? ETIMEDOUT : -r.res, std::system_category());
    ready.push_back(self.waiter);
}

result<socket> listener::accept_awaitable::await_resume() {
    waiter = {};
    if (source_ != nullptr) {
        source_->detach(timer_);
        source_ = nullptr;
    }
    if (timer_.in_flight) {
        detail::cancel_io(*owner_, timer_);  // completes later; on_timer ignores it
    }
    if (s_ == nullptr) {
        return error;  // the listener is gone
    }
    if (fd < 0) {
        return error ? error : std::error_code(EBADF, std::system_category());
    }
    socket s(*s_->owner, std::exchange(fd, -1));
    if (s_->options.nodelay && s_->local.family() != AF_UNIX) {
        (void)s.set_nodelay(true);
    }
    if (s_->queued.size() < s_->options.max_queued / 2) {
        s_->arm();
    }
    return s;
}

listener::listener(listener&&) noexcept = default;
listener& listener::operator=(listener&&) noexcept = default;
listener::~listener() = default;

result<listener> listener::bind(reactor& r, const address& at, listen_options options) {
    auto s = std::make_unique<state>();
    s->owner = &r;
    s->options = options;
    r.add_stop_hook(s->stop_hook);  // removed by shut(), which every end of the state runs
    s->fd = ::socket(at.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const auto fail = [] { return std::error_code(errno, std::system_category()); };
    if (s->fd < 0) {
        return fail();
    }
    const int one = 1;
    if (at.family() == AF_UNIX) {
        // Replace a stale socket file from an earlier run, nothing else.
        const auto* sun = reinterpret_cast<const sockaddr_un*>(at.data());
        struct stat st {};
        if (lstat(sun->sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            unlink(sun->sun_path);
        }
    } else {
        setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (options.reuse_port &&
            setsockopt(s->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
            return fail();
        }
    }
    if (::bind(s->fd, at.data(), at.size()) < 0 || ::listen(s->fd, options.backlog) < 0) {
        return fail();
    }
    socklen_t size = address::capacity();
    getsockname(s->fd, s->local.data(), &size);
    s->local.set_size(size);
    listener l;
    l.s_ = std::move(s);
    return l;
}

const address& listener::local_address() const noexcept { return s_->local; }
const listener_stats& listener::stats() const noexcept { return s_->stats; }

void listener::close() noexcept {
    if (s_ && !s_->closed) {
        s_->shut();
        s_->fail_waiters(std::error_code(ECANCELED, std::system_category()),
                         s_->owner->io().deferred());
    }
}

}  // namespace ringchat
