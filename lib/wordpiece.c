/*
 * wordpiece.c - BERT's uncased basic tokenizer + WordPiece (see wordpiece.h for the steps).
 */
#include "wordpiece.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "ct.h"
#include "wordpiece-unicode.h"

/* ---- vocabulary: open-addressing hash of (bytes, continuation flag) -> id ---- */

struct wp_entry {
    uint32_t off, len;               /* token bytes in pool (without "##" for continuations) */
    int32_t  id;                     /* -1: empty slot */
    uint32_t cont;                   /* 1: a "##" piece */
};

struct wp_vocab {
    char            *pool;           /* the file's bytes, lines NUL-terminated in place */
    uint32_t        *line_off;       /* id -> offset of its line in pool */
    int              n_ids;
    struct wp_entry *slots;
    uint32_t         mask;
    uint32_t         max_len[2];     /* longest token in bytes: word starts, ## pieces */
    int32_t          unk, cls, sep;
    int32_t          special[5];     /* [PAD] [UNK] [CLS] [SEP] [MASK] or -1 */
};

static const char *const special_names[5] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };

static uint32_t hash_bytes(const char *s, size_t n, uint32_t cont) {
    uint32_t h = 2166136261u ^ cont;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h ^ (h >> 15);
}

static int32_t lookup(const struct wp_vocab *v, const char *s, size_t n, uint32_t cont) {
    for (uint32_t i = hash_bytes(s, n, cont) & v->mask;; i = (i + 1) & v->mask) {
        const struct wp_entry *e = &v->slots[i];
        if (e->id < 0) return -1;
        if (e->len == n && e->cont == cont && memcmp(v->pool + e->off, s, n) == 0) return e->id;
    }
}

static void insert(struct wp_vocab *v, uint32_t off, uint32_t len, uint32_t cont, int32_t id) {
    if (len > v->max_len[cont]) v->max_len[cont] = len;
    for (uint32_t i = hash_bytes(v->pool + off, len, cont) & v->mask;; i = (i + 1) & v->mask) {
        struct wp_entry *e = &v->slots[i];
        if (e->id < 0) {
            *e = (struct wp_entry){ off, len, id, cont };
            return;
        }
        if (e->len == len && e->cont == cont && memcmp(v->pool + e->off, v->pool + off, len) == 0) {
            e->id = id;              /* a repeated token keeps its last id (load_vocab) */
            return;
        }
    }
}

void wp_vocab_free(struct wp_vocab *v) {
    if (!v) return;
    free(v->pool);
    free(v->line_off);
    free(v->slots);
    free(v);
}

