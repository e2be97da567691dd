/*
 * Cross-check of cmn/wechatpay.h against code nobody here wrote: tests/peers/wechatpay-server.js,
 * a stand-in for WeChat Pay's vehicle parking API whose every cryptographic step is done by the
 * npm package wechatpay-axios-plugin.  Our Authorization headers must pass its verification, its
 * signed answers and notifications must pass cmn_wxpay_verify, and its AEAD_AES_256_GCM
 * resources must open with cmn_wxpay_decrypt.
 *
 * Test code: blocking sockets and waits are fine here, and every wait is bounded.  Node and the
 * npm package are required (CI installs both with the repository's package-lock.json); when
 * either is missing the group setup fails with a message saying so, it does not skip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmn/buf.h"
#include "cmn/err.h"
#include "cmn/mem.h"
#include "cmn/wechatpay.h"

#define MCHID "1900000109"
#define MERCHANT_SERIAL "3775B6A45ACD588826D15E583A95F5DD0E1E7B33"
#define PLATFORM_SERIAL "7132D72A03E93CDDF8C03BBD1F37EEDF0D2FBD3C"
#define START_WAIT_MS 15000
#define NOTIFY_WAIT_MS 10000
#define IO_TIMEOUT_S 10

struct peer {
    pid_t pid;
    int out_fd; /* the server's stdout, kept open so that it never writes into a closed pipe */
    int port;
    char dir[256];
    EVP_PKEY *merchant;     /* ours: signs requests */
    EVP_PKEY *platform;     /* WeChat's: the server signs with it */
    EVP_PKEY *platform_pub; /* loaded back from the certificate file, as a service would */
    unsigned char apiv3[33];
};

static struct peer P;

/* ---- processes and files ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len, char *path,
                      size_t pathsz)
{
    FILE *f;
    int ok;

    snprintf(path, pathsz, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int write_pem(const char *dir, const char *name, EVP_PKEY *key, int kind, char *path,
                     size_t pathsz)
{
    BIO *b = BIO_new(BIO_s_mem());
    X509 *x = NULL;
    char *data = NULL;
    long n;
    int ok = 0, rc;

    if (b == NULL)
        return -1;
    if (kind == 0) {
        ok = PEM_write_bio_PUBKEY(b, key);
    } else if (kind == 1) {
        ok = PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    } else {
        /* A self-signed stand-in for the platform certificate file. */
        X509_NAME *nm;
        x = X509_new();
        ok = x != NULL && X509_set_version(x, 2) && ASN1_INTEGER_set(X509_get_serialNumber(x), 7) &&
             X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 3600) && X509_set_pubkey(x, key);
        nm = ok ? X509_get_subject_name(x) : NULL;
        ok = ok &&
             X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"Tenpay.com",
                                        -1, -1, 0) &&
             X509_set_issuer_name(x, nm) && X509_sign(x, key, EVP_sha256()) > 0 &&
             PEM_write_bio_X509(b, x);
    }
    n = BIO_get_mem_data(b, &data);
    rc = ok ? write_file(dir, name, data, (size_t)n, path, pathsz) : -1;
    X509_free(x);
    BIO_free(b);
    return rc;
}

