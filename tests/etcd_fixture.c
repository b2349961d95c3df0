// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A real etcd for the etcd client's tests, and what a test saw of a client (etcd_fixture.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "etcd_fixture.h"

uint64_t etf_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void etf_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

int etf_in_path(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096], *save = NULL, *dir;

	snprintf(buf, sizeof(buf), "%s", path ? path : "/usr/bin:/bin");
	for (dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char file[4352];

		snprintf(file, sizeof(file), "%s/%s", dir, name);
		if (!access(file, X_OK))
			return 1;
	}
	return 0;
}

int etf_free_ports(int *a, int *b)
{
	int fds[2] = {-1, -1}, *out[2] = {a, b}, i, r = -1;

	for (i = 0; i < 2; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t len = sizeof(sa);

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)) ||
		    getsockname(fds[i], (struct sockaddr *)&sa, &len))
			goto out;
		*out[i] = ntohs(sa.sin_port);
	}
	r = 0;
out:
	for (i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return r;
}

pid_t etf_spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) ||
	    getppid() == 1)
		_exit(127);
	execvp(argv[0], argv);
	_exit(127);
}

int etf_run(char *const argv[])
{
	int st;
	pid_t pid = etf_spawn(argv, NULL);

	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *etf_path(const struct etf *f, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", f->dir, name);
	return buf;
}

const char *etf_pki_path(const struct etf *f, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/pki/%s", f->dir, name);
	return buf;
}

/* A shell that removes the directory once the test process is gone, even if it crashed
 * (.fini does not run then): it waits for EOF on a pipe whose only write end the test process
 * holds. A shell, not a fork that returns, so that valgrind (which skips /bin/sh) has no copy
 * of this process to report on. */
static void start_janitor(struct etf *f)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		return;
	f->janitor_pid = fork();
	if (!f->janitor_pid) {
		if (dup2(p[0], 0) == 0)
			execl("/bin/sh", "sh", "-c", "cat >/dev/null; sleep 0.2; rm -rf -- \"$0\"",
			      f->dir, (char *)NULL);
		_exit(127);
	}
	close(p[0]);
	if (f->janitor_pid < 0)
		close(p[1]);
	else
		f->janitor_fd = p[1];
}

void etf_set_client_port(struct etf *f, int port)
{
	f->cport = port;
	snprintf(f->url, sizeof(f->url), "%s://127.0.0.1:%d", f->tls ? "https" : "http", port);
}

int etf_init(struct etf *f, int tls)
{
	memset(f, 0, sizeof(*f));
	f->pid = f->janitor_pid = -1;
	f->janitor_fd = -1;
	f->tls = tls;
	snprintf(f->dir, sizeof(f->dir), "/tmp/sluice-etcd-XXXXXX");
	if (!mkdtemp(f->dir)) {
		f->dir[0] = '\0';
		return -1;
	}
	start_janitor(f);
	if (etf_free_ports(&f->cport, &f->pport))
		return -1;
	etf_set_client_port(f, f->cport);
	return tls ? etf_pki(f) : 0;
}

static size_t sink(char *d, size_t size, size_t n, void *arg)
{
	(void)d;
	(void)arg;
	return size * n;
}

static int healthy(const struct etf *f)
{
	char u[128], ca[128], cert[128], key[128];
	long code = 0;
	CURL *h = curl_easy_init();
	int ok;

	if (!h)
		return 0;
	snprintf(u, sizeof(u), "%s/health", f->url);
	ok = !curl_easy_setopt(h, CURLOPT_URL, u) && !curl_easy_setopt(h, CURLOPT_PROXY, "") &&
	     !curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 500L) &&
	     !curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	if (ok && f->tls)
		ok =
		    !curl_easy_setopt(h, CURLOPT_CAINFO, etf_pki_path(f, "ca.pem", ca, 128)) &&
		    !curl_easy_setopt(h, CURLOPT_SSLCERT, etf_pki_path(f, "root.pem", cert, 128)) &&
		    !curl_easy_setopt(h, CURLOPT_SSLKEY, etf_pki_path(f, "root.key", key, 128));
	ok = ok && !curl_easy_perform(h) && !curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) &&
	     code == 200;
	curl_easy_cleanup(h);
	return ok;
}

