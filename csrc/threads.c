/*
 * Splitting work over native threads: a persistent pool of worker threads that pull parts from a shared
 * counter. Which texts a part holds is decided by the caller from the texts alone, and every part is
 * computed the same way by whichever thread takes it, so results never depend on the number of threads,
 * on scheduling or on load (a descheduled thread only delays its current part; the others take the rest).
 *
 * The pool is started on first use, grows to the largest thread count asked for, and serves one job at a
 * time: a call that finds it busy (another Python thread is in the kernel) runs its parts on its own
 * thread. After fork() the child has no pool threads; pthread_atfork resets the pool there, so a forked
 * child (a Spark or gunicorn worker) starts its own on first use.
 */
#include "kernel.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define ST_MAX_THREADS 1024

typedef struct {
    pthread_mutex_t lock;       /* guards everything below */
    pthread_cond_t wake, done;
    pthread_mutex_t job_lock;   /* held by the one caller whose job the pool runs */
    int started;                /* worker threads running */
    unsigned long generation;   /* bumped for every job */
    st_task_fn fn;
    void *ctx;
    int n_parts, wanted;        /* wanted: workers that may join this job */
    atomic_int next;            /* the next part to take */
    int running;                /* workers still on the current job */
    st_interrupt *it;           /* the job's interrupt flag, or NULL */
} st_pool_state;

static st_pool_state pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
                             PTHREAD_MUTEX_INITIALIZER, 0, 0, NULL, NULL, 0, 0, 0, 0, NULL};
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* ------------------------------------------------------------------ Ctrl-C */

static int64_t now_ns(void) {
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void st_interrupt_begin(st_interrupt *it) {
    it->caller = pthread_self();
    atomic_store_explicit(&it->stop, 0, memory_order_relaxed);
    it->next_ns = now_ns() + (int64_t)ST_POLL_MS * 1000000;
    it->ts = PyEval_SaveThread();
}

void st_interrupt_end(st_interrupt *it) { PyEval_RestoreThread(it->ts); }

int st_interrupt_poll(st_interrupt *it) {
    if (atomic_load_explicit(&it->stop, memory_order_relaxed)) return 1;
    if (!pthread_equal(pthread_self(), it->caller)) return 0;
    int64_t now = now_ns();
    if (now < it->next_ns) return 0;
    it->next_ns = now + (int64_t)ST_POLL_MS * 1000000;
    PyEval_RestoreThread(it->ts); /* pending signal handlers run in the thread that holds the GIL */
    int raised = PyErr_CheckSignals() < 0;
    it->ts = PyEval_SaveThread(); /* the exception stays set in this thread's state */
    if (raised) atomic_store_explicit(&it->stop, 1, memory_order_relaxed);
    return raised;
}

static inline int stopped(const st_interrupt *it) {
    return it && atomic_load_explicit(&((st_interrupt *)it)->stop, memory_order_relaxed);
}

static void take_parts(st_task_fn fn, void *ctx, int n_parts, st_interrupt *it) {
    int part;
    while ((part = atomic_fetch_add_explicit(&pool.next, 1, memory_order_relaxed)) < n_parts) {
        if (stopped(it)) continue; /* the rest of the parts are skipped */
        fn(ctx, part, n_parts);
    }
}

static void *worker(void *arg) {
    int index = (int)(intptr_t)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (pool.generation == seen) pthread_cond_wait(&pool.wake, &pool.lock);
        seen = pool.generation;
        if (index >= pool.wanted) continue; /* not needed for this job */
        st_task_fn fn = pool.fn;
        void *ctx = pool.ctx;
        int n_parts = pool.n_parts;
        st_interrupt *it = pool.it;
        pthread_mutex_unlock(&pool.lock);
        take_parts(fn, ctx, n_parts, it);
        pthread_mutex_lock(&pool.lock);
        if (--pool.running == 0) pthread_cond_signal(&pool.done);
    }
    return NULL;
}

static void reset_in_child(void) {
    /* only the forking thread survives fork(): forget the pool's threads and locks */
    pthread_mutex_init(&pool.lock, NULL);
    pthread_mutex_init(&pool.job_lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.started = 0;
    pool.generation = 0;
    pool.running = 0;
    pool.it = NULL;
}

static void register_atfork(void) { pthread_atfork(NULL, NULL, reset_in_child); }

/* Make sure `n` worker threads run; returns how many do (fewer if a thread could not be started). */
static int ensure_workers(int n) {
    while (pool.started < n) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, worker, (void *)(intptr_t)pool.started);
        pthread_attr_destroy(&attr);
        if (failed) break;
        pool.started++;
    }
    return pool.started < n ? pool.started : n;
}

int st_run_parallel(st_task_fn fn, void *ctx, int n_parts, int n_threads, st_interrupt *it) {
    if (n_threads > ST_MAX_THREADS) n_threads = ST_MAX_THREADS;
    if (n_threads <= 1 || n_parts <= 1 || pthread_mutex_trylock(&pool.job_lock) != 0) {
        for (int part = 0; part < n_parts; part++) {
            if (it && st_interrupt_poll(it)) break;
            fn(ctx, part, n_parts);
        }
        return 0;
    }
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&pool.lock);
    int helpers = ensure_workers((n_threads < n_parts ? n_threads : n_parts) - 1);
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n_parts = n_parts;
    pool.it = it;
    pool.wanted = helpers;
    pool.running = helpers;
    atomic_store_explicit(&pool.next, 0, memory_order_relaxed);
    pool.generation++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    take_parts(fn, ctx, n_parts, it); /* the caller works too */
    pthread_mutex_lock(&pool.lock);
    while (pool.running > 0) {
        if (!it) {
            pthread_cond_wait(&pool.done, &pool.lock);
            continue;
        }
        /* waiting for the workers: wake every ST_POLL_MS to run pending signal handlers */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)ST_POLL_MS * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&pool.done, &pool.lock, &until);
        if (pool.running > 0) {
            pthread_mutex_unlock(&pool.lock);
            st_interrupt_poll(it);
            pthread_mutex_lock(&pool.lock);
        }
    }
    pool.it = NULL;
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool.job_lock);
    return 0;
}
