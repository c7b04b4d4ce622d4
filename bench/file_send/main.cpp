// SPDX-License-Identifier: MIT
// bench/file_send — a file through a channel over TCP loopback: the zero-copy path
// (sendfile) against the read path (read into memory, then send), on each backend.
//
// The sender is a reactor with a channel that pushes a file producer and finishes; the
// receiver is a plain blocking client in a thread of its own, on another CPU where there is
// one (as a server's client is another process), which receives and discards. Reported:
// throughput (MiB/s) and the sender thread's CPU time per GiB (getrusage RUSAGE_THREAD: what
// a server pays), medians over the repetitions, which run interleaved (read, zero copy,
// read, zero copy ...) so that drift on a shared machine hits both alike.
//
// TRICKY: an earlier version ran the receiver in the sender's reactor and counted the whole
// process's CPU. That measured the two ends together, taking turns on one CPU, and showed
// sendfile slower and dearer than the read path (0.63-0.75x the speed), against what a
// server sees (the http scenario, curl as the client: zero copy faster and cheaper).
//
// Usage: file_send [--size MIB] [--reps N] [--backend uring|epoll|all]
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "chat/channel.hpp"
#include "core/listener.hpp"
#include "core/reactor.hpp"
#include "examples/common/cli.hpp"
#include "producers/file.hpp"

using namespace ringchat;

namespace {

struct sample {
    double seconds = 0;
    double cpu_seconds = 0;
};

double thread_cpu_now() {
    rusage u{};
    getrusage(RUSAGE_THREAD, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/// The CPUs this process may use: the sender takes the first, the receiver the second.
std::vector<int> usable_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int c = 0; c < CPU_SETSIZE; ++c) {
            if (CPU_ISSET(c, &set)) {
                cpus.push_back(c);
            }
        }
    }
    return cpus;
}

void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);  // best effort
}

/// The receiver: connects to 127.0.0.1:port, reads until end of stream; -1 if it failed.
std::int64_t receive_all(std::uint16_t port, int cpu) {
    if (cpu >= 0) {
        pin_to(cpu);
    }
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
        if (fd >= 0) {
            ::close(fd);
        }
        return -1;
    }
    std::vector<char> buf(256 * 1024);
    std::int64_t total = 0;
    for (;;) {
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n <= 0) {
            ::close(fd);
            return n == 0 ? total : -1;
        }
        total += n;
    }
}

task<> send_once(reactor& r, listener& l, const std::string& path, bool zero_copy) {
    auto server = (co_await l.accept()).value();
    chat::channel_options o;
    o.zero_copy = zero_copy;
    chat::channel ch(std::move(server), o);
    auto f = producers::file::open(r, path);
    if (!f) {
        throw std::system_error(f.error(), path);
    }
    ch.push_with_producer(std::move(*f));
    co_await ch.finish();  // sends the file, then closes: the receiver sees end of stream
}

