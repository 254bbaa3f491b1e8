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
#include "synth.h"
#include "tokenizer.h"

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
            "  --backend cpu        compute backend (this build: cpu)\n"
            "  --quiet              no progress on stderr\n"
            "  --stats-json FILE    write timings and sizes as JSON (benchmarks)\n"
            "  --ignore-eos         benchmarks only: always generate --max-frames frames\n"
            "The output format follows the extension of --out: .wav, .flac or .ogg.\n");
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

int qtts_cmd_synth(int argc, char **argv) {
    const char *model_dir = NULL, *text = NULL, *out = NULL, *speaker = NULL, *instruct = NULL, *language = NULL;
    const char *xvec_path = NULL, *codes_out = NULL, *backend = "cpu", *stats_path = NULL;
    int ignore_eos = 0;
    long long seed = 0;
    int greedy = 0, max_frames = 0, quiet = 0, text_mode = -1, chunk = QTTS_CODEC_CHUNK_DEFAULT, context = QTTS_CODEC_CONTEXT_DEFAULT;
    enum { O_SPEAKER = 256, O_INSTRUCT, O_LANG, O_XVEC, O_SEED, O_GREEDY, O_MAXF, O_STREAM, O_NONSTREAM, O_CHUNK, O_CTX, O_CODES, O_BACKEND, O_QUIET, O_STATS, O_NOEOS };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},      {"text", required_argument, 0, 't'},
        {"out", required_argument, 0, 'o'},        {"speaker", required_argument, 0, O_SPEAKER},
        {"instruct", required_argument, 0, O_INSTRUCT}, {"language", required_argument, 0, O_LANG},
        {"xvector", required_argument, 0, O_XVEC}, {"seed", required_argument, 0, O_SEED},
        {"greedy", no_argument, 0, O_GREEDY},      {"max-frames", required_argument, 0, O_MAXF},
        {"streaming-text", no_argument, 0, O_STREAM}, {"non-streaming-text", no_argument, 0, O_NONSTREAM},
        {"chunk", required_argument, 0, O_CHUNK},  {"context", required_argument, 0, O_CTX},
        {"codes-out", required_argument, 0, O_CODES}, {"backend", required_argument, 0, O_BACKEND},
        {"quiet", no_argument, 0, O_QUIET},        {"help", no_argument, 0, 'h'},
        {"stats-json", required_argument, 0, O_STATS}, {"ignore-eos", no_argument, 0, O_NOEOS},
        {0, 0, 0, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:t:o:h", opts, NULL)) != -1) {
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
        case O_BACKEND: backend = optarg; break;
        case O_QUIET: quiet = 1; break;
        case O_STATS: stats_path = optarg; break;
        case O_NOEOS: ignore_eos = 1; break;
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
    if (max_frames < 0 || chunk < 0 || context < 0) {
        fprintf(stderr, "qtts synth: --max-frames, --chunk and --context must be >= 0\n");
        return CLI_USAGE;
    }
    qtts_err err = {0};
    qtts_status st = QTTS_OK;
    qtts_backend be = {0};
    qtts_model *m = NULL;
    qtts_tokenizer *tok = NULL;
    qtts_generator *g = NULL;
    qtts_codec *codec = NULL;
    qtts_prompt pr = {0};
    float *emb = NULL, *trail = NULL, *pad = NULL, *xvec = NULL, *wav = NULL;
    int64_t *codes64 = NULL;
    double t_start = qtts_now();

    QTTS_TRY(check_output_path(out, &err));
    if (codes_out) {
        QTTS_CHECK(strstr(codes_out, ".npy"), &err, QTTS_ERR_INVALID_ARG, "%s: --codes-out must name a .npy file", codes_out);
    }
    QTTS_CHECK(!strcmp(backend, "cpu"), &err, QTTS_ERR_UNSUPPORTED,
               "--backend %s: this build runs the cpu backend only (the CUDA engine is not built into qtts yet)", backend);
    QTTS_TRY(qtts_backend_cpu_init(&be, &err));
    QTTS_TRY(qtts_model_load(&m, &be, model_dir, &err));
    const qtts_model_config *cfg = &m->cfg;
    int H = cfg->talker.hidden_size;

    qtts_prompt_mode mode = cfg->variant == QTTS_VARIANT_CUSTOM_VOICE ? QTTS_PROMPT_CUSTOM_VOICE
                            : cfg->variant == QTTS_VARIANT_VOICE_DESIGN ? QTTS_PROMPT_VOICE_DESIGN
                                                                        : QTTS_PROMPT_BASE_XVECTOR;
    if (mode == QTTS_PROMPT_CUSTOM_VOICE && !speaker) {
        char names[1024] = "";
        for (int i = 0; i < cfg->n_speakers; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", cfg->speakers[i].name);
        QTTS_CHECK(0, &err, QTTS_ERR_INVALID_ARG, "this CustomVoice checkpoint needs --speaker (one of: %s)", names);
    }
    QTTS_CHECK(mode == QTTS_PROMPT_CUSTOM_VOICE || !speaker, &err, QTTS_ERR_INVALID_ARG,
               "--speaker: a %s checkpoint has no built-in speakers", qtts_variant_name(cfg->variant));
    QTTS_CHECK(mode != QTTS_PROMPT_BASE_XVECTOR || !instruct, &err, QTTS_ERR_INVALID_ARG,
               "--instruct: a Base checkpoint does not take instructions");
    QTTS_CHECK(mode == QTTS_PROMPT_BASE_XVECTOR || !xvec_path, &err, QTTS_ERR_INVALID_ARG,
               "--xvector: only Base checkpoints take an x-vector");
    QTTS_CHECK(mode != QTTS_PROMPT_BASE_XVECTOR || xvec_path, &err, QTTS_ERR_INVALID_ARG,
               "this Base checkpoint clones a voice: give --xvector FILE.npy (float32 [%d])", H);
    if (xvec_path) {
        int64_t n = 0;
        QTTS_TRY(qtts_npy_load_f32(xvec_path, &xvec, &n, NULL, &err));
        QTTS_CHECK(n == H, &err, QTTS_ERR_SHAPE, "%s: x-vector has %lld values, this model needs %d", xvec_path, (long long)n, H);
    }

    QTTS_TRY(qtts_tokenizer_load(&tok, model_dir, &err));
    qtts_prompt_params pp = qtts_prompt_default_params(mode);
    pp.text = text;
    pp.speaker = speaker;
    pp.instruct = instruct;
    pp.language = language;
    pp.has_xvector = xvec != NULL;
    if (text_mode >= 0) pp.non_streaming = text_mode == 1;
    QTTS_TRY(qtts_prompt_build(tok, cfg, &pp, &pr, &err));
    QTTS_CHECK(!pr.instruct_ignored, &err, QTTS_ERR_UNSUPPORTED,
               "--instruct: this 0.6B CustomVoice checkpoint ignores instructions (the official wrapper drops them); remove --instruct");
    QTTS_TRY(qtts_prompt_embed(m, &pr, xvec, NULL, 0, &emb, &trail, &pad, &err));

    qtts_gen_params gp;
    qtts_gen_params_from_config(&gp, &m->gen, greedy);
    if (max_frames > 0) gp.max_frames = max_frames;
    gp.seed = qtts_seed_derive((uint64_t)seed, 0, 0, 0);
    gp.ignore_eos = ignore_eos;
    QTTS_TRY(qtts_generator_init(&g, m, 1, pr.n_pos + gp.max_frames + 1, false, &err));
    double t_gen = qtts_now();
    QTTS_TRY(qtts_generator_start(g, 0, emb, pr.n_pos, trail, pr.n_trailing, pad, &gp, &err));
    while (qtts_generator_state(g, 0) == QTTS_SEQ_ACTIVE) {
        QTTS_TRY(qtts_generator_step(g, &err));
        int nf;
        qtts_generator_codes(g, 0, &nf);
        if (!quiet && (nf % 25 == 0))
            fprintf(stderr, "\rqtts synth: %d frames (%.1f s of audio), %.1f frames/s", nf, nf / 12.5, nf / (qtts_now() - t_gen));
    }
    int nf = 0;
    const int32_t *codes = qtts_generator_codes(g, 0, &nf);
    double t_dec = qtts_now();
    if (!quiet) fprintf(stderr, "\rqtts synth: %d frames generated in %.2f s%20s\n", nf, t_dec - t_gen, "");
    QTTS_CHECK(nf > 0, &err, QTTS_ERR_INTERNAL, "the model ended the utterance before its first frame");
    if (codes_out) {
        int G = m->n_groups;
        codes64 = qtts_malloc((size_t)nf * G * sizeof *codes64, &err, "codes");
        QTTS_CHECK(codes64, &err, QTTS_ERR_OOM, "codes: out of memory");
        for (int64_t i = 0; i < (int64_t)nf * G; i++) codes64[i] = codes[i];
        int64_t shape[2] = {nf, G};
        QTTS_TRY(qtts_npy_save(codes_out, QTTS_NPY_I64, 2, shape, codes64, &err));
    }
    char cdir[4096];
    QTTS_TRY(qtts_path_join(cdir, sizeof cdir, model_dir, "speech_tokenizer", &err));
    QTTS_TRY(qtts_codec_load(&codec, &be, cdir, &err));
    QTTS_TRY(qtts_codec_decode_chunked(codec, codes, &nf, 1, chunk, context, &wav, &err));
    int64_t ns = (int64_t)nf * qtts_codec_samples_per_frame(codec);
    QTTS_TRY(qtts_audio_write(out, wav, ns, qtts_codec_sample_rate(codec), &err));
    double t_end = qtts_now();
    if (stats_path) {
        qtts_gen_timing tm = qtts_generator_timing(g);
        double audio_s = (double)ns / qtts_codec_sample_rate(codec);
        char js[2048];
        int jn = snprintf(js, sizeof js,
                          "{\"backend\": \"%s\", \"model\": \"%s\", \"variant\": \"%s\", \"talker_hidden\": %d, "
                          "\"prompt_tokens\": %d, \"frames\": %d, \"audio_seconds\": %.4f, \"wall_clock_ms\": %.3f, "
                          "\"time_to_first_frame_ms\": %.3f, \"frames_per_second\": %.4f, \"realtime_factor\": %.4f, "
                          "\"stages\": {\"load_ms\": %.3f, \"prefill_ms\": %.3f, \"talker_ms\": %.3f, \"code_predictor_ms\": %.3f, "
                          "\"sampling_ms\": %.3f, \"decoder_ms\": %.3f}, \"decoder_chunk\": %d, \"decoder_context\": %d}\n",
                          backend, model_dir, qtts_variant_name(cfg->variant), H, pr.n_pos, nf, audio_s, (t_end - t_start) * 1e3,
                          (tm.prefill + (nf ? (tm.talker + tm.predictor + tm.sampling) / nf : 0)) * 1e3,
                          nf / (t_dec - t_gen), audio_s / (t_end - t_gen), (t_gen - t_start) * 1e3, tm.prefill * 1e3, tm.talker * 1e3,
                          tm.predictor * 1e3, tm.sampling * 1e3, (t_end - t_dec) * 1e3, chunk, context);
        QTTS_TRY(qtts_write_file_atomic(stats_path, js, (size_t)jn, &err));
    }
    if (!quiet) {
        double audio_s = (double)ns / qtts_codec_sample_rate(codec);
        qtts_gen_timing tm = qtts_generator_timing(g);
        fprintf(stderr,
                "qtts synth: wrote %s: %.2f s of audio in %.2f s (%.2fx real time; prefill %.2f s, talker %.2f s, "
                "code predictor %.2f s, sampling %.2f s, decoder %.2f s)\n",
                out, audio_s, t_end - t_start, audio_s / (t_end - t_start), tm.prefill, tm.talker, tm.predictor, tm.sampling,
                t_end - t_dec);
    }
cleanup:
    free(codes64);
    free(wav);
    free(emb);
    free(trail);
    free(pad);
    free(xvec);
    qtts_prompt_free(&pr);
    qtts_codec_free(codec);
    qtts_generator_free(g);
    qtts_tokenizer_free(tok);
    qtts_model_free(m);
    if (be.ops) qtts_backend_free(&be);
    return st == QTTS_OK ? CLI_OK : cli_report("synth", &err);
}
