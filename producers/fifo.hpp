// SPDX-License-Identifier: MIT
// producers/fifo.hpp — a producer of producers: the chunks of the first, then of the next
// (asynchat's fifo, as medusa's composite_producer used it).
//
//     producers::fifo f{producers::simple(status_line), producers::simple(headers)};  // {}: with
//     // () this would declare a function f (the most vexing parse)
//     f.push(producers::file(std::move(body)));
//
// more() asks the head producer; when it is exhausted, it is dropped and the next one is
// asked, so an empty chunk means every producer pushed so far is exhausted. fifo is an
// async producer (it holds any_producer), but asks a sync head with more_now(): no coroutine
// frame beyond more()'s own.
// Invariant: the head is dropped only after it returned an empty chunk; push() while a more()
// is in progress is allowed (the head stays where it is).
#pragma once

#include <cstddef>
#include <deque>

#include "../core/task.hpp"
#include "producer.hpp"

namespace ringchat::producers {

class fifo {
public:
    fifo() = default;
    /// A fifo of `ps`, in order.
    template <producer... Ps>
    explicit fifo(Ps... ps) {
        (push(std::move(ps)), ...);
    }

    /// Appends `p`; it is asked once every producer before it is exhausted.
    void push(any_producer p) { queue_.push_back(std::move(p)); }
    /// Producers not exhausted yet (the head included).
    std::size_t size() const noexcept { return queue_.size(); }
    bool empty() const noexcept { return queue_.empty(); }

    /// The head's next chunk; an empty one once every producer is exhausted.
    /// \note The fifo must stay where it is until the task completes.
    task<chunk> more();

private:
    // A deque: push_back keeps the head in place while more() awaits it.
    std::deque<any_producer> queue_;
};

}  // namespace ringchat::producers
