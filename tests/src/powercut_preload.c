/*
 * The power-cut interposer of the torture suite, for files written outside SQLite
 * (photo files): LD_PRELOADed into `torture_phone` and `torture_relay` only, never
 * into a shipped binary. Built by scripts/torture with `cc`.
 *
 * Model (what a power cut keeps, for paths under the roots in POWERCUT_ROOTS):
 *  - A file's bytes are durable as of its last fsync/fdatasync; a file created since
 *    its last fsync holds nothing durable (after the cut it is empty, if its name
 *    survived).
 *  - A directory entry (a name under a root, or a root's own name in its parent) is
 *    durable as of the last fsync of the directory holding it: creation, rename
 *    (both names), unlink, mkdir, rmdir and link are undone unless that directory
 *    was fsynced afterwards. A file's fsync does not make its name durable.
 *  - sync()/syncfs() make everything durable.
 *
 * The writes themselves go to the disk as usual, so every read, stat and listing
 * sees them; what the interposer keeps is an undo journal in POWERCUT_JOURNAL,
 * appended before each change (a SIGKILL leaves the journal whole, as it leaves
 * every written byte): the durable state of each name at its first change since
 * its directory's last fsync (`N`, with a hard link in keep/ holding the durable
 * file alive), a copy of each file's durable bytes at its first write since its
 * last fsync (`S`, the copy in data/), `E` for a file created empty, and `Y`/`Z`/`A`
 * for file, directory and whole-disk syncs. After the process is dead the
 * orchestrator replays the journal (tests/src/torture/power_lost/cut_files.rs) and
 * puts back the durable state: that is the cut. A sync that had not returned when
 * the process died counts as not done. Several processes may share a journal
 * (the unit test's shell commands); the suite gives each process its own.
 *
 * Not modelled: renaming a directory under a root, a rename across a root's border,
 * or O_TMPFILE (each is journalled as `U` and the recovery fails loudly); writes
 * through mmap, a descriptor duplicated with fcntl, or calls that bypass libc
 * (raw syscalls) are not seen and so behave as if synced at once.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_ROOTS 8
#define MAX_FD 65536

static char roots[MAX_ROOTS][PATH_MAX];
static char parents[MAX_ROOTS][PATH_MAX];
static int nroots;
/* Short enough that every journal path fits in PATH_MAX. */
static char journal[PATH_MAX / 2];
static int active;
static int logfd = -1;
static off_t journal_end = -1;
static unsigned long seq;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* The resolved path of each descriptor opened on a tracked path (NULL: not tracked). */
static char *fd_path[MAX_FD];

/* Names changed since their directory's last fsync, and files written (or created)
 * since their last fsync: small lists, searched linearly. */
struct idlist { dev_t *dev; ino_t *ino; size_t n, cap; };
static char **touched;
static size_t ntouched, cap_touched;
static struct idlist saved;

#define REAL(ret, name, args) static ret(*real_##name) args
REAL(int, open, (const char *, int, ...));
REAL(int, open64, (const char *, int, ...));
REAL(int, openat, (int, const char *, int, ...));
REAL(int, openat64, (int, const char *, int, ...));
REAL(int, creat, (const char *, mode_t));
REAL(int, creat64, (const char *, mode_t));
REAL(int, close, (int));
REAL(int, dup, (int));
REAL(int, dup2, (int, int));
REAL(int, dup3, (int, int, int));
REAL(ssize_t, write, (int, const void *, size_t));
REAL(ssize_t, writev, (int, const struct iovec *, int));
REAL(ssize_t, pwrite, (int, const void *, size_t, off_t));
REAL(ssize_t, pwrite64, (int, const void *, size_t, off64_t));
REAL(ssize_t, pwritev, (int, const struct iovec *, int, off_t));
REAL(int, ftruncate, (int, off_t));
REAL(int, ftruncate64, (int, off64_t));
REAL(int, fallocate, (int, int, off_t, off_t));
REAL(int, fsync, (int));
REAL(int, fdatasync, (int));
REAL(int, syncfs, (int));
REAL(void, sync, (void));
REAL(int, rename, (const char *, const char *));
REAL(int, renameat, (int, const char *, int, const char *));
REAL(int, renameat2, (int, const char *, int, const char *, unsigned int));
REAL(int, unlink, (const char *));
REAL(int, unlinkat, (int, const char *, int));
REAL(int, rmdir, (const char *));
REAL(int, mkdir, (const char *, mode_t));
REAL(int, mkdirat, (int, const char *, mode_t));
REAL(int, link, (const char *, const char *));
REAL(int, linkat, (int, const char *, int, const char *, int));