/* Runs argv to completion with its output discarded; returns its exit status or -1. */
static int run_quietly(char *const argv[])
{
    int status = 0;
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static const char *node_binary(void)
{
    const char *n = getenv("PARK_NODE");
    return n != NULL && n[0] != '\0' ? n : "node";
}

static int start_server(const char *src)
{
    char script[512], mpub[300], pkey[300], apiv3[300];
    char *argv[20];
    int pipefd[2], n = 0;
    char line[128];
    size_t have = 0;
    int64_t deadline;

    snprintf(script, sizeof script, "%s/tests/peers/wechatpay-server.js", src);
    snprintf(mpub, sizeof mpub, "%s/merchant_pub.pem", P.dir);
    snprintf(pkey, sizeof pkey, "%s/platform_key.pem", P.dir);
    snprintf(apiv3, sizeof apiv3, "%s/apiv3.key", P.dir);
    argv[n++] = (char *)node_binary();
    argv[n++] = script;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--merchant-public-key";
    argv[n++] = mpub;
    argv[n++] = "--platform-private-key";
    argv[n++] = pkey;
    argv[n++] = "--platform-serial";
    argv[n++] = PLATFORM_SERIAL;
    argv[n++] = "--apiv3-key-file";
    argv[n++] = apiv3;
    argv[n++] = "--mchid";
    argv[n++] = MCHID;
    argv[n++] = "--merchant-serial";
    argv[n++] = MERCHANT_SERIAL;
    argv[n] = NULL;

    if (pipe(pipefd) != 0)
        return -1;
    P.pid = fork();
    if (P.pid < 0)
        return -1;
    if (P.pid == 0) {
        /* A crashed test must not leave the server behind. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        close(pipefd[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(pipefd[1]);
    P.out_fd = pipefd[0];
    deadline = now_ms() + START_WAIT_MS;
    while (now_ms() < deadline) {
        struct pollfd pfd = {P.out_fd, POLLIN, 0};
        ssize_t got;
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        got = read(P.out_fd, line + have, sizeof line - 1 - have);
        if (got <= 0) {
            print_error("wechatpay-server.js exited before it was listening (see its stderr)\n");
            return -1;
        }
        have += (size_t)got;
        line[have] = '\0';
        if (strchr(line, '\n') != NULL)
            return sscanf(line, "listening %d", &P.port) == 1 && P.port > 0 ? 0 : -1;
        if (have + 1 >= sizeof line)
            break;
    }
    print_error("wechatpay-server.js did not print \"listening N\" within %d ms\n", START_WAIT_MS);
    return -1;
}

static void stop_server(void)
{
    int status;
    int64_t deadline = now_ms() + 5000;

    if (P.pid <= 0)
        return;
    kill(P.pid, SIGTERM);
    while (waitpid(P.pid, &status, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(P.pid, SIGKILL);
            waitpid(P.pid, &status, 0);
            break;
        }
        poll(NULL, 0, 20);
    }
    P.pid = 0;
    close(P.out_fd);
}

static void remove_dir(void)
{
    static const char *const names[] = {"merchant_pub.pem", "platform_key.pem", "platform_cert.pem",
                                        "apiv3.key"};
    char path[300];

    if (P.dir[0] == '\0')
        return;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", P.dir, names[i]);
        unlink(path);
    }
    rmdir(P.dir);
    P.dir[0] = '\0';
}

static int group_teardown(void **state);

/* Everything the tests share: keys and files in a fresh folder, and the server started on them. */
static int setup(void)
{
    const char *src = getenv("PARK_SOURCE_DIR");
    char path[512], nonce[33];
    char *version[] = {(char *)node_binary(), "--version", NULL};
    FILE *f;
    size_t len;
    char *pem;

    if (src == NULL || src[0] == '\0') {
        print_error("PARK_SOURCE_DIR is not set (ctest sets it to the source tree)\n");
        return -1;
    }
    if (run_quietly(version) != 0) {
        print_error("node is not installed or not on PATH (set PARK_NODE): this test needs it; "
                    "CI installs Node.js\n");
        return -1;
    }
    snprintf(path, sizeof path, "%s/node_modules/wechatpay-axios-plugin/package.json", src);
    if (access(path, R_OK) != 0) {
        print_error("%s is missing: run `npm ci` in %s (CI does)\n", path, src);
        return -1;
    }

    snprintf(P.dir, sizeof P.dir, "/tmp/park-wxpay-XXXXXX");
    if (mkdtemp(P.dir) == NULL)
        return -1;
    P.merchant = EVP_RSA_gen(2048);
    P.platform = EVP_RSA_gen(2048);
    /* The APIv3 key is 32 characters the merchant chooses. */
    if (P.merchant == NULL || P.platform == NULL || cmn_wxpay_nonce(nonce) != 0)
        return -1;
    memcpy(P.apiv3, nonce, 32);
    P.apiv3[32] = '\0';
    if (write_pem(P.dir, "merchant_pub.pem", P.merchant, 0, path, sizeof path) != 0 ||
        write_pem(P.dir, "platform_key.pem", P.platform, 1, path, sizeof path) != 0 ||
        write_pem(P.dir, "platform_cert.pem", P.platform, 2, path, sizeof path) != 0 ||
        write_file(P.dir, "apiv3.key", P.apiv3, 32, path, sizeof path) != 0)
        return -1;

    /* The platform key we verify with comes from the certificate file through our own loader. */
    snprintf(path, sizeof path, "%s/platform_cert.pem", P.dir);
    f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    pem = cmn_xalloc(16384);
    len = fread(pem, 1, 16384, f);
    fclose(f);
    if (cmn_pem_public_key(pem, len, &P.platform_pub) != 0) {
        cmn_free(pem);
        return -1;
    }
    cmn_free(pem);
    return start_server(src);
}

/* Whether cmocka runs the group teardown after a failed setup depends on its version: clean up
 * here as well (the teardown may run twice), so that a server that never said "listening" is not
 * left running. */
static int group_setup(void **state)
{
    if (setup() == 0)
        return 0;
    group_teardown(state);
    return -1;
}

static int group_teardown(void **state)
{
    (void)state;
    stop_server();
    remove_dir();
    EVP_PKEY_free(P.merchant);
    EVP_PKEY_free(P.platform);
    EVP_PKEY_free(P.platform_pub);
    P.merchant = P.platform = P.platform_pub = NULL;
    return 0;
}

/* ---- plain blocking HTTP ---- */

struct http_msg {
    int status;         /* responses */
    char method[16];    /* requests */
    char target[256];   /* requests */
    char headers[8192]; /* the header block, CRLF-separated */
    cmn_buf_t body;
};

static void http_msg_init(struct http_msg *m)
{
    memset(m, 0, sizeof *m);
    cmn_buf_init(&m->body, 1 << 20);
}

static void http_msg_dispose(struct http_msg *m)
{
    cmn_buf_dispose(&m->body);
}

/* The value of header `name` (case-insensitive), or "" when absent. */
static const char *header(const struct http_msg *m, const char *name, char *out, size_t outsz)
{
    const char *line = m->headers;
    size_t nlen = strlen(name);

    out[0] = '\0';
    while (line != NULL && *line != '\0') {
        const char *eol = strstr(line, "\r\n");
        size_t llen = eol != NULL ? (size_t)(eol - line) : strlen(line);
        if (llen > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            size_t vlen;
            while (*v == ' ')
                v++;
            vlen = llen - (size_t)(v - line);
            if (vlen >= outsz)
                vlen = outsz - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return out;
        }
        line = eol != NULL ? eol + 2 : NULL;
    }
    return out;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static void set_timeouts(int fd)
{
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/*
 * Reads one HTTP message (head, then Content-Length bytes of body, or everything until the peer
 * closes when there is no Content-Length) and splits it.  Returns 0 or -1.
 */
static int read_message(int fd, struct http_msg *m, int is_request)
{
    cmn_buf_t in;
    char *end = NULL, cl[32];
    size_t head_len = 0, want = (size_t)-1;
    int rc = -1;

    cmn_buf_init(&in, 1 << 20);
    for (;;) {
        char chunk[4096];
        ssize_t got;
        if (end == NULL && in.base != NULL && (end = strstr(in.base, "\r\n\r\n")) != NULL) {
            const char *first_eol = strstr(in.base, "\r\n");
            head_len = (size_t)(end - in.base) + 4;
            if ((size_t)(end - first_eol) >= sizeof m->headers)
                goto out;
            memcpy(m->headers, first_eol + 2, (size_t)(end - first_eol));
            m->headers[end - first_eol] = '\0';
            if (is_request) {
                if (sscanf(in.base, "%15s %255s", m->method, m->target) != 2)
                    goto out;
            } else if (sscanf(in.base, "HTTP/1.%*d %d", &m->status) != 1) {
                goto out;
            }
            if (header(m, "Content-Length", cl, sizeof cl)[0] != '\0')
                want = (size_t)strtoul(cl, NULL, 10);
        }
        if (end != NULL && want != (size_t)-1 && in.len - head_len >= want)
            break;
        got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            goto out;
        if (got == 0) {
            if (end == NULL || (want != (size_t)-1 && in.len - head_len < want))
                goto out;
            want = in.len - head_len;
            break;
        }
        if (cmn_buf_append(&in, chunk, (size_t)got) != 0)
            goto out;
    }
    if (cmn_buf_append(&m->body, in.base + head_len, want) != 0)
        goto out;
    rc = 0;
out:
    cmn_buf_dispose(&in);
    return rc;
}

/* One request on a fresh connection; `auth` may be NULL.  Returns 0 or -1. */
static int http_call(const char *method, const char *target, const char *auth, const char *body,
                     struct http_msg *resp)
{
    struct sockaddr_in a;
    cmn_buf_t req;
    int fd, rc = -1;
    size_t blen = body != NULL ? strlen(body) : 0;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    set_timeouts(fd);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)P.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cmn_buf_init(&req, 1 << 20);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        goto out;
    if (cmn_buf_printf(&req,
                       "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: application/json\r\n"
                       "User-Agent: park-test_wechatpay_peer\r\nConnection: close\r\n"
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                       method, target, P.port, blen) != 0 ||
        (auth != NULL && cmn_buf_printf(&req, "Authorization: %s\r\n", auth) != 0) ||
        cmn_buf_puts(&req, "\r\n") != 0 || (blen > 0 && cmn_buf_append(&req, body, blen) != 0))
        goto out;
    if (write_all(fd, req.base, req.len) != 0)
        goto out;
    rc = read_message(fd, resp, 0);
out:
    cmn_buf_dispose(&req);
    close(fd);
    return rc;
}

/* A signed API call as the merchant: Authorization made by cmn_wxpay_authorization. */
static void api_call(const char *method, const char *target, const char *body,
                     struct http_msg *resp)
{
    cmn_buf_t auth;
    char nonce[33];

    cmn_buf_init(&auth, 4096);
    assert_int_equal(cmn_wxpay_nonce(nonce), 0);
    assert_int_equal(cmn_wxpay_authorization(P.merchant, MCHID, MERCHANT_SERIAL, method, target,
                                             body, body != NULL ? strlen(body) : 0,
                                             (int64_t)time(NULL), nonce, &auth),
                     0);
    assert_int_equal(http_call(method, target, auth.base, body, resp), 0);
    cmn_buf_dispose(&auth);
}

/* Checks a response's or notification's signature headers the way a service must. */
static void assert_signed_by_platform(const struct http_msg *m)
{
    char ts[32], nonce[80], sig[800], serial[80];

    header(m, "Wechatpay-Timestamp", ts, sizeof ts);
    header(m, "Wechatpay-Nonce", nonce, sizeof nonce);
    header(m, "Wechatpay-Signature", sig, sizeof sig);
    header(m, "Wechatpay-Serial", serial, sizeof serial);
    assert_string_equal(serial, PLATFORM_SERIAL);
    assert_true(llabs((long long)time(NULL) - strtoll(ts, NULL, 10)) <= 300);
    assert_int_equal(cmn_wxpay_verify(P.platform_pub, ts, nonce, m->body.base, m->body.len, sig),
                     0);
    /* And the same check fails for anything else: our key, a changed body. */
    assert_int_equal(cmn_wxpay_verify(P.merchant, ts, nonce, m->body.base, m->body.len, sig),
                     CMN_ECRYPTO);
    if (m->body.len > 0)
        assert_int_equal(
            cmn_wxpay_verify(P.platform_pub, ts, nonce, m->body.base, m->body.len - 1, sig),
            CMN_ECRYPTO);
}

static json_t *body_json(const struct http_msg *m)
{
    json_error_t err;
    json_t *j = json_loadb(m->body.base != NULL ? m->body.base : "", m->body.len, 0, &err);
    if (j == NULL)
        fail_msg("not JSON (%s): %.*s", err.text, (int)m->body.len, m->body.base);
    return j;
}

static void control(const char *method, const char *target, const char *body)
{
    struct http_msg r;

    http_msg_init(&r);
    assert_int_equal(http_call(method, target, NULL, body, &r), 0);
    if (r.status != 200)
        fail_msg("%s %s: %d %s", method, target, r.status, r.body.base);
    http_msg_dispose(&r);
}

/* ---- notify_url: a tiny blocking listener ---- */

static int listen_loopback(int *port)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Accepts one notification POST, answers it with `status`, and returns it in m. */
static void receive_notification(int lfd, int status, struct http_msg *m)
{
    struct pollfd pfd = {lfd, POLLIN, 0};
    char answer[256];
    const char *body = status == 200 ? "{\"code\":\"SUCCESS\"}" : "{\"code\":\"FAIL\"}";
    int fd, n;

    if (poll(&pfd, 1, NOTIFY_WAIT_MS) != 1)
        fail_msg("no notification within %d ms", NOTIFY_WAIT_MS);
    fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    set_timeouts(fd);
    assert_int_equal(read_message(fd, m, 1), 0);
    n = snprintf(answer, sizeof answer,
                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s",
                 status, strlen(body), body);
    assert_int_equal(write_all(fd, answer, (size_t)n), 0);
    close(fd);
}

/*
 * Verifies a notification, decrypts its resource with our code, and returns the plaintext parsed.
 * *envelope receives the outer JSON (the caller decrefs both).
 */
static json_t *open_notification(const struct http_msg *m, json_t **envelope)
{
    json_t *doc, *res, *plain;
    cmn_buf_t text;
    json_error_t err;

    assert_string_equal(m->method, "POST");
    assert_signed_by_platform(m);
    doc = body_json(m);
    assert_string_equal(json_string_value(json_object_get(doc, "resource_type")),
                        "encrypt-resource");
    res = json_object_get(doc, "resource");
    assert_non_null(res);
    assert_string_equal(json_string_value(json_object_get(res, "algorithm")), "AEAD_AES_256_GCM");
    cmn_buf_init(&text, 65536);
    assert_int_equal(
        cmn_wxpay_decrypt(P.apiv3, json_string_value(json_object_get(res, "associated_data")),
                          json_string_value(json_object_get(res, "nonce")),
                          json_string_value(json_object_get(res, "ciphertext")), &text),
        0);
    plain = json_loadb(text.base, text.len, 0, &err);
    if (plain == NULL)
        fail_msg("decrypted resource is not JSON: %s", err.text);
    /* Another APIv3 key opens nothing. */
    {
        unsigned char other[32];
        memcpy(other, P.apiv3, 32);
        other[0] ^= 1;
        cmn_buf_reset(&text);
        assert_int_equal(
            cmn_wxpay_decrypt(other, json_string_value(json_object_get(res, "associated_data")),
                              json_string_value(json_object_get(res, "nonce")),
                              json_string_value(json_object_get(res, "ciphertext")), &text),
            CMN_ECRYPTO);
        assert_int_equal(text.len, 0);
    }
    cmn_buf_dispose(&text);
    *envelope = doc;
    return plain;
}

/* ---- request bodies ---- */

static void parking_body(char *out, size_t outsz, const char *out_parking_no, const char *plate,
                         const char *notify_url)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "out_parking_no", out_parking_no,
                          "plate_number", plate, "plate_color", "BLUE", "notify_url", notify_url,
                          "start_time", "2024-05-01T08:00:00+08:00", "parking_name", "欢乐海岸",
                          "free_duration", 900);
    size_t n = json_dumpb(j, out, outsz - 1, JSON_COMPACT);
    assert_true(n > 0 && n < outsz);
    out[n] = '\0';
    json_decref(j);
}

static void deduction_body(char *out, size_t outsz, const char *out_trade_no,
                           const char *parking_id, const char *plate, const char *notify_url,
                           int total)
{
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:{s:i, s:s}, s:{s:s, s:s, s:s, s:s, s:s, "
        "s:s, s:i, s:s}}",
        "appid", "wxcbda96de0b165486", "description", "parking fee", "out_trade_no", out_trade_no,
        "trade_scene", "PARKING", "notify_url", notify_url, "amount", "total", total, "currency",
        "CNY", "parking_info", "parking_id", parking_id, "plate_number", plate, "plate_color",
        "BLUE", "start_time", "2024-05-01T08:00:00+08:00", "end_time", "2024-05-01T10:00:00+08:00",
        "parking_name", "lot 1", "charging_duration", 7200, "device_id", "exit-1");
    size_t n = json_dumpb(j, out, outsz - 1, JSON_COMPACT);
    assert_true(n > 0 && n < outsz);
    out[n] = '\0';
    json_decref(j);
}

/* Creates a parking and returns its id (in id). */
static void create_parking(const char *out_parking_no, const char *plate, const char *notify_url,
                           char *id, size_t idsz)
{
    char body[1024];
    struct http_msg r;
    json_t *j;

    parking_body(body, sizeof body, out_parking_no, plate, notify_url);
    http_msg_init(&r);
    api_call("POST", "/v3/vehicle/parking/parkings", body, &r);
    if (r.status != 200)
        fail_msg("create parking: %d %s", r.status, r.body.base);
    assert_signed_by_platform(&r);
    j = body_json(&r);
    snprintf(id, idsz, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    http_msg_dispose(&r);
}

/* ---- tests ---- */

static void test_create_parking_is_accepted_and_answer_verifies(void **state)
{
    char body[1024];
    struct http_msg r;
    json_t *j;

    (void)state;
    parking_body(body, sizeof body, "E-C-0001", "粤B12345", "http://127.0.0.1:9/n");
    http_msg_init(&r);
    api_call("POST", "/v3/vehicle/parking/parkings", body, &r);
    if (r.status != 200)
        fail_msg("expected 200, got %d: %s", r.status, r.body.base);
    assert_signed_by_platform(&r);
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "NORMAL");
    assert_string_equal(json_string_value(json_object_get(j, "out_parking_no")), "E-C-0001");
    assert_string_equal(json_string_value(json_object_get(j, "plate_number")), "粤B12345");
    assert_true(strlen(json_string_value(json_object_get(j, "id"))) > 0);
    json_decref(j);
    http_msg_dispose(&r);
}

static void test_blocked_plate_and_service_query(void **state)
{
    char body[1024];
    struct http_msg r;
    json_t *j;

    (void)state;
    control("POST", "/test/plates",
            "{\"plate_number\":\"粤B00009\",\"parking_state\":\"BLOCKED\","
            "\"block_reason\":\"OVERDUE\",\"service_state\":\"PAUSE\"}");
    parking_body(body, sizeof body, "E-C-0002", "粤B00009", "http://127.0.0.1:9/n");
    http_msg_init(&r);
    api_call("POST", "/v3/vehicle/parking/parkings", body, &r);
    assert_int_equal(r.status, 200);
    assert_signed_by_platform(&r);
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "BLOCKED");
    assert_string_equal(json_string_value(json_object_get(j, "block_reason")), "OVERDUE");
    json_decref(j);
    http_msg_dispose(&r);

    /* A GET with a query string: the query is part of the signed URL, the body line is empty. */
    http_msg_init(&r);
    api_call("GET",
             "/v3/vehicle/parking/services/find?appid=wxcbda96de0b165486&plate_number=%E7%B2%A4"
             "B00009&plate_color=BLUE&openid=oTest1",
             NULL, &r);
    if (r.status != 200)
        fail_msg("services/find: %d %s", r.status, r.body.base);
    assert_signed_by_platform(&r);
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "service_state")), "PAUSE");
    json_decref(j);
    http_msg_dispose(&r);
}

