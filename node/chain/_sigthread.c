/* A native signature-check thread for node/chain/sigpool.py (`--par N`: N - 1 of them).
 *
 * Why native: a worker process costs the connecting thread a pickle per message, a pipe poll
 * and read per answer, and its check runs slower than one in line (about 73 us against 58);
 * a Python thread would need the GIL back after every libsecp256k1 call, and the busy
 * connecting thread hands it over only every switch interval. This thread never touches a
 * Python object: the connecting thread copies each message's jobs into plain records
 * (submit), the thread checks them with the GIL nowhere in sight, and the connecting thread
 * takes the verdicts (result) or awaits one with the GIL released (wait).
 *
 * A check is core/sigcheck.py's job_ok, the same function in C: the key's hash160 must be the
 * spent address, and the signature must hold over core/crypto.py's sighash (sha256d of
 * SIGHASH_TAG, txid, input index LE32, spent value LE64, spent address). The libsecp256k1 calls
 * are coincurve's own (function pointers and context from its cffi module, passed in by
 * sigthread.py), so the verify is exactly the in-line one; tests/unit check the two agree on
 * good, bad and malformed jobs. Hashing is OpenSSL's, as core/_hashes.c's.
 *
 * Verifier(parse_sig, parse_pubkey, verify, ctx, nice) -> starts the thread (at `nice` when
 *     the system allows: the connecting thread is the one everything waits on).
 * submit(jobs: list of job tuples) -> ticket: copies them; checked in submission order.
 * result(ticket) -> bytes (one verdict byte per job; b"" if cancelled) or None if not done;
 *     a ticket's result is given once.
 * wait(ticket, ms) -> bool: True when done (or cancelled) within ms, the GIL released meanwhile.
 * cancel(ticket) -> bool: True when the thread had not started it (it never will).
 * close(): stops the thread (waits for the message it is on).
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <openssl/ripemd.h>
#include <openssl/sha.h>

static const char TAG[] = "dotbit/sighash/v1";
#define TAG_LEN (sizeof(TAG) - 1)
#define MAX_JOBS 4096            /* per message: sigpool sends 8 to 16 */

typedef struct { unsigned char data[64]; } secp_sig;
typedef struct { unsigned char data[64]; } secp_pub;
typedef int (*parse_sig_fn)(const void *, secp_sig *, const unsigned char *);
typedef int (*parse_pub_fn)(const void *, secp_pub *, const unsigned char *, size_t);
typedef int (*verify_fn)(const void *, const secp_sig *, const unsigned char *, const secp_pub *);

typedef struct {
    unsigned char txid[32], address[20], pubkey[33], sig[64];
    uint32_t index;
    uint64_t value;
    int shaped;                  /* 0: a field had the wrong length, so the job fails */
} record;

enum { QUEUED, RUNNING, DONE, CANCELLED };

typedef struct msg {
    struct msg *next;
    long long ticket;
    Py_ssize_t n;
    int state;
    record *recs;
    unsigned char *out;
} msg;

typedef struct {
    PyObject_HEAD
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    msg *head, *tail;            /* every message not yet taken by result(), in order */
    long long next_ticket;
    int stop, started, inited, nice;
    parse_sig_fn parse_sig;
    parse_pub_fn parse_pub;
    verify_fn verify;
    const void *ctx;
} Verifier;

static int check(const Verifier *v, const record *r)
{
    unsigned char h[32], h160[20], pre[TAG_LEN + 32 + 4 + 8 + 20], digest[32];
    secp_sig sig;
    secp_pub pub;
    if (!r->shaped)
        return 0;
    SHA256(r->pubkey, 33, h);
    RIPEMD160(h, 32, h160);
    if (memcmp(h160, r->address, 20) != 0)
        return 0;
    unsigned char *p = pre;
    memcpy(p, TAG, TAG_LEN); p += TAG_LEN;
    memcpy(p, r->txid, 32); p += 32;
    for (int i = 0; i < 4; i++) *p++ = (unsigned char)(r->index >> (8 * i));
    for (int i = 0; i < 8; i++) *p++ = (unsigned char)(r->value >> (8 * i));
    memcpy(p, r->address, 20);
    SHA256(pre, sizeof(pre), h);
    SHA256(h, 32, digest);
    if (!v->parse_sig(v->ctx, &sig, r->sig))
        return 0;
    if (!v->parse_pub(v->ctx, &pub, r->pubkey, 33))
        return 0;
    return v->verify(v->ctx, &sig, digest, &pub) == 1;
}

