/*
 * tcpclient — the rvs kernel VM's test client (also built for the host by
 * tests/fidelity/host-run.sh, so both sides of the fidelity suite use it).
 *
 * Makes one connection attempt after another to IP:PORT and reports each:
 *
 *   TCP (default): non-blocking connect bounded by -t ms; on success, read the
 *   one-line name the server sends, then close.  The client closes first, so
 *   its socket ends in TIME_WAIT and tcp_tw_reuse governs when the port comes
 *   back.  -H keeps the connection open that many ms after the name.
 *
 *   UDP (-u): a fresh connected socket per attempt sends one datagram and
 *   waits up to -t ms for the one-line answer.
 *
 * Outcomes: ok (name received), refused (ECONNREFUSED: a reset answered the
 * SYN, or an ICMP port unreachable for UDP), unreach (EHOSTUNREACH or
 * ENETUNREACH), timeout (nothing within -t ms), reset (TCP connected, but no
 * name arrived: reset or EOF), other.  When connect() fails at once with
 * EADDRNOTAVAIL (every local port busy) no attempt is counted: the event is
 * counted in eaddrnotavail and the same attempt is tried again 20 ms later.
 *
 * Printed lines (the fidelity suite's parser reads these; keep them stable):
 *   conn i=N t_ms=T lport=P result=R lat_us=L rs=NAME errno=E     (not with -q)
 *   summary label=L attempted= ok= refused= timeout= unreach= reset= other=
 *           eaddrnotavail= elapsed_ms= ok_p50_us= ok_p90_us= ok_p99_us=
 *           ok_max_us= all_p50_us= all_p90_us= all_p99_us= all_max_us=
 *   hist label=L <1ms= <10ms= <100ms= <1s= <2s= <3s= >=3s=
 *   dist label=L NAME=COUNT ...        (servers in the order first seen)
 * lat_us is the connect (TCP) or round-trip (UDP) time, -1 for a timeout.
 * The ok_* figures are over successful attempts; the all_* figures and the
 * histogram over every attempt, a timeout counting as the time waited.
 * A percentile is the element at round(p * (n - 1)) of the sorted values,
 * -1 when there are none.
 *
 * Build: gcc -static -O2 -Wall -o tcpclient tcpclient.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum outcome { RES_OK, RES_REFUSED, RES_TIMEOUT, RES_UNREACH, RES_RESET, RES_OTHER, RES_COUNT };
static const char *const outcome_name[RES_COUNT] = {
	"ok", "refused", "timeout", "unreach", "reset", "other",
};

struct opts {
	struct sockaddr_in dst;
	const char *src;   /* -s: source address to bind, or NULL */
	const char *label;
	long count, timeout_ms, interval_ms, hold_ms, duration_ms;
	int quiet, udp;
};

/* A growable array of microsecond values. */
struct series {
	long long *v;
	size_t n, cap;
};

