/*
 * report.c - structured radiology reports into per-organ labels (see report.h).
 *
 * Sections: compiled-in tables, organ set, abnormality table, ids, document
 * trees (jansson / lib/cfg), LLM answer payloads, normalisation, the §6.1
 * rule, CT-RATE CSV columns, the prompt, id sets.
 */
#include "report.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "csv.h"
#include "ct.h"

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- volume names and scan ids ---- */

void report_volume_id(const char *name, char *out, size_t n) { ct_case_id(name, out, n); }

/* p points at one or more digits followed by end or '_': their length, else 0 */
static size_t digits(const char *p) {
    size_t k = 0;
    while (p[k] >= '0' && p[k] <= '9') k++;
    return k;
}

int report_scan_id(const char *name, char *out, size_t n) {
    report_volume_id(name, out, n);
    const char *p = out;
    if (!strncmp(p, "train_", 6)) p += 6;
    else if (!strncmp(p, "valid_", 6)) p += 6;
    else if (!strncmp(p, "test_", 5)) p += 5;
    else return 0;
    size_t k = digits(p);                    /* patient */
    if (!k || p[k] != '_') return 0;
    p += k + 1;
    k = 0;
    while (p[k] >= 'a' && p[k] <= 'z') k++;  /* scan letter(s) */
    if (!k || p[k] != '_') return 0;
    char *cut = (char *)p + k;
    p += k + 1;
    k = digits(p);                           /* reconstruction */
    if (!k || p[k]) return 0;
    *cut = 0;
    return 1;
}

/* ---- document trees ---- */

const char *report_ntype_name(enum report_ntype t) {
    switch (t) {
    case RN_NULL: return "null";
    case RN_STR: return "a string";
    case RN_NUM: return "a number";
    case RN_BOOL: return "a boolean";
    case RN_LIST: return "a list";
    case RN_MAP: return "a map";
    }
    return "?";
}

static struct report_node *node_new(struct tn_arena *a, enum report_ntype t) {
    struct report_node *n = tn_arena_alloc(a, sizeof *n);
    memset(n, 0, sizeof *n);
    n->type = t;
    n->s = "";
    return n;
}

static char *arena_strndup(struct tn_arena *a, const char *s, size_t n) {
    char *p = tn_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static struct report_node *from_json(const json_t *j, struct tn_arena *a) {
    struct report_node *n;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        n = node_new(a, RN_MAP);
        size_t k = json_object_size(j);
        n->keys = tn_arena_alloc(a, (k + 1) * sizeof *n->keys);
        n->items = tn_arena_alloc(a, (k + 1) * sizeof *n->items);
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)j, key, v) {   /* insertion order */
            n->keys[n->n] = tn_arena_strdup(a, key);
            n->items[n->n] = from_json(v, a);
            n->n++;
        }
        return n;
    }
    case JSON_ARRAY: {
        n = node_new(a, RN_LIST);
        size_t k = json_array_size(j);
        n->items = tn_arena_alloc(a, (k + 1) * sizeof *n->items);
        for (size_t i = 0; i < k; i++) n->items[n->n++] = from_json(json_array_get(j, i), a);
        return n;
    }
    case JSON_STRING:
        n = node_new(a, RN_STR);
        n->len = json_string_length(j);
        n->s = arena_strndup(a, json_string_value(j), n->len);
        return n;
    case JSON_INTEGER:
    case JSON_REAL: {
        n = node_new(a, RN_NUM);
        char buf[64];
        if (json_is_integer(j)) snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        else snprintf(buf, sizeof buf, "%.17g", json_real_value(j));
        n->s = tn_arena_strdup(a, buf);
        n->len = strlen(buf);
        return n;
    }
    case JSON_TRUE:
    case JSON_FALSE:
        n = node_new(a, RN_BOOL);
        n->s = json_is_true(j) ? "true" : "false";
        n->len = strlen(n->s);
        return n;
    case JSON_NULL:
    default: return node_new(a, RN_NULL);
    }
}

static struct report_node *from_cfg(const struct cfg_node *c, struct tn_arena *a) {
    struct report_node *n;
    switch (c->type) {
    case CFG_MAP:
        n = node_new(a, RN_MAP);
        n->keys = tn_arena_alloc(a, (size_t)(c->n + 1) * sizeof *n->keys);
        n->items = tn_arena_alloc(a, (size_t)(c->n + 1) * sizeof *n->items);
        for (int i = 0; i < c->n; i++) {
            n->keys[i] = c->keys[i];
            if (!(n->items[i] = from_cfg(c->vals[i], a))) return NULL;
        }
        n->n = c->n;
        break;
    case CFG_SEQ:
        n = node_new(a, RN_LIST);
        n->items = tn_arena_alloc(a, (size_t)(c->n + 1) * sizeof *n->items);
        for (int i = 0; i < c->n; i++)
            if (!(n->items[i] = from_cfg(c->items[i], a))) return NULL;
        n->n = c->n;
        break;
    case CFG_SCALAR:
    default:
        if (strlen(c->str) != c->len) {
            cfg_error(c, "NUL character in text");
            return NULL;
        }
        if (!c->quoted && (c->len == 0 || !strcmp(c->str, "~") || !strcmp(c->str, "null") ||
                           !strcmp(c->str, "Null") || !strcmp(c->str, "NULL"))) {
            n = node_new(a, RN_NULL);
        } else {
            n = node_new(a, RN_STR);
            n->s = c->str;
            n->len = c->len;
        }
        break;
    }
    n->line = c->line;
    n->col = c->col;
    return n;
}

/* ---- LLM answer payloads ---- */

