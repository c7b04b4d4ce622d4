// SPDX-License-Identifier: MIT
// ring_deque, the channel's output queue: order kept across wrap-around and growth, both ends,
// and a burst's memory given back once the queue empties.
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "core/ring_deque.hpp"

using ringchat::ring_deque;

namespace {

std::vector<int> contents(ring_deque<std::unique_ptr<int>>& q) {
    std::vector<int> out;
    for (std::size_t i = 0; i < q.size(); ++i) {
        out.push_back(*q[i]);
    }
    return out;
}

}  // namespace

TEST_CASE("ring_deque: both ends, wrap-around and growth keep the order", "[ring_deque]") {
    ring_deque<std::unique_ptr<int>> q;
    CHECK(q.empty());
    CHECK(q.capacity() == 0);  // nothing allocated until the first entry
    std::vector<int> model;
    // Go round the array several times, so that head and tail wrap, then grow it while the
    // entries straddle its end.
    int next = 0;
    for (int i = 0; i < 3; ++i) {
        q.push_back(std::make_unique<int>(next));
        model.push_back(next++);
    }
    for (int round = 0; round < 10; ++round) {
        q.push_back(std::make_unique<int>(next));
        model.push_back(next++);
        q.pop_front();
        model.erase(model.begin());
    }
    CHECK(q.capacity() == 4);  // grown from 2 by the third entry, then wrapped round
    CHECK(contents(q) == model);
    for (int i = 0; i < 5; ++i) {
        q.push_front(std::make_unique<int>(-i - 1));
        model.insert(model.begin(), -i - 1);
        q.push_back(std::make_unique<int>(next));
        model.push_back(next++);
    }
    CHECK(contents(q) == model);
    CHECK(*q.front() == model.front());
    CHECK(*q.back() == model.back());
    q.pop_back();
    model.pop_back();
    CHECK(contents(q) == model);
}

TEST_CASE("ring_deque: a burst's array is freed once emptied; a small one is kept",
          "[ring_deque]") {
    ring_deque<std::string> q;
    q.push_back("one");
    q.pop_front();
    CHECK(q.capacity() == 2);  // kept: a queue that goes 0, 1, 0 allocates once
    for (int i = 0; i < 100; ++i) {
        q.push_back(std::string(40, static_cast<char>('a' + i % 26)));
    }
    CHECK(q.capacity() == 128);
    CHECK(q[99] == std::string(40, 'v'));
    while (q.size() > 1) {
        q.pop_front();
    }
    CHECK(q.capacity() == 128);
    q.pop_front();
    CHECK(q.capacity() == 0);
    q.push_back("again");
    q.clear();
    CHECK(q.empty());
    CHECK(q.capacity() == 2);
}