struct wp_vocab *wp_vocab_parse(const char *text, size_t n, const char *name) {
    if (n == 0) {
        ct_seterr("%s: empty vocabulary", name);
        return NULL;
    }
    if (n > (size_t)1 << 30) {
        ct_seterr("%s: vocabulary larger than 1 GB", name);
        return NULL;
    }
    size_t bad = csv_utf8_check(text, n);
    if (bad != n) {
        long line, col;
        csv_line_col(text, bad, &line, &col);
        ct_seterr("%s: line %ld: invalid UTF-8", name, line);
        return NULL;
    }
    if (memchr(text, 0, n)) {
        ct_seterr("%s: NUL byte (not a vocab.txt)", name);
        return NULL;
    }
    struct wp_vocab *v = ct_xcalloc(1, sizeof *v);
    v->pool = ct_xmalloc(n + 1);
    memcpy(v->pool, text, n);
    v->pool[n] = 0;
    /* lines: \n, \r\n and \r end a line (Python's universal newlines); a last line without an
     * end counts, an empty file after the last newline does not */
    size_t n_lines = 0;
    for (size_t i = 0; i < n; i++)
        if (text[i] == '\n' || (text[i] == '\r' && (i + 1 == n || text[i + 1] != '\n'))) n_lines++;
    if (text[n - 1] != '\n' && text[n - 1] != '\r') n_lines++;
    if (n_lines > INT32_MAX / 2) {
        wp_vocab_free(v);
        ct_seterr("%s: too many lines", name);
        return NULL;
    }
    v->line_off = ct_xmalloc(n_lines * sizeof *v->line_off);
    uint32_t cap = 16;
    while (cap < 2 * n_lines) cap *= 2;
    v->slots = ct_xmalloc((size_t)cap * sizeof *v->slots);
    for (uint32_t i = 0; i < cap; i++) v->slots[i].id = -1;
    v->mask = cap - 1;
    size_t start = 0;
    int id = 0;
    for (size_t i = 0; i <= n && (size_t)id < n_lines; i++) {
        if (i < n && v->pool[i] != '\n' && v->pool[i] != '\r') continue;
        size_t len = i - start;
        int crlf = i < n && v->pool[i] == '\r' && i + 1 < n && v->pool[i + 1] == '\n';
        v->pool[i] = 0;
        v->line_off[id] = (uint32_t)start;
        if (len > 2 && v->pool[start] == '#' && v->pool[start + 1] == '#')
            insert(v, (uint32_t)start + 2, (uint32_t)len - 2, 1, id);
        else
            insert(v, (uint32_t)start, (uint32_t)len, 0, id);
        id++;
        if (crlf) i++;
        start = i + 1;
    }
    v->n_ids = id;
    for (int k = 0; k < 5; k++) v->special[k] = lookup(v, special_names[k], strlen(special_names[k]), 0);
    v->unk = v->special[1];
    v->cls = v->special[2];
    v->sep = v->special[3];
    for (int k = 1; k <= 3; k++)
        if (v->special[k] < 0) {
            ct_seterr("%s: no %s token (not a BERT vocab.txt?)", name, special_names[k]);
            wp_vocab_free(v);
            return NULL;
        }
    return v;
}

struct wp_vocab *wp_vocab_load(const char *path) {
    char *buf;
    size_t n;
    if (ct_read_file(path, &buf, &n) != 0) return NULL;
    struct wp_vocab *v = wp_vocab_parse(buf, n, path);
    free(buf);
    return v;
}

int wp_vocab_size(const struct wp_vocab *v) { return v->n_ids; }

int wp_vocab_id(const struct wp_vocab *v, const char *token) {
    size_t n = strlen(token);
    if (n > 2 && token[0] == '#' && token[1] == '#') return lookup(v, token + 2, n - 2, 1);
    return lookup(v, token, n, 0);
}

const char *wp_vocab_token(const struct wp_vocab *v, int id) {
    return id >= 0 && id < v->n_ids ? v->pool + v->line_off[id] : NULL;
}

const char *wp_unicode_version_str(void) { return wp_unicode_version; }

/* ---- tokenising ---- */

struct out {
    int32_t *ids;
    int      cap, n;                 /* ids written (<= cap), pieces seen */
};

static void emit(struct out *o, int32_t id) {
    if (o->n < o->cap) o->ids[o->n] = id;
    o->n++;
}

