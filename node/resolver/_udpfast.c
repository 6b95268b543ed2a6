/* The DNS UDP drain's cached answers in one C call (node/resolver/dns_server.py), and the
 * Python path's answers sent together (send, below).
 *
 * drain(fd, answers, counts, check, limit) reads up to `limit` datagrams with recvmmsg, and for
 * each: calls check(host) when `check` is not None (the rate limiter: exactly one check per
 * datagram, as the Python drain makes), then looks the query up in `answers` (Responder._raw:
 * (False, query[2:]) -> (answer[2:], valid until as time.monotonic, counts index)); a kept,
 * unexpired answer is counted in `counts` and sent with the query's ID (sendmmsg, a batch per
 * read). Everything else is returned as [(query bytes, address, verdict)] for the Python path
 * to answer, so the answer for any query is the same bytes either way; only the per-datagram
 * interpreter and syscall overhead of a cached hit goes. Linux only (recvmmsg/sendmmsg); the
 * build makes it optional and dns_server.py falls back to the Python drain without it.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64
#define BUFSZ 65536              /* the largest UDP payload: a query is never cut short */

static unsigned char *bufs;      /* BATCH x BUFSZ, allocated on first use */
static struct mmsghdr msgs[BATCH], out[BATCH];
static struct iovec iov[BATCH], oiov[BATCH];
static struct sockaddr_storage addrs[BATCH];

static double monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The address's text (a new reference). The last one is kept: a busy client sends datagram
 * after datagram from one address, and the limiter is asked about each. */
static PyObject *last_host;
static unsigned char last_ip[16];
static int last_family;

static PyObject *host_of(const struct sockaddr_storage *a) {
    char text[INET6_ADDRSTRLEN];
    int v6 = a->ss_family == AF_INET6;
    const void *src = v6 ? (const void *)&((const struct sockaddr_in6 *)a)->sin6_addr
                         : (const void *)&((const struct sockaddr_in *)a)->sin_addr;
    size_t size = v6 ? 16 : 4;
    if (last_host && last_family == a->ss_family && memcmp(last_ip, src, size) == 0) {
        Py_INCREF(last_host);
        return last_host;
    }
    if (!inet_ntop(a->ss_family, src, text, sizeof text))
        return PyErr_SetFromErrno(PyExc_OSError);
    PyObject *host = PyUnicode_FromString(text);
    if (host) {
        Py_XSETREF(last_host, Py_NewRef(host));
        memcpy(last_ip, src, size);
        last_family = a->ss_family;
    }
    return host;
}

/* (host, port) as socket.recvfrom gives it (AF_INET6: (host, port, flowinfo, scope_id)). */
static PyObject *address_of(const struct sockaddr_storage *a, PyObject *host) {
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a;
        return Py_BuildValue("(OiII)", host, ntohs(s->sin6_port), ntohl(s->sin6_flowinfo), s->sin6_scope_id);
    }
    return Py_BuildValue("(Oi)", host, ntohs(((const struct sockaddr_in *)a)->sin_port));
}

/* The kept answer's bytes (borrowed) and its counts index, or NULL (a miss; -1 set on error). */
static PyObject *kept(PyObject *answers, const unsigned char *q, Py_ssize_t n, double now, Py_ssize_t *index,
                      int *error) {
    PyObject *tail = PyBytes_FromStringAndSize((const char *)q + 2, n - 2);
    if (!tail) { *error = 1; return NULL; }
    PyObject *key = PyTuple_Pack(2, Py_False, tail);
    Py_DECREF(tail);
    if (!key) { *error = 1; return NULL; }
    PyObject *hit = PyDict_GetItemWithError(answers, key);
    Py_DECREF(key);
    if (!hit) { *error = PyErr_Occurred() != NULL; return NULL; }
    if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) != 3 || !PyBytes_Check(PyTuple_GET_ITEM(hit, 0)))
        return NULL;
    double until = PyFloat_AsDouble(PyTuple_GET_ITEM(hit, 1));
    Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(hit, 2));
    if (PyErr_Occurred()) { *error = 1; return NULL; }
    if (!(until > now) || PyBytes_GET_SIZE(PyTuple_GET_ITEM(hit, 0)) + 2 > BUFSZ)
        return NULL;
    *index = i;
    return PyTuple_GET_ITEM(hit, 0);
}

