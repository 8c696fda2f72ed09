/*
 * memory-allocator-measure: runs one command and reports what `bench -- COMMAND` needs of it and
 * Node cannot get from spawn: the child's own rusage (user and system CPU, peak resident set)
 * from wait4, and the wall time from fork to the child's end.
 *
 *   memory-allocator-measure (--output FILE | --fd N) [--env NAME=VALUE]... -- COMMAND [ARGS...]
 *
 * --env sets a variable in the child only (after fork), so that a preloaded malloc library is
 * loaded by COMMAND and never by this program, whose own start-up stays out of the figures.
 * The report is one JSON line:
 *   {"wallNs":N,"userUs":N,"sysUs":N,"maxRssKiB":N,"exitStatus":N|null,"signal":N|null,"error":null|"..."}
 * and this program exits with COMMAND's status (128+N after signal N; 127 not found, 126 not
 * executable, as a shell says), or 125 for its own usage errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define USAGE_STATUS 125

static void usage(const char *message) {
  fprintf(stderr,
          "memory-allocator-measure: %s\n"
          "usage: memory-allocator-measure (--output FILE | --fd N) [--env NAME=VALUE]... -- COMMAND [ARGS...]\n",
          message);
  exit(USAGE_STATUS);
}

static long long nanoseconds(const struct timespec *t) { return (long long)t->tv_sec * 1000000000LL + t->tv_nsec; }
static long long microseconds(const struct timeval *t) { return (long long)t->tv_sec * 1000000LL + t->tv_usec; }

/* Writes all of `text`, retrying short writes; the report is small, so one pass nearly always. */
static int write_all(int fd, const char *text, size_t length) {
  while (length > 0) {
    ssize_t written = write(fd, text, length);
    if (written < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    text += written;
    length -= (size_t)written;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *output = NULL;
  int report_fd = -1;
  char **env = calloc((size_t)argc, sizeof(char *));
  int env_count = 0;
  int first = -1;
  if (env == NULL) usage("out of memory");
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      first = i + 1;
      break;
    } else if (strcmp(argv[i], "--output") == 0 && i + 1 < argc) {
      output = argv[++i];
    } else if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc) {
      char *end = NULL;
      long fd = strtol(argv[++i], &end, 10);
      if (*argv[i] == '\0' || *end != '\0' || fd < 0 || fd > 1 << 20) usage("--fd takes a file descriptor number");
      report_fd = (int)fd;
    } else if (strcmp(argv[i], "--env") == 0 && i + 1 < argc) {
      if (strchr(argv[i + 1], '=') == NULL || argv[i + 1][0] == '=') usage("--env takes NAME=VALUE");
      env[env_count++] = argv[++i];
    } else {
      usage("unknown option or missing value");
    }
  }
  if (first < 0 || first >= argc) usage("no COMMAND after --");
  if ((output == NULL) == (report_fd < 0)) usage("give one of --output FILE and --fd N");
  if (output != NULL) {
    report_fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (report_fd < 0) {
      fprintf(stderr, "memory-allocator-measure: cannot open %s: %s\n", output, strerror(errno));
      return USAGE_STATUS;
    }
  } else if (fcntl(report_fd, F_GETFD) < 0) {
    usage("--fd is not an open file descriptor");
  } else {
    /* The report descriptor is ours, never the command's: a copy closed on exec, the original
     * closed here unless it is one of the standard three, which the command shares. */
    int own = fcntl(report_fd, F_DUPFD_CLOEXEC, 10);
    if (own < 0) usage("cannot duplicate --fd");
    if (report_fd > 2) close(report_fd);
    report_fd = own;
  }

  /* exec failures come back through a close-on-exec pipe: nothing read means exec succeeded. */
  int exec_pipe[2];
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) usage("pipe2 failed");
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  pid_t child = fork();
  if (child < 0) usage("fork failed");
  if (child == 0) {
    for (int i = 0; i < env_count; i++) putenv(env[i]);
    execvp(argv[first], &argv[first]);
    int error = errno;
    (void)!write(exec_pipe[1], &error, sizeof error);
    _exit(error == ENOENT ? 127 : 126);
  }
  close(exec_pipe[1]);
  int exec_error = 0;
  ssize_t got;
  do {
    got = read(exec_pipe[0], &exec_error, sizeof exec_error);
  } while (got < 0 && errno == EINTR);
  if (got != (ssize_t)sizeof exec_error) exec_error = 0;
  close(exec_pipe[0]);

  /* A terminal's Ctrl-C reaches the command too; this program waits for it to end either way. */
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  int status = 0;
  struct rusage usage_of_child;
  pid_t waited;
  do {
    waited = wait4(child, &status, 0, &usage_of_child);
  } while (waited < 0 && errno == EINTR);
  clock_gettime(CLOCK_MONOTONIC, &end);
  if (waited < 0) usage("wait4 failed");

  int exit_code;
  char exit_text[16] = "null", signal_text[16] = "null", error_text[160] = "null";
  if (WIFSIGNALED(status)) {
    snprintf(signal_text, sizeof signal_text, "%d", WTERMSIG(status));
    exit_code = 128 + WTERMSIG(status);
  } else {
    exit_code = WEXITSTATUS(status);
    snprintf(exit_text, sizeof exit_text, "%d", exit_code);
  }
  if (exec_error != 0) {
    /* strerror's text has no quote or backslash, so it is a JSON string as it is. */
    snprintf(error_text, sizeof error_text, "\"%s: %s\"", exec_error == ENOENT ? "command not found" : "cannot execute", strerror(exec_error));
  }
  char line[512];
  int length = snprintf(line, sizeof line,
                        "{\"wallNs\":%lld,\"userUs\":%lld,\"sysUs\":%lld,\"maxRssKiB\":%ld,\"exitStatus\":%s,\"signal\":%s,\"error\":%s}\n",
                        nanoseconds(&end) - nanoseconds(&start), microseconds(&usage_of_child.ru_utime),
                        microseconds(&usage_of_child.ru_stime), usage_of_child.ru_maxrss, exit_text, signal_text, error_text);
  if (length < 0 || (size_t)length >= sizeof line || write_all(report_fd, line, (size_t)length) != 0) {
    fprintf(stderr, "memory-allocator-measure: cannot write the report: %s\n", strerror(errno));
    return USAGE_STATUS;
  }
  close(report_fd);
  return exit_code;
}