#define RESOLVE(name) \
    do { if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name); } while (0)

static void resolve_all(void) {
    RESOLVE(open); RESOLVE(open64); RESOLVE(openat); RESOLVE(openat64);
    RESOLVE(creat); RESOLVE(creat64); RESOLVE(close); RESOLVE(dup); RESOLVE(dup2);
    RESOLVE(dup3); RESOLVE(write); RESOLVE(writev); RESOLVE(pwrite); RESOLVE(pwrite64);
    RESOLVE(pwritev); RESOLVE(ftruncate); RESOLVE(ftruncate64); RESOLVE(fallocate);
    RESOLVE(fsync); RESOLVE(fdatasync); RESOLVE(syncfs); RESOLVE(sync); RESOLVE(rename);
    RESOLVE(renameat); RESOLVE(renameat2); RESOLVE(unlink); RESOLVE(unlinkat);
    RESOLVE(rmdir); RESOLVE(mkdir); RESOLVE(mkdirat); RESOLVE(link); RESOLVE(linkat);
}

/* Lexically normalise an absolute path in place: no `.`, `..`, `//` or trailing `/`. */
static void normalise(char *p) {
    char out[PATH_MAX];
    size_t o = 0;
    const char *s = p;
    while (*s) {
        while (*s == '/') s++;
        if (!*s) break;
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 1 && s[0] == '.') {
        } else if (len == 2 && s[0] == '.' && s[1] == '.') {
            while (o > 0 && out[o - 1] != '/') o--;
            if (o > 0) o--;
        } else if (o + 1 + len < sizeof out) {
            out[o++] = '/';
            memcpy(out + o, s, len);
            o += len;
        }
        s += len;
    }
    if (o == 0) out[o++] = '/';
    out[o] = '\0';
    memcpy(p, out, o + 1);
}

/* The absolute path of `path` relative to `dirfd`; 0 when it could be resolved. */
static int resolve_path(int dirfd, const char *path, char *out) {
    char base[PATH_MAX];
    if (!path) return -1;
    if (path[0] == '/') {
        if (strlen(path) >= PATH_MAX) return -1;
        strcpy(out, path);
        normalise(out);
        return 0;
    }
    if (dirfd == AT_FDCWD) {
        if (!getcwd(base, sizeof base)) return -1;
    } else if (dirfd >= 0 && dirfd < MAX_FD && fd_path[dirfd]) {
        snprintf(base, sizeof base, "%s", fd_path[dirfd]);
    } else {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        ssize_t n = readlink(link, base, sizeof base - 1);
        if (n < 0) return -1;
        base[n] = '\0';
    }
    if (snprintf(out, PATH_MAX, "%s/%s", base, path) >= PATH_MAX) return -1;
    normalise(out);
    return 0;
}

