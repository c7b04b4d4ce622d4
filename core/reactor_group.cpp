// SPDX-License-Identifier: MIT
// reactor_group: the threads, the inboxes, and when the group is done.
//
// Done is counted, not polled: outstanding_ holds one for each reactor with a task (busy)
// and one for each message sent and not yet run. A reactor whose last task ended gives its
// one back (reactor::remote_link::idle); one that runs a message takes it again if the
// message left it a task, before the message's one is given back, so the count reaches 0
// only when no reactor has work and none is on its way, and nothing can make more.
#include "reactor_group.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <barrier>
#include <cassert>
#include <csignal>
#include <thread>

namespace ringchat {
namespace {

/// The reactor the calling thread runs for a group, if any.
struct thread_view {
    const reactor_group* group = nullptr;
    unsigned index = 0;
    reactor* r = nullptr;
};
thread_local thread_view current{};

std::atomic<reactor_group*> signal_group{nullptr};

extern "C" void on_group_signal(int) {
    if (reactor_group* g = signal_group.load()) {
        g->request_stop();
    }
}

/// The CPUs this process may run on, in order.
std::vector<int> usable_cpus() {
    std::vector<int> cpus;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int c = 0; c < CPU_SETSIZE; ++c) {
            if (CPU_ISSET(c, &set)) {
                cpus.push_back(c);
            }
        }
    }
    return cpus;
}

}  // namespace

reactor_group::reactor_group(group_options options) : options_(std::move(options)) {
    size_ = options_.threads;
    if (size_ == 0) {
        size_ = static_cast<unsigned>(std::max<std::size_t>(usable_cpus().size(), 1));
    }
    for (unsigned k = 0; k < size_; ++k) {
        auto m = std::make_unique<member>();
        m->group = this;
        m->index = k;
        m->drain = [](reactor::remote_link& l) noexcept {
            auto& self = static_cast<member&>(l);
            // Pushed last-first: reversed, they run in the order they were sent.
            detail::remote_message* list = self.inbox.exchange(nullptr, std::memory_order_acquire);
            detail::remote_message* fifo = nullptr;
            while (list != nullptr) {
                detail::remote_message* next = list->next;
                list->next = fifo;
                fifo = list;
                list = next;
            }
            reactor& r = *self.r.load(std::memory_order_relaxed);
            while (fifo != nullptr) {
                detail::remote_message* next = fifo->next;  // run() may free or resend it
                fifo->run(*fifo, r);
                if (!self.busy && r.tasks() > 0) {
                    self.busy = true;
                    self.group->outstanding_.fetch_add(1, std::memory_order_relaxed);
                }
                if (self.group->outstanding_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                    self.group->finish();
                }
                fifo = next;
            }
        };
        m->idle = [](reactor::remote_link& l) noexcept {
            auto& self = static_cast<member&>(l);
            if (self.busy) {
                self.busy = false;
                if (self.group->outstanding_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                    self.group->finish();
                }
            }
            return self.group->done_.load(std::memory_order_acquire);
        };
        members_.push_back(std::move(m));
    }
}

reactor_group::~reactor_group() {
    reactor_group* self = this;
    signal_group.compare_exchange_strong(self, nullptr);
}

bool reactor_group::in_group() const noexcept { return current.group == this; }

unsigned reactor_group::here() const noexcept {
    assert(in_group() && "reactor_group::here() off the group's threads");
    return current.index;
}

void reactor_group::send(unsigned k, detail::remote_message& m) noexcept {
    outstanding_.fetch_add(1, std::memory_order_relaxed);
    member& to = *members_[k];
    m.next = to.inbox.load(std::memory_order_relaxed);
    while (!to.inbox.compare_exchange_weak(m.next, &m, std::memory_order_release,
                                           std::memory_order_relaxed)) {
    }
    // The sender's own reactor, if it runs one (of any group): its backend may wake the
    // target without a syscall of its own.
    to.r.load(std::memory_order_relaxed)->notify_remote(current.r);
}

void reactor_group::finish() noexcept {
    done_.store(true, std::memory_order_release);
    // An eventfd write each: the reactor that finishes returns without another submission,
    // so a MSG_RING queued on its ring would never leave.
    for (auto& m : members_) {
        m->r.load(std::memory_order_relaxed)->notify_remote(nullptr);
    }
}

void reactor_group::request_stop() noexcept {
    stop_requested_.store(true);
    for (auto& m : members_) {
        if (reactor* r = m->r.load()) {
            r->request_stop();
        }
    }
}

void reactor_group::stop_on_signals() {
    signal_group.store(this);
    struct sigaction sa {};
    sa.sa_handler = on_group_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

void reactor_group::run(std::function<task<>(reactor&, unsigned)> start) {
    done_.store(false);
    failed_.store(false);
    outstanding_.store(size_);
    std::barrier made(static_cast<std::ptrdiff_t>(size_));
    std::barrier ran(static_cast<std::ptrdiff_t>(size_));
    auto body = [&](unsigned k) {
        member& m = *members_[k];
        m.busy = true;
        m.error = nullptr;
        std::unique_ptr<reactor> r;
        try {
            r = std::make_unique<reactor>(options_.reactor);
            r->link_ = &m;
            m.r.store(r.get());
        } catch (...) {
            m.error = std::current_exception();
            failed_.store(true);
        }
        made.arrive_and_wait();  // every reactor exists (or one failed) before any message
        if (!failed_.load()) {
            if (options_.pin) {
                const auto cpus = usable_cpus();
                if (!cpus.empty()) {
                    cpu_set_t set;
                    CPU_ZERO(&set);
                    CPU_SET(cpus[k % cpus.size()], &set);
                    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
                }
            }
            current = thread_view{this, k, r.get()};
            if (stop_requested_.load()) {
                r->request_stop();
            }
            r->spawn(start(*r, k));
            r->run();
        }
        // No reactor goes before all have returned: finish() may still be waking this one.
        ran.arrive_and_wait();
        m.r.store(nullptr);
        current = thread_view{};
        r.reset();
    };
    std::vector<std::thread> threads;
    threads.reserve(size_ - 1);
    for (unsigned k = 1; k < size_; ++k) {
        threads.emplace_back(body, k);
    }
    body(0);
    for (auto& t : threads) {
        t.join();
    }
    reactor_group* self = this;
    signal_group.compare_exchange_strong(self, nullptr);
    for (auto& m : members_) {
        if (m->error) {
            std::rethrow_exception(m->error);
        }
    }
}

}  // namespace ringchat
