/* Tokenizer throughput on novel-sized text: ~5 MB of English and ~5 MB of Chinese,
 * generated here from a seeded word/character mix (sentences, dialogue, numbers,
 * paragraphs), each encoded whole on one thread; best of --reps runs. Writes JSON with the
 * commit, the machine, MB/s and tokens/s to bench/results/tokenizer-<machine>.json.
 * usage: bench_tokenizer --tokenizer DIR [--machine NAME] [--reps N] [--out FILE] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokenizer.h"

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static const char *const EN[] = {
    "the", "of", "and", "to", "a", "in", "that", "he", "was", "it", "his", "her", "she", "had", "with", "for", "as",
    "on", "at", "not", "but", "be", "they", "from", "by", "you", "said", "which", "this", "have", "were", "all", "one",
    "there", "would", "their", "been", "could", "into", "more", "when", "what", "upon", "some", "little", "time",
    "very", "man", "then", "than", "only", "over", "before", "great", "old", "house", "night", "eyes", "hand", "door",
    "room", "face", "morning", "letter", "carriage", "Elizabeth", "Darcy", "Holmes", "Watson", "London", "Mr.",
    "Mrs.", "Dr.", "gentleman", "remarkable", "extraordinary", "conversation", "immediately", "nevertheless",
    "don't", "I'm", "wouldn't", "it's", "1895", "12", "£300", "half-past", "well-known", "self-possessed"};
static const char *const ZH[] = {
    "的", "了", "是", "我", "他", "她", "你", "们", "在", "有", "不", "这", "个", "人", "说", "来", "去", "到", "就",
    "也", "都", "和", "时候", "一个", "没有", "知道", "自己", "什么", "已经", "因为", "所以", "但是", "眼睛", "房间",
    "先生", "姑娘", "老太太", "夜里", "早晨", "门口", "院子", "心里", "慢慢地", "忽然", "仿佛", "似乎", "北京", "上海",
    "一九二三年", "三十", "黛玉", "宝玉", "孔乙己", "掌柜", "茴香豆", "咸亨酒店", "长衫", "短衣帮"};

static char *gen(bool zh, size_t target, size_t *len) {
    char *b = malloc(target + 256);
    size_t n = 0;
    uint64_t s = zh ? 2 : 1;
    int in_sentence = 0;
    while (n < target) {
        const char *w = zh ? ZH[rng_next(&s) % (sizeof ZH / sizeof *ZH)] : EN[rng_next(&s) % (sizeof EN / sizeof *EN)];
        size_t l = strlen(w);
        if (!zh && in_sentence == 0 && w[0] >= 'a' && w[0] <= 'z') { /* capitalise */
            b[n++] = (char)(w[0] - 32);
            memcpy(b + n, w + 1, l - 1);
            n += l - 1;
        } else {
            memcpy(b + n, w, l);
            n += l;
        }
        in_sentence++;
        uint64_t r = rng_next(&s) % 100;
        const char *p = NULL;
        if (in_sentence > 4 && r < 8) p = zh ? "。" : ".", in_sentence = 0;
        else if (r < 14) p = zh ? "，" : ",";
        else if (r < 15) p = zh ? "？" : "?", in_sentence = 0;
        else if (r < 16) p = zh ? "！”" : "!\"", in_sentence = 0;
        if (p) {
            memcpy(b + n, p, strlen(p));
            n += strlen(p);
        }
        if (in_sentence == 0 && rng_next(&s) % 12 == 0) {
            memcpy(b + n, "\n\n", 2);
            n += 2;
        } else if (!zh) {
            b[n++] = ' ';
        }
    }
    b[n] = 0;
    *len = n;
    return b;
}

static double run(const qtts_tokenizer *tok, const char *t, size_t n, int reps, int *n_tok) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        int32_t *ids;
        qtts_err err = {0};
        double t0 = qtts_now();
        if (qtts_tokenizer_encode(tok, t, n, &ids, n_tok, &err)) {
            fprintf(stderr, "encode: %s\n", err.msg);
            exit(1);
        }
        double dt = qtts_now() - t0;
        free(ids);
        if (dt < best) best = dt;
    }
    return best;
}

int main(int argc, char **argv) {
    const char *dir = NULL, *machine = NULL, *out = NULL;
    int reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--machine") && i + 1 < argc) machine = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else {
            fprintf(stderr, "usage: bench_tokenizer --tokenizer DIR [--machine NAME] [--reps N] [--out FILE]\n");
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "bench_tokenizer: --tokenizer DIR is required\n");
        return 2;
    }
    char host[256] = "unknown", cpu[256] = "unknown", commit[64] = "unknown", path[4096];
    gethostname(host, sizeof host);
    if (!machine) machine = host;
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(cpu, sizeof cpu, "%s", strchr(line, ':') + 2);
            cpu[strcspn(cpu, "\n")] = 0;
            break;
        }
    if (f) fclose(f);
    f = popen("git -C " QTTS_SOURCE_DIR " rev-parse --short HEAD 2>/dev/null", "r");
    if (f && fgets(commit, sizeof commit, f)) commit[strcspn(commit, "\n")] = 0;
    if (f) pclose(f);

    qtts_tokenizer *tok;
    qtts_err err = {0};
    double t0 = qtts_now();
    if (qtts_tokenizer_load(&tok, dir, &err)) {
        fprintf(stderr, "load: %s\n", err.msg);
        return 1;
    }
    double load_s = qtts_now() - t0;
    size_t en_n, zh_n;
    char *en = gen(false, 5u << 20, &en_n), *zh = gen(true, 5u << 20, &zh_n);
    int en_tok, zh_tok;
    double en_s = run(tok, en, en_n, reps, &en_tok), zh_s = run(tok, zh, zh_n, reps, &zh_tok);
    char json[2048];
    snprintf(json, sizeof json,
             "{\n  \"bench\": \"tokenizer\",\n  \"commit\": \"%s\",\n  \"machine\": \"%s\",\n  \"cpu\": \"%s\",\n"
             "  \"threads\": 1,\n  \"pattern\": \"%s\",\n  \"load_s\": %.3f,\n"
             "  \"english\": {\"bytes\": %zu, \"tokens\": %d, \"seconds\": %.4f, \"mb_per_s\": %.2f, \"tokens_per_s\": %.0f},\n"
             "  \"chinese\": {\"bytes\": %zu, \"tokens\": %d, \"seconds\": %.4f, \"mb_per_s\": %.2f, \"tokens_per_s\": %.0f}\n}\n",
             commit, machine, cpu, qtts_tokenizer_pretok(tok) == QTTS_PRETOK_QWEN2 ? "qwen2" : "mistral-fix", load_s, en_n, en_tok, en_s, en_n / en_s / 1e6, en_tok / en_s, zh_n, zh_tok, zh_s,
             zh_n / zh_s / 1e6, zh_tok / zh_s);
    fputs(json, stdout);
    if (!out) {
        snprintf(path, sizeof path, "%s/bench/results/tokenizer-%s.json", QTTS_SOURCE_DIR, machine);
        out = path;
    }
    if (qtts_write_file_atomic(out, json, strlen(json), &err)) fprintf(stderr, "%s\n", err.msg);
    else fprintf(stderr, "wrote %s\n", out);
    qtts_tokenizer_free(tok);
    free(en);
    free(zh);
    return 0;
}