static int under(const char *p, const char *root) {
    size_t n = strlen(root);
    return strncmp(p, root, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/* A name whose changes are modelled: a root or anything under one. */
static int tracked_name(const char *p) {
    for (int i = 0; i < nroots; i++)
        if (under(p, roots[i])) return 1;
    return 0;
}

/* A path whose descriptors are followed: tracked names, and the roots' parents
 * (whose fsync makes a root's own name durable). */
static int tracked_path(const char *p) {
    if (tracked_name(p)) return 1;
    for (int i = 0; i < nroots; i++)
        if (strcmp(p, parents[i]) == 0) return 1;
    return 0;
}

static void die(const char *why) {
    char msg[PATH_MAX + 128];
    int n = snprintf(msg, sizeof msg, "powercut_preload: %s (%s)\n", why, strerror(errno));
    if (n > 0 && real_write) real_write(2, msg, (size_t)n);
    abort();
}

/* One journal line, written whole by one write. */
static void journal_line(const char *fmt, ...) {
    char line[PATH_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof line - 1) die("journal line too long");
    line[n++] = '\n';
    if (logfd < 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/log", journal);
        logfd = real_open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (logfd < 0) die("cannot open the journal");
    }
    if (real_write(logfd, line, (size_t)n) != n) die("cannot write the journal");
    journal_end = lseek(logfd, 0, SEEK_CUR);
}

/* The lists below are this process's memory of the journal. Another process under
 * the same journal (a shell's `mv` or `sync`) may have synced or changed something
 * since: if the journal grew behind our back, forget them and journal afresh (a
 * second record of a name or of a file's bytes is ignored by the recovery). */
static void forget_if_shared(void);

static int in_ids(struct idlist *l, dev_t d, ino_t i) {
    for (size_t k = 0; k < l->n; k++)
        if (l->dev[k] == d && l->ino[k] == i) return 1;
    return 0;
}

static void add_id(struct idlist *l, dev_t d, ino_t i) {
    if (in_ids(l, d, i)) return;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->dev = realloc(l->dev, l->cap * sizeof *l->dev);
        l->ino = realloc(l->ino, l->cap * sizeof *l->ino);
        if (!l->dev || !l->ino) die("out of memory");
    }
    l->dev[l->n] = d;
    l->ino[l->n] = i;
    l->n++;
}

static void remove_id(struct idlist *l, dev_t d, ino_t i) {
    for (size_t k = 0; k < l->n; k++)
        if (l->dev[k] == d && l->ino[k] == i) {
            l->n--;
            l->dev[k] = l->dev[l->n];
            l->ino[k] = l->ino[l->n];
            return;
        }
}

static void forget_if_shared(void) {
    struct stat st;
    if (logfd < 0 || fstat(logfd, &st) != 0 || st.st_size == journal_end) return;
    for (size_t k = 0; k < ntouched; k++) free(touched[k]);
    ntouched = 0;
    saved.n = 0;
}

/* Before the first change of name `p` since its directory's last fsync: journal
 * what the name durably is now (and keep a durable file alive by a hard link). */
static void touch_name(const char *p) {
    if (!tracked_name(p)) return;
    forget_if_shared();
    for (size_t k = 0; k < ntouched; k++)
        if (strcmp(touched[k], p) == 0) return;
    struct stat st;
    if (lstat(p, &st) != 0) {
        if (errno != ENOENT) die("lstat before a change");
        journal_line("N A %s", p);
    } else if (S_ISREG(st.st_mode)) {
        char keep[PATH_MAX];
        snprintf(keep, sizeof keep, "%s/keep/%lu-%lu", journal, (unsigned long)st.st_dev,
                 (unsigned long)st.st_ino);
        if (real_link(p, keep) != 0 && errno != EEXIST) {
            journal_line("U keep-link %s", p);
            return;
        }
        journal_line("N F %lu %lu %s", (unsigned long)st.st_dev, (unsigned long)st.st_ino, p);
    } else if (S_ISDIR(st.st_mode)) {
        journal_line("N D %lu %lu %s", (unsigned long)st.st_dev, (unsigned long)st.st_ino, p);
    } else {
        journal_line("U file-type %s", p);
        return;
    }
    if (ntouched == cap_touched) {
        cap_touched = cap_touched ? 2 * cap_touched : 64;
        touched = realloc(touched, cap_touched * sizeof *touched);
        if (!touched) die("out of memory");
    }
    touched[ntouched] = strdup(p);
    if (!touched[ntouched]) die("out of memory");
    ntouched++;
}

/* Before the first write to an existing file since its last fsync: journal a copy
 * of its bytes (read through `rfd`, a descriptor that can read it). */
static void save_bytes(int rfd, const struct stat *st) {
    if (in_ids(&saved, st->st_dev, st->st_ino)) return;
    char path[PATH_MAX];
    unsigned long n = seq++;
    snprintf(path, sizeof path, "%s/data/%ld-%lu", journal, (long)getpid(), n);
    int out = real_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) die("cannot open a journal copy");
    char buf[65536];
    off_t at = 0;
    for (;;) {
        ssize_t r = pread(rfd, buf, sizeof buf, at);
        if (r < 0) die("cannot read a file to journal it");
        if (r == 0) break;
        if (real_write(out, buf, (size_t)r) != r) die("cannot write a journal copy");
        at += r;
    }
    real_close(out);
    journal_line("S %lu %lu %ld-%lu", (unsigned long)st->st_dev, (unsigned long)st->st_ino,
                 (long)getpid(), n);
    add_id(&saved, st->st_dev, st->st_ino);
}

