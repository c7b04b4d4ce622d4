// SPDX-License-Identifier: MIT
// The loop: resume what is ready, then let the backend harvest completions.
#include "reactor.hpp"

#include <algorithm>
#include <cassert>
#include <csignal>
#include <cstring>
#include <exception>

#include "backend_select.hpp"
#include "log.hpp"

namespace ringchat {
namespace {

std::atomic<reactor*> signal_target{nullptr};

extern "C" void on_stop_signal(int) {
    if (reactor* r = signal_target.load()) {
        r->request_stop();
    }
}

}  // namespace

namespace detail {

bool start_io(reactor& r, io_request& req) noexcept { return r.start(req); }

void cancel_io(reactor& r, io_request& req) noexcept {
    if (req.in_flight && !req.cancel_requested) {
        req.cancel_requested = true;
        r.io().cancel(req);
    }
}

void abandon_io(reactor& r, io_request& req) noexcept { r.io().abandon(req); }

void unschedule(reactor& r, std::coroutine_handle<> h) noexcept { r.unschedule(h); }

}  // namespace detail

reactor::reactor(reactor_options options)
    : backend_(make_backend(options)), grace_(options.grace) {
    struct sigaction now{};
    if (sigaction(SIGPIPE, nullptr, &now) == 0 && now.sa_handler == SIG_DFL) {
        std::signal(SIGPIPE, SIG_IGN);  // a handler the program set is left alone
    }
    ready_.reserve(256);
    resuming_.reserve(256);
    after_turn_.reserve(256);
}

reactor::~reactor() {
    // Unfinished tasks are destroyed; an operation they were suspended on is cancelled and
    // awaited by its awaitable's destructor (the backend is still alive for that).
    while (!tasks_.empty()) {
        auto& p = static_cast<detached::promise_type&>(tasks_.pop_front());
        --task_count_;
        p.owner = nullptr;  // out of the list already
        std::coroutine_handle<detached::promise_type>::from_promise(p).destroy();
    }
    if (signal_target.load() == this) {
        signal_target.store(nullptr);
    }
}

void reactor::detached::promise_type::unhandled_exception() noexcept {
    try {
        throw;
    } catch (const std::exception& e) {
        log::error("task failed: {}", e.what());
    } catch (...) {
        log::error("task failed with a non-standard exception");
    }
}

reactor::detached reactor::run_detached(task<> t) { co_await std::move(t); }

void reactor::spawn(detached d) {
    ready_.push_back(d.handle_);  // first: if it throws, `d` still owns the frame
    auto h = std::exchange(d.handle_, {});
    h.promise().owner = this;
    tasks_.push_back(h.promise());
    ++task_count_;
}

void reactor::spawn(task<> t) { spawn(run_detached(std::move(t))); }

bool reactor::start(io_request& r) noexcept {
    r.cancel_requested = false;
    if ((hard_stop_ && r.op != opcode::close) || (stopping_ && r.cancel_on_stop)) {
        r.res = -ECANCELED;
        return false;
    }
    return backend_->start(r);
}

void reactor::resume_ready() {
    ++turn_;
    if (const std::uint8_t asked = remote_.exchange(0); asked != 0) {
        if (asked & remote_stop) {
            stop();
        }
        if (asked & remote_mail) {
            link_->drain(*link_);  // what it resumes goes in this turn's batch
        }
    }
    if (stopping_ && !hard_stop_ && clock::now() >= grace_ends_) {
        stop(std::chrono::nanoseconds::zero());  // the grace period is over
    }
    // Resuming may queue more; that waits for the next turn, after a poll.
    resuming_.swap(ready_);
    // By index: unschedule() may overwrite entries of this batch while it runs.
    for (std::size_t i = 0; i < resuming_.size(); ++i) {
        resuming_[i].resume();
    }
    resuming_.clear();
    // Deferred to the turn's end; by index, as one may defer another (which runs too).
    for (std::size_t i = 0; i < after_turn_.size(); ++i) {
        after_turn_[i].resume();
    }
    after_turn_.clear();
}

void reactor::unschedule(std::coroutine_handle<> h) noexcept {
    // Also in io().deferred(): completions harvested outside poll() and not yet moved here.
    for (ready_queue* q : {&ready_, &resuming_, &after_turn_, &backend_->deferred()}) {
        for (auto& queued : *q) {
            if (queued == h) {
                queued = std::noop_coroutine();
            }
        }
    }
}

void reactor::poll_once() {
    backend_->serve_buffer_waiters();
    // TRICKY: a stop requested during the turn is checked here, not left to the wake-up
    // alone. The wake's completion can be harvested by a poll nested in the turn (a task
    // destroyed while on I/O: backend::cancel_and_wait() polls until its cancel is through),
    // and this poll would then wait with the request unseen. A server then ignored SIGTERM.
    const bool wait = ready_.empty() && remote_.load() == 0;
    auto timeout = wait ? std::chrono::nanoseconds::max() : std::chrono::nanoseconds::zero();
    if (wait && stopping_ && !hard_stop_) {
        // In the grace period: wake up when it ends, to cancel what is left.
        timeout = std::max(grace_ends_ - clock::now(), std::chrono::nanoseconds::zero());
    }
    backend_->poll(timeout, ready_);
}

void reactor::run() {
    for (;;) {
        resume_ready();
        if (tasks_.empty() && (link_ == nullptr || link_->idle(*link_))) {
            break;
        }
        poll_once();
    }
}

void reactor::stop(std::chrono::nanoseconds grace) noexcept {
    if (hard_stop_) {
        return;
    }
    if (stopping_ || grace <= std::chrono::nanoseconds::zero()) {
        // The second step: a stop during the grace period, the grace period's end, or none.
        stopping_ = true;
        hard_stop_ = true;
        backend_->cancel_all();
        return;
    }
    stopping_ = true;
    grace_ends_ = clock::now() + grace;
    backend_->cancel_on_stop();  // plain sleeps: periodic tasks end now
    // TRICKY: a hook may unlink itself (a listener closing) but resumes nobody, so the list
    // only loses the hook being run: take its successor first.
    for (auto it = hooks_.begin(); it != hooks_.end();) {
        stop_hook& h = *it++;
        h.on_stop(h);
        assert((it == hooks_.end() || hooks_.linked(*it)) && "a stop hook removed another");
    }
}

void reactor::add_stop_hook(stop_hook& h) noexcept {
    if (!hooks_.linked(h)) {
        hooks_.push_front(h);
    }
}

void reactor::remove_stop_hook(stop_hook& h) noexcept {
    if (hooks_.linked(h)) {
        hooks_.erase(h);
    }
}

void reactor::request_stop() noexcept {
    remote_.fetch_or(remote_stop);
    backend_->wake();
}

void reactor::notify_remote(reactor* from) noexcept {
    if ((remote_.fetch_or(remote_mail) & remote_mail) != 0) {
        return;  // told already: the turn that takes the flag drains this message too
    }
    if (from == this) {
        return;  // poll_once() sees the flag and does not wait
    }
    if (from != nullptr) {
        from->backend_->wake_peer(*backend_);
    } else {
        backend_->wake();
    }
}

void reactor::stop_on_signals() {
    signal_target.store(this);
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

io_awaitable reactor::sleep_for(std::chrono::nanoseconds d) noexcept {
    return sleep_until(clock::now() + d);
}

io_awaitable reactor::sleep_until(clock::time_point t) noexcept {
    return io_awaitable(*this, t);
}

}  // namespace ringchat
