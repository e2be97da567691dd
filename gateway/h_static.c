/*
 * The web dashboard's files (docs/dashboard.md), served from memory:
 *
 *   GET|HEAD /               302 to /dashboard/
 *   GET|HEAD /dashboard      301 to /dashboard/
 *   GET|HEAD /dashboard/...  a file of the web root; a folder's index.html for a path ending in /
 *
 * The web root (gateway.web_root, else ../share/park/web beside the executable) is a few small
 * files (the build copies web/ and ECharts there): it is read whole at start and on SIGHUP, so a
 * request never touches the file system and never blocks the loop.  Reading it resolves every
 * entry with realpath() and keeps only regular files inside the root (a symbolic link leading out,
 * or to a folder, is skipped), whose names are plain ([A-Za-z0-9._-], no leading dot).
 *
 * A request path is checked before it is looked up: a malformed or encoded slash, backslash or NUL
 * (%2F, %5C, %00), a control character, an empty, "." or ".." segment: 400.  Anything else that is
 * not a loaded file: 404.  Answers carry a strong ETag (the content's SHA-256) and Last-Modified
 * (the file's mtime) with `Cache-Control: no-cache`, so browsers revalidate and get 304 when
 * nothing changed (If-None-Match, else an If-Modified-Since equal to Last-Modified), and the
 * security headers: a Content-Security-Policy that allows only the gateway itself, nosniff, no
 * framing, no referrer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmn/crypto.h"
#include "cmn/json.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "cmn/time.h"
#include "gw.h"
#include "web.h"

#define WEB_MAX_FILES 2000
#define WEB_MAX_FILE_BYTES (16u << 20)
#define WEB_MAX_BYTES (64u << 20)
#define WEB_MAX_DEPTH 8
#define WEB_MAX_PATH 1024

#define SECURITY_HEADERS                                                                           \
    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; "           \
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "               \
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'\r\n"                              \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "X-Frame-Options: DENY\r\n"                                                                    \
    "Referrer-Policy: no-referrer\r\n"

typedef struct web_file {
    char *path; /* relative to the root, '/'-separated: "js/app.js" */
    char *data;
    size_t len;
    const char *type;
    char etag[40];     /* "\"" 32 hex digits "\"" */
    char modified[40]; /* IMF-fixdate */
} web_file_t;

typedef struct web_root {
    char dir[PATH_MAX]; /* realpath of the root */
    web_file_t *files;  /* sorted by path */
    size_t n, cap;
    size_t bytes;
} web_root_t;

/* The gateway runs one loop thread: no lock. */
static web_root_t *current;
/* What a request is told when there are no files (the folder's path is only logged). */
static const char off_why[] = "the dashboard is not installed on this gateway";

/* ---- loading ----------------------------------------------------------------------------- */

static void root_free(web_root_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        cmn_free(r->files[i].path);
        cmn_free(r->files[i].data);
    }
    cmn_free(r->files);
    cmn_free(r);
}

static const char *type_of(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot != NULL && i < sizeof types / sizeof *types; i++) {
        if (strcasecmp(dot, types[i].ext) == 0)
            return types[i].type;
    }
    return "application/octet-stream";
}

