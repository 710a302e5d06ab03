// One syscall pattern in a tight loop, timed with CLOCK_MONOTONIC. Waits for
// a line on stdin before it opens anything or starts the clock, so the driver
// can track it (and set its thread's span) first: descriptors are then opened
// under that span.
// usage: syscall_loop getppid|open|read|write|connect|jsonrpc|connect4|sendto4 ITERATIONS  ->  prints ns per op
//
// jsonrpc is a stdio MCP exchange (the pipe rung's path) played by one
// process: a JSON-RPC request written into a pipe, read back on stdin (fd 0,
// the pipe's read end), and an answer written on stdout (fd 1, /dev/null).
// connect4 is a TCP socket, connect(2) to a closed loopback port
// (ECONNREFUSED: the cgroup connect hooks run, nothing listens) and close.
// sendto4 is one byte over an unconnected UDP socket to a closed loopback
// port (the cgroup sendmsg hooks run; the datagram is dropped).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

/* With AGENTRACE_BENCH_FRAME="CPED,UNDEFINED,TABLE,FIXED_ARRAY_DATA,TYPED_ARRAY_DATA"
 * (a node's V8 layout, v8-layout.ts) and AGENTRACE_BENCH_SPAN (32 + 16 hex
 * digits), the loop plays a Node 24 thread whose tool call the kernel reads
 * from its async context (the frame rung, frame.bpf.h): a thread-local
 * isolate pointer, an isolate whose continuation data is a JSMap frame of
 * two stores (another library's first, then the SDK's, as in an agent), and
 * the SDK's store a typed array over the call's record. It registers its
 * slot from inside that frame, as the SDK does, then runs its loop in it. */
__thread unsigned long ar_bench_isolate; /* plays v8::internal::g_current_isolate_ */

#define AR_FRAME_KEY_TAG 826561089UL /* agentrace.h */
static unsigned long heap[1024] __attribute__((aligned(16)));
static unsigned char frame_slot[32] __attribute__((aligned(16)));
static unsigned char frame_record[40] __attribute__((aligned(16)));

static unsigned long tagged(void *p)
{
	return (unsigned long)p + 1;
}

static int hex_bytes(const char *hex, unsigned char *out, int n)
{
	for (int i = 0; i < n; i++) {
		unsigned int b;
		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return -1;
		out[i] = b;
	}
	return 0;
}

