/* The `platen` backend as cupsd starts it, compiled: what shim.py does, without a Python
 * start (about 11 ms of every job's wait on the project's machine, bench/README.md).
 *
 * cupsd starts a backend per job. This program connects to the print server's agent,
 * checks who listens there (SO_PEERCRED: root or this user; anyone else's "released" would
 * print jobs free), asks for a backend started ahead of the job (`warm.py`), and gives it
 * the job: the arguments, the environment cupsd set, and standard input, output and error
 * (SCM_RIGHTS), so the warm backend reads the document and writes cupsd's status lines
 * itself. Then it waits for the job's exit status and exits with it. cupsd's SIGTERM
 * (`cancel`) is passed on as one byte; the warm backend takes this program's end (cupsd's
 * SIGKILL) the same way.
 *
 * When there is no agent, when what listens is not trusted, when the agent refuses or has
 * no warm backend, the full Python backend runs in this process's place (exec), with
 * everything as cupsd gave it: nothing was read. When the warm backend ends without an exit
 * status, the full backend runs too, and resumes the same Platen job (`job_ids.py`).
 *
 * shim.py is the same program in Python, for a print server without a C compiler; the two
 * speak the same protocol and read the configuration the same way, and the tests run both
 * (apps/cups-backend/tests/test_shim.py, tests/cups/test_print_agent.py).
 *
 * Built by `python -m platen.cups_backend.build_shim OUTPUT` (docs/cups.md), which names
 * the Python and the folder of the full backend: PLATEN_PYTHON and PLATEN_PYTHONPATH.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef PLATEN_PYTHON
#error "PLATEN_PYTHON (the Python that runs the full backend) is set by build_shim.py"
#endif
#ifndef PLATEN_PYTHONPATH
#error "PLATEN_PYTHONPATH (the folder that holds platen/cups_backend) is set by build_shim.py"
#endif

/* The same values as shim.py's (a test keeps them equal). */
#define PROTOCOL 1
#define DEFAULT_CONFIG "/etc/platen/cups-backend.conf"
#define DEFAULT_AGENT_SOCKET "/run/platen/print-agent/agent.sock"
#define CANCEL 5
#define MAX_LINE 4096
#define MAX_CONFIG (64 * 1024)
#define MAX_JOB (1 << 20) /* warm.MAX_JOB: what the warm backend reads at most */

extern char **environ;

static int sock = -1;
static volatile sig_atomic_t handed = 0;
static volatile sig_atomic_t terminated = 0;
static char buffer[MAX_LINE + 1];
static size_t buffered = 0;

static void say(const char *line)
{
    /* cupsd reads the backend's standard error: one status line. */
    ssize_t ignored = write(2, line, strlen(line));
    (void)ignored;
}

/* This process becomes the full backend, which does the job without a warm one. */
static void full_backend(int argc, char **argv)
{
    char **args = calloc((size_t)argc + 4, sizeof(char *));
    if (args == NULL) {
        say("ERROR: Platen: out of memory\n");
        _exit(1);
    }
    args[0] = PLATEN_PYTHON;
    args[1] = "-S";
    args[2] = "-m";
    args[3] = "platen.cups_backend.backend";
    for (int i = 1; i < argc; i++)
        args[i + 3] = argv[i];
    if (getenv("PYTHONPATH") == NULL)
        setenv("PYTHONPATH", PLATEN_PYTHONPATH, 1);
    signal(SIGTERM, SIG_DFL);
    execv(PLATEN_PYTHON, args);
    say("ERROR: Platen: cannot start the backend's Python (" PLATEN_PYTHON ")\n");
    _exit(1);
}

static char *strip(char *start, char *end)
{
    /* Whitespace off both ends of [start, end), in place; the result ends with a NUL. */
    while (start < end && isspace((unsigned char)*start))
        start++;
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    *end = '\0';
    return start;
}

/* `key` of `[section]` in an INI text, as the backend's configparser reads it (`=` or `:`,
 * comments whole-line or after whitespace), copied into `out`; 0 when absent. The text is
 * cut up in place. shim.py's `setting`, line for line. */