/* A name served as it is: letters, digits, '.', '_', '-', and no leading dot. */
static int plain_name(const char *s)
{
    if (s[0] == '\0' || s[0] == '.')
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* IMF-fixdate of unix seconds t: "Sun, 06 Nov 1994 08:49:37 GMT". */
static void http_date(int64_t t, char *out, size_t outsz)
{
    static const char *const days[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t d = cmn_floordiv(t, 86400), s = cmn_floormod(t, 86400), y;
    int m, md;
    cmn_civil_from_days(d, &y, &m, &md);
    snprintf(out, outsz, "%s, %02d %s %04lld %02d:%02d:%02d GMT", days[cmn_floormod(d, 7)], md,
             months[m - 1], (long long)y, (int)(s / 3600), (int)(s / 60 % 60), (int)(s % 60));
}

/* Reads a whole regular file.  Returns 0, or -1 with errno. */
static int read_whole(const char *path, char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    int e = 0;
    if (fstat(fd, &st) != 0)
        e = errno;
    else if (!S_ISREG(st.st_mode))
        e = EINVAL;
    else if (st.st_size < 0 || (uint64_t)st.st_size > WEB_MAX_FILE_BYTES)
        e = EFBIG;
    if (e != 0) {
        close(fd);
        errno = e;
        return -1;
    }
    size_t want = (size_t)st.st_size, got = 0;
    char *buf = cmn_xalloc(want + 1);
    while (got < want) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            e = n < 0 ? errno : EIO;
            cmn_free(buf);
            close(fd);
            errno = e;
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return 0;
}

static int add_file(web_root_t *r, const char *rel, const char *full, const struct stat *st,
                    char *why, size_t whysz)
{
    if (r->n >= WEB_MAX_FILES) {
        snprintf(why, whysz, "%s: more than %d files", r->dir, WEB_MAX_FILES);
        return -1;
    }
    char *data;
    size_t len;
    if (read_whole(full, &data, &len) != 0) {
        snprintf(why, whysz, "cannot read %s: %s", full, strerror(errno));
        return -1;
    }
    if (r->bytes + len > WEB_MAX_BYTES) {
        cmn_free(data);
        snprintf(why, whysz, "%s: more than %u MiB of files", r->dir, WEB_MAX_BYTES >> 20);
        return -1;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 32;
        r->files = cmn_xrealloc(r->files, r->cap * sizeof *r->files);
    }
    web_file_t *f = &r->files[r->n++];
    memset(f, 0, sizeof *f);
    f->path = cmn_xstrdup(rel);
    f->data = data;
    f->len = len;
    f->type = type_of(rel);
    unsigned char h[32];
    char hex[65];
    cmn_sha256(data, len, h);
    cmn_hex(h, 16, hex);
    snprintf(f->etag, sizeof f->etag, "\"%.32s\"", hex);
    http_date((int64_t)st->st_mtime, f->modified, sizeof f->modified);
    r->bytes += len;
    return 0;
}

/* Walks folder `rel` ("" for the root) of r.  Returns 0, or -1 with why. */
static int walk(web_root_t *r, const char *rel, int depth, char *why, size_t whysz)
{
    char dirpath[PATH_MAX];
    if (snprintf(dirpath, sizeof dirpath, "%s%s%s", r->dir, rel[0] ? "/" : "", rel) >=
        (int)sizeof dirpath) {
        snprintf(why, whysz, "%s: path too long", r->dir);
        return -1;
    }
    DIR *d = opendir(dirpath);
    if (d == NULL) {
        snprintf(why, whysz, "cannot open folder %s: %s", dirpath, strerror(errno));
        return -1;
    }
    size_t rootlen = strlen(r->dir);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ".", "..", hidden files */
        char relpath[WEB_MAX_PATH], full[PATH_MAX], real[PATH_MAX];
        if (!plain_name(e->d_name) ||
            snprintf(relpath, sizeof relpath, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) >=
                (int)sizeof relpath ||
            snprintf(full, sizeof full, "%s/%s", dirpath, e->d_name) >= (int)sizeof full) {
            cmn_log(CMN_LOG_WARN, "web_skip", "%s/%s: not served (name)", dirpath, e->d_name);
            continue;
        }
        struct stat st, lst;
        if (lstat(full, &lst) != 0 || realpath(full, real) == NULL || stat(real, &st) != 0) {
            cmn_log(CMN_LOG_WARN, "web_skip", "%s: not served (%s)", full, strerror(errno));
            continue;
        }
        /* A link to a folder is never followed: no loops, no tree served twice. */
        if (S_ISLNK(lst.st_mode) && S_ISDIR(st.st_mode)) {
            cmn_log(CMN_LOG_WARN, "web_skip", "%s: not served (a link to a folder)", full);
            continue;
        }
        /* Whatever links it goes through, it must end up inside the root. */
        if (strncmp(real, r->dir, rootlen) != 0 || real[rootlen] != '/') {
            cmn_log(CMN_LOG_WARN, "web_skip", "%s: not served (leads out of %s)", full, r->dir);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (depth >= WEB_MAX_DEPTH) {
                cmn_log(CMN_LOG_WARN, "web_skip", "%s: not served (deeper than %d)", full,
                        WEB_MAX_DEPTH);
                continue;
            }
            rc = walk(r, relpath, depth + 1, why, whysz);
        } else if (S_ISREG(st.st_mode)) {
            rc = add_file(r, relpath, real, &st, why, whysz);
        }
    }
    closedir(d);
    return rc;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const web_file_t *)a)->path, ((const web_file_t *)b)->path);
}