static size_t utf8_put(char *p, uint32_t c) {
    if (c < 0x80) {
        p[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        p[0] = (char)(0xC0 | (c >> 6));
        p[1] = (char)(0x80 | (c & 63));
        return 2;
    }
    if (c < 0x10000) {
        p[0] = (char)(0xE0 | (c >> 12));
        p[1] = (char)(0x80 | ((c >> 6) & 63));
        p[2] = (char)(0x80 | (c & 63));
        return 3;
    }
    p[0] = (char)(0xF0 | (c >> 18));
    p[1] = (char)(0x80 | ((c >> 12) & 63));
    p[2] = (char)(0x80 | ((c >> 6) & 63));
    p[3] = (char)(0x80 | (c & 63));
    return 4;
}

/* scratch buffers of one wp_encode call, sized from the text length */
struct scratch {
    uint32_t *low, *dec;             /* lower-cased word, its NFD */
    char     *bytes;                 /* a token's UTF-8 */
    uint32_t *boff;                  /* byte offset of each code point of the token, + end */
};

/* WordPiece on one basic token (cps[0..n)) */
static void wordpiece(const struct wp_vocab *v, const uint32_t *cps, size_t n, struct scratch *s, struct out *o) {
    if (n > WP_MAX_WORD_CHARS) {
        emit(o, v->unk);
        return;
    }
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        s->boff[i] = (uint32_t)nb;
        nb += utf8_put(s->bytes + nb, cps[i]);
    }
    s->boff[n] = (uint32_t)nb;
    int32_t found[WP_MAX_WORD_CHARS];
    int n_found = 0;
    for (size_t start = 0; start < n;) {
        size_t end = n;
        int32_t id = -1;
        uint32_t maxb = v->max_len[start > 0];
        while (end > start && s->boff[end] - s->boff[start] > maxb) end--;   /* longer than any token */
        for (; end > start; end--) {
            id = lookup(v, s->bytes + s->boff[start], s->boff[end] - s->boff[start], start > 0);
            if (id >= 0) break;
        }
        if (id < 0) {
            emit(o, v->unk);
            return;
        }
        found[n_found++] = id;
        start = end;
    }
    for (int i = 0; i < n_found; i++) emit(o, found[i]);
}

#define HANGUL_S0 0xAC00
#define HANGUL_N  11172

/* Lower case (each code point alone, as PreTrainedTokenizer.tokenize's pass for do_lower_case
 * tokenizers: so no final-sigma context), NFD, Mn removed, punctuation split, WordPiece. */
static void word(const struct wp_vocab *v, const uint32_t *w, size_t n, struct scratch *s, struct out *o) {
    size_t nd = 0, nl = 0;
    uint32_t any = 0;
    for (size_t i = 0; i < n; i++) any |= w[i];
    if (any < 0x80) {                /* ASCII: lower case is A-Z only, NFD changes nothing */
        for (size_t i = 0; i < n; i++) s->dec[i] = w[i] + 32 * (w[i] - 'A' < 26u);
        nd = n;
        goto split;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t c = w[i];
        if (c == 0x130) {            /* the one multi-code-point lower case */
            s->low[nl++] = 'i';
            s->low[nl++] = 0x307;
        } else {
            s->low[nl++] = (uint32_t)((int32_t)c + wp_uc(c)->lower);
        }
    }
    /* NFD: full decomposition, then canonical ordering of each run of non-starters */
    for (size_t i = 0; i < nl; i++) {
        uint32_t c = s->low[i];
        if (c - HANGUL_S0 < HANGUL_N) {
            uint32_t k = c - HANGUL_S0;
            s->dec[nd++] = 0x1100 + k / 588;
            s->dec[nd++] = 0x1161 + (k % 588) / 28;
            if (k % 28) s->dec[nd++] = 0x11A7 + k % 28;
            continue;
        }
        const struct wp_uc_props *p = wp_uc(c);
        if (p->dlen)
            for (int k = 0; k < p->dlen; k++) s->dec[nd++] = wp_uc_decomp[p->doff + k];
        else
            s->dec[nd++] = c;
    }
    for (size_t i = 1; i < nd; i++) {   /* stable insertion sort by ccc within runs of ccc > 0 */
        uint32_t c = s->dec[i];
        int cc = wp_uc(c)->ccc;
        if (!cc) continue;
        size_t j = i;
        while (j > 0) {
            int pc = wp_uc(s->dec[j - 1])->ccc;
            if (pc <= cc) break;     /* a starter (0) or an equal/lower class stops the move */
            s->dec[j] = s->dec[j - 1];
            j--;
        }
        s->dec[j] = c;
    }
split:;  /* strip Mn, split punctuation */
    size_t m = 0, start = 0;
    for (size_t i = 0; i < nd; i++) {
        uint32_t c = s->dec[i];
        unsigned f = wp_uc(c)->flags;
        if (f & WP_UC_MN) continue;
        if (f & WP_UC_PUNCT) {
            if (m > start) wordpiece(v, s->dec + start, m - start, s, o);
            s->dec[m++] = c;
            wordpiece(v, s->dec + m - 1, 1, s, o);
            start = m;
        } else {
            s->dec[m++] = c;
        }
    }
    if (m > start) wordpiece(v, s->dec + start, m - start, s, o);
}