/* Before a write through tracked descriptor `fd`. */
static void touch_bytes(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
    forget_if_shared();
    if (in_ids(&saved, st.st_dev, st.st_ino)) return;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    int rfd = real_open(proc, O_RDONLY | O_CLOEXEC);
    if (rfd < 0) die("cannot reopen a file to journal it");
    save_bytes(rfd, &st);
    real_close(rfd);
}

static int fd_tracked(int fd) {
    return active && fd >= 0 && fd < MAX_FD && __atomic_load_n(&fd_path[fd], __ATOMIC_ACQUIRE);
}

static void set_fd(int fd, const char *p) {
    if (fd < 0 || fd >= MAX_FD) return;
    char *old = fd_path[fd];
    __atomic_store_n(&fd_path[fd], p ? strdup(p) : NULL, __ATOMIC_RELEASE);
    free(old);
}

__attribute__((constructor)) static void init(void) {
    resolve_all();
    const char *r = getenv("POWERCUT_ROOTS");
    const char *j = getenv("POWERCUT_JOURNAL");
    if (!r || !j || !*r || !*j || strlen(j) >= sizeof journal) return;
    snprintf(journal, sizeof journal, "%s", j);
    while (*r && nroots < MAX_ROOTS) {
        const char *e = strchr(r, ':');
        size_t len = e ? (size_t)(e - r) : strlen(r);
        if (len > 0 && len < PATH_MAX && r[0] == '/') {
            memcpy(roots[nroots], r, len);
            roots[nroots][len] = '\0';
            normalise(roots[nroots]);
            snprintf(parents[nroots], PATH_MAX, "%s", roots[nroots]);
            char *slash = strrchr(parents[nroots], '/');
            if (slash == parents[nroots]) slash[1] = '\0';
            else if (slash) *slash = '\0';
            nroots++;
        }
        r += len;
        if (*r == ':') r++;
    }
    active = nroots > 0;
}

static int open_common(int dirfd, const char *path, int flags, mode_t mode, int at, int big) {
    resolve_all();
    char p[PATH_MAX];
#define REAL_OPEN()                                                              \
    (at ? (big ? real_openat64(dirfd, path, flags, mode) : real_openat(dirfd, path, flags, mode)) \
        : (big ? real_open64(path, flags, mode) : real_open(path, flags, mode)))
    if (!active || resolve_path(at ? dirfd : AT_FDCWD, path, p) != 0 || !tracked_path(p))
        return REAL_OPEN();
    pthread_mutex_lock(&lock);
    int name = tracked_name(p), created = 0;
    struct stat st;
    int exists = lstat(p, &st) == 0;
    if (name && (flags & O_TMPFILE) == O_TMPFILE) journal_line("U tmpfile %s", p);
    if (name && (flags & O_CREAT) && !exists) {
        touch_name(p);
        created = 1;
    }
    if (name && exists && S_ISREG(st.st_mode) && (flags & O_TRUNC) &&
        (flags & O_ACCMODE) != O_RDONLY) {
        int rfd = real_open(p, O_RDONLY | O_CLOEXEC);
        if (rfd >= 0) {
            forget_if_shared();
            save_bytes(rfd, &st);
            real_close(rfd);
        }
    }
    int fd = REAL_OPEN();
    if (fd >= 0) {
        if (created && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            journal_line("E %lu %lu", (unsigned long)st.st_dev, (unsigned long)st.st_ino);
            add_id(&saved, st.st_dev, st.st_ino);
        }
        set_fd(fd, p);
    }
    int err = errno;
    pthread_mutex_unlock(&lock);
    errno = err;
    return fd;
#undef REAL_OPEN
}

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return open_common(AT_FDCWD, path, flags, m, 0, 0);
}

