/* Many real servers in one cheap process, for bench/scale_health.py (compiled by it in the lab guest).
 *
 * usage: rsd_many ADDRESS BASE_PORT COUNT
 * Listens on ADDRESS:BASE_PORT .. BASE_PORT+COUNT-1; every connection gets, once its first bytes arrive, a
 * fixed HTTP/1.0 200 and is closed; a connection closed by the peer without a byte (a TCP connect check) is
 * just closed. Written in C so that the servers cost the shared guest CPU as little as possible: the bench
 * measures the checkers, not the servers. Prints "ready" once every port listens; exits on SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static const char RESPONSE[] = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
#define LISTENER (1ULL << 32)

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s ADDRESS BASE_PORT COUNT\n", argv[0]);
    return 2;
  }
  int base = atoi(argv[2]), count = atoi(argv[3]);
  struct rlimit rl = {count + 4096, count + 4096};
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) perror("setrlimit");
  int ep = epoll_create1(0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) return 2;
  for (int i = 0; i < count; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sa.sin_port = htons(base + i);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 1024)) {
      perror("listen");
      return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LISTENER | (uint32_t)fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  printf("ready\n");
  fflush(stdout);
  struct epoll_event events[512];
  char buf[4096];
  for (;;) {
    int n = epoll_wait(ep, events, 512, -1);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; i++) {
      int fd = (int)(events[i].data.u64 & 0xffffffffULL);
      if (events[i].data.u64 & LISTENER) {
        for (int k = 0; k < 64; k++) {
          int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK);
          if (c < 0) break;
          struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint32_t)c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
        }
        continue;
      }
      ssize_t got = read(fd, buf, sizeof buf);
      if (got < 0 && errno == EAGAIN) continue;
      if (got > 0 && write(fd, RESPONSE, sizeof RESPONSE - 1) < 0) { /* the peer is gone: close anyway */
      }
      close(fd);
    }
  }
}
