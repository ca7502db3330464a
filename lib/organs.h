/*
 * organs.h - the organs and abnormalities every stage talks about, in one place.
 *
 *   organ names      the CT-RATE organs in their fixed order (lung, heart,
 *                    esophagus, aorta: mask value k+1 = organ k) and what a
 *                    valid organ name is (it becomes part of tensor names).
 *   class merges     struct org_classes: which TotalSegmentator classes merge
 *                    into which organ (ct-resample; pipelines/organs-ct-rate.yaml).
 *   report organs    struct org_set: the organs a report speaks of, with the
 *                    spellings read as each (aliases) and those dropped
 *                    (report-label; pipelines/report-organs.yaml).
 *   abnormalities    struct org_abn: the CT-RATE abnormalities (label CSV
 *                    columns) and the evaluated items, each scored on one
 *                    organ with its negative/positive prompt pair (report-label,
 *                    text-encode, zeroshot; pipelines/ct-rate-abnormalities.yaml).
 *
 *     struct org_abn t;
 *     if (path ? org_abn_load(path, arena, &t) != 0 : (org_abn_default(&t), 0))
 *         ct_die("%s", ct_lasterr());                    // "file:line:col: ..."
 *     for (int i = 0; i < t.n_items; i++)
 *         printf("%s %s: %s / %s\n", t.items[i].organ, t.names[t.items[i].abn],
 *                t.items[i].negative, t.items[i].positive);
 *
 * Depends only on lib/cfg (YAML) and lib/csv (UTF-8 check): a tool that needs
 * the items does not link the report parser.  Loaded sets live in the arena
 * given to the loader (strings included); the defaults point to static
 * tables.  Nothing here prints or exits; loaders return -1 with ct_lasterr()
 * "file:line:col: problem".  No global state; every function is thread-safe.
 */
#ifndef CT_ORGANS_H
#define CT_ORGANS_H

#include <stddef.h>

#include "cfg.h"
#include "tensor.h"

/* ---- organ names ---- */

/* The CT-RATE organs of fVLM and ViSD-Boost, in mask-value order. */
#define ORG_CT_RATE_N 4
extern const char *const org_ct_rate[ORG_CT_RATE_N];   /* "lung", "heart", "esophagus", "aorta" */

/* An organ name goes into tensor names ("tok1/lung"): 1 to ORG_NAME_MAX bytes, no '/'. */
#define ORG_NAME_MAX 100
int org_name_valid(const char *s, size_t n);             /* 1 valid, 0 not */

/* ---- class merges (ct-resample) ---- */

#define ORG_MAX_MASK 255                     /* organs of a merge set: the mask is u8 */

struct org_merge {
    const char *name;
    int         n_ids;
    const long *ids;                         /* TotalSegmentator class ids merged into this organ */
};
struct org_classes {
    const char       *name;                  /* "ct-rate" */
    const char       *source;                /* file name, or "built-in" */
    long              n_classes;             /* valid class ids are 1..n_classes */
    int               n;
    struct org_merge *organs;                /* mask value k+1 = organs[k] */
};
/* The built-in CT-RATE set, as YAML text identical to pipelines/organs-ct-rate.yaml
 * (`ct-resample --print-organs` prints it; its organs are org_ct_rate). */
extern const char org_classes_ct_rate_yaml[];
/* Parse an organ set document (cfg tree); -1 + lasterr "file:line:col: ...". */
int org_classes_parse(const struct cfg_node *doc, struct tn_arena *a, struct org_classes *o);
/* Load from a YAML file, or the built-in set when path is NULL. */
int org_classes_load(const char *path, struct tn_arena *a, struct org_classes *o);

/* ---- report organ sets, aliases (report-label) ---- */

#define ORG_MAX 32                           /* organs of a report organ set */

struct org_set {
    int          n;                          /* organs, in output order */
    const char  *names[ORG_MAX];             /* canonical lowercase names: "lung" */
    int          n_aliases;
    const char **alias_keys;                 /* spellings in key form (org_key_norm): "lungs" */
    const int   *alias_organ;                /* index into names for each alias */
    int          n_ignore;
    const char **ignore;                     /* spellings (key form) dropped with a note */
};

/* The compiled-in default, equal to pipelines/report-organs.yaml (a test checks it). */
void org_set_default(struct org_set *o);
/* Load an organ YAML (keys organs, aliases, ignore).  -1 + lasterr "file:line:col: ...". */
int  org_set_load(const char *path, struct tn_arena *a, struct org_set *o);
/* 1 when a and b hold the same organs, aliases (any order) and ignore lists. */
int  org_set_equal(const struct org_set *a, const struct org_set *b);

/* Key form of a name, used for every organ and field-name comparison:
 * surrounding whitespace dropped, ASCII letters lowercased, and each run of
 * spaces, tabs, '_' and '-' made one space ("Thoracic_Aorta" -> "thoracic aorta").
 * Writes at most n bytes including the NUL; returns the length. */
size_t org_key_norm(const char *s, char *out, size_t n);

enum org_match {
    ORG_EXACT,                       /* the canonical name as is */
    ORG_CASE,                        /* canonical after org_key_norm ("Lung", " lung ") */
    ORG_ALIAS,                       /* an alias ("lungs") */
    ORG_IGNORED,                     /* in the ignore list */
    ORG_UNKNOWN,
};
/* Organ index for a key, or -1 (then *how is ORG_IGNORED or ORG_UNKNOWN). */
int org_find(const struct org_set *o, const char *key, enum org_match *how);

/* ---- CT-RATE abnormalities and the evaluated items ---- */

#define ORG_MAX_ABN 64

struct org_item {
    int         abn;                 /* index into org_abn.names */
    const char *organ;               /* organ whose feature scores it: "lung" */
    const char *negative;            /* prompt pair of method.md §6.3: "Not Emphysema." */
    const char *positive;            /* "Emphysema." */
};

struct org_abn {
    int             n;                       /* abnormalities (18 for CT-RATE) */
    const char     *names[ORG_MAX_ABN];      /* CT-CLIP order = label CSV column order */
    int             n_items;                 /* evaluated abnormalities (16) */
    struct org_item items[ORG_MAX_ABN];      /* in evaluation (test_items) order */
};

void org_abn_default(struct org_abn *t);     /* equal to pipelines/ct-rate-abnormalities.yaml */
int  org_abn_load(const char *path, struct tn_arena *a, struct org_abn *t);
int  org_abn_equal(const struct org_abn *a, const struct org_abn *b);
/* -1 + lasterr when an item's organ is not in the organ set. */
int  org_abn_check_organs(const struct org_abn *t, const struct org_set *o);

#endif