static uint32_t utf8_next(const unsigned char *p, size_t *i) {
    unsigned char c = p[*i];
    if (c < 0x80) {
        (*i)++;
        return c;
    }
    if (c < 0xE0) {
        uint32_t r = ((uint32_t)(c & 0x1F) << 6) | (p[*i + 1] & 63);
        *i += 2;
        return r;
    }
    if (c < 0xF0) {
        uint32_t r = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(p[*i + 1] & 63) << 6) | (p[*i + 2] & 63);
        *i += 3;
        return r;
    }
    uint32_t r = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[*i + 1] & 63) << 12) |
                 ((uint32_t)(p[*i + 2] & 63) << 6) | (p[*i + 3] & 63);
    *i += 4;
    return r;
}

/* The basic tokenizer on a segment without special tokens: clean, CJK split, whitespace split. */
static void segment(const struct wp_vocab *v, const char *text, size_t n, uint32_t *w, struct scratch *s,
                    struct out *o) {
    const unsigned char *p = (const unsigned char *)text;
    size_t nw = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c = utf8_next(p, &i);
        unsigned f = wp_uc(c)->flags;
        if (f & WP_UC_DROP) continue;
        if (f & (WP_UC_SPACE | WP_UC_SPLIT | WP_UC_CJK)) {
            if (nw) word(v, w, nw, s, o);
            nw = 0;
            if (f & WP_UC_CJK) word(v, &c, 1, s, o);
            continue;
        }
        w[nw++] = c;
    }
    if (nw) word(v, w, nw, s, o);
}

int wp_encode(const struct wp_vocab *v, const char *text, size_t n, int32_t *ids, int max_len, int *n_full) {
    CT_ASSERT(max_len >= 2);
    size_t bad = csv_utf8_check(text, n);
    if (bad != n) return ct_seterr("invalid UTF-8 at byte %zu", bad);
    /* code points <= n; lower case at most 2 per code point of >= 2 bytes; NFD at most 4 per
     * code point of >= 2 bytes (an ASCII code point decomposes to itself) */
    struct scratch s;
    uint32_t *w = ct_xmalloc((n + 1) * sizeof *w);
    s.low = ct_xmalloc((n + 1) * sizeof *s.low);
    s.dec = ct_xmalloc((2 * n + 4) * sizeof *s.dec);
    s.bytes = ct_xmalloc(4 * WP_MAX_WORD_CHARS + 4);
    s.boff = ct_xmalloc((WP_MAX_WORD_CHARS + 1) * sizeof *s.boff);
    struct out o = { ids + 1, max_len - 2, 0 };
    size_t seg = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] != '[') continue;
        for (int k = 0; k < 5; k++) {
            size_t len = strlen(special_names[k]);
            if (i + len <= n && memcmp(text + i, special_names[k], len) == 0) {
                if (i > seg) segment(v, text + seg, i - seg, w, &s, &o);
                emit(&o, v->special[k] >= 0 ? v->special[k] : v->unk);
                seg = i + len;
                i = seg - 1;
                break;
            }
        }
    }
    if (n > seg) segment(v, text + seg, n - seg, w, &s, &o);
    free(w);
    free(s.low);
    free(s.dec);
    free(s.bytes);
    free(s.boff);
    int k = o.n < o.cap ? o.n : o.cap;
    ids[0] = v->cls;
    ids[k + 1] = v->sep;
    if (n_full) *n_full = o.n + 2;
    return k + 2;
}