static void *run(void *arg)
{
    Verifier *v = (Verifier *)arg;
    if (v->nice)                 /* Linux: a thread's nice value is its own */
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), v->nice);
    pthread_mutex_lock(&v->lock);
    for (;;) {
        msg *m = v->head;
        while (m && m->state != QUEUED)
            m = m->next;
        if (!m) {
            if (v->stop)
                break;
            pthread_cond_wait(&v->work, &v->lock);
            continue;
        }
        m->state = RUNNING;
        pthread_mutex_unlock(&v->lock);
        for (Py_ssize_t i = 0; i < m->n; i++)
            m->out[i] = (unsigned char)check(v, &m->recs[i]);
        pthread_mutex_lock(&v->lock);
        m->state = DONE;
        pthread_cond_broadcast(&v->done);
    }
    pthread_mutex_unlock(&v->lock);
    return NULL;
}

static void free_msg(msg *m)
{
    PyMem_RawFree(m->recs);
    PyMem_RawFree(m->out);
    PyMem_RawFree(m);
}

static int copy_bytes(PyObject *o, unsigned char *dst, Py_ssize_t len)
{
    if (!PyBytes_Check(o) || PyBytes_GET_SIZE(o) != len)
        return 0;
    memcpy(dst, PyBytes_AS_STRING(o), (size_t)len);
    return 1;
}

/* One job tuple (tx_pos, index, txid, value, address, pubkey, sig) into a record. A txid that
 * is not 32 bytes or a number out of range is a caller's bug (ValueError); a key, signature
 * or address of the wrong length is a failing job, as in job_ok. */
static int fill(record *r, PyObject *job)
{
    if (!PyTuple_Check(job) || PyTuple_GET_SIZE(job) != 7) {
        PyErr_SetString(PyExc_ValueError, "a job is a tuple of 7");
        return -1;
    }
    unsigned long long index = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(job, 1));
    unsigned long long value = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(job, 3));
    if (PyErr_Occurred())
        return -1;
    if (index > 0xFFFFFFFFULL || !copy_bytes(PyTuple_GET_ITEM(job, 2), r->txid, 32)) {
        PyErr_SetString(PyExc_ValueError, "a job's input index or txid is out of shape");
        return -1;
    }
    r->index = (uint32_t)index;
    r->value = (uint64_t)value;
    r->shaped = copy_bytes(PyTuple_GET_ITEM(job, 4), r->address, 20)
                && copy_bytes(PyTuple_GET_ITEM(job, 5), r->pubkey, 33)
                && copy_bytes(PyTuple_GET_ITEM(job, 6), r->sig, 64);
    return 0;
}