static int setting(char *text, const char *section, const char *key, char *out, size_t size)
{
    int in_section = 0;
    char *next = text;
    while (next != NULL && *next != '\0') {
        char *raw = next;
        char *newline = strpbrk(raw, "\r\n");
        char *end = newline != NULL ? newline : raw + strlen(raw);
        next = newline != NULL ? newline + 1 : NULL;
        char *line = strip(raw, end);
        size_t length = strlen(line);
        if (length == 0 || line[0] == '#' || line[0] == ';')
            continue;
        if (line[0] == '[' && line[length - 1] == ']') {
            /* As configparser: `[ platen ]` is another section. */
            line[length - 1] = '\0';
            in_section = strcmp(line + 1, section) == 0;
            continue;
        }
        if (!in_section)
            continue;
        size_t cut = strcspn(line, "=:");
        if (cut == length)
            continue;
        char *value = line + cut + 1;
        char *name = strip(line, line + cut);
        for (char *c = name; *c != '\0'; c++)
            *c = (char)tolower((unsigned char)*c);
        if (strcmp(name, key) != 0)
            continue;
        for (size_t i = 1; value[i - 1] != '\0' && value[i] != '\0'; i++) {
            if ((value[i] == ';' || value[i] == '#') && isspace((unsigned char)value[i - 1])) {
                value[i] = '\0';
                break;
            }
        }
        value = strip(value, value + strlen(value));
        /* A path longer than a socket's cannot be connected to: no agent, as shim.py's
         * connect fails then. */
        snprintf(out, size, "%s", strlen(value) < size ? value : "");
        return 1;
    }
    return 0;
}

/* Where the agent listens: PLATEN_AGENT_SOCKET, else the configuration's `agent_socket`
 * (config.load's rule); empty for no agent. */
static void agent_socket(char *out, size_t size)
{
    const char *named = getenv("PLATEN_AGENT_SOCKET");
    if (named != NULL) {
        snprintf(out, size, "%s", strlen(named) < size ? named : "");
        return;
    }
    snprintf(out, size, "%s", DEFAULT_AGENT_SOCKET);
    const char *path = getenv("PLATEN_BACKEND_CONFIG");
    FILE *file = fopen(path != NULL ? path : DEFAULT_CONFIG, "r");
    if (file == NULL)
        return;
    static char text[MAX_CONFIG + 1];
    size_t read = fread(text, 1, MAX_CONFIG, file);
    fclose(file);
    text[read] = '\0';
    setting(text, "platen", "agent_socket", out, size);
}

/* Root or this user listens (the kernel's word). */
static int trusted(void)
{
    struct ucred peer;
    socklen_t length = sizeof(peer);
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0)
        return 0;
    return peer.uid == 0 || peer.uid == getuid();
}

static void on_sigterm(int signum)
{
    (void)signum;
    if (!handed)
        _exit(CANCEL); /* nobody has the job yet: Platen never saw it */
    terminated = 1;
    /* Gone already? It takes the end of the connection as the same. */
    ssize_t ignored = send(sock, "T", 1, MSG_NOSIGNAL);
    (void)ignored;
}

