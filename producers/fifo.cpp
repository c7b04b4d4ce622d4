// SPDX-License-Identifier: MIT
// The fifo's more(): ask the head, drop it when exhausted (see fifo.hpp).
#include "fifo.hpp"

namespace ringchat::producers {

task<chunk> fifo::more() {
    while (!queue_.empty()) {
        any_producer& head = queue_.front();
        chunk next;
        // TRICKY: if/else, not `?:` around co_await (GCC 12 miscompiles it with strings).
        if (head.is_sync()) {
            next = head.more_now();
        } else {
            next = co_await head.more_later();
        }
        if (!next.empty()) {
            co_return next;
        }
        queue_.pop_front();
    }
    co_return chunk{};
}

}  // namespace ringchat::producers
