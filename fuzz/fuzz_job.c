/* libFuzzer target: arbitrary bytes as a job file through qtts_job_parse, with and without a
 * model config (the CustomVoice speaker and language tables), errors list included. text_file
 * entries resolve against a folder that does not exist, so no real file is read. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "job.h"

static const char CFG[] =
    "{\"tts_model_type\": \"custom_voice\", \"tts_model_size\": \"0b6\", \"im_start_token_id\": 151644,"
    " \"im_end_token_id\": 151645, \"assistant_token_id\": 77091, \"tts_pad_token_id\": 151671,"
    " \"tts_bos_token_id\": 151672, \"tts_eos_token_id\": 151673,"
    " \"talker_config\": {\"hidden_size\": 16, \"intermediate_size\": 32, \"num_hidden_layers\": 1,"
    "  \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"head_dim\": 8, \"rms_norm_eps\": 1e-6,"
    "  \"rope_theta\": 1000000, \"vocab_size\": 3072, \"max_position_embeddings\": 64, \"text_vocab_size\": 151936,"
    "  \"text_hidden_size\": 16, \"num_code_groups\": 16, \"codec_pad_id\": 2148, \"codec_bos_id\": 2149,"
    "  \"codec_eos_token_id\": 2150, \"codec_think_id\": 2154, \"codec_nothink_id\": 2155,"
    "  \"codec_think_bos_id\": 2156, \"codec_think_eos_id\": 2157,"
    "  \"rope_scaling\": {\"interleaved\": true, \"mrope_section\": [2, 1, 1]},"
    "  \"codec_language_id\": {\"english\": 2050, \"chinese\": 2055, \"sichuan_dialect\": 2062},"
    "  \"spk_id\": {\"ryan\": 3061, \"eric\": 2875}, \"spk_is_dialect\": {\"ryan\": false, \"eric\": \"sichuan_dialect\"},"
    "  \"code_predictor_config\": {\"hidden_size\": 16, \"intermediate_size\": 32, \"num_hidden_layers\": 1,"
    "   \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"head_dim\": 8, \"rms_norm_eps\": 1e-6,"
    "   \"rope_theta\": 1000000, \"vocab_size\": 2048, \"max_position_embeddings\": 64, \"num_code_groups\": 16}}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static qtts_model_config cfg;
    static int have_cfg = -1;
    if (have_cfg < 0) {
        qtts_err e = {0};
        have_cfg = qtts_model_config_parse(CFG, sizeof CFG - 1, "fuzz-config", &cfg, &e) == QTTS_OK;
        if (!have_cfg) fprintf(stderr, "fuzz_job: config did not parse (%s); fuzzing without it\n", e.msg);
    }
    for (int pass = 0; pass < 2; pass++) {
        qtts_job *job = NULL;
        qtts_job_errors errs = {0};
        qtts_err err = {0};
        const qtts_model_config *c = (pass == 0 && have_cfg) ? &cfg : NULL;
        qtts_status st = qtts_job_parse((const char *)data, size, "fuzz.json", "/nonexistent-qtts-fuzz", c, NULL, &job,
                                        &errs, &err);
        if (st == QTTS_OK) {
            /* walk what was returned, as the scheduler would */
            uint64_t h = 0;
            for (int s = 0; s < job->n_sessions; s++)
                for (int i = 0; i < job->sessions[s].n_items; i++) {
                    const qtts_job_item *it = &job->sessions[s].items[i];
                    h ^= it->codes_hash + strlen(it->text) + strlen(it->output) + strlen(it->id);
                }
            if (errs.n != 0) __builtin_trap();
            (void)h;
        } else if (st == QTTS_ERR_JOB && errs.n == 0) {
            __builtin_trap(); /* a rejected job must say why */
        }
        qtts_job_errors_free(&errs);
        qtts_job_free(job);
    }
    return 0;
}
