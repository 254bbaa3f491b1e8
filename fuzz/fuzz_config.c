/* libFuzzer target: arbitrary bytes as config.json and as
 * speech_tokenizer/config.json; the lookups run on whatever parses. */
#include <stdint.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qtts_model_config mc;
    qtts_codec_config cc;
    qtts_err err = {0};
    if (qtts_model_config_parse((const char *)data, size, "config.json", &mc, &err) == QTTS_OK) {
        for (int i = 0; i < mc.n_speakers; i++) (void)qtts_config_speaker(&mc, mc.speakers[i].name);
        for (int i = 0; i < mc.n_languages; i++) (void)qtts_config_language_id(&mc, mc.languages[i].name);
        (void)qtts_variant_name(mc.variant);
    }
    (void)qtts_codec_config_parse((const char *)data, size, "speech_tokenizer/config.json", &cc, &err);
    return 0;
}
