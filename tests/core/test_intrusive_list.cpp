// SPDX-License-Identifier: MIT
// intrusive_list and intrusive_queue: order at both ends, erase anywhere, erase while
// iterating, re-insertion, the linked state, moves with elements in, and a long random run
// against std::deque.
#include <algorithm>
#include <cstdint>
#include <deque>
#include <vector>

#include <catch2/catch.hpp>

#include "core/intrusive_list.hpp"

using ringchat::intrusive_list;
using ringchat::intrusive_queue;
using ringchat::list_hook;
using ringchat::queue_hook;

namespace {

struct item {
    explicit item(int v) : value(v) {}
    int value;
    list_hook<item> link;
    list_hook<item> other;  // a second list at the same time
    queue_hook<item> parked;
};

using list = intrusive_list<item, &item::link>;
using other_list = intrusive_list<item, &item::other>;
using queue = intrusive_queue<item, &item::parked>;

static_assert(sizeof(list_hook<item>) == 2 * sizeof(void*));
static_assert(sizeof(queue_hook<item>) == sizeof(void*));
static_assert(sizeof(list) == 2 * sizeof(void*));
static_assert(sizeof(queue) == sizeof(void*));

/// The values front to back; checks on the way that the links agree both ways.
std::vector<int> contents(const list& l) {
    std::vector<int> out;
    const item* before = nullptr;
    for (const item& x : l) {
        CHECK(x.link.prev == before);
        CHECK(l.linked(x));
        out.push_back(x.value);
        before = &x;
    }
    if (l.empty()) {
        CHECK(before == nullptr);
    } else {
        CHECK(&l.back() == before);
        CHECK(l.front().link.prev == nullptr);
        CHECK(l.back().link.next == nullptr);
    }
    return out;
}

/// The values front to back, taken out and put back (a queue has no iteration).
std::vector<int> contents(queue& q) {
    std::vector<item*> taken;
    while (!q.empty()) {
        item& x = q.pop_front();
        CHECK_FALSE(queue::linked(x));
        taken.push_back(&x);
    }
    std::vector<int> out;
    for (item* x : taken) {
        out.push_back(x->value);
        q.push_back(*x);
    }
    return out;
}

/// Elements stay where they are made (a deque): they cannot be moved, their hooks are linked.
std::deque<item> make(int n) {
    std::deque<item> items;
    for (int i = 0; i < n; ++i) {
        items.emplace_back(i);
    }
    return items;
}

using ints = std::vector<int>;

}  // namespace

TEST_CASE("intrusive_list: empty, one, both ends", "[intrusive_list]") {
    auto v = make(4);
    list l;
    CHECK(l.empty());
    CHECK(l.begin() == l.end());
    CHECK_FALSE(l.linked(v[0]));
    CHECK(contents(l).empty());

    l.push_back(v[0]);
    CHECK_FALSE(l.empty());
    CHECK(l.linked(v[0]));  // alone: both links nullptr, yet in the list
    CHECK(v[0].link.prev == nullptr);
    CHECK(v[0].link.next == nullptr);
    CHECK(&l.front() == &v[0]);
    CHECK(&l.back() == &v[0]);
    CHECK_FALSE(l.linked(v[1]));

    l.push_back(v[1]);
    l.push_front(v[2]);
    l.push_back(v[3]);
    CHECK(contents(l) == ints{2, 0, 1, 3});
    CHECK(&l.front() == &v[2]);
    CHECK(&l.back() == &v[3]);
}

TEST_CASE("intrusive_list: push_front alone gives last-in first", "[intrusive_list]") {
    auto v = make(5);
    list l;
    for (auto& x : v) {
        l.push_front(x);
    }
    CHECK(contents(l) == ints{4, 3, 2, 1, 0});
}

