/*
 * text-encode - the prompt features of zero-shot diagnosis (method.md 3): each item's negative and
 * positive prompt through BERT's uncased WordPiece tokenizer (lib/wordpiece.h) and the CXR-BERT
 * text encoder (lib/bert.h): the [CLS] state through text_proj, L2-normalised.
 *
 * Reads: the item YAML (pipelines/ct-rate-abnormalities.yaml layout; CT-RATE's 16 by default) and
 * ct.weights/1 (--weights).  Writes: one ct.prompts/1 record (zeroshot reads it).
 *
 *   text-encode -w visd-boost.ctv -o prompts.ctv
 *   text-encode --tokens --vocab vocab.txt            # token ids of the 32 prompts
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "blas.h"
#include "cli.h"
#include "ct.h"
#include "organs.h"
#include "stream.h"
#include "weights.h"
#include "wordpiece.h"

#define DEFAULT_MAX_LENGTH 384       /* max_txt_len of the released model (method.md 3.1) */

static void usage(FILE *f) {
    fprintf(f,
            "Usage: text-encode -w WEIGHTS [OPTION]...\n"
            "  or:  text-encode --tokens (-w WEIGHTS | --vocab FILE) [--lines FILE] [OPTION]...\n"
            "Compute the prompt features of zero-shot diagnosis: for each item of the item list, its\n"
            "negative and positive prompt through BERT's uncased WordPiece tokenizer and the text\n"
            "encoder of the weights ([CLS] state -> text_proj -> L2), written as one ct.prompts/1\n"
            "record: text_feat f32 [n_items, 2, 256] (row 0 negative, row 1 positive) and the\n"
            "checkpoint's temp.\n"
            "\n"
            "  -w, --weights FILE   ct.weights/1 file with the text encoder (tools/ctvis-convert.py)\n"
            "      --vocab FILE     vocab.txt of the text encoder (default: the vocabulary stored in\n"
            "                       the weights, tensor text_vocab, when the converter was given one)\n"
            "      --items FILE     item list: YAML with abnormalities and items {organ, abnormality,\n"
            "                       negative, positive} (default: CT-RATE's 16 items, equal to\n"
            "                       pipelines/ct-rate-abnormalities.yaml)\n"
            "      --max-length N   tokens per prompt including [CLS] and [SEP] (default 384)\n"
            "      --truncate       cut longer prompts to --max-length, as the released code does\n"
            "                       (said on stderr); without it a longer prompt is an error\n"
            "      --heads N        attention heads (default: meta text_heads, else width / 64)\n"
            "      --id ID          record id (default prompts)\n"
            "      --tokens         print the token ids of each prompt instead, one line per prompt\n"
            "                       ([CLS] ... [SEP], negative then positive of each item)\n"
            "      --lines FILE     with --tokens: tokenise each line of FILE ('-': stdin) instead\n"
            "                       of the prompts; longer lines are truncated (said on stderr)\n" CLI_COMMON_HELP
            "\n"
            "Exit status: 0 ok, 1 bad input (nothing written), 2 usage.\n"
            "Example: text-encode -w visd-boost.ctv -o prompts.ctv\n");
}

struct opts {
    const char *weights, *vocab, *items, *lines, *id;
    int         max_length, truncate, heads, tokens;
};

struct text {                        /* growable output text, printed only when complete */
    char  *p;
    size_t n, cap;
};

static void text_ids(struct text *t, const int32_t *ids, int n) {
    if (t->cap - t->n < (size_t)n * 12 + 2) t->p = ct_xrealloc(t->p, t->cap = 2 * t->cap + (size_t)n * 12 + 2);
    for (int i = 0; i < n; i++) {
        char d[12];
        int k = 0;
        uint32_t x = (uint32_t)ids[i];       /* ids are >= 0 */
        do d[k++] = (char)('0' + x % 10); while (x /= 10);
        if (i) t->p[t->n++] = ' ';
        while (k) t->p[t->n++] = d[--k];
    }
    t->p[t->n++] = '\n';
}

