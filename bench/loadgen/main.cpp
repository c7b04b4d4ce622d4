// SPDX-License-Identifier: MIT
// bench/loadgen — the bench suite's line-echo load generator. Plain epoll and the C++ standard
// library, no ringchat, so that it shares none of the framework's costs.
//
// Each connection keeps `depth` messages in flight (closed loop: a reply completes one message
// and sends the next). A message is `size` bytes: "<conn>:<seq>:" and a filler that depends on
// the sequence number, then "\n", so every reply is compared byte for byte with what was sent and
// a lost, repeated or reordered line is a mismatch. The run is a warm-up, then the measured
// interval; only messages completed in the measured interval count. Latency (from queuing the
// message to its last reply byte) goes into a log-linear histogram. With --server-pid, the
// server's CPU time (utime+stime, /proc/PID/stat; and schedstat's finer run time, the main
// thread's and all its threads' summed) is read at both ends of the measured interval and its RSS
// (/proc/PID/status VmRSS) before connecting and at the end.
//
// With --tls (where the build found OpenSSL 3), each connection does a TLS 1.3 client handshake
// once it is connected, before the warm-up (the handshakes are outside the measured interval),
// and the same closed loop then runs over TLS: OpenSSL directly, an SSL over each non-blocking
// socket, SSL_read/SSL_write in the same epoll loop (WANT_READ/WANT_WRITE wait for the next
// edge), so that loadgen still shares none of ringchat's TLS engine. Without --ca the server's
// certificate is not verified: it is a load generator. Without --tls the code is the plaintext
// loop as it was: the worker's loop is a template on the transport, chosen once per run.
//
// Output: one JSON object on stdout. Exit status 0 when the run is clean (no mismatch, no
// error), 1 otherwise, 2 for a bad command line (examples/common/cli.hpp's conventions).
//
// Invariant: a connection's `expect` holds exactly the bytes sent (or queued) on it and not yet
// echoed, in order; `inflight` holds each of those messages' end offset in the reply stream.
//
// Usage: loadgen --port P [--host 127.0.0.1] [--connections N] [--depth D] [--size BYTES]
//                [--duration S] [--warmup S] [--requests N] [--threads T] [--server-pid PID]
//                [--hold S] [--timeout S] [--tls [--ca FILE] [--server-name NAME]]
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "examples/common/cli.hpp"
#include "version.hpp"

#if RINGCHAT_HAS_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#endif

// OpenSSL's SSL and SSL_CTX, named in the connection and the worker of a build without it too.
struct ssl_st;
struct ssl_ctx_st;

namespace {

using clock_type = std::chrono::steady_clock;

std::uint64_t now_ns() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
            .count());
}

struct config {
    std::string host = "127.0.0.1";
    int port = 0;
    unsigned connections = 1;
    unsigned depth = 1;
    std::size_t size = 64;
    double duration = 2.0;
    double warmup = 0.5;
    std::uint64_t requests = 0;  // > 0: stop after this many replies (no warm-up)
    unsigned threads = 1;
    long server_pid = 0;
    double hold = 0;      // > 0: after one ping per connection, hold them open this long
    double timeout = 0;   // 0: warm-up + duration + 30 s
    bool tls = false;         // a TLS 1.3 handshake per connection, then the echo over TLS
    std::string ca;           // --tls: verify the server against these CAs (empty: no check)
    std::string server_name;  // --tls: SNI, and the name --ca checks (empty: no SNI, --host)
    std::string census;       // --hold: the server's heap census prefix (bench/heap_census)
};

// Log-linear histogram (HdrHistogram's layout, 64 linear sub-buckets per power of two: about
// 1.6% resolution), of nanoseconds.
class histogram {
public:
    static constexpr unsigned sub_bits = 6;
    static constexpr unsigned sub = 1u << sub_bits;

    histogram() : counts_(sub + (64 - sub_bits) * sub, 0) {}

    static std::size_t index(std::uint64_t v) {
        if (v < sub) {
            return static_cast<std::size_t>(v);
        }
        const unsigned e = 63u - static_cast<unsigned>(__builtin_clzll(v));
        const unsigned shift = e - sub_bits;
        return sub + std::size_t{e - sub_bits} * sub + ((v >> shift) - sub);
    }
    // The middle of bucket i.
    static double value(std::size_t i) {
        if (i < sub) {
            return static_cast<double>(i);
        }
        const std::size_t e = (i - sub) / sub + sub_bits;
        const std::size_t shift = e - sub_bits;
        const double low = static_cast<double>(((i - sub) % sub + sub) << shift);
        return low + static_cast<double>(std::uint64_t{1} << shift) / 2.0;
    }