TEST_CASE("intrusive_list: erase at the front, in the middle, at the back, alone",
          "[intrusive_list]") {
    auto v = make(5);
    list l;
    for (auto& x : v) {
        l.push_back(x);
    }
    l.erase(v[2]);  // middle
    CHECK(contents(l) == ints{0, 1, 3, 4});
    CHECK_FALSE(l.linked(v[2]));
    CHECK(v[2].link.prev == nullptr);
    CHECK(v[2].link.next == nullptr);
    l.erase(v[0]);  // front
    CHECK(contents(l) == ints{1, 3, 4});
    CHECK(&l.front() == &v[1]);
    l.erase(v[4]);  // back
    CHECK(contents(l) == ints{1, 3});
    CHECK(&l.back() == &v[3]);
    l.erase(v[3]);
    CHECK(contents(l) == ints{1});
    l.erase(v[1]);  // alone
    CHECK(l.empty());
    CHECK(contents(l).empty());
    for (auto& x : v) {
        CHECK_FALSE(l.linked(x));
    }
}

TEST_CASE("intrusive_list: pop_front is first in first out", "[intrusive_list]") {
    auto v = make(3);
    list l;
    for (auto& x : v) {
        l.push_back(x);
    }
    CHECK(&l.pop_front() == &v[0]);
    CHECK_FALSE(l.linked(v[0]));
    CHECK(contents(l) == ints{1, 2});
    CHECK(&l.pop_front() == &v[1]);
    CHECK(&l.pop_front() == &v[2]);
    CHECK(l.empty());
    CHECK(contents(l).empty());
    l.push_back(v[1]);  // and usable again once emptied
    CHECK(contents(l) == ints{1});
}

TEST_CASE("intrusive_list: re-insertion after erase, here and in another list",
          "[intrusive_list]") {
    auto v = make(3);
    list l;
    list m;
    for (auto& x : v) {
        l.push_back(x);
    }
    l.erase(v[1]);
    l.push_back(v[1]);  // to the back
    CHECK(contents(l) == ints{0, 2, 1});
    l.erase(v[1]);
    l.push_front(v[1]);  // to the front
    CHECK(contents(l) == ints{1, 0, 2});
    l.erase(v[0]);
    m.push_back(v[0]);  // into another list of the same hook
    CHECK(contents(l) == ints{1, 2});
    CHECK(contents(m) == ints{0});
    CHECK(m.linked(v[0]));
    CHECK_FALSE(l.linked(v[0]));
}

TEST_CASE("intrusive_list: one element in two lists through two hooks", "[intrusive_list]") {
    auto v = make(3);
    list l;
    other_list o;
    for (auto& x : v) {
        l.push_back(x);
        o.push_front(x);
    }
    l.erase(v[1]);
    CHECK(contents(l) == ints{0, 2});
    ints in_o;
    for (item& x : o) {
        in_o.push_back(x.value);
    }
    CHECK(in_o == ints{2, 1, 0});  // untouched
    CHECK(o.linked(v[1]));
}

TEST_CASE("intrusive_list: erasing the current element while iterating", "[intrusive_list]") {
    auto v = make(6);
    list l;
    for (auto& x : v) {
        l.push_back(x);
    }
    SECTION("every other one") {
        ints seen;
        for (auto it = l.begin(); it != l.end();) {
            item& x = *it++;
            seen.push_back(x.value);
            if (x.value % 2 == 0) {
                l.erase(x);
            }
        }
        CHECK(seen == ints{0, 1, 2, 3, 4, 5});
        CHECK(contents(l) == ints{1, 3, 5});
    }
    SECTION("all of them") {
        ints seen;
        for (auto it = l.begin(); it != l.end();) {
            item& x = *it++;
            seen.push_back(x.value);
            l.erase(x);
        }
        CHECK(seen == ints{0, 1, 2, 3, 4, 5});
        CHECK(l.empty());
    }
    SECTION("the current one erased and pushed at the front is not seen again") {
        ints seen;
        for (auto it = l.begin(); it != l.end();) {
            item& x = *it++;
            seen.push_back(x.value);
            l.erase(x);
            l.push_front(x);
        }
        CHECK(seen == ints{0, 1, 2, 3, 4, 5});
        CHECK(contents(l) == ints{5, 4, 3, 2, 1, 0});
    }
}

