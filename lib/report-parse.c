/*
 * report-parse.c - texts holding structured reports into report_node trees:
 * UTF-8 and NUL checks, byte-order mark, the payload of an LLM answer (code
 * fence, or a JSON object cut out of prose), then JSON (jansson, duplicate keys
 * refused) or YAML (lib/cfg).  See report.h.  The only file that includes
 * <jansson.h>.
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
        n->s = tn_arena_strndup(a, json_string_value(j), n->len);
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
        p = tn_arena_strndup(a, text + skip, n - skip);
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