static void test_tampered_or_stale_requests_get_401(void **state)
{
    const char *target = "/v3/vehicle/parking/parkings";
    char body[1024], other[1024], nonce[33];
    int64_t now = (int64_t)time(NULL);
    struct bad_case {
        EVP_PKEY *key;
        const char *mchid;
        int64_t ts;
        const char *sent;
    };

    (void)state;
    parking_body(body, sizeof body, "E-C-0003", "粤B33333", "http://127.0.0.1:9/n");
    parking_body(other, sizeof other, "E-C-0003", "粤B33334", "http://127.0.0.1:9/n");
    const struct bad_case cases[] = {
        {P.merchant, MCHID, now, other},       /* the body changed after signing */
        {P.merchant, MCHID, now - 400, body},  /* stale */
        {P.merchant, MCHID, now + 400, body},  /* from the future */
        {P.merchant, "1900000110", now, body}, /* another merchant */
        {P.platform, MCHID, now, body},        /* signed with a key that is not the merchant's */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cmn_buf_t auth;
        struct http_msg r;
        json_t *j;
        cmn_buf_init(&auth, 4096);
        http_msg_init(&r);
        assert_int_equal(cmn_wxpay_nonce(nonce), 0);
        assert_int_equal(cmn_wxpay_authorization(cases[i].key, cases[i].mchid, MERCHANT_SERIAL,
                                                 "POST", target, body, strlen(body), cases[i].ts,
                                                 nonce, &auth),
                         0);
        assert_int_equal(http_call("POST", target, auth.base, cases[i].sent, &r), 0);
        if (r.status != 401)
            fail_msg("case %zu: expected 401, got %d: %s", i, r.status, r.body.base);
        /* Error answers are signed too. */
        assert_signed_by_platform(&r);
        j = body_json(&r);
        assert_string_equal(json_string_value(json_object_get(j, "code")), "SIGN_ERROR");
        json_decref(j);
        http_msg_dispose(&r);
        cmn_buf_dispose(&auth);
    }
    /* The untampered request still goes through: the cases failed for their one change. */
    {
        struct http_msg r;
        http_msg_init(&r);
        api_call("POST", target, body, &r);
        assert_int_equal(r.status, 200);
        http_msg_dispose(&r);
    }
}

