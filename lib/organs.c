/*
 * organs.c - organ names, class merges, report organ sets and the CT-RATE
 * abnormality items (see organs.h).
 *
 * Sections: compiled-in tables, organ names, config helpers, class merges,
 * report organ sets, abnormality table.
 */
#include "organs.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "csv.h"
#include "ct.h"

/* ---- compiled-in tables (equal to the YAML files in pipelines/; tests/unit/test-organs.c) ---- */

static const char *const default_alias_keys[] = {
    "lungs",     "pulmonary",  "lung parenchyma", "lungs and pleura", "lung and pleura",
    "pleura",    "airways",    "heart and pericardium", "cardiac", "pericardium",
    "oesophagus", "esophageal", "oesophageal",   "aortic",  "thoracic aorta",
};
static const int default_alias_organ[] = { 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3 };

static const char *const default_abn[] = {
    "Medical material",           "Arterial wall calcification",    "Cardiomegaly",
    "Pericardial effusion",       "Coronary artery wall calcification", "Hiatal hernia",
    "Lymphadenopathy",            "Emphysema",                      "Atelectasis",
    "Lung nodule",                "Lung opacity",                   "Pulmonary fibrotic sequela",
    "Pleural effusion",           "Mosaic attenuation pattern",     "Peribronchial thickening",
    "Consolidation",              "Bronchiectasis",                 "Interlobular septal thickening",
};

/* ViSD-Boost eval.py test_items: organ, abnormality, negative, positive (method.md §6.3) */
static const char *const default_items[][4] = {
    { "lung", "Emphysema", "Not Emphysema.", "Emphysema." },
    { "lung", "Atelectasis", "Not Atelectatic.", "Atelectatic." },
    { "lung", "Lung nodule", "Not Lung nodule.", "Lung nodule." },
    { "lung", "Lung opacity", "Not Lung opacity.", "Lung opacity." },
    { "lung", "Pulmonary fibrotic sequela", "Not Pulmonary fibrotic.", "Pulmonary fibrotic." },
    { "lung", "Pleural effusion", "Not Pleural effusion.", "Pleural effusion." },
    { "lung", "Mosaic attenuation pattern", "Not Mosaic attenuation pattern.", "Mosaic attenuation pattern." },
    { "lung", "Peribronchial thickening", "Not Peribronchial thickening.", "Peribronchial thickening." },
    { "lung", "Consolidation", "Not Consolidation.", "Consolidation." },
    { "lung", "Bronchiectasis", "Not Bronchiectasis.", "Bronchiectasis." },
    { "lung", "Interlobular septal thickening", "Not Interlobular septal thickening.",
      "Interlobular septal thickening." },
    { "heart", "Cardiomegaly", "Not Cardiomegaly.", "Cardiomegaly." },
    { "heart", "Pericardial effusion", "Not Pericardial effusion.", "Pericardial effusion." },
    { "heart", "Coronary artery wall calcification", "Not Coronary artery wall calcification.",
      "Coronary artery wall calcification." },
    { "esophagus", "Hiatal hernia", "Not Hiatal hernia.", "Hiatal hernia." },
    { "aorta", "Arterial wall calcification", "Not Arterial wall calcification.", "Arterial wall calcification." },
};

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- organ names ---- */

const char *const org_ct_rate[ORG_CT_RATE_N] = { "lung", "heart", "esophagus", "aorta" };

int org_name_valid(const char *s, size_t n) { return n > 0 && n <= ORG_NAME_MAX && !memchr(s, '/', n); }

/* ---- config helpers ---- */

/* -1 + lasterr on the first key of map not in keys (NULL-terminated):
 * "unknown WHAT 'k'" followed by " (expected EXPECTED)" when expected is not NULL. */
static int only_keys(const struct cfg_node *map, const char *const *keys, const char *what, const char *expected) {
    for (int i = 0; i < map->n; i++) {
        int known = 0;
        for (const char *const *k = keys; *k; k++) known |= !strcmp(map->keys[i], *k);
        if (!known)
            return cfg_error(map->vals[i], "unknown %s '%s'%s%s%s", what, map->keys[i], expected ? " (expected " : "",
                             expected ? expected : "", expected ? ")" : "");
    }
    return 0;
}

/* ---- class merges ---- */

/* Keep in step with pipelines/organs-ct-rate.yaml (tests/cli/ct-resample.sh
 * compares `ct-resample --print-organs` with it byte for byte). */
