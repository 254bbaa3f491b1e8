/* qtts synth: one text -> codes -> audio file, on the CPU reference path.
 * Flow: validate the request (output format and folder, voice options)
 * before any model work, build and embed the prompt, generate frames,
 * decode with the official chunking, write codes/audio atomically. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "audio.h"
#include "cli.h"
#include "codec.h"
#include "npy.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: qtts synth --model DIR --text TEXT --out FILE [options]\n"
            "  --speaker NAME       CustomVoice speaker (qtts info lists them)\n"
            "  --instruct TEXT      style instruction (VoiceDesign; 1.7B CustomVoice)\n"
            "  --language L         auto (default) or a language qtts info lists\n"
            "  --xvector FILE.npy   Base models: speaker x-vector, float32 [hidden]\n"
            "  --seed N             sampling seed (default 0)\n"
            "  --greedy             argmax at both levels (reproduces the reference exactly)\n"
            "  --max-frames N       at most N frames of 80 ms (default: generation_config)\n"
            "  --streaming-text     feed text along with the frames (default for Base);\n"
            "  --non-streaming-text whole text in the prompt (default for CustomVoice/VoiceDesign)\n"
            "  --chunk N --context N  decoder windows (default 300 and 25, as the official\n"
            "                       decoder; --chunk 0 decodes in one call)\n"
            "  --codes-out FILE.npy also write the codes, int64 [frames, 16]\n"
            "  --quiet              no progress on stderr\n"
            "  --stats-json FILE    write timings and sizes as JSON (benchmarks)\n"
            "  --ignore-eos         benchmarks only: always generate --max-frames frames\n"
            "  --first-chunk N      decode the first N frames as soon as they exist and report the\n"
            "                       time to first audio in --stats-json (default 0: off)\n"
            "  --sync-stages        wait for the device between stages, so that the stage times in\n"
            "                       --stats-json are device times (slower overall)\n"
            "The output format follows the extension of --out: .wav, .flac or .ogg.\n"
            "Backend:\n");
    cli_backend_usage(f, 23);
}

/* The folder of path must exist and be writable: checked before any model work. */
static qtts_status check_output_path(const char *path, qtts_err *err) {
    if (!qtts_audio_format_for(path))
        return qtts_fail(err, QTTS_ERR_INVALID_ARG, "%s: unsupported output format (use .wav, .flac or .ogg)", path);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    if (access(dir, W_OK) != 0) return qtts_fail(err, QTTS_ERR_IO, "%s: output folder not writable: %s", dir[0] ? dir : "/", strerror(errno));
    return QTTS_OK;
}

typedef struct {
    double t0;
    int quiet, last_frames;
} progress_state;

static int progress_cb(void *user, int frames) {
    progress_state *p = user;
    if (!p->quiet && frames % 25 == 0) {
        fprintf(stderr, "\rqtts synth: %d frames (%.1f s of audio), %.1f frames/s ", frames, frames / 12.5, frames / (qtts_now() - p->t0));
        p->last_frames = frames;
    }
    return 0;
}

