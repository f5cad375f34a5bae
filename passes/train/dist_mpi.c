/*
 * The MPI transport of dist.c (built only with -DHONE_MPI=ON, and into the
 * test program hone_mpi; the default hone links no MPI).
 *
 * A constructor registers the transport; it starts at the first rank query,
 * and only in a process that mpirun launched (OMPI_COMM_WORLD_SIZE or
 * PMIX_RANK set): the same binary started on its own stays one process and
 * never initialises MPI. Started, it duplicates MPI_COMM_WORLD with
 * MPI_ERRORS_RETURN, so a failed collective returns its code instead of
 * aborting inside MPI, and hone reports which operation failed.
 *
 * Ending: at exit (on_exit sees the status) a rank that succeeded, or failed
 * together with every other rank (hone_dist_agree), finalises; a rank that
 * failed alone aborts the job, since the others may be waiting in a
 * collective that will never complete. A rank that mpirun terminates because
 * another rank died prints one line saying so on its way out; outputs are only
 * written after training and atomically, so nothing partial is left behind.
 */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist.h"

static MPI_Comm comm = MPI_COMM_NULL;
static int my_rank, my_size;
static char term_msg[160];
static size_t term_len;

/* Elements per MPI call: counts are ints. */
#define CHUNK ((int64_t)1 << 28)

static void on_term(int sig)
{
    ssize_t w = write(STDERR_FILENO, term_msg, term_len);
    (void)w;
    _exit(128 + sig);
}

static void finish_at_exit(int status, void *arg)
{
    (void)arg;
    if (comm == MPI_COMM_NULL)
        return;
    if (status != 0 && !hone_dist_failed_together()) {
        fprintf(stderr, "hone: rank %d of %d exits with an error; stopping the other ranks\n",
                my_rank, my_size);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, status);
    }
    MPI_Comm_free(&comm);
    MPI_Finalize();
}

static bool under_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

static int start(int *rank, int *size)
{
    int provided, rc;
    if (!under_mpirun())
        return 1;
    if ((rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS)
        return rc;
    MPI_Comm_dup(MPI_COMM_WORLD, &comm);
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm, &my_rank);
    MPI_Comm_size(comm, &my_size);
    *rank = my_rank;
    *size = my_size;
    snprintf(term_msg, sizeof term_msg, "hone: rank %d of %d: stopped by mpirun because another "
             "rank failed or its connection broke; no output was written\n", my_rank, my_size);
    term_len = strlen(term_msg);
    signal(SIGTERM, on_term);
    on_exit(finish_at_exit, NULL);
    return 0;
}

/* Sums n elements of type dt (size bytes each) over the ranks in place. */
static int allreduce(void *v, int64_t n, MPI_Datatype dt, size_t size)
{
    int rc = MPI_SUCCESS;
    for (int64_t o = 0; o < n && rc == MPI_SUCCESS; o += CHUNK)
        rc = MPI_Allreduce(MPI_IN_PLACE, (char *)v + (size_t)o * size,
                           (int)(n - o < CHUNK ? n - o : CHUNK), dt, MPI_SUM, comm);
    return rc;
}

static int sum_f64(double *v, int64_t n)
{
    return allreduce(v, n, MPI_DOUBLE, sizeof *v);
}

static int sum_f32(float *v, int64_t n)
{
    return allreduce(v, n, MPI_FLOAT, sizeof *v);
}

static int bcast(void *v, int64_t bytes, int root)
{
    int rc = MPI_SUCCESS;
    for (int64_t o = 0; o < bytes && rc == MPI_SUCCESS; o += CHUNK)
        rc = MPI_Bcast((char *)v + o, (int)(bytes - o < CHUNK ? bytes - o : CHUNK), MPI_BYTE,
                       root, comm);
    return rc;
}

static void error(int code, char *buf, size_t n)
{
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, s, &len) != MPI_SUCCESS)
        snprintf(s, sizeof s, "MPI error %d", code);
    snprintf(buf, n, "%s", s);
}

static const hone_dist_transport mpi_transport = {
    .name = "mpi", .start = start, .sum_f64 = sum_f64, .sum_f32 = sum_f32, .bcast = bcast,
    .error = error,
};

__attribute__((constructor)) static void register_mpi(void)
{
    hone_dist_register(&mpi_transport);
}