/* The default root: ../share/park/web beside the executable. */
static int default_root(char *out, size_t outsz)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    return snprintf(out, outsz, "%s/../share/park/web", exe) < (int)outsz ? 0 : -1;
}

int gw_static_load(const cmn_config_t *cfg, char *why, size_t whysz)
{
    char wanted[PATH_MAX];
    const char *configured = cfg->gateway.web_root;
    if (configured != NULL) {
        snprintf(wanted, sizeof wanted, "%s", configured);
    } else if (default_root(wanted, sizeof wanted) != 0) {
        snprintf(why, whysz, "cannot find the gateway executable's folder");
        return -1;
    }
    web_root_t *r = cmn_xcalloc(1, sizeof *r);
    if (realpath(wanted, r->dir) == NULL) {
        int e = errno;
        cmn_free(r);
        if (configured == NULL && (e == ENOENT || e == ENOTDIR)) {
            snprintf(why, whysz, "the dashboard is not installed (no folder %s)", wanted);
            root_free(current);
            current = NULL;
            return 1;
        }
        snprintf(why, whysz, "gateway.web_root %s: %s", wanted, strerror(e));
        return -1;
    }
    if (walk(r, "", 0, why, whysz) != 0) {
        root_free(r);
        return -1;
    }
    if (r->n > 0)
        qsort(r->files, r->n, sizeof *r->files, by_path);
    snprintf(why, whysz, "%zu files, %zu bytes from %s", r->n, r->bytes, r->dir);
    root_free(current);
    current = r;
    return 0;
}

void gw_static_free(void)
{
    root_free(current);
    current = NULL;
}

/* ---- serving ----------------------------------------------------------------------------- */

static void answer(gw_t *gw, cmn_httpd_req_t *req, int status, const char *code, const char *msg,
                   const char *more_headers)
{
    char headers[1024];
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(code));
    json_object_set_new(o, "message", json_string(msg));
    char *text = cmn_json_dump(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    snprintf(headers, sizeof headers, "%s%s", more_headers ? more_headers : "", SECURITY_HEADERS);
    gw_metrics_error(&gw->metrics, code);
    if (text == NULL) {
        cmn_httpd_respond(req, 500, "application/json", "{\"error\":\"internal\"}", 20, headers);
        return;
    }
    cmn_httpd_respond(req, status, "application/json", text, strlen(text), headers);
    cmn_free(text);
}