    void record(std::uint64_t v) {
        ++counts_[index(v)];
        ++total_;
        sum_ += static_cast<double>(v);
        max_ = std::max(max_, v);
    }
    void merge(const histogram& o) {
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            counts_[i] += o.counts_[i];
        }
        total_ += o.total_;
        sum_ += o.sum_;
        max_ = std::max(max_, o.max_);
    }
    double percentile(double p) const {
        if (total_ == 0) {
            return 0;
        }
        const auto rank =
            static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(total_)));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= std::max<std::uint64_t>(rank, 1)) {
                return std::min(value(i), static_cast<double>(max_));
            }
        }
        return static_cast<double>(max_);
    }
    double mean() const { return total_ ? sum_ / static_cast<double>(total_) : 0; }
    std::uint64_t max() const { return max_; }
    std::uint64_t total() const { return total_; }

private:
    std::vector<std::uint64_t> counts_;
    std::uint64_t total_ = 0;
    double sum_ = 0;
    std::uint64_t max_ = 0;
};

// 0 = warm-up, 1 = measuring, 2 = stop.
std::atomic<int> phase{0};
std::atomic<std::uint64_t> completed_total{0};

struct message_in_flight {
    std::uint64_t start_ns;
    std::uint64_t end_offset;  // in the connection's reply stream
};

struct connection {
    int fd = -1;
    unsigned id = 0;
    std::uint64_t next_seq = 0;
    std::string out;  // queued, not yet sent
    std::size_t out_off = 0;
    std::string expect;  // sent, not yet echoed
    std::size_t expect_off = 0;
    std::uint64_t received = 0;  // reply bytes so far
    std::uint64_t queued = 0;    // bytes queued so far
    std::deque<message_in_flight> inflight;
    bool open = false;
    std::uint64_t pings_left = 0;  // --hold: messages still to send
    ssl_st* ssl = nullptr;         // --tls: its TLS over fd
    bool handshaking = false;      // --tls: its handshake is not done yet
};

struct thread_result {
    histogram latency;
    std::uint64_t requests = 0;
    std::uint64_t bytes = 0;
    std::uint64_t mismatches = 0;
    std::uint64_t errors = 0;
    std::uint64_t connected = 0;
    std::uint64_t reads = 0;  // recv calls (--tls: SSL_read calls) that returned data, in the
                              // measured interval
    std::string first_problem;
};

void append_message(std::string& to, unsigned conn, std::uint64_t seq, std::size_t size) {
    char head[48];
    const int n = std::snprintf(head, sizeof head, "%u:%llu:", conn,
                                static_cast<unsigned long long>(seq));
    const std::size_t start = to.size();
    to.resize(start + size);
    char* p = to.data() + start;
    const std::size_t body = size - 1;
    const std::size_t h = std::min<std::size_t>(static_cast<std::size_t>(n), body);
    std::memcpy(p, head, h);
    for (std::size_t i = h; i < body; ++i) {
        p[i] = static_cast<char>('a' + (seq + i) % 26);
    }
    p[body] = '\n';
}

class worker {
public:
    worker(const config& cfg, unsigned first_id, unsigned count) : cfg_(cfg) {
        conns_.resize(count);
        for (unsigned i = 0; i < count; ++i) {
            conns_[i].id = first_id + i;
        }
    }

    void problem(const std::string& what) {
        if (result_.first_problem.empty()) {
            result_.first_problem = what;
        }
    }

    // Blocking connects (loopback: immediate once the server listens), then non-blocking.
    bool connect_all() {
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(static_cast<std::uint16_t>(cfg_.port));
        if (inet_pton(AF_INET, cfg_.host.c_str(), &sa.sin_addr) != 1) {
            problem("bad --host (an IPv4 literal is needed)");
            return false;
        }
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            connection& c = conns_[i];
            c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            // A server that stops accepting fills its backlog, and connect() then waits: bound it.
            timeval tv{10, 0};
            setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            if (c.fd < 0 || ::connect(c.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
                problem("connect (connection " + std::to_string(i) + " of " +
                        std::to_string(conns_.size()) + "): " +
                        (errno == EINPROGRESS ? std::string("no answer in 10 s (the server's "
                                                            "backlog is full: is it accepting?)")
                                              : std::string(std::strerror(errno))));
                ++result_.errors;
                return false;
            }
            int one = 1;
            setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
            ev.data.u64 = i;
            epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
            c.open = true;
            ++result_.connected;
        }
        return true;
    }

    void queue_message(connection& c, std::uint64_t t) {
        const std::size_t before = c.out.size();
        append_message(c.out, c.id, c.next_seq++, cfg_.size);
        c.expect.append(c.out, before, cfg_.size);
        c.queued += cfg_.size;
        c.inflight.push_back({t, c.queued});
    }

    void close_conn(connection& c) {
        if (c.open) {
#if RINGCHAT_HAS_TLS
            SSL_free(c.ssl);  // a no-op on nullptr (plaintext)
            c.ssl = nullptr;
#endif
            ::close(c.fd);
            c.open = false;
            --open_;
        }
    }