static void test_deduction_notification_verifies_and_decrypts(void **state)
{
    char id[128], body[2048], url[128], ts_hdr[32];
    struct http_msg r, n;
    json_t *j, *env, *plain;
    int port, lfd;

    (void)state;
    lfd = listen_loopback(&port);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/wxpay/notify", port);
    control("POST", "/test/config", "{\"notify_delay_ms\":50,\"notify_retry_ms\":[100]}");
    create_parking("E-C-0004", "粤B44444", url, id, sizeof id);

    deduction_body(body, sizeof body, "T-C-0004", id, "粤B44444", url, 1250);
    http_msg_init(&r);
    api_call("POST", "/v3/vehicle/transactions/parking", body, &r);
    if (r.status != 200)
        fail_msg("deduction: %d %s", r.status, r.body.base);
    assert_signed_by_platform(&r);
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "trade_state")), "ACCEPTED");
    json_decref(j);
    http_msg_dispose(&r);

    http_msg_init(&n);
    receive_notification(lfd, 200, &n);
    assert_string_equal(n.target, "/wxpay/notify");
    assert_string_equal(header(&n, "Wechatpay-Signature-Type", ts_hdr, sizeof ts_hdr),
                        "WECHATPAY2-SHA256-RSA2048");
    plain = open_notification(&n, &env);
    assert_string_equal(json_string_value(json_object_get(env, "event_type")),
                        "TRANSACTION.SUCCESS");
    assert_string_equal(json_string_value(json_object_get(plain, "out_trade_no")), "T-C-0004");
    assert_string_equal(json_string_value(json_object_get(plain, "trade_state")), "SUCCESS");
    assert_string_equal(json_string_value(json_object_get(plain, "sp_mchid")), MCHID);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(plain, "amount"), "total")),
                     1250);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(plain, "parking_info"), "parking_id")),
        id);
    json_decref(plain);
    json_decref(env);
    http_msg_dispose(&n);
    close(lfd);
}