int etf_start(struct etf *f)
{
	char data[96], log[96], purl[64], cluster[96], cert[96], key[96], ca[96];
	char *argv[32] = {"etcd", "--name",
			  "t",	  "--data-dir",
			  data,	  "--listen-client-urls",
			  f->url, "--advertise-client-urls",
			  f->url, "--listen-peer-urls",
			  purl,	  "--initial-advertise-peer-urls",
			  purl,	  "--initial-cluster",
			  cluster};
	size_t n = 15, i;
	uint64_t end = etf_ms() + 10000;

	etf_path(f, "data", data, sizeof(data));
	etf_path(f, "etcd.log", log, sizeof(log));
	snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", f->pport);
	snprintf(cluster, sizeof(cluster), "t=%s", purl);
	if (f->tls) {
		argv[n++] = "--cert-file";
		argv[n++] = (char *)etf_pki_path(f, "server.pem", cert, sizeof(cert));
		argv[n++] = "--key-file";
		argv[n++] = (char *)etf_pki_path(f, "server.key", key, sizeof(key));
		argv[n++] = "--trusted-ca-file";
		argv[n++] = (char *)etf_pki_path(f, "ca.pem", ca, sizeof(ca));
		argv[n++] = "--client-cert-auth";
	}
	for (i = 0; i < 3 && f->extra[i]; i++)
		argv[n++] = (char *)f->extra[i];
	argv[n] = NULL;
	f->pid = etf_spawn(argv, log);
	if (f->pid < 0)
		return -1;
	while (etf_ms() < end) {
		if (waitpid(f->pid, NULL, WNOHANG) == f->pid) {
			f->pid = -1;
			return -1;
		}
		if (healthy(f))
			return 0;
		etf_sleep_ms(50);
	}
	return -1;
}

void etf_kill(struct etf *f)
{
	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
	}
	f->pid = -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void etf_fini(struct etf *f)
{
	etf_kill(f);
	if (f->dir[0])
		nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (f->janitor_fd >= 0)
		close(f->janitor_fd);
	if (f->janitor_pid > 0)
		waitpid(f->janitor_pid, NULL, 0);
	f->janitor_fd = -1;
	f->janitor_pid = -1;
}