    void flush(connection& c) {
        while (c.out_off < c.out.size()) {
            const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                                     MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    return;
                }
                problem(std::string("send: ") + std::strerror(errno));
                ++result_.errors;
                close_conn(c);
                return;
            }
            c.out_off += static_cast<std::size_t>(n);
        }
        c.out.clear();
        c.out_off = 0;
    }

    void on_reply_bytes(connection& c, const char* data, std::size_t n) {
        const std::size_t have = c.expect.size() - c.expect_off;
        const std::size_t cmp = std::min(n, have);
        if (n > have || std::memcmp(data, c.expect.data() + c.expect_off, cmp) != 0) {
            ++result_.mismatches;
            std::size_t at = 0;
            while (at < cmp && data[at] == c.expect[c.expect_off + at]) {
                ++at;
            }
            // Which message the first differing byte belongs to (sequence numbers from 0).
            std::uint64_t seq = c.next_seq - c.inflight.size();
            for (const message_in_flight& m : c.inflight) {
                if (m.end_offset > c.received + at) {
                    break;
                }
                ++seq;
            }
            problem("connection " + std::to_string(c.id) + ": reply differs at byte " +
                    std::to_string(c.received + at) + " of its stream (message " +
                    std::to_string(seq) + (n > have ? "; more bytes than were sent)" : ")"));
            close_conn(c);
            return;
        }
        c.expect_off += n;
        c.received += n;
        if (c.expect_off > 65536 && c.expect_off * 2 > c.expect.size()) {
            c.expect.erase(0, c.expect_off);
            c.expect_off = 0;
        }
        const std::uint64_t t = now_ns();
        const int ph = phase.load(std::memory_order_relaxed);
        while (!c.inflight.empty() && c.inflight.front().end_offset <= c.received) {
            if (ph == 1) {
                result_.latency.record(t - c.inflight.front().start_ns);
                ++result_.requests;
                result_.bytes += cfg_.size;
            }
            c.inflight.pop_front();
            if (cfg_.requests > 0 &&
                completed_total.fetch_add(1, std::memory_order_relaxed) + 1 >= cfg_.requests) {
                phase.store(2);
            }
            if (cfg_.hold > 0) {
                if (c.pings_left > 0) {
                    --c.pings_left;
                    queue_message(c, t);
                }
            } else if (ph != 2) {
                queue_message(c, t);
            }
        }
    }

    void on_readable(connection& c) {
        for (;;) {
            const ssize_t n = ::recv(c.fd, rbuf_.data(), rbuf_.size(), 0);
            if (n > 0) {
                if (phase.load(std::memory_order_relaxed) == 1) {
                    ++result_.reads;
                }
                on_reply_bytes(c, rbuf_.data(), static_cast<std::size_t>(n));
                if (!c.open) {
                    return;
                }
                if (static_cast<std::size_t>(n) < rbuf_.size()) {
                    break;  // drained for now; the next arrival is a new edge
                }
                continue;
            }
            if (n == 0) {
                if (phase.load() != 2) {
                    problem("connection " + std::to_string(c.id) + " closed by the server");
                    ++result_.errors;
                }
                close_conn(c);
                return;
            }
            if (errno == EAGAIN || errno == EINTR) {
                break;
            }
            problem(std::string("recv: ") + std::strerror(errno));
            ++result_.errors;
            close_conn(c);
            return;
        }
        flush(c);
    }

    template <bool Tls>
    void send_queued(connection& c) {
#if RINGCHAT_HAS_TLS
        if constexpr (Tls) {
            flush_tls(c);
            return;
        }
#endif
        flush(c);
    }

    template <bool Tls>
    void receive(connection& c) {
#if RINGCHAT_HAS_TLS
        if constexpr (Tls) {
            on_readable_tls(c);
            return;
        }
#endif
        on_readable(c);
    }