int qtts_cmd_synth(int argc, char **argv) {
    const char *model_dir = NULL, *text = NULL, *out = NULL, *speaker = NULL, *instruct = NULL, *language = NULL;
    const char *xvec_path = NULL, *codes_out = NULL, *stats_path = NULL;
    int ignore_eos = 0, first_chunk = 0, sync_stages = 0;
    cli_backend bk;
    cli_backend_init(&bk);
    long long seed = 0;
    int greedy = 0, max_frames = 0, quiet = 0, text_mode = -1, chunk = QTTS_CODEC_CHUNK_DEFAULT, context = QTTS_CODEC_CONTEXT_DEFAULT;
    enum { O_SPEAKER = 256, O_INSTRUCT, O_LANG, O_XVEC, O_SEED, O_GREEDY, O_MAXF, O_STREAM, O_NONSTREAM, O_CHUNK, O_CTX, O_CODES, O_QUIET, O_STATS, O_NOEOS, O_FIRST, O_SYNC };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},      {"text", required_argument, 0, 't'},
        {"out", required_argument, 0, 'o'},        {"speaker", required_argument, 0, O_SPEAKER},
        {"instruct", required_argument, 0, O_INSTRUCT}, {"language", required_argument, 0, O_LANG},
        {"xvector", required_argument, 0, O_XVEC}, {"seed", required_argument, 0, O_SEED},
        {"greedy", no_argument, 0, O_GREEDY},      {"max-frames", required_argument, 0, O_MAXF},
        {"streaming-text", no_argument, 0, O_STREAM}, {"non-streaming-text", no_argument, 0, O_NONSTREAM},
        {"chunk", required_argument, 0, O_CHUNK},  {"context", required_argument, 0, O_CTX},
        {"codes-out", required_argument, 0, O_CODES}, CLI_BACKEND_LONGOPTS,
        {"quiet", no_argument, 0, O_QUIET},        {"help", no_argument, 0, 'h'},
        {"stats-json", required_argument, 0, O_STATS}, {"ignore-eos", no_argument, 0, O_NOEOS},
        {"first-chunk", required_argument, 0, O_FIRST},
        {"sync-stages", no_argument, 0, O_SYNC},
        {0, 0, 0, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:t:o:h", opts, NULL)) != -1) {
        int taken = cli_backend_option(&bk, c, optarg, "synth");
        if (taken < 0) return CLI_USAGE;
        if (taken) continue;
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 't': text = optarg; break;
        case 'o': out = optarg; break;
        case O_SPEAKER: speaker = optarg; break;
        case O_INSTRUCT: instruct = optarg; break;
        case O_LANG: language = optarg; break;
        case O_XVEC: xvec_path = optarg; break;
        case O_SEED: seed = strtoll(optarg, NULL, 10); break;
        case O_GREEDY: greedy = 1; break;
        case O_MAXF: max_frames = atoi(optarg); break;
        case O_STREAM: text_mode = 0; break;
        case O_NONSTREAM: text_mode = 1; break;
        case O_CHUNK: chunk = atoi(optarg); break;
        case O_CTX: context = atoi(optarg); break;
        case O_CODES: codes_out = optarg; break;
        case O_QUIET: quiet = 1; break;
        case O_STATS: stats_path = optarg; break;
        case O_NOEOS: ignore_eos = 1; break;
        case O_FIRST: first_chunk = atoi(optarg); break;
        case O_SYNC: sync_stages = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_USAGE;
        }
    }
    if (!model_dir || !text || !out) {
        fprintf(stderr, "qtts synth: --model, --text and --out are required\n");
        usage(stderr);
        return CLI_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "qtts synth: unexpected argument '%s'\n", argv[optind]);
        return CLI_USAGE;
    }
    const char *backend = cli_backend_resolve(&bk, "synth");
    if (!backend) return CLI_USAGE;
    if (max_frames < 0 || chunk < 0 || context < 0 || first_chunk < 0) {
        fprintf(stderr, "qtts synth: --max-frames, --chunk, --context and --first-chunk must be >= 0\n");
        return CLI_USAGE;
    }
    qtts_err err = {0};
    qtts_status st = QTTS_OK;
    qtts_engine *eng = NULL;
    qtts_synth_result res = {0};
    float *xvec = NULL;
    int64_t *codes64 = NULL;
    double t_start = qtts_now();

    QTTS_TRY(check_output_path(out, &err));
    QTTS_CHECK(!codes_out || strstr(codes_out, ".npy"), &err, QTTS_ERR_INVALID_ARG, "%s: --codes-out must name a .npy file", codes_out);
    qtts_synth_request req;
    qtts_synth_request_default(&req);
    if (xvec_path) {
        int64_t n = 0;
        QTTS_TRY(qtts_npy_load_f32(xvec_path, &xvec, &n, NULL, &err));
        req.xvector = xvec;
        req.xvector_len = (int)n;
    }
    QTTS_TRY(qtts_engine_open(model_dir, backend, &bk.params, &eng, &err));
    req.text = text;
    req.speaker = speaker;
    req.instruct = instruct;
    req.language = language;
    req.seed = (uint64_t)seed;
    req.greedy = greedy;
    req.max_frames = max_frames;
    req.text_mode = text_mode;
    req.decode_chunk = chunk;
    req.decode_context = context;
    req.ignore_eos = ignore_eos;
    req.first_chunk = first_chunk;
    req.sync_stages = sync_stages;
    progress_state ps = {.t0 = qtts_now(), .quiet = quiet};
    st = qtts_engine_synth(eng, &req, progress_cb, &ps, &res, &err);
    if (!quiet && ps.last_frames) fputc('\n', stderr);
    if (st != QTTS_OK) {
        if (xvec_path && st == QTTS_ERR_SHAPE) qtts_fail_prefix(&err, "%s: ", xvec_path);
        goto cleanup;
    }
    if (codes_out) {
        codes64 = qtts_malloc((size_t)res.n_frames * 16 * sizeof *codes64, &err, "codes");
        QTTS_CHECK(codes64, &err, QTTS_ERR_OOM, "codes: out of memory");
        for (int64_t i = 0; i < (int64_t)res.n_frames * 16; i++) codes64[i] = res.codes[i];
        int64_t shape[2] = {res.n_frames, 16};
        QTTS_TRY(qtts_npy_save(codes_out, QTTS_NPY_I64, 2, shape, codes64, &err));
    }
    QTTS_TRY(qtts_audio_write(out, res.pcm, res.n_samples, res.sample_rate, &err));
    double t_end = qtts_now(), audio_s = (double)res.n_samples / res.sample_rate;
    double gen_s = res.prefill_s + res.talker_s + res.predictor_s + res.sampling_s;
    if (stats_path) {
        const char *eng_backend = qtts_engine_backend(eng);
        char js[4096];
        int jn = snprintf(js, sizeof js,
                          "{\"backend\": \"%s\", \"backend_params\": {\"device\": %d, \"cuda_graphs\": %s, \"cuda_pdl\": %s, "
                          "\"cuda_persistent\": %s}, \"model\": \"%s\", \"prompt_tokens\": %d, \"frames\": %d, \"audio_seconds\": %.4f, "
                          "\"sync_stages\": %s, \"first_chunk_frames\": %d, \"time_to_first_chunk_ms\": %.3f, "
                          "\"peak_device_memory_mb\": %.1f, \"process_wall_ms\": %.3f, "
                          "\"wall_clock_ms\": %.3f, \"time_to_first_frame_ms\": %.3f, \"frames_per_second\": %.4f, "
                          "\"realtime_factor\": %.4f, \"stages\": {\"load_ms\": %.3f, \"prefill_ms\": %.3f, \"talker_ms\": %.3f, "
                          "\"code_predictor_ms\": %.3f, \"sampling_ms\": %.3f, \"decoder_ms\": %.3f}, \"decoder_chunk\": %d, "
                          "\"decoder_context\": %d, \"generator_steps\": %d, \"predictor_fused_steps\": %d}\n",
                          eng_backend, bk.params.device, bk.params.cuda_graphs ? "true" : "false", bk.params.cuda_pdl ? "true" : "false",
                          bk.params.cuda_persistent ? "true" : "false", model_dir, res.prompt_tokens, res.n_frames, audio_s, sync_stages ? "true" : "false", first_chunk,
                          res.first_chunk_s * 1e3, res.peak_device_mb, (t_end - t_start) * 1e3, res.total_s * 1e3,
                          (res.prefill_s + (res.n_frames ? (res.talker_s + res.predictor_s + res.sampling_s) / res.n_frames : 0)) * 1e3,
                          res.n_frames / gen_s, audio_s / res.total_s, (ps.t0 - t_start) * 1e3, res.prefill_s * 1e3, res.talker_s * 1e3,
                          res.predictor_s * 1e3, res.sampling_s * 1e3, res.decode_s * 1e3, chunk, context, res.steps, res.fused_steps);
        QTTS_TRY(qtts_write_file_atomic(stats_path, js, (size_t)jn, &err));
    }
    if (!quiet)
        fprintf(stderr,
                "qtts synth: wrote %s: %.2f s of audio in %.2f s (%.2fx real time; prefill %.2f s, talker %.2f s, code predictor %.2f s, "
                "sampling %.2f s, decoder %.2f s)\n",
                out, audio_s, t_end - t_start, audio_s / (t_end - t_start), res.prefill_s, res.talker_s, res.predictor_s, res.sampling_s,
                res.decode_s);
cleanup:
    free(codes64);
    free(xvec);
    qtts_synth_result_free(&res);
    qtts_engine_close(eng);
    return st == QTTS_OK ? CLI_OK : cli_report("synth", &err);
}