const char org_classes_ct_rate_yaml[] =
    "# The CT-RATE organ set of fVLM and ViSD-Boost (method.md 1.4): which TotalSegmentator classes\n"
    "# merge into which organ.  Mask value k is organs[k-1]; every class not listed becomes 0.\n"
    "# This is ct-resample's built-in default; copy and edit it for another organ set (--organs FILE).\n"
    "name: ct-rate\n"
    "# label values 1..classes are known classes (TotalSegmentator v2 'total' task: 117)\n"
    "classes: 117\n"
    "organs:\n"
    "  - name: lung\n"
    "    ids: [10, 11, 12, 13, 14]   # lung upper/lower lobe left, upper/middle/lower lobe right\n"
    "  - name: heart\n"
    "    ids: [51, 61]               # heart, atrial_appendage_left\n"
    "  - name: esophagus\n"
    "    ids: [15]\n"
    "  - name: aorta\n"
    "    ids: [52]\n";

int org_classes_parse(const struct cfg_node *doc, struct tn_arena *a, struct org_classes *o) {
    memset(o, 0, sizeof *o);
    o->source = doc->source;
    if (doc->type != CFG_MAP) return cfg_error(doc, "an organ set is a map with 'organs'");
    static const char *const top[] = { "name", "classes", "organs", NULL };
    if (only_keys(doc, top, "key", NULL) != 0) return -1;
    const struct cfg_node *nm = cfg_get(doc, "name");
    if (nm && nm->type != CFG_SCALAR) return cfg_error(nm, "'name' must be a string");
    o->name = nm ? nm->str : "unnamed";
    const struct cfg_node *cl = cfg_get(doc, "classes");
    o->n_classes = 117;
    if (cl && (cfg_long(cl, &o->n_classes) != 0 || o->n_classes < 1 || o->n_classes > 65535))
        return cfg_error(cl, "'classes' must be an integer from 1 to 65535");
    const struct cfg_node *org = cfg_get(doc, "organs");
    if (!org) return cfg_error(doc, "missing 'organs'");
    if (org->type != CFG_SEQ || org->n == 0) return cfg_error(org, "'organs' must be a non-empty list");
    if (org->n > ORG_MAX_MASK) return cfg_error(org, "more than %d organs (the mask is u8)", ORG_MAX_MASK);
    o->n = org->n;
    o->organs = tn_arena_alloc(a, (size_t)o->n * sizeof *o->organs);
    uint8_t *seen = ct_xcalloc((size_t)o->n_classes + 1, 1);
    int rc = -1;
    for (int k = 0; k < o->n; k++) {
        const struct cfg_node *e = org->items[k];
        static const char *const keys[] = { "name", "ids", NULL };
        if (e->type != CFG_MAP) {
            cfg_error(e, "an organ is a map with 'name' and 'ids'");
            goto done;
        }
        if (only_keys(e, keys, "key", NULL) != 0) goto done;
        const struct cfg_node *n = cfg_get(e, "name"), *ids = cfg_get(e, "ids");
        if (!n || n->type != CFG_SCALAR || n->len == 0) {
            cfg_error(e, "organ %d has no 'name'", k + 1);
            goto done;
        }
        for (int j = 0; j < k; j++)
            if (!strcmp(o->organs[j].name, n->str)) {
                cfg_error(n, "organ '%s' is listed twice", n->str);
                goto done;
            }
        if (!ids || ids->type != CFG_SEQ || ids->n == 0) {
            cfg_error(ids ? ids : e, "organ '%s' needs a non-empty list 'ids'", n->str);
            goto done;
        }
        long *v = tn_arena_alloc(a, (size_t)ids->n * sizeof *v);
        for (int i = 0; i < ids->n; i++) {
            if (cfg_long(ids->items[i], &v[i]) != 0) goto done;
            if (v[i] < 1 || v[i] > o->n_classes) {
                cfg_error(ids->items[i], "unknown class id %ld (known classes are 1..%ld)", v[i], o->n_classes);
                goto done;
            }
            if (seen[v[i]]) {
                cfg_error(ids->items[i], "class id %ld is merged into two organs", v[i]);
                goto done;
            }
            seen[v[i]] = 1;
        }
        o->organs[k] = (struct org_merge){ .name = n->str, .n_ids = ids->n, .ids = v };
    }
    rc = 0;
done:
    free(seen);
    return rc;
}

