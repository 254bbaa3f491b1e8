/* qtts render JOB.json: validate the whole job (every error, each with its
 * JSON path) before any weights load, then render with continuous batching,
 * a durable journal and atomic outputs. SIGINT/SIGTERM finish the current
 * step and leave everything finished on disk; rerunning resumes. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <cJSON.h>
#include <errno.h>
#include <unistd.h>

#include "cli.h"
#include "journal.h"
#include "render.h"

/* The one mutable global of qtts: a signal handler can reach nothing else. */
static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f) {
    fprintf(f, "usage: qtts render JOB.json [options]\n"
               "  --max-batch N   utterances generated together (default: sized from memory, at most 64)\n"
               "  --fresh         forget the journal and previous outputs; render everything again\n"
               "  --chunk N --context N  decoder windows (default 300 and 25, as the official decoder)\n"
               "  --quiet         no progress bar or summary\n"
               "  --no-prefix-sharing  prefill every prompt whole (default: a session's common prompt prefix\n"
               "                  is prefilled once; the output is identical either way)\n"
               "  --decode-thread on|off|auto  decode and write items on a second thread (with the codec on\n"
               "                  its own backend) while generation goes on; auto (default): on with cuda.\n"
               "                  The files are the same bytes either way\n"
               "  --sync-stages   wait for the device between generation stages, so that the stage times in\n"
               "                  the manifest's summary are device times (benchmarks; slower)\n"
               "  --prefill-batch N  prompts prefilled in one pass when free slots are refilled (default 0:\n"
               "                  all of them, as far as the context size allows; 1: one by one)\n"
               "The job format is described in jobs/README.md. A rerun of the same job resumes: finished\n"
               "utterances come from the journal in the output folder, unchanged items are kept.\n"
               "Backend:\n");
    cli_backend_usage(f, 18);
}

static void print_errors(const char *path, const qtts_job_errors *e, const qtts_err *err) {
    if (e->n == 0) {
        fprintf(stderr, "qtts render: %s: %s\n", qtts_status_str(err->status), err->msg);
        return;
    }
    fprintf(stderr, "qtts render: %s: %d error%s:\n", path, e->n, e->n == 1 ? "" : "s");
    for (int i = 0; i < e->n; i++) fprintf(stderr, "  %s\n", e->msg[i]);
}

/* The job's model folder, resolved like the job loader does (relative to the
 * job file's folder), read before validation so that validation can check
 * speakers and languages against the model's config in the same pass. */
static bool job_model_dir(const char *job_path, char *out, size_t n) {
    char *txt = NULL;
    size_t len;
    qtts_err e = {0};
    if (qtts_read_file(job_path, &txt, &len, &e)) return false;
    cJSON *j = cJSON_ParseWithLength(txt, len);
    free(txt);
    const cJSON *mj = cJSON_GetObjectItemCaseSensitive(j, "model");
    bool ok = cJSON_IsString(mj) && mj->valuestring[0];
    if (ok) {
        char base[4096];
        snprintf(base, sizeof base, "%s", job_path);
        char *slash = strrchr(base, '/');
        if (mj->valuestring[0] == '/' || !slash) snprintf(out, n, "%s", mj->valuestring);
        else {
            *slash = 0;
            snprintf(out, n, "%s/%s", base, mj->valuestring);
        }
    }
    cJSON_Delete(j);
    return ok;
}