TEST_CASE("intrusive_list: pushes during iteration: the front is behind, the back ahead",
          "[intrusive_list]") {
    auto v = make(6);
    list l;
    l.push_back(v[0]);
    l.push_back(v[1]);
    ints seen;
    for (auto it = l.begin(); it != l.end();) {
        item& x = *it++;
        seen.push_back(x.value);
        if (x.value == 0) {
            l.push_front(v[2]);  // behind the walk: not visited
            l.push_back(v[3]);   // ahead: visited
        }
    }
    CHECK(seen == ints{0, 1, 3});
    CHECK(contents(l) == ints{2, 0, 1, 3});
}

TEST_CASE("intrusive_list: a successor erased by the body is seen by linked()",
          "[intrusive_list]") {
    // The backend's walk in cancel_all(): cancelling one may complete another (epoll), and
    // the walk then goes on from the front, skipping what it already did.
    auto v = make(5);
    list l;
    for (auto& x : v) {
        l.push_back(x);
    }
    std::vector<bool> done(v.size());
    ints seen;
    int restarts = 0;
    for (auto it = l.begin(); it != l.end();) {
        item& x = *it++;
        if (done[static_cast<std::size_t>(x.value)]) {
            continue;
        }
        done[static_cast<std::size_t>(x.value)] = true;
        seen.push_back(x.value);
        if (x.value == 1) {
            l.erase(v[2]);  // the successor, gone behind the walk's back
        }
        if (it != l.end() && !l.linked(*it)) {
            ++restarts;
            it = l.begin();
        }
    }
    CHECK(restarts == 1);
    CHECK(seen == ints{0, 1, 3, 4});
    CHECK(contents(l) == ints{0, 1, 3, 4});
}

TEST_CASE("intrusive_list: moved with elements in, the source left empty", "[intrusive_list]") {
    auto v = make(3);
    list l;
    for (auto& x : v) {
        l.push_back(x);
    }
    list m(std::move(l));
    CHECK(l.empty());  // NOLINT(bugprone-use-after-move): documented to be empty
    CHECK(contents(m) == ints{0, 1, 2});
    m.erase(v[0]);
    CHECK(contents(m) == ints{1, 2});
    l = std::move(m);
    CHECK(m.empty());  // NOLINT(bugprone-use-after-move)
    CHECK(contents(l) == ints{1, 2});
}

TEST_CASE("intrusive_queue: empty, first in first out, linked without a queue",
          "[intrusive_list]") {
    auto v = make(4);
    queue q;
    CHECK(q.empty());
    CHECK_FALSE(queue::linked(v[0]));
    q.push_back(v[0]);
    CHECK_FALSE(q.empty());
    CHECK(queue::linked(v[0]));
    CHECK(v[0].parked.next == &v[0]);  // alone: its own successor
    CHECK(&q.front() == &v[0]);
    q.push_back(v[1]);
    q.push_back(v[2]);
    CHECK(&q.front() == &v[0]);
    CHECK(contents(q) == ints{0, 1, 2});
    CHECK(&q.pop_front() == &v[0]);
    CHECK_FALSE(queue::linked(v[0]));
    q.push_back(v[3]);
    q.push_back(v[0]);  // re-inserted after its pop: at the back
    CHECK(contents(q) == ints{1, 2, 3, 0});
    while (!q.empty()) {
        q.pop_front();
    }
    for (auto& x : v) {
        CHECK_FALSE(queue::linked(x));
    }
}

TEST_CASE("intrusive_queue: erase at the front, in the middle, at the back, alone, absent",
          "[intrusive_list]") {
    auto v = make(6);
    queue q;
    queue elsewhere;
    CHECK_FALSE(q.erase(v[0]));  // from an empty queue
    for (int i = 0; i < 5; ++i) {
        q.push_back(v[static_cast<std::size_t>(i)]);
    }
    elsewhere.push_back(v[5]);
    CHECK_FALSE(q.erase(v[5]));  // in another queue: found nowhere here, left alone
    CHECK(queue::linked(v[5]));
    CHECK(&elsewhere.front() == &v[5]);

    CHECK(q.erase(v[2]));  // middle
    CHECK_FALSE(queue::linked(v[2]));
    CHECK(contents(q) == ints{0, 1, 3, 4});
    CHECK(q.erase(v[0]));  // front
    CHECK(contents(q) == ints{1, 3, 4});
    CHECK(&q.front() == &v[1]);
    CHECK(q.erase(v[4]));  // back: the one before it is the last now
    CHECK(contents(q) == ints{1, 3});
    q.push_back(v[4]);
    CHECK(contents(q) == ints{1, 3, 4});
    CHECK_FALSE(q.erase(v[2]));  // erased before: not found again
    CHECK(q.erase(v[3]));
    CHECK(q.erase(v[1]));
    CHECK(contents(q) == ints{4});
    CHECK(q.erase(v[4]));  // alone
    CHECK(q.empty());
    q.push_back(v[2]);  // and usable again
    CHECK(contents(q) == ints{2});
}