#if RINGCHAT_HAS_TLS
    // What went wrong in the SSL call that returned `ret` on c: OpenSSL's first queued error,
    // else errno, and why the certificate failed where it was verified. Empties the queue.
    std::string tls_problem(const connection& c, int ret) {
        const int saved_errno = errno;
        const int e = SSL_get_error(c.ssl, ret);
        std::string why;
        if (const unsigned long code = ERR_get_error(); code != 0) {
            char buf[256];
            ERR_error_string_n(code, buf, sizeof buf);
            why = buf;
        } else if (e == SSL_ERROR_SYSCALL) {
            why = saved_errno ? std::strerror(saved_errno) : "the connection ended";
        } else {
            why = "SSL_get_error " + std::to_string(e);
        }
        const long verify = SSL_get_verify_result(c.ssl);
        if ((SSL_get_verify_mode(c.ssl) & SSL_VERIFY_PEER) && verify != X509_V_OK) {
            why += std::string(" (the server's certificate: ") +
                   X509_verify_cert_error_string(verify) + ")";
        }
        ERR_clear_error();
        return why;
    }

    // One step of c's handshake: true while it is still under way or done, false on an error
    // (then c is closed and the problem noted).
    bool handshake_step(connection& c) {
        const int r = SSL_do_handshake(c.ssl);
        if (r == 1) {
            c.handshaking = false;
            return true;
        }
        const int e = SSL_get_error(c.ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            return true;
        }
        problem("connection " + std::to_string(c.id) + ": TLS handshake: " + tls_problem(c, r));
        ++result_.errors;
        close_conn(c);
        return false;
    }

    // --tls: a client handshake on every connection, all at once in this worker's epoll loop,
    // before the run (not measured). False when one fails or `deadline` (now_ns()) passes.
    bool handshake_all(ssl_ctx_st* ctx, std::uint64_t deadline) {
        std::size_t pending = 0;
        for (connection& c : conns_) {
            c.ssl = SSL_new(ctx);
            if (!c.ssl || SSL_set_fd(c.ssl, c.fd) != 1) {
                char why[256] = "out of memory";
                if (const unsigned long code = ERR_get_error(); code != 0) {
                    ERR_error_string_n(code, why, sizeof why);
                }
                problem(std::string("SSL_new: ") + why);
                ++result_.errors;
                return false;
            }
            SSL_set_connect_state(c.ssl);
            if (!cfg_.server_name.empty()) {
                SSL_set_tlsext_host_name(c.ssl, cfg_.server_name.c_str());
            }
            if (!cfg_.ca.empty()) {
                // the name checked: --server-name, else --host's address (an IP SAN)
                const int set = cfg_.server_name.empty()
                                    ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c.ssl),
                                                                    cfg_.host.c_str())
                                    : SSL_set1_host(c.ssl, cfg_.server_name.c_str());
                if (set != 1) {
                    problem("--ca: cannot set the name to check on the server's certificate");
                    ++result_.errors;
                    return false;
                }
            }
            c.handshaking = true;
            ++pending;
            if (!handshake_step(c)) {
                return false;
            }
            pending -= c.handshaking ? 0 : 1;
        }
        std::vector<epoll_event> events(512);
        while (pending > 0) {
            if (now_ns() >= deadline) {
                problem("TLS handshakes: " + std::to_string(pending) + " of " +
                        std::to_string(conns_.size()) + " not done in time");
                ++result_.errors;
                return false;
            }
            const int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 20);
            for (int i = 0; i < n; ++i) {
                connection& c = conns_[events[static_cast<std::size_t>(i)].data.u64];
                if (!c.open || !c.handshaking) {
                    continue;
                }
                if (!handshake_step(c)) {
                    return false;
                }
                pending -= c.handshaking ? 0 : 1;
            }
        }
        return true;
    }

    // What the first connection negotiated, as JSON members (its protocol, cipher, group).
    std::string negotiated() const {
        if (conns_.empty() || !conns_[0].ssl) {
            return "";
        }
        SSL* s = conns_[0].ssl;
        const char* group = SSL_group_to_name(s, SSL_get_negotiated_group(s));
        return std::string("\"protocol\": \"") + SSL_get_version(s) + "\", \"cipher\": \"" +
               SSL_get_cipher_name(s) + "\", \"group\": \"" + (group ? group : "?") + "\"";
    }

    // flush() over TLS: SSL_write (partial writes on, and the buffer may move between a
    // WANT_WRITE and its retry: c.out only grows at its end meanwhile).
    void flush_tls(connection& c) {
        while (c.out_off < c.out.size()) {
            const std::size_t left = c.out.size() - c.out_off;
            const int n = SSL_write(c.ssl, c.out.data() + c.out_off,
                                    static_cast<int>(std::min<std::size_t>(left, 1u << 30)));
            if (n <= 0) {
                const int e = SSL_get_error(c.ssl, n);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    return;  // the next edge (EPOLLOUT or EPOLLIN) tries again
                }
                problem("connection " + std::to_string(c.id) + ": TLS write: " +
                        tls_problem(c, n));
                ++result_.errors;
                close_conn(c);
                return;
            }
            c.out_off += static_cast<std::size_t>(n);
        }
        c.out.clear();
        c.out_off = 0;
    }

    // on_readable() over TLS: SSL_read gives one record at a time, so it reads until
    // WANT_READ (the socket drained: the next arrival is a new edge).
    void on_readable_tls(connection& c) {
        for (;;) {
            const int n = SSL_read(c.ssl, rbuf_.data(),
                                   static_cast<int>(std::min<std::size_t>(rbuf_.size(), 1u << 30)));
            if (n > 0) {
                if (phase.load(std::memory_order_relaxed) == 1) {
                    ++result_.reads;
                }
                on_reply_bytes(c, rbuf_.data(), static_cast<std::size_t>(n));
                if (!c.open) {
                    return;
                }
                continue;
            }
            const int e = SSL_get_error(c.ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                break;
            }
            if (e == SSL_ERROR_ZERO_RETURN) {  // close_notify, or (IGNORE_UNEXPECTED_EOF) EOF
                if (phase.load() != 2) {
                    problem("connection " + std::to_string(c.id) + " closed by the server");
                    ++result_.errors;
                }
                close_conn(c);
                return;
            }
            problem("connection " + std::to_string(c.id) + ": TLS read: " + tls_problem(c, n));
            ++result_.errors;
            close_conn(c);
            return;
        }
        flush_tls(c);
    }