static int count(PyObject *counts, Py_ssize_t i) {
    PyObject *c = PyList_GetItem(counts, i);          /* borrowed; IndexError on a bad index */
    if (!c) return -1;
    PyObject *one = PyLong_FromLong(1);
    PyObject *sum = one ? PyNumber_Add(c, one) : NULL;
    Py_XDECREF(one);
    return sum ? PyList_SetItem(counts, i, sum) : -1;
}

static void send_all(int fd, int n) {
    int sent = 0;
    while (sent < n) {
        int r = sendmmsg(fd, out + sent, n - sent, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR) continue;
        sent += r > 0 ? r : 1;       /* a failed send is skipped, as the Python drain skips it */
    }
}

/* One datagram: answered from `answers` (queued in out[*queued]) or appended to `misses`. */
static int one(int k, Py_ssize_t n, PyObject *answers, PyObject *counts, PyObject *check, double now,
               PyObject *misses, int *queued) {
    unsigned char *q = bufs + (size_t)k * BUFSZ;
    PyObject *host = NULL;
    long verdict = 0;
    if (check != Py_None) {
        if (!(host = host_of(&addrs[k]))) return -1;
        PyObject *r = PyObject_CallOneArg(check, host);
        if (!r) goto fail;
        verdict = PyLong_AsLong(r);
        Py_DECREF(r);
        if (verdict == -1 && PyErr_Occurred()) goto fail;
    }
    if (verdict == 0 && n >= 12 && !(q[2] & 0x80)) {
        Py_ssize_t index = 0;
        int error = 0;
        PyObject *answer = kept(answers, q, n, now, &index, &error);
        if (error) goto fail;
        if (answer) {
            if (count(counts, index) < 0) goto fail;
            Py_ssize_t size = PyBytes_GET_SIZE(answer);
            memcpy(q + 2, PyBytes_AS_STRING(answer), size);      /* the query's ID stays in q[0:2] */
            oiov[*queued].iov_base = q;
            oiov[*queued].iov_len = size + 2;
            memset(&out[*queued], 0, sizeof out[*queued]);
            out[*queued].msg_hdr.msg_iov = &oiov[*queued];
            out[*queued].msg_hdr.msg_iovlen = 1;
            out[*queued].msg_hdr.msg_name = &addrs[k];
            out[*queued].msg_hdr.msg_namelen = msgs[k].msg_hdr.msg_namelen;
            (*queued)++;
            Py_XDECREF(host);
            return 0;
        }
    }
    if (!host && !(host = host_of(&addrs[k]))) return -1;
    PyObject *addr = address_of(&addrs[k], host);
    PyObject *item = addr ? Py_BuildValue("(y#Nl)", (const char *)q, n, addr, verdict) : NULL;
    Py_DECREF(host);
    if (!item) return -1;
    int rc = PyList_Append(misses, item);
    Py_DECREF(item);
    return rc;
fail:
    Py_XDECREF(host);
    return -1;
}

static PyObject *drain(PyObject *self, PyObject *args) {
    int fd;
    PyObject *answers, *counts, *check;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "iO!O!On", &fd, &PyDict_Type, &answers, &PyList_Type, &counts, &check, &limit))
        return NULL;
    if (!bufs && !(bufs = malloc((size_t)BATCH * BUFSZ)))
        return PyErr_NoMemory();
    PyObject *misses = PyList_New(0);
    if (!misses) return NULL;
    Py_ssize_t done = 0;
    while (done < limit) {
        int want = limit - done < BATCH ? (int)(limit - done) : BATCH;
        for (int k = 0; k < want; k++) {
            iov[k].iov_base = bufs + (size_t)k * BUFSZ;
            iov[k].iov_len = BUFSZ;
            memset(&msgs[k], 0, sizeof msgs[k]);
            msgs[k].msg_hdr.msg_iov = &iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
            msgs[k].msg_hdr.msg_name = &addrs[k];
            msgs[k].msg_hdr.msg_namelen = sizeof addrs[k];
        }
        int n = recvmmsg(fd, msgs, want, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            done++;                  /* EINTR, or an ICMP error of a client gone: go on */
            continue;
        }
        if (n == 0) break;
        double now = monotonic();
        int queued = 0;
        for (int k = 0; k < n; k++) {
            if (one(k, msgs[k].msg_len, answers, counts, check, now, misses, &queued) < 0) {
                send_all(fd, queued);
                Py_DECREF(misses);
                return NULL;
            }
        }
        send_all(fd, queued);
        done += n;
    }
    return misses;
}