int org_classes_load(const char *path, struct tn_arena *a, struct org_classes *o) {
    struct cfg_node *doc = path ? cfg_load_file(path, a)
                                : cfg_load_string(org_classes_ct_rate_yaml, strlen(org_classes_ct_rate_yaml),
                                                  "built-in ct-rate organ set", a);
    if (!doc) return -1;
    if (org_classes_parse(doc, a, o) != 0) return -1;
    o->source = path ? path : "built-in";
    return 0;
}
/* ---- key form and organ lookup ---- */

static int is_sep(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '_' || c == '-'; }

size_t org_key_norm(const char *s, char *out, size_t n) {
    size_t k = 0;
    int pending = 0;                         /* a separator run seen since the last letter */
    if (n == 0) return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (is_sep(c)) {
            pending = k > 0;
            continue;
        }
        if (pending) {
            if (k + 1 >= n) break;
            out[k++] = ' ';
            pending = 0;
        }
        if (k + 1 >= n) break;
        out[k++] = (char)(c < 0x80 ? tolower(c) : c);
    }
    out[k] = 0;
    return k;
}

void org_set_default(struct org_set *o) {
    memset(o, 0, sizeof *o);
    o->n = ORG_CT_RATE_N;
    for (int i = 0; i < o->n; i++) o->names[i] = org_ct_rate[i];
    o->n_aliases = NELEM(default_alias_keys);
    o->alias_keys = (const char **)default_alias_keys;
    o->alias_organ = default_alias_organ;
    o->n_ignore = 0;
    o->ignore = NULL;
}

int org_find(const struct org_set *o, const char *key, enum org_match *how) {
    for (int i = 0; i < o->n; i++)
        if (!strcmp(key, o->names[i])) {
            *how = ORG_EXACT;
            return i;
        }
    char k[256];
    if (strlen(key) >= sizeof k - 1) {
        *how = ORG_UNKNOWN;
        return -1;
    }
    org_key_norm(key, k, sizeof k);
    for (int i = 0; i < o->n; i++)
        if (!strcmp(k, o->names[i])) {
            *how = ORG_CASE;
            return i;
        }
    for (int i = 0; i < o->n_aliases; i++)
        if (!strcmp(k, o->alias_keys[i])) {
            *how = ORG_ALIAS;
            return o->alias_organ[i];
        }
    for (int i = 0; i < o->n_ignore; i++)
        if (!strcmp(k, o->ignore[i])) {
            *how = ORG_IGNORED;
            return -1;
        }
    *how = ORG_UNKNOWN;
    return -1;
}

/* A scalar of a config file as a key-form name; -1 + lasterr. */
static int cfg_name(const struct cfg_node *n, struct tn_arena *a, int must_be_key_form, const char **out) {
    if (!n || n->type != CFG_SCALAR || n->len == 0) return cfg_error(n, "expected a non-empty name");
    if (csv_utf8_check(n->str, n->len) != n->len || strlen(n->str) != n->len)
        return cfg_error(n, "invalid UTF-8 or NUL byte");
    char k[256];
    if (n->len >= sizeof k - 1) return cfg_error(n, "name longer than %zu bytes", sizeof k - 2);
    org_key_norm(n->str, k, sizeof k);
    if (!k[0]) return cfg_error(n, "expected a non-empty name");
    if (must_be_key_form && strcmp(k, n->str))
        return cfg_error(n, "organ name '%s' must be written in key form ('%s')", n->str, k);
    *out = tn_arena_strdup(a, k);
    return 0;
}

static int cfg_seq(const struct cfg_node *root, const char *key, int required, const struct cfg_node **out) {
    const struct cfg_node *n = cfg_get(root, key);
    *out = NULL;
    if (!n) return required ? cfg_error(root, "missing key '%s'", key) : 0;
    if (n->type != CFG_SEQ) return cfg_error(n, "'%s' must be a list", key);
    *out = n;
    return 0;
}