#endif

    // The closed loop, over plaintext or (--tls) over each connection's SSL: chosen once here,
    // so that the plaintext loop is the same code as in a build without TLS.
    void run() {
#if RINGCHAT_HAS_TLS
        if (cfg_.tls) {
            run_as<true>();
            return;
        }
#endif
        run_as<false>();
    }

    template <bool Tls>
    void run_as() {
        rbuf_.resize(256 * 1024);
        open_ = conns_.size();
        const std::uint64_t t = now_ns();
        for (connection& c : conns_) {
            if (cfg_.hold > 0) {
                c.pings_left = cfg_.depth - 1;
                queue_message(c, t);
            } else {
                for (unsigned d = 0; d < cfg_.depth; ++d) {
                    queue_message(c, t);
                }
            }
            send_queued<Tls>(c);
        }
        std::vector<epoll_event> events(512);
        while (phase.load(std::memory_order_relaxed) != 2 && open_ > 0) {
            const int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 20);
            for (int i = 0; i < n; ++i) {
                const epoll_event& e = events[static_cast<std::size_t>(i)];
                connection& c = conns_[e.data.u64];
                if (!c.open) {
                    continue;
                }
                if (e.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                    receive<Tls>(c);
                } else if (e.events & EPOLLOUT) {
                    send_queued<Tls>(c);
                }
            }
            if (cfg_.hold > 0 && idle()) {
                done_pinging_.store(true);
            }
        }
    }

    bool idle() const {
        for (const connection& c : conns_) {
            if (c.open && (!c.inflight.empty() || c.pings_left > 0)) {
                return false;
            }
        }
        return true;
    }

    void close_all() {
        for (connection& c : conns_) {
#if RINGCHAT_HAS_TLS
            if (c.open && c.ssl && !c.handshaking) {
                SSL_shutdown(c.ssl);  // the close_notify, once, without waiting for the server's
                ERR_clear_error();
            }
#endif
            close_conn(c);
        }
        if (ep_ >= 0) {
            ::close(ep_);
        }
    }

    thread_result& result() { return result_; }
    std::atomic<bool> done_pinging_{false};

private:
    const config& cfg_;
    std::vector<connection> conns_;
    std::vector<char> rbuf_;
    int ep_ = -1;
    std::size_t open_ = 0;
    thread_result result_;
};

// utime + stime of a process, in microseconds; -1 if it cannot be read.
double process_cpu_us(long pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const auto close_paren = s.rfind(')');
    if (close_paren == std::string::npos) {
        return -1;
    }
    std::istringstream in(s.substr(close_paren + 2));
    std::string field;
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    // Fields from the third (state); utime and stime are the 14th and 15th.
    for (int i = 3; i <= 15 && (in >> field); ++i) {
        if (i == 14) {
            utime = std::stoull(field);
        } else if (i == 15) {
            stime = std::stoull(field);
        }
    }
    return static_cast<double>(utime + stime) * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The run time of the process's main thread (/proc/PID/task/PID/schedstat), microseconds:
// finer than the clock ticks of /proc/PID/stat, and the whole process for the one-thread
// servers the suite runs. -1 where schedstat is missing.
double process_sched_us(long pid) {
    const std::string dir = "/proc/" + std::to_string(pid) + "/task/";
    double total = 0;
    bool any = false;
    std::ifstream list(dir + std::to_string(pid) + "/schedstat");
    if (list) {
        unsigned long long ns = 0;
        if (list >> ns) {
            total += static_cast<double>(ns) / 1000.0;
            any = true;
        }
    }
    return any ? total : -1;
}

// The run time of every thread of the process (each /proc/PID/task/TID/schedstat), summed, in
// microseconds: the CPU of a server with several reactor threads (--threads N), where the main
// thread's is one reactor's. A thread that ends inside the interval takes its time with it (the
// suite's servers start their threads before they are ready). -1 where schedstat is missing.
double threads_sched_us(long pid) {
    const std::string dir = "/proc/" + std::to_string(pid) + "/task/";
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) {
        return -1;
    }
    double total = 0;
    bool any = false;
    while (const dirent* e = readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') {
            continue;
        }
        std::ifstream f(dir + e->d_name + "/schedstat");
        unsigned long long ns = 0;
        if (f >> ns) {
            total += static_cast<double>(ns) / 1000.0;
            any = true;
        }
    }
    closedir(d);
    return any ? total : -1;
}

double self_cpu_us() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// --census: asks the server (running under bench/heap_census) for census number `n` with
// SIGUSR2 and waits, up to 5 s, for its file PREFIX.n to appear. False if it did not.
bool take_census(long pid, const std::string& prefix, int n) {
    if (kill(static_cast<pid_t>(pid), SIGUSR2) != 0) {
        return false;
    }
    const std::string path = prefix + "." + std::to_string(n);
    struct stat st {};
    for (int i = 0; i < 500; ++i) {
        if (stat(path.c_str(), &st) == 0) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

long rss_kb(long pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::atol(line.c_str() + 6);
        }
    }
    return -1;
}