int etf_ctl(const struct etf *f, const char *const *args)
{
	char ep[96], ca[128], cert[128], key[128];
	char *argv[24] = {"etcdctl", ep, "--dial-timeout=2s", "--command-timeout=3s"};
	size_t n = 4, i;

	snprintf(ep, sizeof(ep), "--endpoints=%s", f->url);
	if (f->tls) {
		snprintf(ca, sizeof(ca), "--cacert=%s/pki/ca.pem", f->dir);
		snprintf(cert, sizeof(cert), "--cert=%s/pki/root.pem", f->dir);
		snprintf(key, sizeof(key), "--key=%s/pki/root.key", f->dir);
		argv[n++] = ca;
		argv[n++] = cert;
		argv[n++] = key;
	}
	for (i = 0; args[i] && n < 23; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	return etf_run(argv);
}

/* The PKI's recipe: a shell script, run in dir/pki. */
static const char pki_script[] =
    "set -e\n"
    "cd \"$0\"\n"
    "cat >ext.cnf <<'EOF'\n"
    "[req]\n"
    "distinguished_name = dn\n"
    "[dn]\n"
    "[ca]\n"
    "basicConstraints = critical,CA:TRUE\n"
    "keyUsage = critical,keyCertSign,cRLSign\n"
    "subjectKeyIdentifier = hash\n"
    "[server]\n"
    "subjectAltName = IP:127.0.0.1\n"
    "extendedKeyUsage = serverAuth,clientAuth\n"
    "[client]\n"
    "extendedKeyUsage = clientAuth\n"
    "EOF\n"
    "ca() {\n"
    "  openssl req -config ext.cnf -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \\\n"
    "    -keyout \"$1.key\" -out \"$1.pem\" -days 1 -subj \"$2\" -extensions ca\n"
    "}\n"
    "leaf() { # name ca subject section\n"
    "  openssl req -config ext.cnf -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \\\n"
    "    -keyout \"$1.key\" -out \"$1.csr\" -subj \"$3\"\n"
    "  openssl x509 -req -in \"$1.csr\" -CA \"$2.pem\" -CAkey \"$2.key\" -CAcreateserial \\\n"
    "    -days 1 -out \"$1.pem\" -extfile ext.cnf -extensions \"$4\"\n"
    "}\n"
    "ca ca '/O=sluice test/CN=sluice test CA'\n"
    "ca ca2 '/O=elsewhere/CN=another CA'\n"
    "leaf server ca '/O=sluice test/CN=etcd server' server\n"
    "leaf root ca '/O=sluice test/CN=root' client\n"
    "leaf node-a ca '/O=sluice/OU=node-a' client\n"
    "leaf reader ca '/O=sluice/OU=reader' client\n"
    "leaf cn-node-a ca '/O=sluice/CN=node-a' client\n"
    "leaf intruder ca2 '/O=sluice/OU=node-a' client\n"
    "leaf enc ca '/O=sluice/OU=enc' client\n"
    "openssl pkey -in enc.key -aes256 -passout pass:x -out enc.key.new\n"
    "mv enc.key.new enc.key\n"
    "od -An -N12 -tx1 /dev/urandom | tr -d ' \\n' >node-a.pw\n"
    "od -An -N12 -tx1 /dev/urandom | tr -d ' \\n' >reader.pw\n"
    "chmod 600 *.key *.pw\n";

int etf_pki(const struct etf *f)
{
	char dir[96], log[96];
	char *argv[] = {"/bin/sh", "-c", (char *)pki_script, dir, NULL};
	int st;
	pid_t pid;

	etf_path(f, "pki", dir, sizeof(dir));
	etf_path(f, "pki.log", log, sizeof(log));
	if (mkdir(dir, 0700))
		return -1;
	pid = etf_spawn(argv, log);
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : -1;
}

/* ---- what a test has seen of a client ---- */

void view_free(struct view *v)
{
	sl_etcd_kvs_free(v->kvs, v->n);
	v->kvs = NULL;
	v->n = 0;
}

const struct sl_etcd_kv *view_get(const struct view *v, const char *key)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		if (!strcmp(v->kvs[i].key, key))
			return &v->kvs[i];
	return NULL;
}

int view_is(const struct view *v, const char *const *want)
{
	size_t i;

	for (i = 0; want[i]; i++) {
		const char *eq = strchr(want[i], '=');
		char key[256];
		const struct sl_etcd_kv *kv;

		snprintf(key, sizeof(key), "%.*s", (int)(eq - want[i]), want[i]);
		kv = view_get(v, key);
		if (!kv || strcmp(kv->value, eq + 1))
			return 0;
	}
	return i == v->n;
}

int view_take(struct sl_etcd *c, struct view *v)
{
	struct sl_etcd_kv *kvs = NULL;
	size_t n = 0;
	int r = sl_etcd_take(c, &kvs, &n, &v->connected);

	if (r == 1) {
		view_free(v);
		v->kvs = kvs;
		v->n = n;
		v->takes++;
	}
	return r;
}

int wait_for(struct sl_etcd *c, struct view *v, int conn, const char *const *want, int timeout_ms)
{
	uint64_t end = etf_ms() + (uint64_t)timeout_ms;
	struct pollfd pfd = {.fd = sl_etcd_fd(c), .events = POLLIN};

	for (;;) {
		uint64_t now;

		if (view_take(c, v) < 0)
			return -ENOMEM;
		if ((conn < 0 || v->connected == conn) && (!want || view_is(v, want)))
			return 0;
		now = etf_ms();
		if (now >= end)
			return -ETIMEDOUT;
		poll(&pfd, 1, (int)(end - now < 100 ? end - now : 100));
	}
}
