/*
 * Splitting work over native threads. A call with n parts starts n - 1 POSIX threads and runs part 0 on
 * the calling thread; which texts a part handles is decided by the caller from the texts alone, never
 * from timing, so results do not depend on the number of threads.
 */
#include "kernel.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct {
    st_task_fn fn;
    void *ctx;
    int part, n_parts;
} st_job;

static void *run_job(void *arg) {
    st_job *job = (st_job *)arg;
    job->fn(job->ctx, job->part, job->n_parts);
    return NULL;
}

int st_run_parallel(st_task_fn fn, void *ctx, int n_parts) {
    if (n_parts <= 1) {
        fn(ctx, 0, 1);
        return 0;
    }
    st_job *jobs = malloc(sizeof(st_job) * (size_t)n_parts);
    pthread_t *threads = malloc(sizeof(pthread_t) * (size_t)n_parts);
    char *started = calloc((size_t)n_parts, 1);
    if (!jobs || !threads || !started) {
        free(jobs);
        free(threads);
        free(started);
        for (int part = 0; part < n_parts; part++) fn(ctx, part, n_parts);
        return -1;
    }
    int failed = 0;
    for (int part = 1; part < n_parts; part++) {
        jobs[part].fn = fn;
        jobs[part].ctx = ctx;
        jobs[part].part = part;
        jobs[part].n_parts = n_parts;
        if (pthread_create(&threads[part], NULL, run_job, &jobs[part]) == 0)
            started[part] = 1;
        else
            failed = 1;
    }
    fn(ctx, 0, n_parts);
    for (int part = 1; part < n_parts; part++) {
        if (started[part])
            pthread_join(threads[part], NULL);
        else
            fn(ctx, part, n_parts); /* could not start a thread: do its part here */
    }
    free(jobs);
    free(threads);
    free(started);
    return failed ? -1 : 0;
}