static void series_add(struct series *s, long long x)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		long long *v = realloc(s->v, cap * sizeof *v);
		if (!v) {
			perror("realloc");
			exit(1);
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = x;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

static long long series_pct(const struct series *s, double p)
{
	if (s->n == 0)
		return -1;
	return s->v[(size_t)(p * (double)(s->n - 1) + 0.5)];
}

/* Which server answered how often, in the order first seen. */
#define MAX_SERVERS 64
static struct {
	char name[32];
	long n;
} servers[MAX_SERVERS];
static int n_servers;

static void count_server(const char *name)
{
	for (int i = 0; i < n_servers; i++) {
		if (strcmp(servers[i].name, name) == 0) {
			servers[i].n++;
			return;
		}
	}
	if (n_servers < MAX_SERVERS) {
		snprintf(servers[n_servers].name, sizeof servers[n_servers].name, "%s", name);
		servers[n_servers++].n = 1;
	}
}

static long long mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void pause_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Waits up to ms for events on fd: >0 ready, 0 timed out, <0 error. */
static int wait_fd(int fd, short events, long long ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	if (ms < 0)
		ms = 0;
	for (;;) {
		int r = poll(&p, 1, (int)ms);
		if (r >= 0 || errno != EINTR)
			return r;
	}
}

/* Keeps the first line of buf (up to len bytes) as the server's name. */
static void take_name(char *out, size_t outlen, char *buf, size_t len)
{
	buf[len] = '\0';
	char *nl = strchr(buf, '\n');
	if (nl)
		*nl = '\0';
	snprintf(out, outlen, "%s", buf);
}

/* The result of one attempt. */
struct attempt {
	enum outcome res;
	long long lat_us; /* -1 when not measured */
	int err;
	char name[64];
};

static enum outcome from_errno(int err)
{
	switch (err) {
	case ECONNREFUSED: return RES_REFUSED;
	case EHOSTUNREACH:
	case ENETUNREACH: return RES_UNREACH;
	case ETIMEDOUT: return RES_TIMEOUT;
	default: return RES_OTHER;
	}
}

/* fd is connected (UDP) or connecting (TCP, connect() said rc/err). */
static void run_udp(const struct opts *o, int fd, long long t_start, struct attempt *a)
{
	if (send(fd, "ping\n", 5, 0) < 0) {
		a->err = errno;
		a->res = from_errno(a->err);
		return;
	}
	int r = wait_fd(fd, POLLIN, o->timeout_ms);
	if (r == 0) {
		a->res = RES_TIMEOUT;
		a->err = ETIMEDOUT;
		return;
	}
	char buf[64];
	ssize_t got = recv(fd, buf, sizeof buf - 1, 0);
	if (got < 0) {
		a->err = errno;
		a->res = from_errno(a->err);
		if (a->res != RES_TIMEOUT && a->res != RES_OTHER)
			a->lat_us = mono_us() - t_start;
		return;
	}
	take_name(a->name, sizeof a->name, buf, (size_t)got);
	a->res = RES_OK;
	a->err = 0;
	a->lat_us = mono_us() - t_start;
}

static void run_tcp(const struct opts *o, int fd, int rc, int err, long long t_start,
		    struct attempt *a)
{
	if (rc < 0 && err == EINPROGRESS) {
		if (wait_fd(fd, POLLOUT, o->timeout_ms) == 0) {
			a->res = RES_TIMEOUT;
			a->err = ETIMEDOUT;
			return;
		}
		socklen_t len = sizeof err;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		rc = err ? -1 : 0;
	}
	if (rc < 0) {
		a->err = err;
		a->res = from_errno(err);
		if (a->res != RES_TIMEOUT && a->res != RES_OTHER)
			a->lat_us = mono_us() - t_start;
		return;
	}
	/* Connected: read the name line, within the same timeout. */
	a->lat_us = mono_us() - t_start;
	a->err = 0;
	char buf[64];
	size_t got = 0;
	long long deadline = mono_us() + o->timeout_ms * 1000LL;
	while (got < sizeof buf - 1) {
		long long left_ms = (deadline - mono_us()) / 1000;
		if (left_ms <= 0 || wait_fd(fd, POLLIN, left_ms) <= 0)
			break;
		ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
		if (r <= 0) {
			if (r < 0)
				a->err = errno;
			break;
		}
		got += (size_t)r;
		if (memchr(buf, '\n', got))
			break;
	}
	if (got > 0) {
		take_name(a->name, sizeof a->name, buf, got);
		a->res = RES_OK;
		a->err = 0;
	} else {
		a->res = RES_RESET;
	}
	if (o->hold_ms > 0)
		pause_ms(o->hold_ms);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: tcpclient -d IP [-p PORT] [-n COUNT] [-t TIMEOUT_MS] [-i INTERVAL_MS]\n"
		"                 [-D DURATION_MS] [-H HOLD_MS] [-l LABEL] [-q] [-u] [-s SRC_IP]\n"
		"  -n attempts (100)     -t connect/answer timeout in ms (2000)\n"
		"  -i pause between attempts in ms (0)    -D stop after DURATION_MS\n"
		"  -H keep each TCP connection HOLD_MS after the answer   -q no conn lines\n"
		"  -u UDP instead of TCP   -s bind this source address (kernel picks the port)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct opts o = {
		.dst = { .sin_family = AF_INET, .sin_port = htons(80) },
		.label = "run",
		.count = 100,
		.timeout_ms = 2000,
	};
	const char *dst = NULL;
	int c;
	while ((c = getopt(argc, argv, "d:p:n:t:i:D:H:l:qus:")) != -1) {
		switch (c) {
		case 'd': dst = optarg; break;
		case 'p': o.dst.sin_port = htons((unsigned short)atoi(optarg)); break;
		case 'n': o.count = atol(optarg); break;
		case 't': o.timeout_ms = atol(optarg); break;
		case 'i': o.interval_ms = atol(optarg); break;
		case 'D': o.duration_ms = atol(optarg); break;
		case 'H': o.hold_ms = atol(optarg); break;
		case 'l': o.label = optarg; break;
		case 'q': o.quiet = 1; break;
		case 'u': o.udp = 1; break;
		case 's': o.src = optarg; break;
		default: usage();
		}
	}
	if (!dst || o.count <= 0)
		usage();
	if (inet_pton(AF_INET, dst, &o.dst.sin_addr) != 1) {
		fprintf(stderr, "tcpclient: bad address %s\n", dst);
		return 2;
	}
	struct sockaddr_in src_addr = { .sin_family = AF_INET };
	if (o.src && inet_pton(AF_INET, o.src, &src_addr.sin_addr) != 1) {
		fprintf(stderr, "tcpclient: bad source address %s\n", o.src);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	struct series ok_lat = { 0 }, all_lat = { 0 };
	long n_res[RES_COUNT] = { 0 }, eaddrnotavail = 0;
	static const long long hist_edge_us[] = { 1000, 10000, 100000, 1000000, 2000000, 3000000 };
	static const char *const hist_name[] = { "<1ms", "<10ms", "<100ms", "<1s", "<2s", "<3s", ">=3s" };
	long hist[7] = { 0 };
	const long long t0 = mono_us();
	const int type = (o.udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
#define OUT_OF_TIME() (o.duration_ms > 0 && (mono_us() - t0) / 1000 >= o.duration_ms)

	for (long i = 0; i < o.count && !OUT_OF_TIME(); i++) {
		if (i > 0 && o.interval_ms > 0)
			pause_ms(o.interval_ms);
		int fd, rc, err;
		long long t_start;
		for (;;) {
			fd = socket(AF_INET, type, 0);
			if (fd < 0) {
				perror("socket");
				return 1;
			}
			if (o.src) {
				int one = 1;
				/* the port is still chosen by connect(), as without -s */
				setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
				if (bind(fd, (struct sockaddr *)&src_addr, sizeof src_addr) < 0) {
					perror("bind");
					return 1;
				}
			}
			t_start = mono_us();
			rc = connect(fd, (struct sockaddr *)&o.dst, sizeof o.dst);
			err = rc < 0 ? errno : 0;
			if (!(rc < 0 && err == EADDRNOTAVAIL))
				break;
			/* no free local port: not an attempt; wait and try again */
			close(fd);
			eaddrnotavail++;
			if (OUT_OF_TIME())
				goto done;
			pause_ms(20);
		}
		struct sockaddr_in local;
		socklen_t llen = sizeof local;
		unsigned lport = 0;
		if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
			lport = ntohs(local.sin_port);

		struct attempt a = { .res = RES_OTHER, .lat_us = -1, .err = err, .name = "-" };
		if (o.udp && rc == 0)
			run_udp(&o, fd, t_start, &a);
		else if (o.udp) {
			a.res = from_errno(err);
			if (a.res != RES_TIMEOUT && a.res != RES_OTHER)
				a.lat_us = mono_us() - t_start;
		} else
			run_tcp(&o, fd, rc, err, t_start, &a);
		close(fd);

		n_res[a.res]++;
		/* histogram and all_*: the measured time, else the time spent */
		long long spent = (a.res == RES_TIMEOUT || a.res == RES_OTHER || a.lat_us < 0)
			? mono_us() - t_start : a.lat_us;
		series_add(&all_lat, spent);
		if (a.res == RES_OK) {
			series_add(&ok_lat, a.lat_us);
			count_server(a.name);
		}
		int b = 0;
		while (b < 6 && spent >= hist_edge_us[b])
			b++;
		hist[b]++;
		if (!o.quiet)
			printf("conn i=%ld t_ms=%lld lport=%u result=%s lat_us=%lld rs=%s errno=%d\n", i,
			       (t_start - t0) / 1000, lport, outcome_name[a.res], a.lat_us, a.name, a.err);
	}
done:;
	long long elapsed_ms = (mono_us() - t0) / 1000;
	qsort(ok_lat.v, ok_lat.n, sizeof *ok_lat.v, cmp_ll);
	qsort(all_lat.v, all_lat.n, sizeof *all_lat.v, cmp_ll);
	printf("summary label=%s attempted=%zu ok=%ld refused=%ld timeout=%ld unreach=%ld reset=%ld "
	       "other=%ld eaddrnotavail=%ld elapsed_ms=%lld",
	       o.label, all_lat.n, n_res[RES_OK], n_res[RES_REFUSED], n_res[RES_TIMEOUT], n_res[RES_UNREACH],
	       n_res[RES_RESET], n_res[RES_OTHER], eaddrnotavail, elapsed_ms);
	printf(" ok_p50_us=%lld ok_p90_us=%lld ok_p99_us=%lld ok_max_us=%lld", series_pct(&ok_lat, 0.5),
	       series_pct(&ok_lat, 0.9), series_pct(&ok_lat, 0.99), series_pct(&ok_lat, 1.0));
	printf(" all_p50_us=%lld all_p90_us=%lld all_p99_us=%lld all_max_us=%lld\n",
	       series_pct(&all_lat, 0.5), series_pct(&all_lat, 0.9), series_pct(&all_lat, 0.99),
	       series_pct(&all_lat, 1.0));
	printf("hist label=%s", o.label);
	for (int b = 0; b < 7; b++)
		printf(" %s=%ld", hist_name[b], hist[b]);
	printf("\ndist label=%s", o.label);
	for (int s = 0; s < n_servers; s++)
		printf(" %s=%ld", servers[s].name, servers[s].n);
	printf("\n");
	free(ok_lat.v);
	free(all_lat.v);
	return 0;
}