int open64(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return open_common(AT_FDCWD, path, flags, m, 0, 1);
}

int openat(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return open_common(dirfd, path, flags, m, 1, 0);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return open_common(dirfd, path, flags, m, 1, 1);
}

int creat(const char *path, mode_t mode) {
    return open_common(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, 0, 0);
}

int creat64(const char *path, mode_t mode) {
    return open_common(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, 0, 1);
}

int close(int fd) {
    resolve_all();
    if (fd_tracked(fd)) {
        pthread_mutex_lock(&lock);
        set_fd(fd, NULL);
        pthread_mutex_unlock(&lock);
    }
    return real_close(fd);
}

static int dup_common(int oldfd, int newfd) {
    if (newfd >= 0 && (fd_tracked(oldfd) || fd_tracked(newfd))) {
        pthread_mutex_lock(&lock);
        set_fd(newfd, oldfd >= 0 && oldfd < MAX_FD ? fd_path[oldfd] : NULL);
        pthread_mutex_unlock(&lock);
    }
    return newfd;
}

int dup(int fd) {
    resolve_all();
    return dup_common(fd, real_dup(fd));
}

int dup2(int oldfd, int newfd) {
    resolve_all();
    return dup_common(oldfd, real_dup2(oldfd, newfd));
}

int dup3(int oldfd, int newfd, int flags) {
    resolve_all();
    return dup_common(oldfd, real_dup3(oldfd, newfd, flags));
}

/* A change of the bytes of `fd`'s file, under the lock with its journal entry. */
#define BYTES_CHANGE(fd, call)                       \
    do {                                             \
        resolve_all();                               \
        if (!fd_tracked(fd)) return call;            \
        pthread_mutex_lock(&lock);                   \
        touch_bytes(fd);                             \
        __typeof__(call) r = call;                   \
        int err = errno;                             \
        pthread_mutex_unlock(&lock);                 \
        errno = err;                                 \
        return r;                                    \
    } while (0)

ssize_t write(int fd, const void *buf, size_t n) { BYTES_CHANGE(fd, real_write(fd, buf, n)); }
ssize_t writev(int fd, const struct iovec *iov, int cnt) { BYTES_CHANGE(fd, real_writev(fd, iov, cnt)); }
ssize_t pwrite(int fd, const void *buf, size_t n, off_t at) { BYTES_CHANGE(fd, real_pwrite(fd, buf, n, at)); }
ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t at) { BYTES_CHANGE(fd, real_pwrite64(fd, buf, n, at)); }
ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t at) { BYTES_CHANGE(fd, real_pwritev(fd, iov, cnt, at)); }
int ftruncate(int fd, off_t len) { BYTES_CHANGE(fd, real_ftruncate(fd, len)); }
int ftruncate64(int fd, off64_t len) { BYTES_CHANGE(fd, real_ftruncate64(fd, len)); }
int fallocate(int fd, int mode, off_t at, off_t len) { BYTES_CHANGE(fd, real_fallocate(fd, mode, at, len)); }

/* After a successful sync of `fd`: its bytes (a file) or its entries (a directory)
 * are durable. Journalled only once the real sync returned. */
static int sync_common(int fd, int data_only) {
    resolve_all();
    if (!fd_tracked(fd)) return data_only ? real_fdatasync(fd) : real_fsync(fd);
    pthread_mutex_lock(&lock);
    int r = data_only ? real_fdatasync(fd) : real_fsync(fd);
    int err = errno;
    struct stat st;
    if (r == 0 && fstat(fd, &st) == 0) {
        if (S_ISREG(st.st_mode)) {
            journal_line("Y %lu %lu", (unsigned long)st.st_dev, (unsigned long)st.st_ino);
            remove_id(&saved, st.st_dev, st.st_ino);
        } else if (S_ISDIR(st.st_mode) && fd_path[fd]) {
            const char *d = fd_path[fd];
            journal_line("Z %s", d);
            size_t dl = strlen(d);
            for (size_t k = 0; k < ntouched;) {
                const char *slash = strrchr(touched[k], '/');
                size_t pl = slash ? (size_t)(slash - touched[k]) : 0;
                if (pl == 0 && slash) pl = 1; /* the name is in `/` */
                if (pl == dl && strncmp(touched[k], d, dl) == 0) {
                    free(touched[k]);
                    touched[k] = touched[--ntouched];
                } else {
                    k++;
                }
            }
        }
    }
    pthread_mutex_unlock(&lock);
    errno = err;
    return r;
}