static void test_replay_is_idempotent_and_conflict_refused(void **state)
{
    char id[128], body[2048], changed[2048];
    struct http_msg first, again, conflict, list;
    json_t *a, *b, *c, *l, *d;
    size_t matches = 0, i;

    (void)state;
    control("POST", "/test/config", "{\"notify_delay_ms\":60000}");
    create_parking("E-C-0005", "粤B55555", "http://127.0.0.1:9/n", id, sizeof id);
    deduction_body(body, sizeof body, "T-C-0005", id, "粤B55555", "http://127.0.0.1:9/n", 800);
    deduction_body(changed, sizeof changed, "T-C-0005", id, "粤B55555", "http://127.0.0.1:9/n",
                   900);
    http_msg_init(&first);
    http_msg_init(&again);
    http_msg_init(&conflict);
    http_msg_init(&list);
    api_call("POST", "/v3/vehicle/transactions/parking", body, &first);
    /* A retry signs again (new nonce, maybe a new second) but sends the same parameters. */
    api_call("POST", "/v3/vehicle/transactions/parking", body, &again);
    api_call("POST", "/v3/vehicle/transactions/parking", changed, &conflict);
    assert_int_equal(first.status, 200);
    assert_int_equal(again.status, 200);
    assert_int_equal(conflict.status, 400);
    assert_signed_by_platform(&again);
    assert_signed_by_platform(&conflict);
    a = body_json(&first);
    b = body_json(&again);
    c = body_json(&conflict);
    assert_true(json_equal(a, b));
    assert_string_equal(json_string_value(json_object_get(c, "code")), "INVALID_REQUEST");

    /* One deduction recorded, received twice, for the first amount only. */
    assert_int_equal(http_call("GET", "/test/deductions", NULL, NULL, &list), 0);
    l = body_json(&list);
    json_array_foreach(json_object_get(l, "deductions"), i, d)
    {
        if (strcmp(json_string_value(json_object_get(d, "out_trade_no")), "T-C-0005") != 0)
            continue;
        matches++;
        assert_int_equal(json_integer_value(json_object_get(d, "requests")), 2);
        assert_int_equal(json_integer_value(json_object_get(d, "amount_total")), 800);
    }
    assert_int_equal(matches, 1);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(l);
    http_msg_dispose(&first);
    http_msg_dispose(&again);
    http_msg_dispose(&conflict);
    http_msg_dispose(&list);
}