int qtts_cmd_render(int argc, char **argv) {
    int max_batch = 0, fresh = 0, quiet = 0, no_share = 0, sync_stages = 0, prefill_batch = 0;
    int chunk = QTTS_CODEC_CHUNK_DEFAULT, context = QTTS_CODEC_CONTEXT_DEFAULT;
    cli_backend bk;
    cli_backend_init(&bk);
    const char *decode_thread = "auto";
    enum { O_BATCH = 256, O_FRESH, O_QUIET, O_CHUNK, O_CTX, O_NOSHARE, O_DTHREAD, O_SYNC, O_PREFILL };
    static const struct option opts[] = {{"max-batch", required_argument, 0, O_BATCH}, {"fresh", no_argument, 0, O_FRESH},
                                         {"quiet", no_argument, 0, O_QUIET},           {"chunk", required_argument, 0, O_CHUNK},
                                         {"context", required_argument, 0, O_CTX},     {"help", no_argument, 0, 'h'},
                                         {"no-prefix-sharing", no_argument, 0, O_NOSHARE},
                                         {"decode-thread", required_argument, 0, O_DTHREAD},
                                         {"sync-stages", no_argument, 0, O_SYNC},
                                         {"prefill-batch", required_argument, 0, O_PREFILL},
                                         CLI_BACKEND_LONGOPTS,
                                         {0, 0, 0, 0}};
    optind = 1;
    int c;
    int li = 0; /* the long option's index: its name for messages */
    while ((c = getopt_long(argc, argv, "h", opts, &li)) != -1) {
        int taken = cli_backend_option(&bk, c, optarg, "render");
        if (taken < 0) return CLI_USAGE;
        if (taken) continue;
        switch (c) {
        case O_BATCH:
        case O_CHUNK:
        case O_CTX:
        case O_PREFILL:
            if (!cli_count_option("render", opts[li].name, optarg,
                                  c == O_BATCH ? &max_batch : c == O_CHUNK ? &chunk : c == O_CTX ? &context : &prefill_batch))
                return CLI_USAGE;
            break;
        case O_FRESH: fresh = 1; break;
        case O_QUIET: quiet = 1; break;
        case O_NOSHARE: no_share = 1; break;
        case O_DTHREAD: decode_thread = optarg; break;
        case O_SYNC: sync_stages = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_USAGE;
        }
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(decode_thread, "on") && strcmp(decode_thread, "off") && strcmp(decode_thread, "auto")) {
        fprintf(stderr, "qtts render: --decode-thread: '%s' is not on, off or auto\n", decode_thread);
        return CLI_USAGE;
    }
    const char *backend = cli_backend_resolve(&bk, "render");
    if (!backend) return CLI_USAGE;
    const char *path = argv[optind];
    qtts_err err = {0};
    qtts_status st = QTTS_OK;
    qtts_job *job = NULL;
    qtts_job_errors errs = {0};
    qtts_model_config cfg;
    qtts_backend be = {0}, be_dec = {0}; /* be_dec: the codec's, with the decoder thread */
    qtts_model *m = NULL;
    qtts_tokenizer *tok = NULL;
    qtts_codec *codec = NULL;
    qtts_render_summary sum = {0};
    bool reported = false; /* job validation errors are printed where they are found */

    /* the model's config (milliseconds) first, so that one validation pass
     * checks everything; without a readable model the job is still checked */
    char model_dir[4096];
    qtts_gen_config gen;
    bool have_cfg = job_model_dir(path, model_dir, sizeof model_dir) && qtts_model_config_load(model_dir, &cfg, &err) == QTTS_OK &&
                    qtts_gen_config_load(model_dir, &gen, &err) == QTTS_OK;
    qtts_err model_err = err;
    qtts_err_clear(&err);
    st = qtts_job_load(path, have_cfg ? &cfg : NULL, have_cfg ? &gen : NULL, &job, &errs, &err);
    if (st != QTTS_OK) {
        print_errors(path, &errs, &err);
        if (!have_cfg && model_err.msg[0]) fprintf(stderr, "  model: %s\n", model_err.msg);
        reported = true;
        goto cleanup;
    }
    if (!have_cfg) {
        st = model_err.status ? model_err.status : QTTS_ERR_CONFIG;
        fprintf(stderr, "qtts render: %s: model: %s\n", path, model_err.msg);
        reported = true;
        goto cleanup;
    }
    /* the output folder must be usable before minutes of weight loading */
    QTTS_TRY(qtts_mkdirs(job->output_dir, false, &err));
    if (access(job->output_dir, W_OK) != 0) {
        st = qtts_fail(&err, QTTS_ERR_IO, "%s: output folder not writable: %s", job->output_dir, strerror(errno));
        goto cleanup;
    }
    QTTS_TRY(qtts_backend_init_named(&be, backend, &bk.params, &err));
    if (!quiet) fprintf(stderr, "qtts render: loading %s (%s backend)\n", job->model, be.ops->name);
    QTTS_TRY(qtts_model_load(&m, &be, job->model, &err));
    QTTS_TRY(qtts_tokenizer_load(&tok, job->model, &err));
    char cdir[4096];
    QTTS_TRY(qtts_path_join(cdir, sizeof cdir, job->model, "speech_tokenizer", &err));
    bool threaded = !strcmp(decode_thread, "on") || (!strcmp(decode_thread, "auto") && be.ops->device);
    if (threaded) {
        qtts_backend_params dp = bk.params;
        dp.cuda_persistent = false; /* the decoder's backend never runs the code predictor */
        QTTS_TRY(qtts_backend_init_named(&be_dec, backend, &dp, &err));
    }
    QTTS_TRY(qtts_codec_load(&codec, threaded ? &be_dec : &be, cdir, &err));

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    qtts_render_params rp = qtts_render_default_params();
    rp.max_batch = max_batch;
    rp.fresh = fresh;
    rp.share_prefix = !no_share;
    rp.prefill_batch = prefill_batch;
    rp.decode_chunk = chunk;
    rp.decode_context = context;
    rp.decode_thread = threaded;
    rp.sync_stages = sync_stages;
    rp.progress = quiet ? NULL : stderr;
    rp.stop = &g_stop;
    st = qtts_render_run(job, m, tok, codec, &rp, &sum, &err);
    if (!quiet) {
        fprintf(stderr, "\nqtts render: %d/%d items written (%d unchanged, %d failed), %d utterances generated, %d from the journal, "
                        "%d runaway warnings; %.1f s of audio in %.1f s (%.2fx real time); manifest: %s/manifest.json\n",
                sum.items_written, sum.items, sum.items_reused, sum.items_failed, sum.utterances_generated, sum.utterances_resumed,
                sum.runaway_flags, sum.audio_seconds, sum.wall_seconds, sum.wall_seconds > 0 ? sum.audio_seconds / sum.wall_seconds : 0,
                job->output_dir);
    }
    if (st == QTTS_OK && sum.items_failed) st = qtts_fail(&err, QTTS_ERR_JOB, "%d item%s failed (see the manifest)", sum.items_failed, sum.items_failed == 1 ? "" : "s");
cleanup:
    if (st != QTTS_OK && !reported) cli_report("render", &err);
    qtts_job_errors_free(&errs);
    qtts_job_free(job);
    qtts_codec_free(codec);
    qtts_tokenizer_free(tok);
    qtts_model_free(m);
    if (be.ops) qtts_backend_free(&be);
    if (be_dec.ops) qtts_backend_free(&be_dec);
    if (st == QTTS_ERR_INTERRUPTED) return 130;
    return st == QTTS_OK ? CLI_OK : CLI_FAIL;
}