int org_set_load(const char *path, struct tn_arena *a, struct org_set *o) {
    struct cfg_node *root = cfg_load_file(path, a);
    if (!root) return -1;
    if (root->type != CFG_MAP) return cfg_error(root, "expected a map with keys organs, aliases, ignore");
    static const char *const top[] = { "organs", "aliases", "ignore", NULL };
    if (only_keys(root, top, "key", "organs, aliases, ignore") != 0) return -1;
    memset(o, 0, sizeof *o);
    const struct cfg_node *org, *ign;
    if (cfg_seq(root, "organs", 1, &org) != 0) return -1;
    if (org->n == 0) return cfg_error(org, "'organs' is empty");
    if (org->n > ORG_MAX) return cfg_error(org, "more than %d organs", ORG_MAX);
    for (int i = 0; i < org->n; i++) {
        if (cfg_name(org->items[i], a, 1, &o->names[i]) != 0) return -1;
        for (int j = 0; j < i; j++)
            if (!strcmp(o->names[i], o->names[j])) return cfg_error(org->items[i], "organ '%s' listed twice", o->names[i]);
        o->n = i + 1;
    }
    const struct cfg_node *al = cfg_get(root, "aliases");
    if (al && !(al->type == CFG_MAP || (al->type == CFG_SEQ && al->n == 0)))
        return cfg_error(al, "'aliases' must map spellings to organs");
    int n_al = al && al->type == CFG_MAP ? al->n : 0;
    const char **keys = tn_arena_alloc(a, (size_t)(n_al + 1) * sizeof *keys);
    int *to = tn_arena_alloc(a, (size_t)(n_al + 1) * sizeof *to);
    for (int i = 0; i < n_al; i++) {
        struct cfg_node kn = *al->vals[i];   /* positions of the value; the key text below */
        kn.str = al->keys[i];
        kn.len = strlen(al->keys[i]);
        if (cfg_name(&kn, a, 0, &keys[i]) != 0) return -1;
        const struct cfg_node *v = al->vals[i];
        if (v->type != CFG_SCALAR) return cfg_error(v, "alias '%s' must name one organ", al->keys[i]);
        to[i] = -1;
        for (int j = 0; j < o->n; j++)
            if (!strcmp(v->str, o->names[j])) to[i] = j;
        if (to[i] < 0) return cfg_error(v, "alias '%s' maps to '%s', which is not in organs", al->keys[i], v->str);
        for (int j = 0; j < o->n; j++)
            if (!strcmp(keys[i], o->names[j])) return cfg_error(v, "alias '%s' is an organ name", al->keys[i]);
        for (int j = 0; j < i; j++)
            if (!strcmp(keys[i], keys[j])) return cfg_error(v, "alias '%s' given twice (in key form)", al->keys[i]);
    }
    o->n_aliases = n_al;
    o->alias_keys = keys;
    o->alias_organ = to;
    if (cfg_seq(root, "ignore", 0, &ign) != 0) return -1;
    int n_ig = ign ? ign->n : 0;
    const char **ig = tn_arena_alloc(a, (size_t)(n_ig + 1) * sizeof *ig);
    o->ignore = ig;
    for (int i = 0; i < n_ig; i++) {
        if (cfg_name(ign->items[i], a, 0, &ig[i]) != 0) return -1;
        enum org_match how;
        if (org_find(o, ig[i], &how) >= 0)
            return cfg_error(ign->items[i], "'%s' is both ignored and an organ or alias", ign->items[i]->str);
        o->n_ignore = i + 1;
    }
    o->n_ignore = n_ig;
    return 0;
}

int org_set_equal(const struct org_set *a, const struct org_set *b) {
    if (a->n != b->n || a->n_aliases != b->n_aliases || a->n_ignore != b->n_ignore) return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->names[i], b->names[i])) return 0;
    for (int i = 0; i < a->n_aliases; i++) {
        int found = 0;
        for (int j = 0; j < b->n_aliases && !found; j++)
            found = !strcmp(a->alias_keys[i], b->alias_keys[j]) &&
                    !strcmp(a->names[a->alias_organ[i]], b->names[b->alias_organ[j]]);
        if (!found) return 0;
    }
    for (int i = 0; i < a->n_ignore; i++) {
        int found = 0;
        for (int j = 0; j < b->n_ignore && !found; j++) found = !strcmp(a->ignore[i], b->ignore[j]);
        if (!found) return 0;
    }
    return 1;
}

/* ---- abnormality table ---- */

void org_abn_default(struct org_abn *t) {
    memset(t, 0, sizeof *t);
    t->n = NELEM(default_abn);
    for (int i = 0; i < t->n; i++) t->names[i] = default_abn[i];
    t->n_items = NELEM(default_items);
    for (int i = 0; i < t->n_items; i++) {
        t->items[i].abn = -1;
        for (int j = 0; j < t->n; j++)
            if (!strcmp(default_items[i][1], t->names[j])) t->items[i].abn = j;
        CT_ASSERT(t->items[i].abn >= 0);
        t->items[i].organ = default_items[i][0];
        t->items[i].negative = default_items[i][2];
        t->items[i].positive = default_items[i][3];
    }
}