sample measure(backend_kind kind, const std::string& path, std::uint64_t size, bool zero_copy,
               int receiver_cpu) {
    reactor_options options;
    options.kind = kind;
    reactor r(options);
    auto l = listener::bind(r, address::ipv4("127.0.0.1", 0)).value();
    std::int64_t got = -1;
    const auto t0 = std::chrono::steady_clock::now();
    const double cpu0 = thread_cpu_now();
    std::thread receiver([&got, port = l.local_address().port(), receiver_cpu] {
        got = receive_all(port, receiver_cpu);
    });
    try {
        r.block_on(send_once(r, l, path, zero_copy));
    } catch (...) {
        receiver.join();
        throw;
    }
    const double cpu = thread_cpu_now() - cpu0;
    receiver.join();
    const auto t1 = std::chrono::steady_clock::now();
    if (got != static_cast<std::int64_t>(size)) {
        fmt::print(stderr, "file_send: received {} bytes of {}\n", got, size);
        std::exit(1);
    }
    return {std::chrono::duration<double>(t1 - t0).count(), cpu};
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t mib = 256;
    int reps = 5;
    std::string which = "all";
    constexpr std::string_view usage =
        "usage: file_send [--size MIB] [--reps N] [--backend uring|epoll|all]\n"
        "A file through a channel over TCP loopback: sendfile against read-and-send.\n"
        "\n"
        "options:\n"
        "  --size MIB           the file's size (default 256)\n"
        "  --reps N             repetitions, medians reported (default 5)\n"
        "  --backend KIND       uring, epoll or all (default all)\n"
        "  --help               show this help and exit\n"
        "  --version            show the version and exit\n";
    cli::args a("file_send", usage, argc, argv);
    while (a.next()) {
        if (a.is("--size")) {
            mib = a.number("a size in MiB (1 or more)", std::uint64_t{1}, std::uint64_t{1} << 20);
        } else if (a.is("--reps")) {
            reps = a.number("a number of repetitions (1 or more)", 1, 1000);
        } else if (a.is("--backend")) {
            which = std::string(a.value());
            if (which != "all" && which != "uring" && which != "epoll") {
                a.bad_value("uring, epoll or all");
            }
        } else {
            a.unknown();
        }
    }
    std::vector<backend_kind> kinds;
    if (which == "all" || which == "uring") {
        kinds.push_back(backend_kind::uring);
    }
    if (which == "all" || which == "epoll") {
        kinds.push_back(backend_kind::epoll);
    }

    // The file: in the page cache (written just now), so the disk is not what is measured.
    const std::string path =
        (std::filesystem::temp_directory_path() / fmt::format("ringchat-file-send-{}", getpid()))
            .string();
    {
        std::string block(1 << 20, '\0');
        for (std::size_t i = 0; i < block.size(); ++i) {
            block[i] = static_cast<char>(i * 131 % 251);
        }
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        for (std::uint64_t i = 0; i < mib; ++i) {
            if (fd < 0 || ::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) {
                fmt::print(stderr, "file_send: cannot write {}\n", path);
                return 1;
            }
        }
        ::close(fd);
    }
    const std::uint64_t size = mib << 20;
    const std::vector<int> cpus = usable_cpus();
    int receiver_cpu = -1;
    if (cpus.size() >= 2) {
        pin_to(cpus[0]);
        receiver_cpu = cpus[1];
    }

    fmt::print("file_send: {} MiB through a channel over TCP loopback to a receiver thread ({}), "
               "{} repetitions, medians; CPU: the sender's\n",
               mib, receiver_cpu >= 0 ? fmt::format("sender on CPU {}, receiver on CPU {}", cpus[0], receiver_cpu)
                                      : std::string("one CPU"),
               reps);
    fmt::print("{:<8} {:>14} {:>14} {:>16} {:>16} {:>10} {:>10}\n", "backend", "read MiB/s",
               "0-copy MiB/s", "read CPU ms/GiB", "0-copy CPU ms/GiB", "speed x", "CPU x");
    for (const backend_kind kind : kinds) {
        std::vector<double> rt, zt, rc, zc;
        bool available = true;
        for (int i = 0; i < reps && available; ++i) {
            for (const bool zero_copy : {false, true}) {
                sample s;
                try {
                    s = measure(kind, path, size, zero_copy, receiver_cpu);
                } catch (const std::exception& e) {
                    fmt::print("{:<8} unavailable: {}\n", to_string(kind), e.what());
                    available = false;
                    break;
                }
                (zero_copy ? zt : rt).push_back(static_cast<double>(mib) / s.seconds);
                (zero_copy ? zc : rc).push_back(s.cpu_seconds * 1000.0 * 1024.0 /
                                                static_cast<double>(mib));
            }
        }
        if (!available) {
            continue;
        }
        const double r_speed = median(rt), z_speed = median(zt);
        const double r_cpu = median(rc), z_cpu = median(zc);
        fmt::print("{:<8} {:>14.0f} {:>14.0f} {:>16.0f} {:>16.0f} {:>10.2f} {:>10.2f}\n",
                   to_string(kind), r_speed, z_speed, r_cpu, z_cpu, z_speed / r_speed,
                   z_cpu / r_cpu);
    }
    std::filesystem::remove(path);
    return 0;
}