static void test_pay_fail_notification_retried_then_query(void **state)
{
    char id[128], body[2048], url[128];
    struct http_msg r, n1, n2;
    json_t *j, *env1, *env2, *p1, *p2;
    int port, lfd;

    (void)state;
    lfd = listen_loopback(&port);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/pay", port);
    control("POST", "/test/config", "{\"notify_delay_ms\":50,\"notify_retry_ms\":[100]}");
    control("POST", "/test/plates", "{\"plate_number\":\"粤B66666\",\"payment\":\"PAY_FAIL\"}");
    create_parking("E-C-0006", "粤B66666", url, id, sizeof id);
    deduction_body(body, sizeof body, "T-C-0006", id, "粤B66666", url, 300);
    http_msg_init(&r);
    api_call("POST", "/v3/vehicle/transactions/parking", body, &r);
    assert_int_equal(r.status, 200);
    http_msg_dispose(&r);

    /* The first delivery is refused; WeChat sends the same notification again. */
    http_msg_init(&n1);
    http_msg_init(&n2);
    receive_notification(lfd, 500, &n1);
    receive_notification(lfd, 200, &n2);
    p1 = open_notification(&n1, &env1);
    p2 = open_notification(&n2, &env2);
    assert_string_equal(json_string_value(json_object_get(env1, "event_type")), "TRANSACTION.FAIL");
    assert_string_equal(json_string_value(json_object_get(env1, "id")),
                        json_string_value(json_object_get(env2, "id")));
    assert_string_equal(json_string_value(json_object_get(p1, "out_trade_no")), "T-C-0006");
    assert_string_equal(json_string_value(json_object_get(p1, "trade_state")), "PAY_FAIL");
    assert_true(json_equal(p1, p2));
    json_decref(p1);
    json_decref(p2);
    json_decref(env1);
    json_decref(env2);
    http_msg_dispose(&n1);
    http_msg_dispose(&n2);
    close(lfd);

    http_msg_init(&r);
    api_call("GET", "/v3/vehicle/transactions/out-trade-no/T-C-0006", NULL, &r);
    if (r.status != 200)
        fail_msg("query: %d %s", r.status, r.body.base);
    assert_signed_by_platform(&r);
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "trade_state")), "PAY_FAIL");
    json_decref(j);
    http_msg_dispose(&r);
}