static int cfg_text(const struct cfg_node *map, const char *key, const char **out) {
    const struct cfg_node *n = cfg_get(map, key);
    if (!n) return cfg_error(map, "missing key '%s'", key);
    if (n->type != CFG_SCALAR || n->len == 0) return cfg_error(n, "'%s' must be non-empty text", key);
    if (csv_utf8_check(n->str, n->len) != n->len || strlen(n->str) != n->len)
        return cfg_error(n, "invalid UTF-8 or NUL byte");
    *out = n->str;
    return 0;
}

int org_abn_load(const char *path, struct tn_arena *a, struct org_abn *t) {
    struct cfg_node *root = cfg_load_file(path, a);
    if (!root) return -1;
    if (root->type != CFG_MAP) return cfg_error(root, "expected a map with keys abnormalities, items");
    static const char *const top[] = { "abnormalities", "items", NULL };
    if (only_keys(root, top, "key", "abnormalities, items") != 0) return -1;
    memset(t, 0, sizeof *t);
    const struct cfg_node *ab, *it;
    if (cfg_seq(root, "abnormalities", 1, &ab) != 0 || cfg_seq(root, "items", 1, &it) != 0) return -1;
    if (ab->n == 0 || ab->n > ORG_MAX_ABN) return cfg_error(ab, "expected 1 to %d abnormalities", ORG_MAX_ABN);
    for (int i = 0; i < ab->n; i++) {
        const struct cfg_node *n = ab->items[i];
        if (n->type != CFG_SCALAR || n->len == 0) return cfg_error(n, "expected an abnormality name");
        if (csv_utf8_check(n->str, n->len) != n->len || strlen(n->str) != n->len)
            return cfg_error(n, "invalid UTF-8 or NUL byte");
        for (int j = 0; j < i; j++)
            if (!strcmp(n->str, t->names[j])) return cfg_error(n, "abnormality '%s' listed twice", n->str);
        if (!strcmp(n->str, "VolumeName")) return cfg_error(n, "'VolumeName' cannot be an abnormality");
        t->names[i] = n->str;
    }
    t->n = ab->n;
    if (it->n > t->n) return cfg_error(it, "more items than abnormalities");
    for (int i = 0; i < it->n; i++) {
        const struct cfg_node *m = it->items[i];
        if (m->type != CFG_MAP) return cfg_error(m, "an item is a map with organ, abnormality, negative, positive");
        static const char *const item_keys[] = { "organ", "abnormality", "negative", "positive", NULL };
        if (only_keys(m, item_keys, "item key", NULL) != 0) return -1;
        struct org_item *x = &t->items[i];
        const char *abn;
        if (cfg_text(m, "organ", &x->organ) != 0 || cfg_text(m, "abnormality", &abn) != 0 ||
            cfg_text(m, "negative", &x->negative) != 0 || cfg_text(m, "positive", &x->positive) != 0)
            return -1;
        x->abn = -1;
        for (int j = 0; j < t->n; j++)
            if (!strcmp(abn, t->names[j])) x->abn = j;
        if (x->abn < 0) return cfg_error(cfg_get(m, "abnormality"), "'%s' is not in abnormalities", abn);
        for (int j = 0; j < i; j++)
            if (t->items[j].abn == x->abn) return cfg_error(cfg_get(m, "abnormality"), "'%s' evaluated twice", abn);
    }
    t->n_items = it->n;
    return 0;
}

int org_abn_equal(const struct org_abn *a, const struct org_abn *b) {
    if (a->n != b->n || a->n_items != b->n_items) return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->names[i], b->names[i])) return 0;
    for (int i = 0; i < a->n_items; i++) {
        const struct org_item *x = &a->items[i], *y = &b->items[i];
        if (x->abn != y->abn || strcmp(x->organ, y->organ) || strcmp(x->negative, y->negative) ||
            strcmp(x->positive, y->positive))
            return 0;
    }
    return 1;
}

int org_abn_check_organs(const struct org_abn *t, const struct org_set *o) {
    for (int i = 0; i < t->n_items; i++) {
        int found = 0;
        for (int j = 0; j < o->n && !found; j++) found = !strcmp(t->items[i].organ, o->names[j]);
        if (!found)
            return ct_seterr("abnormality '%s' is scored on organ '%s', which is not in the organ set",
                             t->names[t->items[i].abn], t->items[i].organ);
    }
    return 0;
}
