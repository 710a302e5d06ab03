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