/* Line [b, e) of s (e excludes the '\n'); returns the start of the next line. */
static size_t line_at(const char *s, size_t n, size_t b, size_t *e) {
    const char *nl = memchr(s + b, '\n', n - b);
    *e = nl ? (size_t)(nl - s) : n;
    return nl ? *e + 1 : n;
}

/* A fence run (3+ backticks or tildes) at s[b..e) after spaces: its length, else 0. */
static size_t fence_run(const char *s, size_t b, size_t e, char *ch, size_t *at) {
    size_t i = b;
    while (i < e && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i >= e || (s[i] != '`' && s[i] != '~')) return 0;
    size_t k = 0;
    while (i + k < e && s[i + k] == s[i]) k++;
    if (k < 3) return 0;
    *ch = s[i];
    *at = i;
    return k;
}

static int only_space(const char *s, size_t b, size_t e) {
    for (size_t i = b; i < e; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

/* Blank s[b..e) in out, keeping newlines. */
static void blank(char *out, size_t b, size_t e) {
    for (size_t i = b; i < e; i++)
        if (out[i] != '\n') out[i] = ' ';
}

int report_payload(const char *s, size_t n, enum report_syntax hint, struct tn_arena *a, char **out, int *flags,
                   enum report_syntax *syntax) {
    char *o = tn_arena_alloc(a, n + 1);
    memcpy(o, s, n);
    o[n] = 0;
    *out = o;
    int state = 0;                           /* 0 before, 1 inside, 2 after the fence */
    size_t open_b = 0;                       /* start of the opening fence line */
    size_t body_b = 0, body_e = n;           /* the fenced body */
    size_t close_e = n;                      /* end of the closing fence (line) */
    char fch = 0;
    size_t flen = 0;
    for (size_t b = 0; b < n;) {
        size_t e, next = line_at(s, n, b, &e), at = 0;
        char ch = 0;
        size_t k = fence_run(s, b, e, &ch, &at);
        if (state == 0 && k) {
            state = 1;
            fch = ch;
            flen = k;
            open_b = b;
            body_b = next;
            size_t i = at + k;               /* info string: ```json, ```yaml */
            while (i < e && (s[i] == ' ' || s[i] == '\t')) i++;
            size_t j = i;
            while (j < e && !isspace((unsigned char)s[j])) j++;
            char info[16] = "";
            if (j - i < sizeof info) {
                for (size_t t = i; t < j; t++) info[t - i] = (char)tolower((unsigned char)s[t]);
                info[j - i] = 0;
            }
            if (!strcmp(info, "yaml") || !strcmp(info, "yml")) *syntax = REPORT_YAML;
            else if (!strcmp(info, "json") || !strcmp(info, "jsonc") || !strcmp(info, "json5")) *syntax = REPORT_JSON;
            if (!only_space(s, j, e)) return ct_seterr("text after the opening code fence on its line");
        } else if (state == 1) {
            if (k >= flen && ch == fch && only_space(s, at + k, e)) {
                body_e = b;
                close_e = next;
                state = 2;
            } else {                         /* closing fence glued to the last line: ...}``` */
                size_t t = e;
                while (t > b && isspace((unsigned char)s[t - 1])) t--;
                size_t r = 0;
                while (t - r > b && s[t - r - 1] == fch) r++;
                if (r >= flen && !only_space(s, b, t - r)) {
                    body_e = t - r;
                    close_e = e;
                    state = 2;
                }
            }
        } else if (state == 2 && k) {
            return ct_seterr("more than one code block in the answer");
        }
        b = next;
    }
    if (state) {                             /* state 1: an unclosed fence runs to the end */
        *flags |= REPORT_F_FENCE;
        if (!only_space(s, 0, open_b) || !only_space(s, close_e, n)) *flags |= REPORT_F_PROSE;
        blank(o, 0, body_b);
        blank(o, body_e, n);
        return 0;
    }
    /* no fence: cut a JSON object out of surrounding prose */
    size_t i = 0;
    while (i < n && isspace((unsigned char)s[i])) i++;
    if (i == n || s[i] == '{' || s[i] == '[' || hint == REPORT_YAML) return 0;
    const char *open = NULL;
    if (hint == REPORT_JSON) {
        open = memchr(s, '{', n);
    } else {                                 /* AUTO: only a '{' that starts a line */
        for (size_t b = 0; b < n && !open;) {
            size_t e, next = line_at(s, n, b, &e);
            size_t t = b;
            while (t < e && (s[t] == ' ' || s[t] == '\t')) t++;
            if (t < e && s[t] == '{') open = s + t;
            b = next;
        }
    }
    if (!open) return 0;
    size_t ob = (size_t)(open - s), cb = n;
    while (cb > ob && s[cb - 1] != '}') cb--;
    if (cb <= ob) return 0;
    blank(o, 0, ob);
    blank(o, cb, n);
    *flags |= REPORT_F_BRACE | REPORT_F_PROSE;
    return 0;
}

int report_parse_text(const char *text, size_t n, const char *name, long line0, enum report_syntax syntax,
                      struct tn_arena *a, struct report_node ***roots, int *n_roots, int *flags) {
    *flags = 0;
    *n_roots = 0;
    size_t bad = csv_utf8_check(text, n);
    if (bad < n) {
        long l, c;
        csv_line_col(text, bad, &l, &c);
        return ct_seterr("%s:%ld:%ld: invalid UTF-8 (byte 0x%02x)", name, l + line0 - 1, c, (unsigned char)text[bad]);
    }
    const char *nul = memchr(text, 0, n);
    if (nul) {
        long l, c;
        csv_line_col(text, (size_t)(nul - text), &l, &c);
        return ct_seterr("%s:%ld:%ld: NUL byte", name, l + line0 - 1, c);
    }
    char *p;
    enum report_syntax fenced = REPORT_AUTO;
    size_t skip = 0;
    if (n >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) {
        *flags |= REPORT_F_BOM;
        skip = 3;
    }
    if (syntax == REPORT_JSON_STRICT) {      /* JSON as is: no fence or prose handling */
        p = arena_strndup(a, text + skip, n - skip);
        fenced = REPORT_JSON;
    } else if (report_payload(text + skip, n - skip, syntax, a, &p, flags, &fenced) != 0) {
        return ct_prefixerr("%s:%ld", name, line0);
    }
    n -= skip;
    size_t i = 0;
    while (i < n && isspace((unsigned char)p[i])) i++;
    if (i == n) return ct_seterr("%s:%ld: empty (no report in it)", name, line0);
    int json = fenced == REPORT_JSON || (fenced == REPORT_AUTO && syntax != REPORT_YAML &&
                                         (p[i] == '{' || p[i] == '[' || syntax == REPORT_JSON));
    struct report_node **out;
    if (json) {
        json_error_t err;
        json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &err);
        if (!j) return ct_seterr("%s:%ld:%d: %s", name, err.line + line0 - 1, err.column, err.text);
        if (json_is_array(j)) {
            size_t k = json_array_size(j);
            out = tn_arena_alloc(a, (k + 1) * sizeof *out);
            for (size_t t = 0; t < k; t++) out[(*n_roots)++] = from_json(json_array_get(j, t), a);
        } else {
            out = tn_arena_alloc(a, sizeof *out);
            out[(*n_roots)++] = from_json(j, a);
        }
        json_decref(j);
    } else {
        struct cfg_node **docs;
        int nd = cfg_load_all(p, n, name, a, &docs);
        if (nd < 0) return -1;
        int total = 0;
        for (int d = 0; d < nd; d++) total += docs[d]->type == CFG_SEQ ? docs[d]->n : 1;
        if (total == 0) return ct_seterr("%s:%ld: empty (no report in it)", name, line0);
        out = tn_arena_alloc(a, (size_t)(total + 1) * sizeof *out);
        for (int d = 0; d < nd; d++) {
            int k = docs[d]->type == CFG_SEQ ? docs[d]->n : 1;
            for (int t = 0; t < k; t++) {
                struct report_node *r = from_cfg(docs[d]->type == CFG_SEQ ? docs[d]->items[t] : docs[d], a);
                if (!r) return -1;
                out[(*n_roots)++] = r;
            }
        }
    }
    *roots = out;
    return 0;
}

/* ---- notes ---- */

void report_note_add(struct report_in *in, struct tn_arena *a, enum report_sev sev, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (in->n_notes == in->cap_notes) {
        int cap = in->cap_notes ? 2 * in->cap_notes : 8;
        struct report_note *v = tn_arena_alloc(a, (size_t)cap * sizeof *v);
        if (in->n_notes) memcpy(v, in->notes, (size_t)in->n_notes * sizeof *v);
        in->notes = v;
        in->cap_notes = cap;
    }
    in->notes[in->n_notes].sev = sev;
    in->notes[in->n_notes].msg = tn_arena_strdup(a, msg);
    in->n_notes++;
    if (sev == REPORT_FIX) in->n_fix++;
    else if (sev == REPORT_WARN) in->n_warn++;
    else in->n_error++;
}

const char *report_first_error(const struct report_in *in) {
    for (int i = 0; i < in->n_notes; i++)
        if (in->notes[i].sev == REPORT_ERROR) return in->notes[i].msg;
    return "";
}

/* " (line L:C)" for nodes with positions */
static const char *at(const struct report_node *n, char *buf, size_t sz) {
    if (n && n->line) snprintf(buf, sz, " (at %d:%d)", n->line, n->col);
    else buf[0] = 0;
    return buf;
}

/* ---- normalisation ---- */

enum { K_SCAN, K_FINDINGS, K_IMPRESSION, K_ANSWER, K_COUNT };
static const char *const key_canon[K_COUNT] = { "scan_id", "findings", "impression", "answer" };
static const struct {
    const char *form;                        /* key form */
    int         role;
} key_forms[] = {
    { "scan id", K_SCAN },           { "scanid", K_SCAN },         { "scan", K_SCAN },
    { "id", K_SCAN },                { "volume", K_SCAN },         { "volumename", K_SCAN },
    { "volume name", K_SCAN },       { "findings", K_FINDINGS },   { "finding", K_FINDINGS },
    { "desc", K_FINDINGS },          { "description", K_FINDINGS }, { "impression", K_IMPRESSION },
    { "impressions", K_IMPRESSION }, { "conclusion", K_IMPRESSION }, { "conclusions", K_IMPRESSION },
    { "conc", K_IMPRESSION },        { "answer", K_ANSWER },       { "response", K_ANSWER },
};

static int key_role(const char *key) {
    char k[64];
    if (strlen(key) >= sizeof k - 1) return -1;
    org_key_norm(key, k, sizeof k);
    for (int i = 0; i < NELEM(key_forms); i++)
        if (!strcmp(k, key_forms[i].form)) return key_forms[i].role;
    return -1;
}

static const char *const placeholders[] = {
    "none", "n/a", "na", "nil", "null", "normal", "not mentioned", "no abnormality", "no abnormalities",
    "unremarkable", "-", "no", "nothing", "not applicable", "no findings",
};

static int is_placeholder(const char *s, size_t n) {
    char k[32];
    if (n >= sizeof k) return 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) k[m++] = (char)tolower((unsigned char)s[i]);
    while (m && (k[m - 1] == '.' || k[m - 1] == ' ')) m--;
    k[m] = 0;
    for (int i = 0; i < NELEM(placeholders); i++)
        if (!strcmp(k, placeholders[i])) return 1;
    return 0;
}