int fsync(int fd) { return sync_common(fd, 0); }
int fdatasync(int fd) { return sync_common(fd, 1); }

static void everything_durable(void) {
    pthread_mutex_lock(&lock);
    journal_line("A");
    for (size_t k = 0; k < ntouched; k++) free(touched[k]);
    ntouched = 0;
    saved.n = 0;
    pthread_mutex_unlock(&lock);
}

int syncfs(int fd) {
    resolve_all();
    int r = real_syncfs(fd);
    if (r == 0 && active) everything_durable();
    return r;
}

void sync(void) {
    resolve_all();
    real_sync();
    if (active) everything_durable();
}

/* A change of names: each tracked name's durable state journalled first. */
static void names_change(int dfd1, const char *p1, int dfd2, const char *p2, int is_rename) {
    char a[PATH_MAX], b[PATH_MAX];
    int ta = p1 && resolve_path(dfd1, p1, a) == 0 && tracked_name(a);
    int tb = p2 && resolve_path(dfd2, p2, b) == 0 && tracked_name(b);
    if (!ta && !tb) return;
    if (is_rename && ta != tb) journal_line("U rename-across-roots %s", ta ? a : b);
    if (is_rename && ta) {
        struct stat st;
        if (lstat(a, &st) == 0 && S_ISDIR(st.st_mode)) journal_line("U rename-directory %s", a);
    }
    if (ta) touch_name(a);
    if (tb) touch_name(b);
}

#define NAMES_CHANGE(d1, p1, d2, p2, is_rename, call) \
    do {                                              \
        resolve_all();                                \
        if (!active) return call;                     \
        pthread_mutex_lock(&lock);                    \
        names_change(d1, p1, d2, p2, is_rename);      \
        int r = call;                                 \
        int err = errno;                              \
        pthread_mutex_unlock(&lock);                  \
        errno = err;                                  \
        return r;                                     \
    } while (0)

int rename(const char *from, const char *to) {
    NAMES_CHANGE(AT_FDCWD, from, AT_FDCWD, to, 1, real_rename(from, to));
}
int renameat(int fd1, const char *from, int fd2, const char *to) {
    NAMES_CHANGE(fd1, from, fd2, to, 1, real_renameat(fd1, from, fd2, to));
}
int renameat2(int fd1, const char *from, int fd2, const char *to, unsigned int flags) {
    NAMES_CHANGE(fd1, from, fd2, to, 1, real_renameat2(fd1, from, fd2, to, flags));
}
int unlink(const char *p) { NAMES_CHANGE(AT_FDCWD, p, AT_FDCWD, NULL, 0, real_unlink(p)); }
int unlinkat(int fd, const char *p, int flags) {
    NAMES_CHANGE(fd, p, AT_FDCWD, NULL, 0, real_unlinkat(fd, p, flags));
}
int rmdir(const char *p) { NAMES_CHANGE(AT_FDCWD, p, AT_FDCWD, NULL, 0, real_rmdir(p)); }
int mkdir(const char *p, mode_t m) { NAMES_CHANGE(AT_FDCWD, p, AT_FDCWD, NULL, 0, real_mkdir(p, m)); }
int mkdirat(int fd, const char *p, mode_t m) {
    NAMES_CHANGE(fd, p, AT_FDCWD, NULL, 0, real_mkdirat(fd, p, m));
}
int link(const char *from, const char *to) {
    NAMES_CHANGE(AT_FDCWD, NULL, AT_FDCWD, to, 0, real_link(from, to));
}
int linkat(int fd1, const char *from, int fd2, const char *to, int flags) {
    NAMES_CHANGE(fd1, NULL, fd2, to, 0, real_linkat(fd1, from, fd2, to, flags));
}