constexpr std::string_view usage =
    "usage: loadgen --port P [options]\n"
    "A line-echo load generator: prints one JSON object; exit 0 when every reply was right.\n"
    "\n"
    "options:\n"
    "  --host ADDR          the server's IPv4 address (default 127.0.0.1)\n"
    "  --port P             the server's port (needed)\n"
    "  --connections N      connections (default 1)\n"
    "  --depth D            messages in flight per connection (default 1)\n"
    "  --size BYTES         bytes per message, \"\\n\" included; at least 32 (default 64)\n"
    "  --duration S         the measured interval, seconds (default 2)\n"
    "  --warmup S           seconds before it (default 0.5)\n"
    "  --requests N         stop after N replies instead, no warm-up (default 0: off)\n"
    "  --threads T          worker threads (default 1)\n"
    "  --server-pid PID     read this process's CPU time and RSS around the run\n"
    "  --hold S             after one ping per connection, hold them open S seconds\n"
    "  --census PREFIX      with --hold and --server-pid: the server runs under\n"
    "                       bench/heap_census with that prefix; census 1 is taken before\n"
    "                       connecting, census 2 while the connections are held\n"
    "  --timeout S          give up after S seconds (default 0: warm-up + duration + 30)\n"
    "  --tls                a TLS 1.3 handshake on each connection before the warm-up (not\n"
    "                       measured), then the same echo over TLS (OpenSSL)\n"
    "  --ca FILE            with --tls: verify the server against these CA certificates (PEM;\n"
    "                       default: no verification)\n"
    "  --server-name NAME   with --tls: the name sent (SNI) and, with --ca, checked (default:\n"
    "                       none sent; --host's address checked)\n"
    "  --help               show this help and exit\n"
    "  --version            show the version and exit\n";