static int is_ws(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* A text value of field.organ into out and out_n (NULL = absent).  0, or -1 after an error note. */
static int take_text(struct report_in *in, struct tn_arena *a, const char *field, const char *organ,
                     const struct report_node *v, int options, const char **out, size_t *out_n) {
    char pos[48];
    *out = NULL;
    *out_n = 0;
    int fvlm = options & REPORT_N_FVLM;
    if (v->type == RN_STR) {
        const char *s = v->s;
        size_t n = v->len;
        if (!fvlm) {
            while (n && is_ws((unsigned char)*s)) s++, n--;
            while (n && is_ws((unsigned char)s[n - 1])) n--;
            if (n != v->len) report_note_add(in, a, REPORT_FIX, "surrounding whitespace removed from %s.%s", field, organ);
            if (n == 0)
                report_note_add(in, a, REPORT_WARN, "%s.%s is empty (leave the organ out instead)", field, organ);
            else if (!strcmp(field, "impression") && is_placeholder(s, n))
                report_note_add(in, a, REPORT_WARN,
                                "impression.%s is '%.*s': any impression text makes the organ abnormal", organ, (int)n,
                                s);
        }
        *out = n == v->len ? s : arena_strndup(a, s, n);   /* NUL-terminated either way */
        *out_n = n;
        return 0;
    }
    if (!fvlm && v->type == RN_NULL) {
        report_note_add(in, a, REPORT_FIX, "%s.%s is null: read as absent", field, organ);
        return 0;
    }
    if (!fvlm && v->type == RN_LIST) {
        struct csv_buf b = { 0 };
        for (int i = 0; i < v->n; i++) {
            const struct report_node *it = v->items[i];
            if (it->type != RN_STR) {
                csv_buf_free(&b);
                report_note_add(in, a, REPORT_ERROR, "%s.%s: item %d of the list is %s, expected text%s", field, organ,
                                i, report_ntype_name(it->type), at(it, pos, sizeof pos));
                return -1;
            }
            const char *s = it->s;
            size_t n = it->len;
            while (n && is_ws((unsigned char)*s)) s++, n--;
            while (n && is_ws((unsigned char)s[n - 1])) n--;
            if (!n) continue;
            if (b.n) csv_buf_putc(&b, ' ');
            csv_buf_put(&b, s, n);
        }
        report_note_add(in, a, REPORT_FIX, "%s.%s is a list of %d strings: joined with spaces", field, organ, v->n);
        *out = b.n ? arena_strndup(a, b.p, b.n) : NULL;
        *out_n = b.n;
        csv_buf_free(&b);
        return 0;
    }
    report_note_add(in, a, REPORT_ERROR, "%s.%s is %s, expected text%s", field, organ, report_ntype_name(v->type),
                    at(v, pos, sizeof pos));
    return -1;
}

/* One organ key of a findings/impression map: organ index, -1 to skip (ignored or error noted). */
static int take_organ(const struct org_set *o, struct report_in *in, struct tn_arena *a, const char *field,
                      const char *key, const struct report_node *v, const char **seen) {
    enum org_match how;
    char pos[48];
    int k = org_find(o, key, &how);
    switch (how) {
    case ORG_EXACT: break;
    case ORG_CASE: report_note_add(in, a, REPORT_FIX, "organ key '%.80s' read as %s", key, o->names[k]); break;
    case ORG_ALIAS:
        report_note_add(in, a, REPORT_FIX, "organ key '%.80s' read as %s (alias)", key, o->names[k]);
        break;
    case ORG_IGNORED: report_note_add(in, a, REPORT_FIX, "organ key '%.80s' ignored (organ ignore list)", key); return -1;
    case ORG_UNKNOWN: {
        char known[256] = "";
        for (int i = 0; i < o->n; i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", o->names[i]);
        report_note_add(in, a, REPORT_ERROR,
                        "%s: unknown organ '%.80s'%s (organs: %s; add it to aliases or ignore in the organ YAML)", field,
                        key, at(v, pos, sizeof pos), known);
        return -1;
    }
    }
    if (seen[k]) {
        report_note_add(in, a, REPORT_ERROR, "%s: organ %s given twice (as '%.60s' and '%.60s')", field, o->names[k],
                        seen[k], key);
        return -1;
    }
    seen[k] = key;
    return k;
}

/* findings or impression map into in->desc / in->conc */
static void take_field(const struct org_set *o, struct report_in *in, struct tn_arena *a, int role,
                       const struct report_node *v, int options) {
    const char *field = role == K_FINDINGS ? "findings" : "impression";
    char pos[48];
    if (v->type != RN_MAP) {
        if (v->type == RN_NULL && !(options & REPORT_N_FVLM)) {
            report_note_add(in, a, REPORT_FIX, "%s is null: read as no organ", field);
            return;
        }
        report_note_add(in, a, REPORT_ERROR, "%s is %s, expected a map from organ to text%s", field,
                        report_ntype_name(v->type), at(v, pos, sizeof pos));
        return;
    }
    const char *seen[ORG_MAX] = { 0 };
    for (int i = 0; i < v->n; i++) {
        int k = take_organ(o, in, a, field, v->keys[i], v->items[i], seen);
        if (k < 0) continue;
        const char **dst = role == K_FINDINGS ? &in->desc[k] : &in->conc[k];
        size_t *dst_n = role == K_FINDINGS ? &in->desc_n[k] : &in->conc_n[k];
        take_text(in, a, field, o->names[k], v->items[i], options, dst, dst_n);
    }
}

/* Validate and set the scan id (after mapping a volume name); where says where
 * it came from for messages ("", " inside the answer", " from the file name"). */
static void set_scan_id(struct report_in *in, struct tn_arena *a, const char *id, size_t n, const char *where) {
    char buf[520], raw[520];
    if (n == 0 || n > 512) {
        report_note_add(in, a, REPORT_ERROR, "scan id%s is %s", where, n ? "longer than 512 bytes" : "empty");
        return;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f) {
            report_note_add(in, a, REPORT_ERROR, "scan id%s holds a control character", where);
            return;
        }
    memcpy(raw, id, n);
    raw[n] = 0;
    int mapped = report_scan_id(raw, buf, sizeof buf);
    if (!buf[0]) {
        report_note_add(in, a, REPORT_ERROR, "scan id '%.80s'%s has no name part", raw, where);
        return;
    }
    if (in->scan_id && strcmp(in->scan_id, buf)) {
        report_note_add(in, a, REPORT_ERROR, "scan id '%.80s'%s differs from '%s' given with the answer", raw, where,
                        in->scan_id);
        return;
    }
    if (mapped) report_note_add(in, a, REPORT_FIX, "scan id '%.80s'%s is a volume name: read as scan %s", raw, where, buf);
    else if (strcmp(buf, raw)) report_note_add(in, a, REPORT_FIX, "scan id '%.80s'%s read as %s", raw, where, buf);
    in->scan_id = tn_arena_strdup(a, buf);
}

static int normalise_map(const struct org_set *o, const struct report_node *root, int options,
                         struct tn_arena *a, struct report_in *in, int depth) {
    char pos[48];
    if (root->type != RN_MAP) {
        report_note_add(in, a, REPORT_ERROR, "expected a map (a JSON object) with findings and impression, got %s%s",
                        report_ntype_name(root->type), at(root, pos, sizeof pos));
        return -1;
    }
    int slot[K_COUNT];
    for (int r = 0; r < K_COUNT; r++) slot[r] = -1;
    int organ_major = 0;
    for (int i = 0; i < root->n; i++) {
        const char *key = root->keys[i];
        int r = key_role(key);
        if (r < 0) continue;
        if (slot[r] >= 0) {
            report_note_add(in, a, REPORT_ERROR, "both '%.60s' and '%.60s' given for %s", root->keys[slot[r]], key,
                            key_canon[r]);
            return -1;
        }
        slot[r] = i;
        if (strcmp(key, key_canon[r])) report_note_add(in, a, REPORT_FIX, "key '%.60s' read as %s", key, key_canon[r]);
    }
    /* organ-major layout: {"lung": {"findings": ..., "impression": ...}, ...} */
    if (slot[K_FINDINGS] < 0 && slot[K_IMPRESSION] < 0 && slot[K_ANSWER] < 0) {
        for (int i = 0; i < root->n && !organ_major; i++) {
            const struct report_node *v = root->items[i];
            if (key_role(root->keys[i]) >= 0 || v->type != RN_MAP) continue;
            for (int k = 0; k < v->n; k++) {
                int r = key_role(v->keys[k]);
                if (r == K_FINDINGS || r == K_IMPRESSION) organ_major = 1;
            }
        }
    }
    /* scan id */
    if (slot[K_SCAN] >= 0) {
        const struct report_node *v = root->items[slot[K_SCAN]];
        if (v->type != RN_STR)
            report_note_add(in, a, REPORT_ERROR, "scan_id is %s, expected text%s", report_ntype_name(v->type),
                            at(v, pos, sizeof pos));
        else
            set_scan_id(in, a, v->s, v->len, depth ? " inside the answer" : "");
    }
    if (slot[K_ANSWER] >= 0) {
        const struct report_node *v = root->items[slot[K_ANSWER]];
        if (slot[K_FINDINGS] >= 0 || slot[K_IMPRESSION] >= 0) {
            report_note_add(in, a, REPORT_ERROR, "both an answer and findings/impression given");
            return -1;
        }
        if (depth > 0) {
            report_note_add(in, a, REPORT_ERROR, "an answer inside an answer");
            return -1;
        }
        for (int i = 0; i < root->n; i++)
            if (key_role(root->keys[i]) < 0)
                report_note_add(in, a, REPORT_FIX, "key '%.60s' ignored", root->keys[i]);
        const struct report_node *inner = v;
        if (v->type == RN_STR) {
            struct report_node **roots;
            int nr, flags;
            if (report_parse_text(v->s, v->len, "answer", 1, REPORT_JSON, a, &roots, &nr, &flags) != 0) {
                report_note_add(in, a, REPORT_ERROR, "%s", ct_lasterr());
                return -1;
            }
            if (nr != 1) {
                report_note_add(in, a, REPORT_ERROR, "the answer holds %d reports, expected 1", nr);
                return -1;
            }
            if (flags & REPORT_F_BOM) report_note_add(in, a, REPORT_FIX, "byte-order mark removed from the answer");
            if (flags & REPORT_F_FENCE) report_note_add(in, a, REPORT_FIX, "Markdown code fence removed from the answer");
            if (flags & REPORT_F_BRACE)
                report_note_add(in, a, REPORT_FIX, "JSON object cut out of the text around it in the answer");
            else if (flags & REPORT_F_PROSE)
                report_note_add(in, a, REPORT_FIX, "text outside the code block of the answer dropped");
            inner = roots[0];
        } else if (v->type != RN_MAP) {
            report_note_add(in, a, REPORT_ERROR, "answer is %s, expected the LLM's text or a map",
                            report_ntype_name(v->type));
            return -1;
        }
        return normalise_map(o, inner, options, a, in, depth + 1);
    }
    if (organ_major) {
        report_note_add(in, a, REPORT_FIX, "organ-major layout (organ -> findings/impression) read");
        const char *seen_f[ORG_MAX] = { 0 };
        for (int i = 0; i < root->n; i++) {
            const struct report_node *v = root->items[i];
            if (key_role(root->keys[i]) >= 0) continue;
            if (v->type != RN_MAP) {
                report_note_add(in, a, REPORT_FIX, "key '%.60s' ignored", root->keys[i]);
                continue;
            }
            int k = take_organ(o, in, a, "report", root->keys[i], v, seen_f);
            if (k < 0) continue;
            for (int j = 0; j < v->n; j++) {
                int r = key_role(v->keys[j]);
                if (r != K_FINDINGS && r != K_IMPRESSION) {
                    report_note_add(in, a, REPORT_ERROR, "%s: unexpected key '%.60s' (expected findings, impression)",
                                    o->names[k], v->keys[j]);
                    continue;
                }
                const char **dst = r == K_FINDINGS ? &in->desc[k] : &in->conc[k];
                size_t *dst_n = r == K_FINDINGS ? &in->desc_n[k] : &in->conc_n[k];
                take_text(in, a, key_canon[r], o->names[k], v->items[j], options, dst, dst_n);
            }
        }
        return in->n_error ? -1 : 0;
    }
    for (int i = 0; i < root->n; i++)
        if (key_role(root->keys[i]) < 0) report_note_add(in, a, REPORT_FIX, "key '%.60s' ignored", root->keys[i]);
    if (slot[K_FINDINGS] < 0) report_note_add(in, a, REPORT_ERROR, "missing field 'findings'");
    else take_field(o, in, a, K_FINDINGS, root->items[slot[K_FINDINGS]], options);
    if (slot[K_IMPRESSION] < 0) report_note_add(in, a, REPORT_ERROR, "missing field 'impression'");
    else take_field(o, in, a, K_IMPRESSION, root->items[slot[K_IMPRESSION]], options);
    return in->n_error ? -1 : 0;
}

int report_normalise(const struct org_set *o, const struct report_node *root, int parse_flags,
                     const char *id_hint, int options, struct tn_arena *a, struct report_in *in) {
    memset(in, 0, sizeof *in);
    if (parse_flags & REPORT_F_BOM) report_note_add(in, a, REPORT_FIX, "byte-order mark removed");
    if (parse_flags & REPORT_F_FENCE) report_note_add(in, a, REPORT_FIX, "Markdown code fence removed");
    if (parse_flags & REPORT_F_BRACE) report_note_add(in, a, REPORT_FIX, "JSON object cut out of the text around it");
    else if (parse_flags & REPORT_F_PROSE) report_note_add(in, a, REPORT_FIX, "text outside the code block dropped");
    normalise_map(o, root, options, a, in, 0);
    if (!in->scan_id && id_hint) set_scan_id(in, a, id_hint, strlen(id_hint), " from the file name");
    if (!in->scan_id) report_note_add(in, a, REPORT_ERROR, "missing field 'scan_id'");
    return in->n_error ? -1 : 0;
}

int report_from_fvlm(const struct org_set *o, const char *scan_id, const struct report_node *desc,
                     const struct report_node *conc, struct tn_arena *a, struct report_in *in) {
    memset(in, 0, sizeof *in);
    set_scan_id(in, a, scan_id, strlen(scan_id), "");
    if (!in->scan_id) return -1;
    if (!desc) report_note_add(in, a, REPORT_FIX, "no entry in the findings file (desc_info)");
    else take_field(o, in, a, K_FINDINGS, desc, REPORT_N_FVLM);
    if (!conc) report_note_add(in, a, REPORT_FIX, "no entry in the impression file (conc_info): every organ normal by the rule");
    else take_field(o, in, a, K_IMPRESSION, conc, REPORT_N_FVLM);
    return in->n_error ? -1 : 0;
}

/* ---- the rule (method.md §6.1, fVLM caption_datasets.py) ---- */

int report_rule(const char *organ, const char *desc, size_t desc_n, const char *conc, size_t conc_n, int flags,
                struct csv_buf *text) {
    int released = flags & REPORT_RELEASED_EMPTY;
    text->n = 0;
    char normal[320];                        /* organ names are < 256 bytes */
    int k = snprintf(normal, sizeof normal, "%s shows no significant abnormalities.", organ);
    CT_ASSERT(k > 0 && (size_t)k < sizeof normal);
    if (conc && (conc_n > 0 || released)) {
        csv_buf_put(text, conc, conc_n);
        if (conc_n == 0 || conc[conc_n - 1] != '.') csv_buf_putc(text, '.');
    } else {
        csv_buf_put(text, normal, (size_t)k);
    }
    if (desc && (desc_n > 0 || released)) {
        csv_buf_put(text, desc, desc_n);
        if (desc_n == 0 || desc[desc_n - 1] != '.') csv_buf_putc(text, '.');
    }
    size_t w = 0;                            /* remove " ' ( ) in place */
    for (size_t r = 0; r < text->n; r++) {
        char c = text->p[r];
        if (c == '"' || c == '\'' || c == '(' || c == ')') continue;
        text->p[w++] = c;
    }
    text->n = w;
    if (text->p) text->p[w] = 0;
    return !(w >= (size_t)k && !memcmp(text->p, normal, (size_t)k));
}

void report_apply(const struct org_set *o, const struct report_in *in, int flags, struct tn_arena *a,
                  struct report_out *out) {
    memset(out, 0, sizeof *out);
    out->scan_id = in->scan_id;
    out->n = o->n;
    out->organs = (const char **)o->names;
    struct csv_buf b = { 0 };
    for (int i = 0; i < o->n; i++) {
        out->abnormal[i] = report_rule(o->names[i], in->desc[i], in->desc_n[i], in->conc[i], in->conc_n[i], flags, &b);
        out->text[i] = arena_strndup(a, b.p ? b.p : "", b.n);
        out->text_n[i] = b.n;
    }
    csv_buf_free(&b);
}

/* ---- CT-RATE CSV columns ---- */

int report_label_header(const struct org_abn *t, const struct csv_row *row, const char *name,
                        struct report_label_cols *c) {
    c->n_cols = row->n;
    c->volume = -1;
    for (int i = 0; i < t->n; i++) c->abn[i] = -1;
    for (int f = 0; f < row->n; f++) {
        const char *h = row->fields[f];
        int hit = 0;
        if (!strcmp(h, "VolumeName")) {
            if (c->volume >= 0) return ct_seterr("%s:%ld: column 'VolumeName' given twice", name, row->line);
            c->volume = f;
            continue;
        }
        for (int i = 0; i < t->n && !hit; i++)
            if (!strcmp(h, t->names[i])) {
                if (c->abn[i] >= 0) return ct_seterr("%s:%ld: column '%s' given twice", name, row->line, h);
                c->abn[i] = f;
                hit = 1;
            }
        if (!hit)
            return ct_seterr("%s:%ld: unexpected column '%.80s' (expected VolumeName and the %d abnormalities)", name,
                             row->line, h, t->n);
    }
    if (c->volume < 0) return ct_seterr("%s:%ld: missing column 'VolumeName'", name, row->line);
    for (int i = 0; i < t->n; i++)
        if (c->abn[i] < 0) return ct_seterr("%s:%ld: missing column '%s'", name, row->line, t->names[i]);
    return 0;
}

int report_label_row(const struct org_abn *t, const struct report_label_cols *c, const struct csv_row *row,
                     const char *name, const char **volume, int *labels) {
    if (row->n != c->n_cols)
        return ct_seterr("%s:%ld: %d fields, expected %d as in the header", name, row->line, row->n, c->n_cols);
    *volume = row->fields[c->volume];
    if (!**volume) return ct_seterr("%s:%ld: empty VolumeName", name, row->line);
    for (int i = 0; i < t->n; i++) {
        const char *v = row->fields[c->abn[i]];
        if ((v[0] != '0' && v[0] != '1') || v[1])
            return ct_seterr("%s:%ld: %s: '%.40s' is not 0 or 1 (volume %.80s)", name, row->line, t->names[i], v,
                             *volume);
        labels[i] = v[0] - '0';
    }
    return 0;
}

int report_text_header(const struct csv_row *row, const char *name, struct report_text_cols *c) {
    static const char *const want[3] = { "VolumeName", "Findings_EN", "Impressions_EN" };
    int *slot[3] = { &c->volume, &c->findings, &c->impression };
    c->n_cols = row->n;
    for (int k = 0; k < 3; k++) *slot[k] = -1;
    for (int f = 0; f < row->n; f++)
        for (int k = 0; k < 3; k++)
            if (!strcmp(row->fields[f], want[k])) {
                if (*slot[k] >= 0) return ct_seterr("%s:%ld: column '%s' given twice", name, row->line, want[k]);
                *slot[k] = f;
            }
    for (int k = 0; k < 3; k++)
        if (*slot[k] < 0) return ct_seterr("%s:%ld: missing column '%s'", name, row->line, want[k]);
    return 0;
}

/* ---- the LLM prompt ---- */

const char report_prompt_template[] =
    "You split a chest CT radiology report by organ.\n"
    "\n"
    "Below are the FINDINGS and the IMPRESSION of one report. Split them for these organs only: {{organs}}.\n"
    "\n"
    "Rules:\n"
    "1. \"findings\": for each organ, the sentences of the FINDINGS that describe that organ, copied word for word "
    "in their original order and joined by single spaces. Leave out an organ that the FINDINGS do not mention.\n"
    "2. \"impression\": for each organ, the sentences of the IMPRESSION that report an abnormality of that organ, "
    "copied word for word. Leave out every organ that the IMPRESSION does not mention or calls normal: never write "
    "an empty string, \"none\", \"normal\" or \"not mentioned\".\n"
    "3. A sentence about several of these organs goes to each of them.\n"
    "4. The pleura (pleural effusion, thickening), the airways and the bronchi belong to lung; the pericardium and "
    "the coronary arteries to heart; a hiatal hernia to esophagus; the thoracic aorta and arterial wall "
    "calcification to aorta. Ignore every other structure (lymph nodes, thyroid, bones, upper abdomen, ...).\n"
    "5. Do not paraphrase, translate, summarise, correct or add anything.\n"
    "6. Reply with one JSON object and nothing else (no Markdown, no comments), of this shape:\n"
    "{{example}}\n"
    "\n"
    "FINDINGS:\n"
    "{{findings}}\n"
    "\n"
    "IMPRESSION:\n"
    "{{impression}}\n";

static void put_example(const struct org_set *o, struct csv_buf *out) {
    csv_buf_puts(out, "{\"findings\": {");
    for (int i = 0; i < o->n; i++) csv_buf_printf(out, "%s\"%s\": \"...\"", i ? ", " : "", o->names[i]);
    csv_buf_printf(out, "}, \"impression\": {\"%s\": \"...\"}}", o->names[0]);
}

void report_prompt(const struct org_set *o, const char *tmpl, const char *findings, const char *impression,
                   struct csv_buf *out) {
    out->n = 0;
    csv_buf_put(out, "", 0);
    for (const char *p = tmpl; *p;) {
        const char *q = strstr(p, "{{");
        if (!q) {
            csv_buf_puts(out, p);
            break;
        }
        csv_buf_put(out, p, (size_t)(q - p));
        if (!strncmp(q, "{{organs}}", 10)) {
            for (int i = 0; i < o->n; i++) csv_buf_printf(out, "%s%s", i ? ", " : "", o->names[i]);
            p = q + 10;
        } else if (!strncmp(q, "{{example}}", 11)) {
            put_example(o, out);
            p = q + 11;
        } else if (!strncmp(q, "{{findings}}", 12)) {
            csv_buf_puts(out, findings);
            p = q + 12;
        } else if (!strncmp(q, "{{impression}}", 14)) {
            csv_buf_puts(out, impression);
            p = q + 14;
        } else {
            csv_buf_put(out, q, 2);
            p = q + 2;
        }
    }
}

int report_template_check(const char *tmpl) {
    int seen_f = 0, seen_i = 0;
    for (const char *q = strstr(tmpl, "{{"); q; q = strstr(q + 2, "{{")) {
        const char *e = strstr(q, "}}");
        if (!e) return ct_seterr("'{{' without '}}'");
        size_t n = (size_t)(e + 2 - q);
        if (n == 12 && !strncmp(q, "{{findings}}", 12)) seen_f = 1;
        else if (n == 14 && !strncmp(q, "{{impression}}", 14)) seen_i = 1;
        else if (!(n == 10 && !strncmp(q, "{{organs}}", 10)) && !(n == 11 && !strncmp(q, "{{example}}", 11)))
            return ct_seterr("unknown placeholder '%.*s' (known: {{organs}} {{example}} {{findings}} {{impression}})",
                             (int)(n > 60 ? 60 : n), q);
    }
    if (!seen_f || !seen_i) return ct_seterr("the template must contain {{findings}} and {{impression}}");
    return 0;
}

void report_answer_schema(const struct org_set *o, struct csv_buf *out) {
    out->n = 0;
    csv_buf_puts(out, "{\"type\": \"object\", \"properties\": {");
    for (int f = 0; f < 2; f++) {
        csv_buf_printf(out, "%s\"%s\": {\"type\": \"object\", \"properties\": {", f ? ", " : "",
                       f ? "impression" : "findings");
        for (int i = 0; i < o->n; i++)
            csv_buf_printf(out, "%s\"%s\": {\"type\": \"string\", \"minLength\": 1}", i ? ", " : "", o->names[i]);
        csv_buf_puts(out, "}, \"additionalProperties\": false}");
    }
    csv_buf_puts(out, "}, \"required\": [\"findings\", \"impression\"], \"additionalProperties\": false}");
}

/* ---- id sets (open addressing, FNV-1a) ---- */

struct report_idset {
    size_t    cap, n;                /* cap is a power of two */
    char    **keys;
    char    **origins;
    uint64_t *tags;
};

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void idset_alloc(struct report_idset *s, size_t cap) {
    s->cap = cap;
    s->keys = ct_xcalloc(cap, sizeof *s->keys);
    s->origins = ct_xcalloc(cap, sizeof *s->origins);
    s->tags = ct_xcalloc(cap, sizeof *s->tags);
}

struct report_idset *report_idset_new(void) {
    struct report_idset *s = ct_xcalloc(1, sizeof *s);
    idset_alloc(s, 1024);
    return s;
}

static size_t idset_slot(const struct report_idset *s, const char *id) {
    size_t i = fnv1a(id) & (s->cap - 1);
    while (s->keys[i] && strcmp(s->keys[i], id)) i = (i + 1) & (s->cap - 1);
    return i;
}

const char *report_idset_add(struct report_idset *s, const char *id, const char *origin, uint64_t tag,
                             uint64_t *old_tag) {
    size_t i = idset_slot(s, id);
    if (s->keys[i]) {
        if (old_tag) *old_tag = s->tags[i];
        return s->origins[i];
    }
    if (2 * (s->n + 1) > s->cap) {           /* grow at half full */
        struct report_idset old = *s;
        idset_alloc(s, old.cap * 2);
        for (size_t k = 0; k < old.cap; k++)
            if (old.keys[k]) {
                size_t j = idset_slot(s, old.keys[k]);
                s->keys[j] = old.keys[k];
                s->origins[j] = old.origins[k];
                s->tags[j] = old.tags[k];
            }
        free(old.keys);
        free(old.origins);
        free(old.tags);
        i = idset_slot(s, id);
    }
    s->keys[i] = ct_xstrdup(id);
    s->origins[i] = ct_xstrdup(origin ? origin : "");
    s->tags[i] = tag;
    s->n++;
    return NULL;
}

const char *report_idset_get(const struct report_idset *s, const char *id, uint64_t *tag) {
    size_t i = idset_slot(s, id);
    if (!s->keys[i]) return NULL;
    if (tag) *tag = s->tags[i];
    return s->origins[i];
}

void report_idset_free(struct report_idset *s) {
    if (!s) return;
    for (size_t i = 0; i < s->cap; i++) {
        free(s->keys[i]);
        free(s->origins[i]);
    }
    free(s->keys);
    free(s->origins);
    free(s->tags);
    free(s);
}