/* A socket.recvfrom address ((host, port), or (host, port, flowinfo, scope_id)) as a sockaddr;
 * -1 with ValueError/TypeError for anything else (the caller then sends from Python). */
static int sockaddr_of(PyObject *addr, struct sockaddr_storage *ss, socklen_t *size) {
    Py_ssize_t n = PyTuple_Check(addr) ? PyTuple_GET_SIZE(addr) : 0;
    if (n != 2 && n != 4) {
        PyErr_SetString(PyExc_TypeError, "an address is (host, port) or (host, port, flowinfo, scope_id)");
        return -1;
    }
    const char *host = PyUnicode_AsUTF8(PyTuple_GET_ITEM(addr, 0));
    if (!host) return -1;
    long port = PyLong_AsLong(PyTuple_GET_ITEM(addr, 1));
    if (port == -1 && PyErr_Occurred()) return -1;
    memset(ss, 0, sizeof *ss);
    int ok;
    if (n == 2) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((unsigned short)port);
        ok = inet_pton(AF_INET, host, &a->sin_addr) == 1;
        *size = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((unsigned short)port);
        a->sin6_flowinfo = htonl((uint32_t)PyLong_AsUnsignedLong(PyTuple_GET_ITEM(addr, 2)));
        a->sin6_scope_id = (uint32_t)PyLong_AsUnsignedLong(PyTuple_GET_ITEM(addr, 3));
        if (PyErr_Occurred()) return -1;
        ok = inet_pton(AF_INET6, host, &a->sin6_addr) == 1;     /* "fe80::1%eth0" is not: Python sends it */
        *size = sizeof *a;
    }
    if (!ok || port < 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "not a numeric address");
        return -1;
    }
    return 0;
}

/* send(fd, [(answer, address)]): up to BATCH answers a batch's Python path made, sent with one
 * sendmmsg instead of a sendto each. Every address is read before anything is sent, so an error
 * means nothing was sent (the caller then sends them from Python); a failed send is skipped, as
 * socket.sendto's OSError is. */
static PyObject *send_answers(PyObject *self, PyObject *args) {
    int fd;
    PyObject *items;
    if (!PyArg_ParseTuple(args, "iO!", &fd, &PyList_Type, &items))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(items);
    if (n > BATCH) {
        PyErr_SetString(PyExc_ValueError, "more answers than one sendmmsg takes");
        return NULL;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *item = PyList_GET_ITEM(items, k);
        socklen_t size;
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(item, 0))) {
            PyErr_SetString(PyExc_TypeError, "items are (bytes, address)");
            return NULL;
        }
        if (sockaddr_of(PyTuple_GET_ITEM(item, 1), &addrs[k], &size) < 0)
            return NULL;
        oiov[k].iov_base = PyBytes_AS_STRING(PyTuple_GET_ITEM(item, 0));
        oiov[k].iov_len = PyBytes_GET_SIZE(PyTuple_GET_ITEM(item, 0));
        memset(&out[k], 0, sizeof out[k]);
        out[k].msg_hdr.msg_iov = &oiov[k];
        out[k].msg_hdr.msg_iovlen = 1;
        out[k].msg_hdr.msg_name = &addrs[k];
        out[k].msg_hdr.msg_namelen = size;
    }
    send_all(fd, (int)n);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"drain", drain, METH_VARARGS, "drain(fd, answers, counts, check, limit) -> [(query, address, verdict)]"},
    {"send", send_answers, METH_VARARGS, "send(fd, [(answer, address)] of at most 64): one sendmmsg"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_udpfast", NULL, -1, methods};

PyMODINIT_FUNC PyInit__udpfast(void) { return PyModule_Create(&module); }