static void test_entrance_state_change_notification(void **state)
{
    char id[128], url[128], req[256];
    struct http_msg n;
    json_t *env, *plain, *res;
    int port, lfd;

    (void)state;
    lfd = listen_loopback(&port);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/entry", port);
    create_parking("E-C-0007", "粤B77777", url, id, sizeof id);
    snprintf(req, sizeof req,
             "{\"out_parking_no\":\"E-C-0007\",\"parking_state\":\"BLOCKED\","
             "\"blocked_state_description\":\"PAUSE\"}");
    control("POST", "/test/entrance-state-change", req);
    http_msg_init(&n);
    receive_notification(lfd, 200, &n);
    plain = open_notification(&n, &env);
    res = json_object_get(env, "resource");
    assert_string_equal(json_string_value(json_object_get(env, "event_type")),
                        "VEHICLE.ENTRANCE_STATE_CHANGE");
    /* Empty associated data: the GCM tag covers no AAD, and our decryption agreed. */
    assert_string_equal(json_string_value(json_object_get(res, "associated_data")), "");
    assert_string_equal(json_string_value(json_object_get(plain, "parking_id")), id);
    assert_string_equal(json_string_value(json_object_get(plain, "out_parking_no")), "E-C-0007");
    assert_string_equal(json_string_value(json_object_get(plain, "parking_state")), "BLOCKED");
    assert_string_equal(json_string_value(json_object_get(plain, "blocked_state_description")),
                        "PAUSE");
    json_decref(plain);
    json_decref(env);
    http_msg_dispose(&n);
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_parking_is_accepted_and_answer_verifies),
        cmocka_unit_test(test_blocked_plate_and_service_query),
        cmocka_unit_test(test_tampered_or_stale_requests_get_401),
        cmocka_unit_test(test_deduction_notification_verifies_and_decrypts),
        cmocka_unit_test(test_replay_is_idempotent_and_conflict_refused),
        cmocka_unit_test(test_pay_fail_notification_retried_then_query),
        cmocka_unit_test(test_entrance_state_change_notification),
    };

    /* A notify_url receiver that closes early must not kill the test with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