TEST_CASE("intrusive_queue: a growing vector of queues keeps their elements",
          "[intrusive_list]") {
    // The epoll backend's per-descriptor state lives in a vector that grows while requests
    // are parked in it.
    auto v = make(4);
    std::vector<queue> qs(1);
    qs[0].push_back(v[0]);
    qs[0].push_back(v[1]);
    for (int i = 0; i < 100; ++i) {
        qs.emplace_back();
    }
    qs[99].push_back(v[2]);
    CHECK(contents(qs[0]) == ints{0, 1});
    CHECK(qs[0].erase(v[1]));
    CHECK(contents(qs[0]) == ints{0});
    CHECK(&qs[0].pop_front() == &v[0]);
    qs[0] = queue();  // only once emptied, as epoll's forget() does
    CHECK(qs[0].empty());
    queue moved(std::move(qs[99]));
    CHECK(qs[99].empty());  // NOLINT(bugprone-use-after-move): documented to be empty
    CHECK(contents(moved) == ints{2});
    CHECK(&moved.pop_front() == &v[2]);
}

TEST_CASE("intrusive_list and intrusive_queue: a long random run against std::deque",
          "[intrusive_list]") {
    // Both at once on the same elements (two hooks), as io_request is in the backend's list
    // and in a descriptor's queue. A fixed seed: the same run each time.
    auto v = make(32);
    list l;
    queue q;
    std::deque<int> lm;
    std::deque<int> qm;
    std::uint64_t seed = 0x9e3779b97f4a7c15u;
    const auto next = [&seed](std::uint64_t n) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        return (seed >> 33) % n;
    };
    for (int step = 0; step < 20000; ++step) {
        item& x = v[next(v.size())];
        const auto in = [&](const std::deque<int>& m) {
            return std::find(m.begin(), m.end(), x.value) != m.end();
        };
        switch (next(6)) {
        case 0:  // list: push at either end, or erase where it is
            if (!in(lm)) {
                l.push_back(x);
                lm.push_back(x.value);
            } else {
                l.erase(x);
                lm.erase(std::find(lm.begin(), lm.end(), x.value));
            }
            break;
        case 1:
            if (!in(lm)) {
                l.push_front(x);
                lm.push_front(x.value);
            }
            break;
        case 2:
            if (!lm.empty()) {
                CHECK(l.pop_front().value == lm.front());
                lm.pop_front();
            }
            break;
        case 3:  // queue: push, or erase where it is
            if (!in(qm)) {
                q.push_back(x);
                qm.push_back(x.value);
            } else {
                CHECK(q.erase(x));
                qm.erase(std::find(qm.begin(), qm.end(), x.value));
            }
            break;
        case 4:
            if (!qm.empty()) {
                CHECK(q.pop_front().value == qm.front());
                qm.pop_front();
            }
            break;
        default:
            CHECK(l.linked(x) == in(lm));
            CHECK(queue::linked(x) == in(qm));
            if (!in(qm)) {
                CHECK_FALSE(q.erase(x));
            }
            break;
        }
        if (step % 1000 == 0) {
            CHECK(contents(l) == ints(lm.begin(), lm.end()));
            CHECK(contents(q) == ints(qm.begin(), qm.end()));
        }
    }
    CHECK(contents(l) == ints(lm.begin(), lm.end()));
    CHECK(contents(q) == ints(qm.begin(), qm.end()));
}