/* The next line from the other side, without its newline, in `buffer`; NULL at its end. */
static char *line(void)
{
    static size_t consumed = 0;
    if (consumed > 0) {
        memmove(buffer, buffer + consumed, buffered - consumed);
        buffered -= consumed;
        consumed = 0;
    }
    for (;;) {
        char *newline = memchr(buffer, '\n', buffered);
        if (newline != NULL) {
            *newline = '\0';
            consumed = (size_t)(newline - buffer) + 1;
            return buffer;
        }
        if (buffered >= MAX_LINE)
            return NULL;
        ssize_t got = recv(sock, buffer + buffered, MAX_LINE - buffered, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return NULL;
        buffered += (size_t)got;
    }
}

/* Whether the name of environment entry `entry` came before, in entries [0, index). */
static int seen_before(size_t index)
{
    const char *entry = environ[index];
    size_t name = (size_t)(strchr(entry, '=') - entry);
    for (size_t i = 0; i < index; i++) {
        if (strncmp(environ[i], entry, name + 1) == 0)
            return 1;
    }
    return 0;
}

/* The job for the warm backend: its length, a newline, then the argument count, the
 * arguments and the environment (`NAME=value`), NUL-separated (neither holds a NUL);
 * shim.py's `job_message`. NULL when it would be more than the warm backend reads. */
static char *job_message(int argc, char **argv, size_t *size)
{
    size_t body = 0;
    char count[16];
    int counted = snprintf(count, sizeof(count), "%d", argc - 1);
    body += (size_t)counted;
    for (int i = 1; i < argc; i++)
        body += 1 + strlen(argv[i]);
    for (size_t i = 0; environ[i] != NULL; i++) {
        const char *equals = strchr(environ[i], '=');
        if (equals != NULL && equals != environ[i] && !seen_before(i))
            body += 1 + strlen(environ[i]);
    }
    if (body > MAX_JOB)
        return NULL;
    char header[24];
    int headed = snprintf(header, sizeof(header), "%zu\n", body);
    char *message = malloc((size_t)headed + body);
    if (message == NULL)
        return NULL;
    char *at = message;
    memcpy(at, header, (size_t)headed);
    at += headed;
    memcpy(at, count, (size_t)counted);
    at += counted;
    for (int i = 1; i < argc; i++) {
        *at++ = '\0';
        size_t length = strlen(argv[i]);
        memcpy(at, argv[i], length);
        at += length;
    }
    for (size_t i = 0; environ[i] != NULL; i++) {
        const char *equals = strchr(environ[i], '=');
        if (equals == NULL || equals == environ[i] || seen_before(i))
            continue;
        *at++ = '\0';
        size_t length = strlen(environ[i]);
        memcpy(at, environ[i], length);
        at += length;
    }
    *size = (size_t)(at - message);
    return message;
}

static int send_all(const char *data, size_t size)
{
    while (size > 0) {
        ssize_t sent = send(sock, data, size, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return -1;
        data += sent;
        size -= (size_t)sent;
    }
    return 0;
}

/* The job and standard input, output and error, which travel with its first bytes. */
static int hand_over(int argc, char **argv)
{
    size_t size = 0;
    char *message = job_message(argc, argv, &size);
    if (message == NULL)
        return -1;
    int fds[3] = {0, 1, 2}; /* the document (or nothing), stdout, stderr */
    char control[CMSG_SPACE(sizeof(fds))];
    memset(control, 0, sizeof(control));
    struct iovec iov = {.iov_base = message, .iov_len = size};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control)};
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(fds));
    memcpy(CMSG_DATA(cmsg), fds, sizeof(fds));
    /* cupsd's SIGTERM waits until `handed` says whether the warm backend has the job: the
     * kernel may run the handler right after the send, before the line that says so. */
    sigset_t term, before;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &before);
    ssize_t sent;
    do
        sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    handed = sent >= 0;
    sigprocmask(SIG_SETMASK, &before, NULL);
    if (sent < 0) {
        free(message);
        return -1;
    }
    /* Handed: a failure from here on is the warm backend's end, found below. */
    send_all(message + sent, size - (size_t)sent);
    free(message);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7)
        full_backend(argc, argv); /* listing devices, or a usage error: the full backend's */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    agent_socket(path, sizeof(path));
    if (path[0] == '\0')
        full_backend(argc, argv);
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = on_sigterm;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    memcpy(address.sun_path, path, strlen(path) + 1);
    char hello[64];
    int said = snprintf(hello, sizeof(hello), "{\"op\": \"hand_over\", \"protocol\": %d}\n", PROTOCOL);
    const char *ready = NULL;
    if (sock < 0 || sigaction(SIGTERM, &action, NULL) != 0
        || connect(sock, (struct sockaddr *)&address, sizeof(address)) != 0
        || !trusted() /* the full backend says so in cupsd's log, and does the job */
        || send_all(hello, (size_t)said) != 0 || (ready = line()) == NULL
        || strcmp(ready, "ready") != 0 /* the agent refused, or had no warm backend */
        || hand_over(argc, argv) != 0) {
        if (sock >= 0)
            close(sock);
        full_backend(argc, argv);
    }
    const char *status = line();
    if (status != NULL && strncmp(status, "exit ", 5) == 0) {
        char *end;
        long code = strtol(status + 5, &end, 10);
        if (end == status + 5 || *end != '\0' || code < 0 || code > 255) {
            say("ERROR: Platen: the warm backend's exit status is not a number\n");
            _exit(1);
        }
        _exit((int)code);
    }
    if (terminated)
        _exit(CANCEL); /* cupsd cancelled it; the warm backend reported what it could */
    /* The warm backend ended without a status: the full backend finishes the job, resuming
     * the same Platen job (job_ids). Said in cupsd's log: it should not happen. */
    say("WARNING: Platen: the warm backend ended without a status; running the full backend\n");
    close(sock);
    full_backend(argc, argv);
    return 1;
}