static void text_flush(struct text *t) {
    if (t->n && fwrite(t->p, 1, t->n, stdout) != t->n) ct_die("stdout: write error");
    if (fflush(stdout) != 0) ct_die("stdout: write error");
    t->n = 0;
}

/* --tokens --lines: every line of path ('\n'-separated; a final line without '\n' counts). */
static void tokens_lines(const struct opts *o, const struct wp_vocab *v) {
    FILE *f = strcmp(o->lines, "-") ? fopen(o->lines, "rb") : stdin;
    if (!f) ct_die("%s: %s", o->lines, strerror(errno));
    struct text t = { 0 };
    int32_t *ids = ct_xmalloc((size_t)o->max_length * sizeof *ids);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long ln = 0, n_trunc = 0;
    double t0 = ct_now(), t_tok = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        ln++;
        if (len && line[len - 1] == '\n') len--;
        int full;
        double t1 = ct_now();
        int k = wp_encode(v, line, (size_t)len, ids, o->max_length, &full);
        t_tok += ct_now() - t1;
        if (k < 0) ct_die("%s: line %ld: %s", o->lines, ln, ct_lasterr());
        if (full > k) {
            ct_warn("%s: line %ld: %d tokens, truncated to %d", o->lines, ln, full, k);
            n_trunc++;
        }
        text_ids(&t, ids, k);
    }
    if (ferror(f)) ct_die("%s: read error", o->lines);
    if (f != stdin) fclose(f);
    text_flush(&t);
    ct_log(1, "%ld lines (%ld truncated) tokenised in %.3f s (%.3f s with reading and printing)", ln, n_trunc, t_tok,
           ct_now() - t0);
    free(line);
    free(ids);
    free(t.p);
}

/* Tokenise the prompts of every item: ids[2 i + j] (j 0 negative, 1 positive). */
static void tokenize_items(const struct opts *o, const struct wp_vocab *v, const struct org_abn *t,
                           int32_t **ids, int *lens) {
    for (int i = 0; i < t->n_items; i++)
        for (int j = 0; j < 2; j++) {
            const struct org_item *it = &t->items[i];
            const char *p = j ? it->positive : it->negative, *what = j ? "positive" : "negative";
            const char *abn = t->names[it->abn];
            if (!*p) ct_die("item %d (%s): empty %s prompt", i + 1, abn, what);
            int full;
            ids[2 * i + j] = ct_xmalloc((size_t)o->max_length * sizeof **ids);
            int k = wp_encode(v, p, strlen(p), ids[2 * i + j], o->max_length, &full);
            if (k < 0) ct_die("item %d (%s): %s prompt: %s", i + 1, abn, what, ct_lasterr());
            if (k == 2) ct_die("item %d (%s): the %s prompt '%s' has no tokens", i + 1, abn, what, p);
            if (full > k) {
                if (!o->truncate)
                    ct_die("item %d (%s): the %s prompt has %d tokens, more than --max-length %d (--truncate cuts it)",
                           i + 1, abn, what, full, o->max_length);
                ct_warn("item %d (%s): the %s prompt has %d tokens, truncated to %d", i + 1, abn, what, full, k);
            }
            lens[2 * i + j] = k;
        }
}

