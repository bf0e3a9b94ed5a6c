/*
 * The durable-write floor of `kpki init` (issue 17): the least a program can do to write the
 * same tree with the same crash guarantees, and nothing else (no keys, no certificates, no
 * parsing). Files and sizes are those of an ECDSA-P256 tree and its kubeconfigs:
 *   - create the three directories (out, out/pki, out/pki/etcd), mode 0755;
 *   - each of the 27 files: a temporary name created 0600 with O_EXCL, fchmod to its final mode
 *     before the first byte, the bytes, close;
 *   - one syncfs for all of them;
 *   - rename each over its final name;
 *   - fsync each directory that changed, and the parent of the new top directory.
 * Usage: write_floor OUT_DIR   (OUT_DIR must not exist; its parent must)
 * Build: cc -O2 -o write_floor benches/write_floor.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct file { const char *path; int size; int mode; };

static const struct file files[] = {
    {"pki/ca.crt", 570, 0644}, {"pki/ca.key", 227, 0600},
    {"pki/front-proxy-ca.crt", 587, 0644}, {"pki/front-proxy-ca.key", 227, 0600},
    {"pki/etcd/ca.crt", 562, 0644}, {"pki/etcd/ca.key", 227, 0600},
    {"pki/apiserver.crt", 818, 0644}, {"pki/apiserver.key", 227, 0600},
    {"pki/apiserver-kubelet-client.crt", 680, 0644}, {"pki/apiserver-kubelet-client.key", 227, 0600},
    {"pki/apiserver-etcd-client.crt", 627, 0644}, {"pki/apiserver-etcd-client.key", 227, 0600},
    {"pki/front-proxy-client.crt", 627, 0644}, {"pki/front-proxy-client.key", 227, 0600},
    {"pki/etcd/server.crt", 692, 0644}, {"pki/etcd/server.key", 227, 0600},
    {"pki/etcd/peer.crt", 692, 0644}, {"pki/etcd/peer.key", 227, 0600},
    {"pki/etcd/healthcheck-client.crt", 631, 0644}, {"pki/etcd/healthcheck-client.key", 227, 0600},
    {"pki/sa.key", 227, 0600}, {"pki/sa.pub", 178, 0600},
    {"admin.conf", 2352, 0600}, {"super-admin.conf", 2376, 0600}, {"kubelet.conf", 2325, 0600},
    {"controller-manager.conf", 2365, 0600}, {"scheduler.conf", 2317, 0600},
};
#define NFILES (sizeof files / sizeof files[0])

static void die(const char *what, const char *path) {
    fprintf(stderr, "write_floor: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) die("fsync", path);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: write_floor OUT_DIR\n"); return 2; }
    const char *out = argv[1];
    char buf[4096], path[4096], tmp[4096];
    memset(buf, 'A', sizeof buf);
    const char *dirs[] = {"", "/pki", "/pki/etcd"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s%s", out, dirs[i]);
        if (mkdir(path, 0755) != 0) die("mkdir", path);
    }
    for (size_t i = 0; i < NFILES; i++) {
        snprintf(tmp, sizeof tmp, "%s/%s.tmp", out, files[i].path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) die("open", tmp);
        if (fchmod(fd, files[i].mode) != 0) die("fchmod", tmp);
        if (write(fd, buf, files[i].size) != files[i].size) die("write", tmp);
        close(fd);
    }
    int root = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0 || syncfs(root) != 0) die("syncfs", out);
    close(root);
    for (size_t i = 0; i < NFILES; i++) {
        snprintf(tmp, sizeof tmp, "%s/%s.tmp", out, files[i].path);
        snprintf(path, sizeof path, "%s/%s", out, files[i].path);
        if (rename(tmp, path) != 0) die("rename", tmp);
    }
    for (int i = 2; i >= 0; i--) {
        snprintf(path, sizeof path, "%s%s", out, dirs[i]);
        fsync_dir(path);
    }
    strncpy(path, out, sizeof path - 1);
    fsync_dir(dirname(path));
    return 0;
}