static PyObject *v_submit(Verifier *v, PyObject *jobs)
{
    if (!PyList_Check(jobs)) {
        PyErr_SetString(PyExc_TypeError, "submit takes a list of jobs");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(jobs);
    if (n < 1 || n > MAX_JOBS) {
        PyErr_SetString(PyExc_ValueError, "submit takes 1 to 4096 jobs");
        return NULL;
    }
    if (!v->started || v->stop) {
        PyErr_SetString(PyExc_OSError, "the verifier is closed");
        return NULL;
    }
    msg *m = PyMem_RawCalloc(1, sizeof(msg));
    if (m) {
        m->recs = PyMem_RawMalloc(sizeof(record) * (size_t)n);
        m->out = PyMem_RawMalloc((size_t)n);
    }
    if (!m || !m->recs || !m->out) {
        if (m) free_msg(m);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (fill(&m->recs[i], PyList_GET_ITEM(jobs, i)) < 0) {
            free_msg(m);
            return NULL;
        }
    }
    m->n = n;
    m->state = QUEUED;
    pthread_mutex_lock(&v->lock);
    m->ticket = v->next_ticket++;
    if (v->tail) v->tail->next = m; else v->head = m;
    v->tail = m;
    pthread_cond_signal(&v->work);
    pthread_mutex_unlock(&v->lock);
    return PyLong_FromLongLong(m->ticket);
}

static msg *find(Verifier *v, long long ticket, msg **prev)
{
    msg *p = NULL, *m = v->head;
    while (m && m->ticket != ticket) { p = m; m = m->next; }
    if (prev) *prev = p;
    return m;
}

static PyObject *v_result(Verifier *v, PyObject *arg)
{
    long long ticket = PyLong_AsLongLong(arg);
    if (ticket == -1 && PyErr_Occurred())
        return NULL;
    msg *prev, *m;
    pthread_mutex_lock(&v->lock);
    m = find(v, ticket, &prev);
    if (m && (m->state == DONE || m->state == CANCELLED)) {
        if (prev) prev->next = m->next; else v->head = m->next;
        if (v->tail == m) v->tail = prev;
    } else if (m) {
        m = NULL;                /* not done yet */
        pthread_mutex_unlock(&v->lock);
        Py_RETURN_NONE;
    }
    pthread_mutex_unlock(&v->lock);
    if (!m) {
        PyErr_SetString(PyExc_KeyError, "no such ticket (or its result was taken)");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize((const char *)m->out, m->state == DONE ? m->n : 0);
    free_msg(m);
    return out;
}

static PyObject *v_wait(Verifier *v, PyObject *args)
{
    long long ticket;
    double ms;
    if (!PyArg_ParseTuple(args, "Ld", &ticket, &ms))
        return NULL;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = until.tv_nsec + (long long)(ms * 1e6);
    until.tv_sec += ns / 1000000000LL;
    until.tv_nsec = ns % 1000000000LL;
    int ready = 0, rc = 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&v->lock);
    for (;;) {
        msg *m = find(v, ticket, NULL);
        ready = !m || m->state == DONE || m->state == CANCELLED;
        if (ready || rc == ETIMEDOUT)
            break;
        rc = pthread_cond_timedwait(&v->done, &v->lock, &until);
    }
    pthread_mutex_unlock(&v->lock);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(ready);
}

static PyObject *v_cancel(Verifier *v, PyObject *arg)
{
    long long ticket = PyLong_AsLongLong(arg);
    if (ticket == -1 && PyErr_Occurred())
        return NULL;
    int cancelled = 0;
    pthread_mutex_lock(&v->lock);
    msg *m = find(v, ticket, NULL);
    if (m && m->state == QUEUED) {
        m->state = CANCELLED;
        cancelled = 1;
    }
    pthread_mutex_unlock(&v->lock);
    return PyBool_FromLong(cancelled);
}

static void stop_thread(Verifier *v)
{
    if (!v->started)
        return;
    pthread_mutex_lock(&v->lock);
    v->stop = 1;
    for (msg *m = v->head; m; m = m->next)
        if (m->state == QUEUED)
            m->state = CANCELLED;
    pthread_cond_broadcast(&v->work);
    pthread_mutex_unlock(&v->lock);
    Py_BEGIN_ALLOW_THREADS
    pthread_join(v->thread, NULL);
    Py_END_ALLOW_THREADS
    v->started = 0;
}

static PyObject *v_close(Verifier *v, PyObject *unused)
{
    stop_thread(v);
    Py_RETURN_NONE;
}

static int v_init(Verifier *v, PyObject *args, PyObject *kw)
{
    unsigned long long ps, pp, vf, ctx;
    int nice = 0;
    if (v->inited) {             /* once per object: its lock and queue are live */
        PyErr_SetString(PyExc_RuntimeError, "already started");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "KKKK|i", &ps, &pp, &vf, &ctx, &nice))
        return -1;
    if (!ps || !pp || !vf || !ctx) {
        PyErr_SetString(PyExc_ValueError, "null function or context");
        return -1;
    }
    v->parse_sig = (parse_sig_fn)(uintptr_t)ps;
    v->parse_pub = (parse_pub_fn)(uintptr_t)pp;
    v->verify = (verify_fn)(uintptr_t)vf;
    v->ctx = (const void *)(uintptr_t)ctx;
    v->nice = nice;
    v->head = v->tail = NULL;
    v->next_ticket = 1;
    v->stop = 0;
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->work, NULL);
    pthread_cond_init(&v->done, NULL);
    v->inited = 1;
    if (pthread_create(&v->thread, NULL, run, v) != 0) {
        PyErr_SetString(PyExc_OSError, "cannot start the verifier thread");
        return -1;
    }
    v->started = 1;
    return 0;
}

static void v_dealloc(Verifier *v)
{
    stop_thread(v);
    msg *m = v->head;
    while (m) { msg *next = m->next; free_msg(m); m = next; }
    v->head = v->tail = NULL;
    if (v->inited) {
        pthread_cond_destroy(&v->done);
        pthread_cond_destroy(&v->work);
        pthread_mutex_destroy(&v->lock);
    }
    Py_TYPE(v)->tp_free((PyObject *)v);
}

static PyMethodDef v_methods[] = {
    {"submit", (PyCFunction)v_submit, METH_O, "queue a list of jobs; returns its ticket"},
    {"result", (PyCFunction)v_result, METH_O, "verdict bytes once done (b'' if cancelled), else None"},
    {"wait", (PyCFunction)v_wait, METH_VARARGS, "await a ticket up to ms milliseconds"},
    {"cancel", (PyCFunction)v_cancel, METH_O, "True when the ticket was not started (now never)"},
    {"close", (PyCFunction)v_close, METH_NOARGS, "stop the thread"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject VerifierType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "node.chain._sigthread.Verifier",
    .tp_basicsize = sizeof(Verifier),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)v_init,
    .tp_dealloc = (destructor)v_dealloc,
    .tp_methods = v_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sigthread", "native signature-check threads", -1, NULL,
};

PyMODINIT_FUNC PyInit__sigthread(void)
{
    if (PyType_Ready(&VerifierType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&VerifierType);
    if (PyModule_AddObject(m, "Verifier", (PyObject *)&VerifierType) < 0) {
        Py_DECREF(&VerifierType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