static void write_prompts(const struct opts *o, const struct cli_common *cc, const struct rec *w,
                          const struct org_abn *t, const float *feat, int proj, double temp, int argc,
                          char **argv) {
    struct tn_arena *a = tn_arena_new(0);
    struct rec r;
    rec_init(&r, a, "ct.prompts/1", o->id);
    int64_t shape[3] = { t->n_items, 2, proj };
    struct tn_tensor *tf = tn_new(a, TN_F32, 3, shape, "text_feat");
    memcpy(tf->data, feat, tn_nbytes(tf));
    rec_add_tensor(&r, tf);
    struct rec_mp mp = { 0 };
    rec_mp_array(&mp, (uint32_t)t->n_items);
    for (int i = 0; i < t->n_items; i++) {
        rec_mp_map(&mp, 4);
        rec_mp_str(&mp, "organ");
        rec_mp_str(&mp, t->items[i].organ);
        rec_mp_str(&mp, "abnormality");
        rec_mp_str(&mp, t->names[t->items[i].abn]);
        rec_mp_str(&mp, "negative");
        rec_mp_str(&mp, t->items[i].negative);
        rec_mp_str(&mp, "positive");
        rec_mp_str(&mp, t->items[i].positive);
    }
    rec_meta_set_mp(&r, "items", &mp);
    rec_meta_set_f64(&r, "temp", temp);
    rec_meta_set_str(&r, "weights_id", w->id);
    const struct rec_val *u = rec_meta_get(w, "untrained");
    rec_mp_bool(&mp, u && u->type == RV_BOOL && u->v.b);
    rec_meta_set_mp(&r, "weights_untrained", &mp);
    rec_meta_set_i64(&r, "max_length", o->max_length);
    rec_history_append(&r, argc, argv);
    struct rec_writer *out = rec_writer_open(cc->output, &cc->wopts);
    if (!out) ct_die("%s", ct_lasterr());
    if (rec_write(out, &r) != 0) {
        rec_writer_abort(out);
        ct_die("%s", ct_lasterr());
    }
    if (rec_writer_close(out) != 0) ct_die("%s", ct_lasterr());
    tn_arena_free(a);
}

/* the tensors the text side needs: text_encoder.*, text_proj.*, text_vocab, temp (a weights file
 * with the image encoder and the VQ-VAE as well costs no memory here) */
static int keep_text(const char *name, void *ctx) {
    (void)ctx;
    return !strncmp(name, "text_", 5) || !strcmp(name, "temp");
}