/* Returns 0 with no frame asked for, 1 with it set up and registered, -1 on a bad spec. */
static int frame_setup(void)
{
	const char *spec = getenv("AGENTRACE_BENCH_FRAME");
	const char *span = getenv("AGENTRACE_BENCH_SPAN");
	if (!spec)
		return 0;
	unsigned long cped, undef, table_off, fa, ta;
	if (!span || strlen(span) != 48 || sscanf(spec, "%lu,%lu,%lu,%lu,%lu", &cped, &undef, &table_off, &fa, &ta) != 5 ||
	    cped + 8 > 4096 || undef + 8 > 4096 || table_off + 8 > 64 || fa > 64 || ta + 8 > 128)
		return -1;
	unsigned long *isolate = heap;          /* 4096 bytes */
	unsigned long *undefined = heap + 512;  /* 8 words each from here */
	unsigned long *frame = heap + 520;
	unsigned long *table = heap + 536;      /* 64 words */
	unsigned long *other_key = heap + 600;
	unsigned long *our_key = heap + 616;
	unsigned long *other_value = heap + 632;
	unsigned long *value = heap + 648;
	isolate[undef / 8] = tagged(undefined);
	isolate[cped / 8] = tagged(frame);
	frame[table_off / 8] = tagged(table);
	unsigned long *data = table + fa / 8;
	data[0] = 2UL << 32;  /* elements (Smi) */
	data[1] = 0;          /* deleted */
	data[2] = 2UL << 32;  /* buckets */
	unsigned long *entries = data + 3 + 2;
	entries[0] = tagged(other_key);
	entries[1] = tagged(other_value);
	entries[3] = tagged(our_key);
	entries[4] = tagged(value);
	our_key[5] = AR_FRAME_KEY_TAG << 32;
	ar_bench_isolate = (unsigned long)isolate;
	/* registration: the SDK's store is the slot itself */
	value[ta / 8] = (unsigned long)frame_slot;
	memcpy(frame_slot, "agentrace:slot:1", 16);
	int devnull = open("/dev/null", O_WRONLY);
	if (devnull < 0 || write(devnull, frame_slot, 32) != 32)
		return -1;
	close(devnull);
	/* then the call's record: trace id, span id, valid, flags, tool; the tag */
	if (hex_bytes(span, frame_record, 24))
		return -1;
	frame_record[24] = 1;
	memcpy(frame_record + 32, "arcall:1", 8);
	value[ta / 8] = (unsigned long)frame_record;
	return 1;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s getppid|open|read|write|connect|jsonrpc|connect4|sendto4 ITERATIONS\n", argv[0]);
		return 2;
	}
	const char *op = argv[1];
	long n = atol(argv[2]);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	strcpy(sun.sun_path, "/nonexistent/agentrace-bench.sock");
	char byte = 'x';

	char line[16];
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	if (frame_setup() < 0) {
		fprintf(stderr, "syscall_loop: bad AGENTRACE_BENCH_FRAME or AGENTRACE_BENCH_SPAN\n");
		return 2;
	}

	int fd = -1;
	int request_fd = -1;
	FILE *out = stdout;
	static const char request[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\"}\n";
	static const char answer[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n";
	char got[sizeof(request)];
	if (!strcmp(op, "jsonrpc")) {
		int p[2];
		int devnull = open("/dev/null", O_WRONLY);
		/* the result goes to the real stdout, kept on another descriptor */
		out = fdopen(dup(1), "w");
		if (pipe(p) || devnull < 0 || !out || dup2(p[0], 0) < 0 || dup2(devnull, 1) < 0)
			return 1;
		close(p[0]);
		close(devnull);
		request_fd = p[1];
	} else if (!strcmp(op, "read"))
		fd = open("/dev/zero", O_RDONLY);
	else if (!strcmp(op, "write"))
		fd = open("/dev/null", O_WRONLY);
	else if (!strcmp(op, "connect"))
		fd = socket(AF_UNIX, SOCK_STREAM, 0);

	double t0 = now_ns();
	if (!strcmp(op, "getppid")) {
		for (long i = 0; i < n; i++)
			getppid();
	} else if (!strcmp(op, "open")) {
		for (long i = 0; i < n; i++)
			close(open("/dev/null", O_RDONLY));
	} else if (!strcmp(op, "read")) {
		for (long i = 0; i < n; i++)
			if (read(fd, &byte, 1) != 1)
				return 1;
	} else if (!strcmp(op, "write")) {
		for (long i = 0; i < n; i++)
			if (write(fd, &byte, 1) != 1)
				return 1;
	} else if (!strcmp(op, "connect")) {
		for (long i = 0; i < n; i++)
			connect(fd, (struct sockaddr *)&sun, sizeof(sun)); /* ENOENT, fast */
	} else if (!strcmp(op, "connect4")) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(1), .sin_addr = { htonl(INADDR_LOOPBACK) } };
		for (long i = 0; i < n; i++) {
			int s = socket(AF_INET, SOCK_STREAM, 0);
			connect(s, (struct sockaddr *)&sin, sizeof(sin)); /* ECONNREFUSED */
			close(s);
		}
	} else if (!strcmp(op, "sendto4")) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9), .sin_addr = { htonl(INADDR_LOOPBACK) } };
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		for (long i = 0; i < n; i++)
			sendto(s, &byte, 1, 0, (struct sockaddr *)&sin, sizeof(sin));
		close(s);
	} else if (!strcmp(op, "jsonrpc")) {
		for (long i = 0; i < n; i++) {
			if (write(request_fd, request, sizeof(request) - 1) != sizeof(request) - 1 ||
			    read(0, got, sizeof(got)) != sizeof(request) - 1 ||
			    write(1, answer, sizeof(answer) - 1) != sizeof(answer) - 1)
				return 1;
		}
	} else {
		fprintf(stderr, "unknown op %s\n", op);
		return 2;
	}
	double t1 = now_ns();
	if (fd >= 0)
		close(fd);
	fprintf(out, "%.1f\n", (t1 - t0) / n);
	return 0;
}
