/*
 * The harness floor for bench/coldstart.py: a Lambda Runtime API client that does nothing but
 * fetch one invocation and answer it with `null`. Whatever time it takes through the harness
 * (process spawn, the Python Runtime API server, loopback HTTP) is included in every function's
 * cold start figure too.
 *
 * Reads AWS_LAMBDA_RUNTIME_API (host:port, IPv4 literal), one blocking socket, HTTP/1.1.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static char buf[1 << 16];

/* Reads one response (headers and a Content-Length body) into buf; returns the header length. */
static size_t read_response(int fd) {
  size_t len = 0;
  char *end = NULL;
  while (!end) {
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    if (n <= 0) exit(2);
    len += (size_t)n;
    buf[len] = '\0';
    end = strstr(buf, "\r\n\r\n");
  }
  size_t header_len = (size_t)(end - buf) + 4;
  size_t body_len = 0;
  for (char *line = buf; line < end; line = strstr(line, "\r\n") + 2) {
    if (strncasecmp(line, "content-length:", 15) == 0) body_len = strtoul(line + 15, NULL, 10);
  }
  while (len < header_len + body_len) {
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    if (n <= 0) exit(2);
    len += (size_t)n;
  }
  buf[len] = '\0';
  return header_len;
}

static void header_value(const char *name, char *out, size_t size) {
  size_t name_len = strlen(name);
  for (char *line = strstr(buf, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, name, name_len) == 0 && line[2 + name_len] == ':') {
      const char *v = line + 3 + name_len;
      while (*v == ' ') v++;
      size_t n = strcspn(v, "\r\n");
      if (n >= size) n = size - 1;
      memcpy(out, v, n);
      out[n] = '\0';
      return;
    }
  }
  exit(3);
}

static void send_all(int fd, const char *data, size_t len) {
  while (len) {
    ssize_t n = write(fd, data, len);
    if (n <= 0) exit(4);
    data += n;
    len -= (size_t)n;
  }
}

int main(void) {
  const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
  if (!api) return 1;
  char host[64];
  const char *colon = strchr(api, ':');
  if (!colon || (size_t)(colon - api) >= sizeof host) return 1;
  memcpy(host, api, (size_t)(colon - api));
  host[colon - api] = '\0';

  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) return 1;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) return 1;

  char request[512];
  int n = snprintf(request, sizeof request,
                   "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: %s\r\n\r\n", api);
  send_all(fd, request, (size_t)n);
  read_response(fd);
  char id[128];
  header_value("lambda-runtime-aws-request-id", id, sizeof id);

  n = snprintf(request, sizeof request,
               "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: %s\r\n"
               "Content-Type: application/json\r\nContent-Length: 4\r\n\r\nnull",
               id, api);
  send_all(fd, request, (size_t)n);
  read_response(fd);
  pause(); /* like a real runtime, wait for the next invocation; the harness kills us */
  return 0;
}