static void redirect(gw_t *gw, cmn_httpd_req_t *req, int status)
{
    (void)gw;
    static const char body[] = "{\"location\":\"/dashboard/\"}";
    cmn_httpd_respond(req, status, "application/json", body, sizeof body - 1,
                      "Location: /dashboard/\r\nCache-Control: no-cache\r\n" SECURITY_HEADERS);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * The file path of a request path after /dashboard/ (in[0..n), not decoded): percent-decoded,
 * checked segment by segment, "index.html" added to a folder's path.  Returns 0, or -1 with why.
 */
static int file_path(const char *in, size_t n, char *out, size_t outsz, const char **why)
{
    size_t o = 0, seg = 0; /* where the current segment started in out */
    for (size_t i = 0; i <= n; i++) {
        int c;
        if (i == n || in[i] == '/') {
            size_t len = o - seg;
            if (len == 0 && i < n) {
                *why = "empty path segment";
                return -1;
            }
            if ((len == 1 && out[seg] == '.') ||
                (len == 2 && out[seg] == '.' && out[seg + 1] == '.')) {
                *why = "'.' and '..' are not allowed in a path";
                return -1;
            }
            if (i == n)
                break;
            c = '/';
        } else if (in[i] == '%') {
            int hi = i + 2 < n ? hexval(in[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(in[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                *why = "malformed percent-encoding";
                return -1;
            }
            c = hi << 4 | lo;
            i += 2;
            if (c == '/' || c == '\\' || c == 0) {
                *why = "an encoded slash, backslash or NUL is not allowed in a path";
                return -1;
            }
        } else {
            c = (unsigned char)in[i];
        }
        if (c == '\\' || c < 0x20 || c == 0x7f) {
            *why = "a backslash or control character is not allowed in a path";
            return -1;
        }
        if (o + 1 >= outsz) {
            *why = "path too long";
            return -1;
        }
        out[o++] = (char)c;
        if (c == '/')
            seg = o;
    }
    if (o == 0 || out[o - 1] == '/') {
        static const char index[] = "index.html";
        if (o + sizeof index > outsz) {
            *why = "path too long";
            return -1;
        }
        memcpy(out + o, index, sizeof index);
        o += sizeof index - 1;
    }
    out[o] = '\0';
    return 0;
}

/* Whether an If-None-Match list names etag (or is "*"). */
static int etag_matches(const char *h, size_t n, const char *etag)
{
    size_t elen = strlen(etag);
    size_t i = 0;
    while (i < n) {
        while (i < n && (h[i] == ' ' || h[i] == '\t' || h[i] == ','))
            i++;
        size_t start = i;
        while (i < n && h[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (h[end - 1] == ' ' || h[end - 1] == '\t'))
            end--;
        const char *tag = h + start;
        size_t tlen = end - start;
        if (tlen == 1 && tag[0] == '*')
            return 1;
        if (tlen >= 2 && tag[0] == 'W' && tag[1] == '/') { /* weak comparison */
            tag += 2;
            tlen -= 2;
        }
        if (tlen == elen && memcmp(tag, etag, elen) == 0)
            return 1;
    }
    return 0;
}

void gw_h_static(gw_t *gw, cmn_httpd_req_t *req)
{
    const char *q = memchr(req->url, '?', req->url_len);
    size_t plen = q ? (size_t)(q - req->url) : req->url_len;
    int is_root = plen == 1 && req->url[0] == '/';
    int is_bare = plen == 10 && memcmp(req->url, "/dashboard", 10) == 0;
    int is_file = plen >= 11 && memcmp(req->url, "/dashboard/", 11) == 0;
    if (!is_root && !is_bare && !is_file)
        return answer(gw, req, 404, "not_found", "no such resource", NULL);
    if (req->method != HTTP_GET && req->method != HTTP_HEAD)
        return answer(gw, req, 405, "method_not_allowed", "use GET or HEAD",
                      "Allow: GET, HEAD\r\n");
    if (is_root)
        return redirect(gw, req, 302);
    if (is_bare)
        return redirect(gw, req, 301);

    char path[WEB_MAX_PATH];
    const char *why = NULL;
    if (file_path(req->url + 11, plen - 11, path, sizeof path, &why) != 0)
        return answer(gw, req, 400, "bad_request", why, NULL);
    if (current == NULL)
        return answer(gw, req, 404, "not_found", off_why, NULL);
    web_file_t key = {.path = path};
    const web_file_t *f =
        current->n > 0 ? bsearch(&key, current->files, current->n, sizeof *current->files, by_path)
                       : NULL;
    if (f == NULL)
        return answer(gw, req, 404, "not_found", "no such file", NULL);

    char headers[1024];
    snprintf(headers, sizeof headers,
             "ETag: %s\r\nLast-Modified: %s\r\nCache-Control: no-cache\r\n" SECURITY_HEADERS,
             f->etag, f->modified);
    size_t n;
    const char *inm = cmn_httpd_req_header(req, "If-None-Match", &n);
    int fresh;
    if (inm != NULL) {
        fresh = etag_matches(inm, n, f->etag);
    } else {
        const char *ims = cmn_httpd_req_header(req, "If-Modified-Since", &n);
        fresh = ims != NULL && n == strlen(f->modified) && memcmp(ims, f->modified, n) == 0;
    }
    if (fresh)
        return cmn_httpd_respond(req, 304, NULL, NULL, 0, headers);
    cmn_httpd_respond(req, 200, f->type, f->data, f->len, headers);
}