config parse(int argc, char** argv) {
    constexpr double day = 86'400;
    constexpr unsigned most = 1'000'000;
    config c;
    ringchat::cli::args a("loadgen", usage, argc, argv);
    while (a.next()) {
        if (a.is("--host")) {
            c.host = std::string(a.value());
            in_addr ignored{};
            if (inet_pton(AF_INET, c.host.c_str(), &ignored) != 1) {
                a.bad_value("an IPv4 address");
            }
        } else if (a.is("--port")) {
            c.port = a.number("a port number", 1, 65535);
        } else if (a.is("--connections")) {
            c.connections = a.number("a number of connections (1 or more)", 1u, most);
        } else if (a.is("--depth")) {
            c.depth = a.number("a depth (1 or more)", 1u, most);
        } else if (a.is("--size")) {
            c.size = a.number("a message size (32 or more)", std::size_t{32}, std::size_t{1} << 30);
        } else if (a.is("--duration")) {
            c.duration = a.number("a number of seconds", 0.0, day);
        } else if (a.is("--warmup")) {
            c.warmup = a.number("a number of seconds", 0.0, day);
        } else if (a.is("--requests")) {
            c.requests = a.number("a number of requests", std::uint64_t{0}, UINT64_MAX);
        } else if (a.is("--threads")) {
            c.threads = a.number("a number of threads (1 or more)", 1u, 1024u);
        } else if (a.is("--server-pid")) {
            c.server_pid = a.number("a process id", 1L, 2'147'483'647L);
        } else if (a.is("--hold")) {
            c.hold = a.number("a number of seconds", 0.0, day);
        } else if (a.is("--census")) {
            c.census = std::string(a.value());
        } else if (a.is("--timeout")) {
            c.timeout = a.number("a number of seconds", 0.0, day);
        } else if (a.flag("--tls")) {
#if RINGCHAT_HAS_TLS
            c.tls = true;
#else
            a.error("--tls: this loadgen was built without OpenSSL");
#endif
        } else if (a.is("--ca")) {
            c.ca = std::string(a.value());
        } else if (a.is("--server-name")) {
            c.server_name = std::string(a.value());
        } else {
            a.unknown();
        }
    }
    if (c.port == 0) {
        a.error("--port is needed");
    }
    if (!c.tls && (!c.ca.empty() || !c.server_name.empty())) {
        a.error(std::string(!c.ca.empty() ? "--ca" : "--server-name") + " needs --tls");
    }
    if (!c.census.empty() && (c.hold <= 0 || c.server_pid == 0)) {
        a.error("--census needs --hold and --server-pid");
    }
    c.threads = std::min(c.threads, c.connections);
    return c;
}

#if RINGCHAT_HAS_TLS
// --tls: the client context every connection's SSL is made from: TLS 1.3 only; partial writes
// and a write buffer that may move (flush_tls); read-ahead (fewer reads of the socket); an EOF
// without close_notify reads as the end (the plaintext loop's recv() == 0). Verification
// against --ca, or none. A --ca that cannot be read is a start-up error (exit 1).
ssl_ctx_st* make_tls_context(const config& cfg) {
    auto fail = [](const std::string& what) {
        char why[256] = "unknown error";
        if (const unsigned long code = ERR_get_error(); code != 0) {
            ERR_error_string_n(code, why, sizeof why);
        }
        ringchat::cli::startup_error("loadgen", what + ": " + why);
    };
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        fail("--tls: SSL_CTX_new");
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
        fail("--tls: no TLS 1.3");
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_read_ahead(ctx, 1);
    if (cfg.ca.empty()) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    } else {
        if (SSL_CTX_load_verify_locations(ctx, cfg.ca.c_str(), nullptr) != 1) {
            fail("--ca " + cfg.ca + ": cannot load");
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    return ctx;
}
#endif

}  // namespace

int main(int argc, char** argv) {
    const config cfg = parse(argc, argv);

    // Many connections need many descriptors: take what the hard limit allows.
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

#if RINGCHAT_HAS_TLS
    // Before connecting: a --ca that cannot be read is a start-up error.
    ssl_ctx_st* const tls_ctx = cfg.tls ? make_tls_context(cfg) : nullptr;
#endif
    const long rss_before = cfg.server_pid ? rss_kb(cfg.server_pid) : -1;
    std::string census_problem;
    if (!cfg.census.empty() && !take_census(cfg.server_pid, cfg.census, 1)) {
        census_problem = "no census before connecting (is the server under heap_census?)";
    }
    std::vector<std::unique_ptr<worker>> workers;
    unsigned first = 0;
    for (unsigned t = 0; t < cfg.threads; ++t) {
        const unsigned n =
            cfg.connections / cfg.threads + (t < cfg.connections % cfg.threads ? 1 : 0);
        workers.push_back(std::make_unique<worker>(cfg, first, n));
        first += n;
    }
    bool connected = true;
    for (auto& w : workers) {
        connected = w->connect_all() && connected;
    }
    // --tls: every connection's handshake, before the warm-up and the measured interval; the
    // run's deadline (--timeout) counts the time they took.
    double handshake_s = 0;
    std::string tls_json;
#if RINGCHAT_HAS_TLS
    if (tls_ctx && connected) {
        const double limit = cfg.timeout > 0 ? cfg.timeout : cfg.warmup + cfg.duration + 30.0;
        const std::uint64_t h0 = now_ns();
        const std::uint64_t deadline = h0 + static_cast<std::uint64_t>(limit * 1e9);
        for (auto& w : workers) {
            connected = connected && w->handshake_all(tls_ctx, deadline);
        }
        handshake_s = static_cast<double>(now_ns() - h0) / 1e9;
        char buf[96];
        std::snprintf(buf, sizeof buf, "\"verified\": %s, \"handshake_s\": %.4f",
                      cfg.ca.empty() ? "false" : "true", handshake_s);
        tls_json = ", \"tls\": {" + (connected ? workers[0]->negotiated() + ", " : "") + buf + "}";
    }
    SSL_CTX_free(tls_ctx);  // a no-op on nullptr; the SSLs keep what they need of it
#endif

    double cpu0 = -1;
    double sched0 = -1;
    double threads0 = -1;
    double cpu1 = -1;
    double sched1 = -1;
    double threads1 = -1;
    long rss_after = -1;
    double self0 = 0;
    double self1 = 0;
    std::uint64_t t0 = now_ns();
    std::uint64_t t1 = t0;
    bool timed_out = false;

    if (connected) {
        if (cfg.requests > 0 || cfg.hold > 0) {
            phase.store(1);
        }
        std::vector<std::thread> threads;
        for (auto& w : workers) {
            threads.emplace_back([&w] { w->run(); });
        }
        const double limit = std::max(
            0.0, (cfg.timeout > 0 ? cfg.timeout : cfg.warmup + cfg.duration + cfg.hold + 30.0) -
                     handshake_s);
        const std::uint64_t deadline = now_ns() + static_cast<std::uint64_t>(limit * 1e9);
        auto sleep_s = [](double s) {
            std::this_thread::sleep_for(std::chrono::duration<double>(s));
        };
        if (cfg.hold > 0) {
            // Idle-connection mode: one ping each, then hold them open and read the RSS.
            while (!std::all_of(workers.begin(), workers.end(),
                                [](auto& w) { return w->done_pinging_.load(); }) &&
                   now_ns() < deadline) {
                sleep_s(0.01);
            }
            timed_out = now_ns() >= deadline;
            t1 = now_ns();
            sleep_s(cfg.hold);
            if (cfg.server_pid) {
                rss_after = rss_kb(cfg.server_pid);
                cpu1 = process_cpu_us(cfg.server_pid);
            }
            if (!cfg.census.empty() && census_problem.empty() &&
                !take_census(cfg.server_pid, cfg.census, 2)) {
                census_problem = "no census while holding the connections";
            }
        } else if (cfg.requests > 0) {
            if (cfg.server_pid) {
                cpu0 = process_cpu_us(cfg.server_pid);
                sched0 = process_sched_us(cfg.server_pid);
                threads0 = threads_sched_us(cfg.server_pid);
            }
            t0 = now_ns();
            self0 = self_cpu_us();
            while (phase.load() != 2 && now_ns() < deadline) {
                sleep_s(0.001);
            }
            timed_out = phase.load() != 2;
            t1 = now_ns();
            self1 = self_cpu_us();
        } else {
            sleep_s(cfg.warmup);
            if (cfg.server_pid) {
                cpu0 = process_cpu_us(cfg.server_pid);
                sched0 = process_sched_us(cfg.server_pid);
                threads0 = threads_sched_us(cfg.server_pid);
            }
            t0 = now_ns();
            self0 = self_cpu_us();
            phase.store(1);
            sleep_s(cfg.duration);
            t1 = now_ns();
            self1 = self_cpu_us();
        }
        if (cfg.server_pid && cfg.hold <= 0) {
            cpu1 = process_cpu_us(cfg.server_pid);
            sched1 = process_sched_us(cfg.server_pid);
            threads1 = threads_sched_us(cfg.server_pid);
            rss_after = rss_kb(cfg.server_pid);
        }
        phase.store(2);
        for (auto& t : threads) {
            t.join();
        }
    }
    for (auto& w : workers) {
        w->close_all();
    }

    thread_result all;
    for (auto& w : workers) {
        thread_result& r = w->result();
        all.latency.merge(r.latency);
        all.requests += r.requests;
        all.bytes += r.bytes;
        all.mismatches += r.mismatches;
        all.errors += r.errors;
        all.connected += r.connected;
        all.reads += r.reads;
        if (all.first_problem.empty()) {
            all.first_problem = r.first_problem;
        }
    }
    if (timed_out) {
        ++all.errors;
        if (all.first_problem.empty()) {
            all.first_problem = "timed out";
        }
    }
    const double secs = static_cast<double>(t1 - t0) / 1e9;
    const double rps = secs > 0 ? static_cast<double>(all.requests) / secs : 0;
    if (!census_problem.empty() && all.first_problem.empty()) {
        all.first_problem = census_problem;
    }
    const bool ok =
        connected && all.mismatches == 0 && all.errors == 0 && census_problem.empty();
    const double cpu_us = (cpu0 >= 0 && cpu1 >= 0) ? cpu1 - cpu0 : -1;
    const double sched_us = (sched0 >= 0 && sched1 >= 0) ? sched1 - sched0 : -1;
    const double threads_us = (threads0 >= 0 && threads1 >= 0) ? threads1 - threads0 : -1;
    auto per_req = [&](double v) {
        return (v >= 0 && all.requests > 0) ? v / static_cast<double>(all.requests) : -1.0;
    };
    std::string problem;
    for (char ch : all.first_problem) {
        if (ch == '"' || ch == '\\') {
            problem += '\\';
        }
        problem += ch;
    }
    const long conns = static_cast<long>(cfg.connections);
    std::printf(
        "{\"ok\": %s, \"connections\": %u, \"connected\": %llu, \"depth\": %u, \"size\": %zu, "
        "\"threads\": %u, \"seconds\": %.4f, \"requests\": %llu, \"rps\": %.1f, "
        "\"mib_s\": %.2f, \"latency_us\": {\"p50\": %.2f, \"p99\": %.2f, \"p999\": %.2f, "
        "\"mean\": %.2f, \"max\": %.2f}, \"mismatches\": %llu, \"errors\": %llu, "
        "\"server_cpu_us\": %.0f, \"server_cpu_us_per_req\": %.4f, "
        "\"server_sched_us_per_req\": %.4f, \"server_threads_sched_us_per_req\": %.4f, "
        "\"server_rss_kb_before\": %ld, "
        "\"server_rss_kb_after\": %ld, \"server_rss_kb_per_conn\": %.3f, "
        "\"client_cpu_us_per_req\": %.4f, \"client_reads_per_req\": %.4f, \"problem\": \"%s\"%s}\n",
        ok ? "true" : "false", cfg.connections,
        static_cast<unsigned long long>(all.connected), cfg.depth, cfg.size, cfg.threads, secs,
        static_cast<unsigned long long>(all.requests), rps,
        secs > 0 ? static_cast<double>(all.bytes) / secs / (1024.0 * 1024.0) : 0.0,
        all.latency.percentile(50) / 1e3, all.latency.percentile(99) / 1e3,
        all.latency.percentile(99.9) / 1e3, all.latency.mean() / 1e3,
        static_cast<double>(all.latency.max()) / 1e3,
        static_cast<unsigned long long>(all.mismatches),
        static_cast<unsigned long long>(all.errors), cpu_us, per_req(cpu_us), per_req(sched_us),
        per_req(threads_us),
        rss_before, rss_after,
        (rss_before >= 0 && rss_after >= 0)
            ? static_cast<double>(rss_after - rss_before) / static_cast<double>(conns)
            : -1.0,
        per_req(self1 > self0 ? self1 - self0 : -1), per_req(static_cast<double>(all.reads)),
        problem.c_str(), tls_json.c_str());
    std::fflush(stdout);
    return ok ? 0 : 1;
}
