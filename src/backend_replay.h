/* Backend "cpu-replay": the CPU backend with CUDA-graph semantics for
 * graph_begin / graph_end (see backend_replay.c), for tests. */
#ifndef QTTS_BACKEND_REPLAY_H
#define QTTS_BACKEND_REPLAY_H

#include "backend.h"

qtts_status qtts_backend_replay_init(qtts_backend *be, qtts_err *err);

typedef struct qtts_replay_stats {
    int64_t plain;        /* keys run plainly (first sight) */
    int64_t recorded;     /* keys recorded (second sight) */
    int64_t replayed;     /* recordings run, the run right after recording included */
    int64_t ops_replayed; /* ops those runs executed */
} qtts_replay_stats;
/* The counters so far; false when be is not a cpu-replay backend. */
bool qtts_backend_replay_stats(qtts_backend *be, qtts_replay_stats *out);

#endif