int main(int argc, char **argv) {
    ct_init(argv[0]);
    ct_blas_init(argv);   /* may re-exec once with stronger BLAS kernels (lib/blas.h) */
    struct opts o = { .id = "prompts", .max_length = DEFAULT_MAX_LENGTH };
    struct cli_common cc;
    cli_common_init(&cc);
    enum { OPT_VOCAB = 256, OPT_ITEMS, OPT_MAXLEN, OPT_TRUNC, OPT_HEADS, OPT_ID, OPT_TOKENS, OPT_LINES };
    static const struct option longopts[] = {
        { "weights", required_argument, 0, 'w' }, { "vocab", required_argument, 0, OPT_VOCAB },
        { "items", required_argument, 0, OPT_ITEMS }, { "max-length", required_argument, 0, OPT_MAXLEN },
        { "truncate", no_argument, 0, OPT_TRUNC }, { "heads", required_argument, 0, OPT_HEADS },
        { "id", required_argument, 0, OPT_ID }, { "tokens", no_argument, 0, OPT_TOKENS },
        { "lines", required_argument, 0, OPT_LINES }, CLI_COMMON_LONGOPTS, { 0, 0, 0, 0 },
    };
    int ch;
    long l;
    while ((ch = getopt_long(argc, argv, "w:" CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (ch) {
        case 'w': o.weights = optarg; break;
        case OPT_VOCAB: o.vocab = optarg; break;
        case OPT_ITEMS: o.items = optarg; break;
        case OPT_MAXLEN:
            if (ct_parse_long(optarg, &l) != 0 || l < 3 || l > 100000)
                ct_usage_die("--max-length: expected an integer 3..100000, got '%s'", optarg);
            o.max_length = (int)l;
            break;
        case OPT_TRUNC: o.truncate = 1; break;
        case OPT_HEADS:
            if (ct_parse_long(optarg, &l) != 0 || l < 1 || l > 4096)
                ct_usage_die("--heads: expected an integer 1..4096, got '%s'", optarg);
            o.heads = (int)l;
            break;
        case OPT_ID: o.id = optarg; break;
        case OPT_TOKENS: o.tokens = 1; break;
        case OPT_LINES: o.lines = optarg; break;
        default:
            if (!cli_common(ch, optarg, &cc, usage)) cli_unknown();
        }
    }
    if (optind < argc) ct_usage_die("unexpected argument '%s'", argv[optind]);
    if (o.lines && !o.tokens) ct_usage_die("--lines needs --tokens");
    if (!o.weights && !(o.tokens && o.vocab))
        ct_usage_die("no weights (-w FILE, a ct.weights/1 file with the text encoder)");
    if (!*o.id) ct_usage_die("--id: empty");

    double t0 = ct_now();
    struct org_abn items;
    struct tn_arena *ia = tn_arena_new(0);
    if (!o.lines) {
        if (o.items) {
            if (org_abn_load(o.items, ia, &items) != 0) ct_die("%s", ct_lasterr());
            if (items.n_items == 0) ct_die("%s: no items", o.items);
        } else {
            org_abn_default(&items);
        }
    }
    /* weights: one record, its tensors borrowed by the model (no second copy) */
    struct tn_arena *wa = tn_arena_new(0);
    struct weights wt = { 0 };
    if (o.weights && weights_read(o.weights, keep_text, NULL, wa, &wt) != 0) ct_die("%s", ct_lasterr());
    struct rec *w = &wt.rec;
    double t_load = ct_now() - t0;
    struct wp_vocab *v;
    if (o.vocab) {
        v = wp_vocab_load(o.vocab);
    } else {
        const struct tn_tensor *vt = rec_tensor(w, "text_vocab");
        if (!vt)
            ct_die("%s: no vocabulary in the weights (tensor text_vocab): give --vocab FILE (the model's vocab.txt)",
                   o.weights);
        if (vt->dtype != TN_U8 || vt->ndim != 1) ct_die("%s: tensor text_vocab is not u8 [n]", o.weights);
        char name[512];
        snprintf(name, sizeof name, "%s: text_vocab", o.weights);
        v = wp_vocab_parse(vt->data, (size_t)vt->shape[0], name);
    }
    if (!v) ct_die("%s", ct_lasterr());
    if (o.lines) {
        tokens_lines(&o, v);
        wp_vocab_free(v);
        tn_arena_free(wa);
        tn_arena_free(ia);
        return CT_EXIT_OK;
    }
    int n = 2 * items.n_items;
    int32_t **ids = ct_xcalloc((size_t)n, sizeof *ids);
    int *lens = ct_xcalloc((size_t)n, sizeof *lens);
    tokenize_items(&o, v, &items, ids, lens);
    if (o.tokens) {
        struct text t = { 0 };
        for (int i = 0; i < n; i++) text_ids(&t, ids[i], lens[i]);
        text_flush(&t);
        free(t.p);
    } else {
        struct bert *b = bert_new(w, o.heads);
        if (!b) ct_die("%s: %s", o.weights, ct_lasterr());
        struct bert_dims d;
        bert_dims(b, &d);
        if (o.max_length > d.max_positions)
            ct_die("--max-length %d is more than the %d positions of the text encoder", o.max_length, d.max_positions);
        if (wp_vocab_size(v) > d.vocab)
            ct_die("the vocabulary has %d tokens, the text encoder's embedding table %d rows", wp_vocab_size(v), d.vocab);
        ct_log(1, "text encoder: %d layers, width %d, %d heads, intermediate %d, vocab %d, projection %d; "
               "weights read in %.2f s", d.layers, d.hidden, d.heads, d.intermediate, d.vocab, d.proj, t_load);
        ct_log(1, "BLAS: %s", ct_blas_describe());
        float *feat = ct_xmalloc((size_t)n * d.proj * sizeof *feat);
        double t1 = ct_now();
        if (bert_prompt_features(b, n, (const int32_t *const *)ids, lens, feat, cc.threads) != 0)
            ct_die("%s", ct_lasterr());
        ct_log(1, "%d prompts encoded in %.3f s; peak RSS %ld MB", n, ct_now() - t1, ct_peak_rss_kb() / 1024);
        write_prompts(&o, &cc, w, &items, feat, d.proj, bert_temp(b), argc, argv);
        if (wt.untrained)
            ct_warn("%s: untrained (random) weights: the prompt features are for testing only", o.weights);
        free(feat);
        bert_free(b);
    }
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(lens);
    wp_vocab_free(v);
    tn_arena_free(wa);
    tn_arena_free(ia);
    return CT_EXIT_OK;
}
